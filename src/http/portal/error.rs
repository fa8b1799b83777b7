//! The portal's error, [`PortalError`], and the one mapping of errors that no form shows inline:
//! step-up needed → `/step-up?next=…`, ended session → `/login`, forbidden → 403, unavailable
//! database or a full password-hashing queue → 503 with `Retry-After`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};

use super::texts::Message;
use super::{
    Visitor, expired_session_cookie, local_target, message, redirect, respond, safe_next, urlencode,
};
use crate::accounts::{AccountError, PasskeyError};
use crate::app::AppContext;
use crate::http::errors::{SurfaceError, unrendered};
use crate::pairing::PairingError;
use crate::store::StoreError;

/// Why a portal request is not answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// Not signed in (or not past the second factor): to `/login?next=<this page>`.
    #[error("sign-in required")]
    SignIn,
    /// A form refused before it was read, answered with the visitor's page.
    #[error("form refused: {1:?}")]
    Form(Box<Visitor>, FormRefusal),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Pairing(#[from] PairingError),
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    /// A wrong step-up code for a pending action: its page again, rendered, with the error
    /// (`step_up.rs`).
    #[error("step-up code refused")]
    StepUp(StatusCode, Box<Visitor>, String),
}

impl ResponseError for PortalError {
    fn error_response(&self) -> HttpResponse {
        unrendered()
    }
}

impl SurfaceError for PortalError {
    fn render(&self, req: &HttpRequest, ctx: &AppContext) -> HttpResponse {
        match self {
            Self::SignIn => sign_in_again(req, ctx),
            Self::Form(visitor, refusal) => {
                let (status, text) = refusal.page();
                message(ctx, visitor, status, &text)
            }
            Self::Account(e) => failure(req, ctx, e),
            Self::Pairing(e) => pairing_failure(req, ctx, e),
            Self::Passkey(e) => passkey_failure(req, ctx, e),
            Self::StepUp(status, visitor, page) => respond(visitor, *status, page.clone()),
        }
    }
}

/// To the sign-in page, with the page to come back to: this one, or for a form, where the form
/// leads back to (`extract::ReturnTo`). A session cookie that no longer opens a session means the
/// session ended: the sign-in page says so, and the stale cookie goes.
fn sign_in_again(req: &HttpRequest, ctx: &AppContext) -> HttpResponse {
    let back = req
        .extensions()
        .get::<super::ReturnTo>()
        .map_or_else(|| local_target(req), |r| r.0.clone());
    let expired = req.extensions().get::<super::SessionGone>().is_some();
    let mut to = format!("/login?next={}", urlencode(&back));
    if expired {
        to.push_str("&expired=1");
    }
    let mut res = redirect(&to);
    if expired {
        let _ = res.add_cookie(&expired_session_cookie(ctx));
    }
    res
}

/// A visitor without a session, for the pages of errors (no navigation).
fn anonymous() -> Visitor {
    Visitor {
        session: None,
        binding: String::new(),
        set_cookie: None,
    }
}

/// 503 with `Retry-After`: the request may succeed if sent again shortly.
fn try_again_shortly(ctx: &AppContext, text: &Message) -> HttpResponse {
    let mut res = message(ctx, &anonymous(), StatusCode::SERVICE_UNAVAILABLE, text);
    res.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(ctx.settings.server.retry_after_secs),
    );
    res
}

fn store_failure(req: &HttpRequest, ctx: &AppContext, e: &StoreError) -> HttpResponse {
    if e.is_unavailable() {
        return try_again_shortly(ctx, &Message::DatabaseUnavailable);
    }
    tracing::error!(error = %e, path = req.path(), "portal request failed");
    internal(ctx)
}

/// The page for an address that no page has (the server's fallback, for browsers).
pub fn no_such_page(ctx: &AppContext) -> HttpResponse {
    message(
        ctx,
        &anonymous(),
        StatusCode::NOT_FOUND,
        &Message::NoSuchPage,
    )
}

