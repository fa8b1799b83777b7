//! The telemetry surface: `POST /api/v1/telemetry` (devices, DPoP-bound tokens) and
//! `GET /api/v1/devices/{serial}/telemetry` (people, portal session). Handlers extract, call
//! [`crate::telemetry`], and return [`TelemetryHttpError`] with `?`; [`error_response`] is the
//! one place where a
//! `TelemetryError` becomes HTTP: RFC 6750 §3 / RFC 9449 §7.1 challenges for token and proof
//! refusals, JSON bodies everywhere.

mod devices;
mod read;
mod upload;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};
use utoipa::OpenApi;

use super::errors::{SurfaceError, request_id, unrendered};
use super::oauth::{ErrorBody, method_not_allowed};
use crate::app::AppContext;
use crate::oauth::tokens::DEVICE_SCOPE;
use crate::telemetry::{TelemetryError, UPLOAD_PATH};
use crate::verifier::{Verifier, VerifyError};

/// The read path, under the public URL.
const READ_PATH: &str = "/api/v1/devices/{serial}/telemetry";
/// The device list, under the public URL.
const LIST_PATH: &str = "/api/v1/devices";

/// The telemetry API's routes as (method, path template); the OpenAPI document is checked
/// against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", UPLOAD_PATH),
    ("GET", READ_PATH),
    ("GET", LIST_PATH),
];

/// The operations of the telemetry API, with the schemas they use.
#[derive(OpenApi)]
#[openapi(
    paths(
        upload::telemetry_post,
        read::device_telemetry_get,
        devices::device_list_get
    ),
    components(schemas(ErrorBody)),
    tags((name = "telemetry", description = "Devices upload readings; people read them back"))
)]
pub struct TelemetryApi;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(UPLOAD_PATH)
            .route(web::post().to(upload::telemetry_post))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource(READ_PATH)
            .route(super::get().to(read::device_telemetry_get))
            .default_service(web::to(|| method_not_allowed("GET, HEAD"))),
    )
    .service(
        web::resource(LIST_PATH)
            .route(super::get().to(devices::device_list_get))
            .default_service(web::to(|| method_not_allowed("GET, HEAD"))),
    );
}

fn no_store(status: StatusCode) -> HttpResponseBuilder {
    let mut res = HttpResponseBuilder::new(status);
    res.insert_header(CacheControl(vec![CacheDirective::NoStore]));
    res
}

/// `WWW-Authenticate: DPoP …` (RFC 9449 §7.1; RFC 6750 §3 attributes). Attribute values are
/// fixed texts without quotes or backslashes.
fn dpop_challenge(code: Option<&str>, description: Option<&str>, scope: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(code) = code {
        parts.push(format!("error=\"{code}\""));
    }
    if let Some(d) = description {
        parts.push(format!("error_description=\"{d}\""));
    }
    if let Some(s) = scope {
        parts.push(format!("scope=\"{s}\""));
    }
    parts.push(format!("algs=\"{}\"", Verifier::algs()));
    format!("DPoP {}", parts.join(", "))
}

/// The telemetry surface's error: handlers return it with `?`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TelemetryHttpError(#[from] pub TelemetryError);

impl ResponseError for TelemetryHttpError {
    fn error_response(&self) -> HttpResponse {
        unrendered()
    }
}

impl SurfaceError for TelemetryHttpError {
    fn render(&self, req: &HttpRequest, ctx: &AppContext) -> HttpResponse {
        error_response(req, ctx, &self.0)
    }
}

/// The status, wire code and description of a `TelemetryError`.
fn classify(err: &TelemetryError) -> (StatusCode, &'static str, Option<String>) {
    use TelemetryError as E;
    match err {
        E::Auth(VerifyError::KeysUnavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            None,
        ),
        E::Auth(VerifyError::MissingToken) => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some("send a DPoP-bound access token (Authorization: DPoP) with a DPoP proof".into()),
        ),
        E::Auth(v) => (
            match v {
                VerifyError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            },
            v.code().unwrap_or("unauthorized"),
            v.description().map(str::to_owned),
        ),
        E::InsufficientScope => (
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            Some(format!("the access token lacks the {DEVICE_SCOPE} scope")),
        ),
        E::InvalidBatch(problem) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(problem.to_string()),
        ),
        E::UnsupportedMediaType | E::TooLarge => (
            if matches!(err, E::TooLarge) {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            },
            "invalid_request",
            Some(err.to_string()),
        ),
        E::InvalidQuery(d) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some((*d).to_owned()),
        ),
        E::SignInRequired => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            Some("sign in to the portal first".into()),
        ),
        E::Forbidden => (StatusCode::FORBIDDEN, "forbidden", None),
        E::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
        E::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            Some(err.to_string()),
        ),
        E::Store(e) if e.is_unavailable() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            None,
        ),
        E::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
    }
}

/// The one mapping from `TelemetryError` to HTTP.
fn error_response(req: &HttpRequest, ctx: &AppContext, err: &TelemetryError) -> HttpResponse {
    use TelemetryError as E;
    let (status, code, description) = classify(err);
    if status.is_server_error() {
        let request_id = request_id(req);
        tracing::warn!(error = %err, request_id, "telemetry request failed");
    } else {
        tracing::info!(
            error = code,
            reason = description.as_deref(),
            "telemetry request refused"
        );
    }
    let mut res = no_store(status);
    match err {
        E::Auth(VerifyError::KeysUnavailable) => {}
        E::Auth(v) => {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                dpop_challenge(v.code(), v.description(), None),
            ));
        }
        E::InsufficientScope => {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                dpop_challenge(Some(code), description.as_deref(), Some(DEVICE_SCOPE)),
            ));
        }
        // RFC 9110 §15.5.2: a 401 names a scheme; the portal's is its session cookie.
        E::SignInRequired => {
            res.insert_header((header::WWW_AUTHENTICATE, "Cookie realm=\"pairgate\""));
        }
        _ => {}
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let secs = if matches!(err, E::Busy) {
            1
        } else {
            ctx.settings.server.retry_after_secs
        };
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    if let E::Auth(VerifyError::UseDpopNonce) = err {
        // RFC 9449 §9: whether or not nonces are required, this answer carries one.
        res.insert_header(("DPoP-Nonce", ctx.telemetry.fresh_dpop_nonce()));
        res.insert_header(super::credentials::date(ctx));
    } else if let Some(nonce) = ctx.telemetry.dpop_nonce() {
        res.insert_header(("DPoP-Nonce", nonce));
    }
    res.json(ErrorBody {
        error: code,
        error_description: description,
    })
}
