//! RFC 9457 problem details for the JSON APIs, and the one place where ERP errors and refused
//! credentials become HTTP: status, `WWW-Authenticate` (RFC 6750 §3, RFC 9449 §7.1),
//! `DPoP-Nonce`, `Retry-After`. Internal detail is logged with the request id, never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppContext;
use crate::erp::{ErpError, FieldError, Location};
use crate::http::credentials::{self, CredentialError};
use crate::http::errors::{SurfaceError, request_id, unrendered};
use crate::oauth::resource::{ResourceError, TokenScheme};
use crate::store::StoreError;

/// The media type of problem details (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Problem types are `urn:pairgate:problem:<slug>`; the OpenAPI document lists them.
pub const TYPE_PREFIX: &str = "urn:pairgate:problem:";

/// A problem to answer with.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Field-level explanations (validation failures).
    pub errors: Vec<FieldProblem>,
    headers: Vec<(header::HeaderName, String)>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn response(self) -> HttpResponse {
        let mut res = HttpResponseBuilder::new(self.status);
        res.insert_header(CacheControl(vec![CacheDirective::NoStore]));
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read: say so, so the client does not reuse the
            // connection for its next request.
            res.force_close();
        }
        for (name, value) in self.headers {
            res.append_header((name, value));
        }
        let body = ProblemBody {
            detail: self.detail,
            errors: self.errors,
            status: self.status.as_u16(),
            title: self.title,
            problem_type: format!("{TYPE_PREFIX}{}", self.slug),
        };
        res.content_type(PROBLEM_JSON).json(body)
    }

    /// 422 with one entry per field.
    pub fn validation(errors: &[FieldError]) -> Self {
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "The request is not valid",
            match errors.len() {
                1 => "1 field is not valid; see errors".to_owned(),
                n => format!("{n} fields are not valid; see errors"),
            },
        );
        p.errors = errors.iter().map(field_error).collect();
        p
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such resource in this API",
        )
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("this resource accepts {allow}"),
        )
        .header(header::ALLOW, allow)
    }

    /// The database is unreachable (503 + `Retry-After`), or something broke (500).
    pub fn store(req: &HttpRequest, ctx: &AppContext, err: &StoreError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "ERP request: database unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
                "the service cannot reach its database; retry later",
            )
            .header(
                header::RETRY_AFTER,
                ctx.settings.server.retry_after_secs.to_string(),
            );
        }
        if let StoreError::Conflict(_) = err {
            tracing::info!(error = %err, "ERP request lost a race");
            return Self::new(
                StatusCode::CONFLICT,
                "concurrent-change",
                "Changed concurrently",
                "another request changed the same records at the same time; retry",
            );
        }
        let request_id = request_id(req);
        tracing::error!(error = %err, request_id, "ERP request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            format!("the request failed on our side; quote request id {request_id}"),
        )
    }
}

/// The body of every ERP refusal: problem details (RFC 9457 §3), as `application/problem+json`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// What went wrong in this request, and what to do about it.
    pub detail: String,
    /// One entry per field that is not valid (`validation` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The HTTP status code.
    pub status: u16,
    /// A short summary of the problem type.
    pub title: &'static str,
    /// `urn:pairgate:problem:<slug>`, the slug one of: validation (422), malformed-json,
    /// malformed-body and invalid-request (400), unauthorized (401), insufficient-scope (403),
    /// not-found (404), method-not-allowed (405), key-mismatch, not-a-device,
    /// device-already-sold, revision-reused, customer-linked-elsewhere, tenant-linked-elsewhere,
    /// not-provisional and concurrent-change (409), payload-too-large (413),
    /// unsupported-media-type (415), internal (500), unavailable (503).
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:pairgate:problem:[a-z-]+$")]
    pub problem_type: String,
}

/// One field of the request that is not valid: in the body (`pointer`), or a path or query
/// parameter (`parameter` and `in`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    pub detail: String,
    #[serde(rename = "in", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub location: Option<ParameterIn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub parameter: Option<&'static str>,
    /// A JSON Pointer into the body, as a URI fragment (`#/sold_to/kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pointer: Option<String>,
}

/// Where a parameter that is not valid was.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParameterIn {
    Path,
    Query,
}

fn field_error(e: &FieldError) -> FieldProblem {
    let (location, parameter, pointer) = match &e.location {
        Location::Body(pointer) => (None, None, Some(format!("#{pointer}"))),
        Location::Path(name) => (Some(ParameterIn::Path), Some(*name), None),
        Location::Query(name) => (Some(ParameterIn::Query), Some(*name), None),
    };
    FieldProblem {
        detail: e.detail.clone(),
        location,
        parameter,
        pointer,
    }
}