fn internal(ctx: &AppContext) -> HttpResponse {
    message(
        ctx,
        &anonymous(),
        StatusCode::INTERNAL_SERVER_ERROR,
        &Message::Internal,
    )
}

fn failure(req: &HttpRequest, ctx: &AppContext, err: &AccountError) -> HttpResponse {
    let anon = anonymous();
    match err {
        AccountError::StepUpRequired => {
            // A form's action waits on a page that asks for the code; else the step-up page.
            if let Some(super::Offer(status, page)) = req.extensions_mut().remove() {
                return respond(&anon, status, page);
            }
            let back = req
                .headers()
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.strip_prefix(ctx.settings.server.public_url.as_str()))
                .map(str::to_owned)
                .unwrap_or_else(|| "/".to_owned());
            redirect(&format!(
                "/step-up?next={}",
                urlencode(&safe_next(Some(&back)))
            ))
        }
        AccountError::TotpRequired => redirect("/account/totp"),
        AccountError::SessionEnded => {
            let mut res = redirect("/login");
            let _ = res.add_cookie(&expired_session_cookie(ctx));
            res
        }
        AccountError::Forbidden => message(ctx, &anon, StatusCode::FORBIDDEN, &Message::Forbidden),
        AccountError::NotFound | AccountError::InvalidLink => message(
            ctx,
            &anon,
            StatusCode::NOT_FOUND,
            &Message::NotFound {
                reason: err.to_string(),
            },
        ),
        AccountError::Busy => try_again_shortly(ctx, &Message::HashingBusy),
        AccountError::Store(e) => store_failure(req, ctx, e),
        AccountError::Internal(_) => {
            tracing::error!(error = %err, path = req.path(), "portal request failed");
            internal(ctx)
        }
        other => message(
            ctx,
            &anon,
            StatusCode::BAD_REQUEST,
            &Message::NotPossible {
                reason: other.to_string(),
            },
        ),
    }
}

fn pairing_failure(req: &HttpRequest, ctx: &AppContext, err: &PairingError) -> HttpResponse {
    let anon = anonymous();
    match err {
        PairingError::Account(e) => failure(req, ctx, e),
        PairingError::Store(e) => store_failure(req, ctx, e),
        PairingError::NotFound => failure(req, ctx, &AccountError::NotFound),
        PairingError::Throttled { .. } => message(
            ctx,
            &anon,
            StatusCode::TOO_MANY_REQUESTS,
            &Message::SlowDown {
                reason: err.to_string(),
            },
        ),
        PairingError::UnknownCode | PairingError::Invalid(_) | PairingError::PasskeyRequired => {
            message(
                ctx,
                &anon,
                StatusCode::UNPROCESSABLE_ENTITY,
                &Message::NotPossible {
                    reason: err.to_string(),
                },
            )
        }
    }
}

fn passkey_failure(req: &HttpRequest, ctx: &AppContext, err: &PasskeyError) -> HttpResponse {
    match err {
        PasskeyError::Account(e) => failure(req, ctx, e),
        PasskeyError::Store(e) => store_failure(req, ctx, e),
        PasskeyError::Internal(_) => {
            tracing::error!(error = %err, path = req.path(), "portal request failed");
            internal(ctx)
        }
        other => message(
            ctx,
            &anonymous(),
            StatusCode::UNPROCESSABLE_ENTITY,
            &Message::NotPossible {
                reason: other.to_string(),
            },
        ),
    }
}

/// Why a form was refused before it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRefusal {
    /// Over `server.max_form_bytes`.
    TooLarge,
    /// Cross-site, or its CSRF token is stale or foreign.
    Expired,
}

impl FormRefusal {
    /// The status and the message of the page that answers it.
    fn page(self) -> (StatusCode, Message) {
        match self {
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, Message::FormTooLarge),
            Self::Expired => (StatusCode::FORBIDDEN, Message::FormExpired),
        }
    }
}
