//! The ERP API in the OpenAPI document: the path and query parameters, the refusals that every
//! operation shares (problem details, RFC 9457), and [`ErpApi`], which gathers the operations
//! described on the handlers of `super`.
#![expect(
    dead_code,
    reason = "the parameters and refusals are described, never built: the handlers read the \
              request themselves and answer with `Problem`"
)]

use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses, OpenApi, ToSchema};

use super::problem::{FieldProblem, ParameterIn, ProblemBody};

/// The operations of `/api/erp/v1`, with the schemas they use.
#[derive(OpenApi)]
#[openapi(
    paths(
        super::devices_put,
        super::sales_put,
        super::sales_delete,
        super::customers_put,
        super::events_get,
        super::pairing_verdict_post,
    ),
    components(schemas(ProblemBody, FieldProblem, ParameterIn)),
    tags((name = "erp", description = "The ERP API: devices, sales, customers, the event feed, \
        verdicts on provisional pairings, and the metrics of device models"))
)]
pub struct ErpApi;

/// A device's serial number in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SerialPath {
    /// The device's serial number.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub serial: String,
}

/// A sale id in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SaleIdPath {
    /// The ERP's id of the sale.
    #[param(min_length = 1, max_length = 64)]
    pub sale_id: String,
}

/// An ERP customer number in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CustomerNumberPath {
    /// The ERP's customer number.
    #[param(min_length = 1, max_length = 64)]
    pub customer_number: String,
}

/// A device model in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ModelPath {
    /// The device model, as the ERP names it in `PUT /devices/{serial}`.
    #[param(min_length = 1, max_length = 128)]
    pub model: String,
}

/// The device and the verdict in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VerdictPath {
    /// The device's serial number.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub serial: String,
    /// `confirm` makes the pairing active; `reject` ends it.
    #[param(inline)]
    pub verdict: Verdict,
}

/// The ERP's verdict on a provisional pairing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirm,
    Reject,
}

/// The query of a page of the event feed.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `next_cursor` of the previous page; absent or 0 starts from the beginning.
    pub after: Option<String>,
    /// Events per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The refusals every ERP operation may answer.
#[derive(IntoResponses)]
pub enum Refusals {
    /// invalid-request: the access token was sent more than one way (two `Authorization` lines,
    /// or an `access_token` in the query or a form body); for a body: malformed-json,
    /// malformed-body.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(ProblemBody),
    /// unauthorized: no valid access token or DPoP proof; `WWW-Authenticate` says why (RFC 6750
    /// §3, RFC 9449 §7.1). A DPoP proof whose `iat` is out of the window gets
    /// `error="use_dpop_nonce"` with a `DPoP-Nonce` and the server's time in `Date`.
    #[response(
        status = 401,
        content_type = "application/problem+json",
        headers(
            ("WWW-Authenticate" = String, description = "Bearer or DPoP challenges"),
            ("DPoP-Nonce" = String, description = "With use_dpop_nonce: put it in the next proof"),
        )
    )]
    Unauthorized(ProblemBody),
    /// insufficient-scope: the access token does not have the scope `erp`.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(ProblemBody),
    /// unavailable: the database cannot be reached; retry after `Retry-After` seconds.
    #[response(
        status = 503,
        content_type = "application/problem+json",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ProblemBody),
}

/// The refusals of a request body that is not JSON or too large.
#[derive(IntoResponses)]
pub enum BodyRefusals {
    /// payload-too-large: the body is over `server.max_json_bytes`.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(ProblemBody),
    /// unsupported-media-type: send the body as `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(ProblemBody),
}

/// validation: fields of the path, the query or the body are not valid; `errors` names each.
#[derive(IntoResponses)]
#[response(status = 422, content_type = "application/problem+json")]
pub struct Invalid(ProblemBody);