/// The ERP surface's error: handlers and extractors return it with `?`.
#[derive(Debug, thiserror::Error)]
pub enum ErpHttpError {
    /// An answer already decided here (scope, media type, body size, malformed JSON).
    #[error("{}", .0.slug)]
    Problem(Problem),
    #[error(transparent)]
    Erp(#[from] ErpError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error("{0:?}")]
    Credentials(CredentialError),
}

impl From<Problem> for ErpHttpError {
    fn from(p: Problem) -> Self {
        Self::Problem(p)
    }
}

impl From<CredentialError> for ErpHttpError {
    fn from(e: CredentialError) -> Self {
        Self::Credentials(e)
    }
}

impl ResponseError for ErpHttpError {
    fn error_response(&self) -> HttpResponse {
        unrendered()
    }
}

impl SurfaceError for ErpHttpError {
    fn render(&self, req: &HttpRequest, ctx: &AppContext) -> HttpResponse {
        match self {
            Self::Problem(p) => p.clone().response(),
            Self::Erp(e) => from_erp(req, ctx, e).response(),
            Self::Resource(e) => from_resource(req, ctx, e).response(),
            Self::Credentials(e) => from_credentials(req, ctx, *e).response(),
        }
    }
}

/// The one mapping from `ErpError` to HTTP.
pub fn from_erp(req: &HttpRequest, ctx: &AppContext, err: &ErpError) -> Problem {
    match err {
        ErpError::Validation(errors) => Problem::validation(errors),
        ErpError::Conflict(c) => {
            Problem::new(StatusCode::CONFLICT, c.slug(), c.title(), c.detail())
        }
        ErpError::Store(e) => Problem::store(req, ctx, e),
    }
}

const REALM: &str = "realm=\"pairgate\"";

/// The challenge for a refused credential (RFC 6750 §3, RFC 9449 §7.1).
fn challenge(scheme: TokenScheme, error: &str, description: &str) -> String {
    let name = match scheme {
        TokenScheme::Bearer => "Bearer",
        TokenScheme::Dpop => "DPoP",
    };
    let mut value =
        format!("{name} {REALM}, error=\"{error}\", error_description=\"{description}\"");
    if scheme == TokenScheme::Dpop {
        value.push_str(", algs=\"ES256 EdDSA\"");
    }
    value
}

/// The one mapping from a refused credential to HTTP.
pub fn from_resource(req: &HttpRequest, ctx: &AppContext, err: &ResourceError) -> Problem {
    let unauthorized = |detail: &str| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    };
    match err {
        ResourceError::Missing => unauthorized(
            "send an access token with scope erp: Authorization: Bearer <token>, or DPoP \
             <token> with a DPoP proof",
        )
        .header(
            header::WWW_AUTHENTICATE,
            format!("Bearer {REALM}, scope=\"erp\""),
        )
        .header(
            header::WWW_AUTHENTICATE,
            format!("DPoP {REALM}, algs=\"ES256 EdDSA\""),
        ),
        ResourceError::InvalidRequest(d) => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Malformed credentials",
            *d,
        )
        .header(
            header::WWW_AUTHENTICATE,
            challenge(TokenScheme::Bearer, "invalid_request", d),
        ),
        ResourceError::InvalidToken(scheme, d) => unauthorized(d).header(
            header::WWW_AUTHENTICATE,
            challenge(*scheme, "invalid_token", d),
        ),
        ResourceError::InvalidDpopProof(d) => unauthorized(d).header(
            header::WWW_AUTHENTICATE,
            challenge(TokenScheme::Dpop, "invalid_dpop_proof", d),
        ),
        // RFC 9449 §9: whether or not nonces are required, this answer carries one, and the
        // Date by which the proof was judged.
        ResourceError::UseDpopNonce => {
            let d = "a DPoP nonce is required; use the DPoP-Nonce header";
            let (date, now) = credentials::date(ctx);
            unauthorized(d)
                .header(
                    header::WWW_AUTHENTICATE,
                    challenge(TokenScheme::Dpop, "use_dpop_nonce", d),
                )
                .header(
                    header::HeaderName::from_static("dpop-nonce"),
                    ctx.oauth.fresh_dpop_nonce(),
                )
                .header(date, now)
        }
        ResourceError::Store(e) => Problem::store(req, ctx, e),
    }
}

/// Credentials that could not be read (`http::credentials`), answered as refused ones are.
pub fn from_credentials(req: &HttpRequest, ctx: &AppContext, err: CredentialError) -> Problem {
    from_resource(
        req,
        ctx,
        &match err {
            CredentialError::InvalidRequest(d) => ResourceError::InvalidRequest(d),
            CredentialError::InvalidDpopProof(d) => ResourceError::InvalidDpopProof(d),
        },
    )
}

/// 403 for a valid token without the scope (RFC 6750 §3.1 `insufficient_scope`).
pub fn insufficient_scope(scheme: TokenScheme, scope: &str) -> Problem {
    let d = "the access token does not have the scope this API needs";
    let value = format!(
        "{}, scope=\"{scope}\"",
        challenge(scheme, "insufficient_scope", d)
    );
    Problem::new(
        StatusCode::FORBIDDEN,
        "insufficient-scope",
        "Insufficient scope",
        format!("{d}: {scope}"),
    )
    .header(header::WWW_AUTHENTICATE, value)
}
