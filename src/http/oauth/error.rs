//! The OAuth surface's error and the one mapping from `OAuthError` to HTTP (RFC 6749 §5.2,
//! RFC 6750 §3.1, RFC 8628 §3.5, RFC 9449 §7–8).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use super::no_store;
use crate::app::AppContext;
use crate::http::errors::{SurfaceError, request_id, unrendered};
use crate::oauth::OAuthError;

/// The body of every OAuth refusal (RFC 6749 §5.2, RFC 6750 §3); the telemetry surface refuses
/// with the same shape.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OAuthError)]
pub struct ErrorBody {
    /// The error code. OAuth: `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `insufficient_scope`,
    /// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`,
    /// `invalid_dpop_proof`, `use_dpop_nonce`, `temporarily_unavailable`, `server_error`.
    /// Telemetry: `invalid_request`, `invalid_token`, `invalid_dpop_proof`, `use_dpop_nonce`,
    /// `insufficient_scope`, `unauthorized`, `forbidden`, `not_found`,
    /// `temporarily_unavailable` or `server_error`.
    pub error: &'static str,
    /// A fixed explanation, safe to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error_description: Option<String>,
}

/// Why an OAuth request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthHttpError {
    /// The body is over `server.max_form_bytes`.
    #[error("the request body is too large")]
    TooLarge,
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

impl ResponseError for OAuthHttpError {
    fn error_response(&self) -> HttpResponse {
        unrendered()
    }
}

impl SurfaceError for OAuthHttpError {
    fn render(&self, req: &HttpRequest, ctx: &AppContext) -> HttpResponse {
        match self {
            // The rest of the body is not read: close, so the client does not reuse the
            // connection.
            Self::TooLarge => no_store(HttpResponse::PayloadTooLarge())
                .force_close()
                .json(ErrorBody {
                    error: "invalid_request",
                    error_description: Some("the request body is too large".to_owned()),
                }),
            Self::OAuth(err) => error_response(req, ctx, err),
        }
    }
}

/// A `use_dpop_nonce` answer always carries a fresh `DPoP-Nonce` and pairgate's `Date`.
fn error_response(req: &HttpRequest, ctx: &AppContext, err: &OAuthError) -> HttpResponse {
    let status = match err {
        OAuthError::InvalidClient { basic: true, .. } => StatusCode::UNAUTHORIZED,
        OAuthError::InsufficientScope(_) => StatusCode::FORBIDDEN,
        OAuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::Store(_) | OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    if status.is_server_error() {
        let request_id = request_id(req);
        tracing::error!(error = %err, request_id, "OAuth request failed");
    } else {
        tracing::info!(
            error = err.code(),
            reason = err.description(),
            "OAuth request refused"
        );
    }
    let mut res = no_store(HttpResponseBuilder::new(status));
    match err {
        OAuthError::InvalidClient { basic: true, .. } => {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                "Basic realm=\"pairgate\", charset=\"UTF-8\"",
            ));
        }
        OAuthError::RateLimited { retry_after_secs } => {
            res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        OAuthError::Store(e) if e.is_unavailable() => {
            res.insert_header((
                header::RETRY_AFTER,
                ctx.settings.server.retry_after_secs.to_string(),
            ));
        }
        _ => {}
    }
    if let OAuthError::UseDpopNonce = err {
        // RFC 9449 §8: whether or not nonces are required, this answer carries one.
        res.insert_header(("DPoP-Nonce", ctx.oauth.fresh_dpop_nonce()));
        res.insert_header(crate::http::credentials::date(ctx));
    } else if let Some(nonce) = ctx.oauth.dpop_nonce() {
        res.insert_header(("DPoP-Nonce", nonce));
    }
    res.json(ErrorBody {
        error: err.code(),
        error_description: err.description().map(str::to_owned),
    })
}
