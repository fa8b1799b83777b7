//! The ERP surface, `/api/erp/v1/*`: JSON in and out, errors as `application/problem+json`.
//! Every handler takes a `Caller` (a pairgate access token with scope `erp`, Bearer or DPoP)
//! or an `AuthorizedJson`, calls the `Erp` domain service, and returns `ErpHttpError` with
//! `?`.

mod api;
mod models;
mod problem;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, dev, web};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::credentials;
use super::errors::{Extracting, context};
use crate::app::AppContext;
use crate::erp::SCOPE;
use crate::ids::DeviceSerial;
pub use api::ErpApi;
pub use models::ErpModelsApi;
pub use problem::{ErpHttpError, PROBLEM_JSON, Problem, TYPE_PREFIX};

/// The ERP API's routes as (method, path template); the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/erp/v1/devices/{serial}"),
    ("PUT", "/api/erp/v1/sales/{sale_id}"),
    ("DELETE", "/api/erp/v1/sales/{sale_id}"),
    ("PUT", "/api/erp/v1/customers/{customer_number}"),
    ("GET", "/api/erp/v1/events"),
    ("POST", "/api/erp/v1/pairings/{serial}/{verdict}"),
    ("PUT", "/api/erp/v1/models/{model}"),
];

/// The answer for any other method on a resource that allows only `allow`: 405 with `Allow`.
pub(crate) fn only(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Problem::method_not_allowed(allow).response() })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/erp/v1")
            .service(
                web::resource("/devices/{serial}")
                    .route(web::put().to(devices_put))
                    .default_service(only("PUT")),
            )
            .service(
                web::resource("/sales/{sale_id}")
                    .route(web::put().to(sales_put))
                    .route(web::delete().to(sales_delete))
                    .default_service(only("PUT, DELETE")),
            )
            .service(
                web::resource("/customers/{customer_number}")
                    .route(web::put().to(customers_put))
                    .default_service(only("PUT")),
            )
            .service(
                web::resource("/events")
                    .route(super::get().to(events_get))
                    .default_service(only("GET, HEAD")),
            )
            .service(
                web::resource("/pairings/{serial}/{verdict}")
                    .route(web::post().to(pairing_verdict_post))
                    .default_service(only("POST")),
            )
            .service(
                web::resource("/models/{model}")
                    .route(web::put().to(models::models_put))
                    .default_service(only("PUT")),
            )
            .default_service(web::to(|| async { Problem::not_found().response() })),
    );
}

/// The extractor of every ERP request: who called, `client:<client_id>` (the audit actor), once
/// the access token (one, in the `Authorization` header, and its DPoP proof) and the `erp` scope
/// are checked.
struct Caller {
    actor: String,
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(authorize(&req, context(&req)?).await?) })
    }
}

async fn authorize(req: &HttpRequest, ctx: &AppContext) -> Result<Caller, ErpHttpError> {
    let authorized = credentials::authorize::<ErpHttpError>(req, ctx).await?;
    if !authorized.claims.scope.split(' ').any(|s| s == SCOPE) {
        return Err(problem::insufficient_scope(authorized.scheme, SCOPE).into());
    }
    Ok(Caller {
        actor: format!("client:{}", authorized.claims.client_id),
    })
}

/// The extractor of a request with a JSON body: the [`Caller`], then the body. A form body is no
/// JSON, but it is read first to refuse a token in it (RFC 6750 §2.2, §3.1) before anything else.
struct AuthorizedJson {
    caller: Caller,
    body: Value,
}

impl FromRequest for AuthorizedJson {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move { Ok(authorized_json(&req, payload, context(&req)?).await?) })
    }
}

async fn authorized_json(
    req: &HttpRequest,
    payload: dev::Payload,
    ctx: &AppContext,
) -> Result<AuthorizedJson, ErpHttpError> {
    if credentials::is_form(req) {
        let body = read_body(req, payload, ctx).await?;
        if let Some(refusal) = credentials::token_in_form(req, &body) {
            return Err(refusal.into());
        }
        authorize(req, ctx).await?;
        return Err(unsupported_media_type().into());
    }
    let caller = authorize(req, ctx).await?;
    let body = read_json(req, payload, ctx).await?;
    Ok(AuthorizedJson { caller, body })
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        "send the body as application/json",
    )
}

/// Reads a JSON body of at most `server.max_json_bytes`.
async fn read_json(
    req: &HttpRequest,
    payload: dev::Payload,
    ctx: &AppContext,
) -> Result<Value, Problem> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let is_json = media.as_deref().is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    });
    if !is_json {
        return Err(unsupported_media_type());
    }
    let body = read_body(req, payload, ctx).await?;
    serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// Reads a body of at most `server.max_json_bytes`.
async fn read_body(
    req: &HttpRequest,
    mut payload: dev::Payload,
    ctx: &AppContext,
) -> Result<web::BytesMut, Problem> {
    let limit = ctx.settings.server.max_json_bytes.get() as usize;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the body may have {limit} bytes at most"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed body",
                "the request body could not be read",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponseBuilder::new(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(body)
}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Register a manufactured device with its factory public key.
///
/// Idempotent: the same body again answers 200 with `change` unchanged. Another key for a known
/// device is 409 key-mismatch unless `rekey` is true, which replaces the key and revokes every
/// token of the device. A different model corrects the model.
#[utoipa::path(put, path = "/api/erp/v1/devices/{serial}", operation_id = "erpDevicePut",
    tag = "erp", params(api::SerialPath), request_body = crate::erp::devices::DevicePut,
    responses(
        (status = 200, description = "Known device: unchanged, updated or re-keyed",
            body = crate::erp::devices::DeviceOutcome),
        (status = 201, description = "Registered", body = crate::erp::devices::DeviceOutcome),
        api::Refusals,
        api::BodyRefusals, api::Invalid,
        (status = 409, description = "key-mismatch (send rekey), not-a-device, concurrent-change",
            body = problem::ProblemBody, content_type = "application/problem+json"),
    ))]
async fn devices_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let serial = &DeviceSerial::from(req.match_info().query("serial"));
    let outcome = ctx
        .erp
        .put_device(&input.caller.actor, serial, &input.body)
        .await?;
    let created = outcome.change == crate::erp::devices::DeviceChange::Created;
    Ok(json(created_or_ok(created), &outcome))
}

/// Record or update a sale.
///
/// Idempotent by sale id. The sale's data is that of the highest revision delivered: a lower
/// revision is stale (200, `applied` false), the same revision with other content is 409
/// revision-reused. A status of cancelled or returned ends the sale; an ended sale stays ended
/// (a resale is a new sale id), and a cancellation that arrived before its sale keeps it ended.
/// A device has at most one active sale (409 device-already-sold). Ending a sale revokes the
/// device's tokens when it is paired to the tenant of the buyer or of the named end customer.
#[utoipa::path(put, path = "/api/erp/v1/sales/{sale_id}", operation_id = "erpSalePut",
    tag = "erp", params(api::SaleIdPath), request_body = crate::erp::sales::SalePut,
    responses(
        (status = 200, description = "Known sale (`applied` says whether this delivery changed it)",
            body = crate::erp::sales::SaleOutcome),
        (status = 201, description = "Recorded", body = crate::erp::sales::SaleOutcome),
        api::Refusals,
        api::BodyRefusals, api::Invalid,
        (status = 409, description = "revision-reused, device-already-sold, concurrent-change",
            body = problem::ProblemBody, content_type = "application/problem+json"),
    ))]
async fn sales_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let sale_id = req.match_info().query("sale_id");
    let outcome = ctx
        .erp
        .put_sale(&input.caller.actor, sale_id, &input.body)
        .await?;
    Ok(json(created_or_ok(outcome.created), &outcome))
}

/// Cancel a sale.
///
/// Ends the sale as cancelled (unless an update with a revision ended it otherwise). A
/// cancellation of an unknown sale id is kept, so the sale stays ended when it arrives later.
/// Repeating it changes nothing.
#[utoipa::path(delete, path = "/api/erp/v1/sales/{sale_id}", operation_id = "erpSaleDelete",
    tag = "erp", params(api::SaleIdPath),
    responses(
        (status = 200, description = "The sale, ended", body = crate::erp::sales::SaleOutcome),
        api::Refusals,
        api::Invalid,
        (status = 409, description = "concurrent-change", body = problem::ProblemBody,
            content_type = "application/problem+json"),
    ))]
async fn sales_delete(
    req: HttpRequest,
    caller: Caller,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let sale_id = req.match_info().query("sale_id");
    let outcome = ctx.erp.cancel_sale(&caller.actor, sale_id).await?;
    Ok(json(StatusCode::OK, &outcome))
}

/// Create, link or update the tenant of an ERP customer.
///
/// The first PUT creates a tenant for the customer, or links the existing tenant named by
/// `tenant_id` (staff matched it). Later PUTs keep the tenant's name in step. With
/// `admin_email` the first owner is invited by mail once (not while an invitation to that
/// address is open, not once the tenant has an owner).
#[utoipa::path(put, path = "/api/erp/v1/customers/{customer_number}",
    operation_id = "erpCustomerPut", tag = "erp", params(api::CustomerNumberPath),
    request_body = crate::erp::customers::CustomerPut,
    responses(
        (status = 200, description = "Known customer, or an existing tenant linked",
            body = crate::erp::customers::CustomerOutcome),
        (status = 201, description = "Tenant created",
            body = crate::erp::customers::CustomerOutcome),
        api::Refusals,
        api::BodyRefusals, api::Invalid,
        (status = 409, body = problem::ProblemBody, content_type = "application/problem+json",
            description = "customer-linked-elsewhere, tenant-linked-elsewhere, concurrent-change"),
    ))]
async fn customers_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let number = req.match_info().query("customer_number");
    let outcome = ctx
        .erp
        .put_customer(&input.caller.actor, number, &input.body)
        .await?;
    Ok(json(created_or_ok(outcome.created), &outcome))
}

/// Read the event feed.
///
/// Events in the order they happened, after the cursor. Resume with `next_cursor`; an event
/// never appears before one with a smaller id, so nothing is skipped.
#[utoipa::path(get, path = "/api/erp/v1/events", operation_id = "erpEventsGet", tag = "erp",
    params(api::EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = crate::erp::events::FeedPage),
        api::Refusals, api::Invalid,
    ))]
async fn events_get(
    req: HttpRequest,
    _: Caller,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let mut after = None;
    let mut limit = None;
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match key.as_ref() {
            "after" => after = Some(value.into_owned()),
            "limit" => limit = Some(value.into_owned()),
            _ => {}
        }
    }
    let page = ctx.erp.events(after.as_deref(), limit.as_deref()).await?;
    Ok(json(StatusCode::OK, &page))
}

/// Confirm or reject a provisional pairing.
///
/// The device was sold to a distributor and a customer paired it provisionally (event
/// pairing.provisional). `confirm` makes the pairing active; `reject` ends it: the device is
/// unpaired, every token it holds stops working at once, and the tenant's admins are told. 409
/// not-provisional when the device has no provisional pairing.
#[utoipa::path(post, path = "/api/erp/v1/pairings/{serial}/{verdict}",
    operation_id = "erpPairingVerdict", tag = "erp", params(api::VerdictPath),
    responses(
        (status = 200, description = "The verdict was applied", body = PairingVerdict),
        api::Refusals,
        (status = 404, description = "not-found: a verdict other than confirm or reject",
            body = problem::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "not-provisional, concurrent-change",
            body = problem::ProblemBody, content_type = "application/problem+json"),
    ))]
async fn pairing_verdict_post(
    req: HttpRequest,
    caller: Caller,
    ctx: web::Data<AppContext>,
) -> HttpResponse {
    let serial = DeviceSerial::from(req.match_info().query("serial"));
    let result = match req.match_info().query("verdict") {
        "confirm" => ctx
            .ceremony
            .erp_confirm(&serial, &caller.actor)
            .await
            .map(|ok| (ok, PairingState::Active)),
        "reject" => ctx
            .ceremony
            .erp_reject(&serial, &caller.actor)
            .await
            .map(|ok| (ok, PairingState::Ended)),
        _ => return Problem::not_found().response(),
    };
    match result {
        Ok((true, status)) => HttpResponse::Ok()
            .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
            .json(PairingVerdict {
                pairing: status,
                serial: serial.into(),
            }),
        Ok((false, _)) => Problem::new(
            StatusCode::CONFLICT,
            "not-provisional",
            "No provisional pairing",
            "this device has no provisional pairing to confirm or reject",
        )
        .response(),
        Err(e) => match crate::store::StoreFailure::store_error(&e) {
            Some(store_error) => Problem::store(&req, &ctx, store_error).response(),
            None => {
                tracing::error!(error = %e, "pairing verdict failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the error has been logged",
                )
                .response()
            }
        },
    }
}

/// The answer to a verdict on a provisional pairing.
#[derive(Debug, Serialize, ToSchema)]
struct PairingVerdict {
    pairing: PairingState,
    serial: String,
}

/// The pairing after a verdict.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum PairingState {
    /// After `confirm`.
    Active,
    /// After `reject`: the device is unpaired and its tokens revoked.
    Ended,
}
