//! The OAuth surface: `/oauth/*` and the RFC 8414 metadata. Handlers read the form, call the
//! domain, and answer through [`respond`], the one place where `OAuthError` becomes HTTP.

mod form;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Serialize;
use serde_json::json;

use super::RequestId;
use crate::app::AppContext;
use crate::oauth::{OAuthError, OAuthRequest, paths};
use form::FormError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_only(
        paths::DEVICE_AUTHORIZATION,
        device_authorization_post,
    ))
    .service(post_only(paths::TOKEN, token_post))
    .service(post_only(paths::INTROSPECT, introspect_post))
    .service(post_only(paths::REVOKE, revoke_post))
    .service(
        web::resource(paths::JWKS)
            .route(super::get().to(jwks_get))
            .default_service(web::to(|| method_not_allowed("GET, HEAD"))),
    )
    .service(
        web::resource(paths::METADATA)
            .route(super::get().to(metadata_get))
            .default_service(web::to(|| method_not_allowed("GET, HEAD"))),
    );
}

fn post_only<F, Fut>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<(HttpRequest, web::Payload, web::Data<AppContext>), Output = Fut>
        + 'static,
    Fut: 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(|| method_not_allowed("POST")))
}

/// 405 with `Allow` (RFC 9110 §15.5.6), with an OAuth-style error body (the telemetry surface
/// answers the same way).
pub(super) async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(json!({ "error": "invalid_request", "error_description": "method not allowed" }))
}

/// Reads the request; on failure, the response to send instead.
async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &AppContext,
) -> Result<OAuthRequest, HttpResponse> {
    let limit = ctx.settings.server.max_form_bytes.get() as usize;
    form::read(req, payload, limit).await.map_err(|e| match e {
        // The rest of the body is not read: close, so the client does not reuse the connection.
        FormError::TooLarge => no_store(HttpResponse::PayloadTooLarge())
            .force_close()
            .json(json!({
                "error": "invalid_request",
                "error_description": "the request body is too large",
            })),
        FormError::OAuth(err) => error_response(req, ctx, &err),
    })
}

async fn device_authorization_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppContext>,
) -> HttpResponse {
    let oauth_req = match read(&req, payload, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    respond(&req, &ctx, ctx.oauth.device_authorization(&oauth_req).await)
}

async fn token_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppContext>,
) -> HttpResponse {
    let oauth_req = match read(&req, payload, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    respond(&req, &ctx, ctx.oauth.token(&oauth_req).await)
}

async fn introspect_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppContext>,
) -> HttpResponse {
    let oauth_req = match read(&req, payload, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    respond(&req, &ctx, ctx.oauth.introspect(&oauth_req).await)
}

async fn revoke_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppContext>,
) -> HttpResponse {
    let oauth_req = match read(&req, payload, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    match ctx.oauth.revoke(&oauth_req).await {
        Ok(()) => no_store(HttpResponse::Ok()).finish(),
        Err(err) => error_response(&req, &ctx, &err),
    }
}

async fn jwks_get(ctx: web::Data<AppContext>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(ctx.settings.keys.jwks_max_age_secs),
        ]))
        .content_type("application/jwk-set+json")
        .body(ctx.oauth.jwks().to_string())
}

async fn metadata_get(ctx: web::Data<AppContext>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .json(ctx.oauth.metadata())
}

fn no_store(mut res: HttpResponseBuilder) -> HttpResponseBuilder {
    res.insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .insert_header((header::PRAGMA, "no-cache"));
    res
}

/// A successful JSON answer, or the error's.
fn respond<T: Serialize>(
    req: &HttpRequest,
    ctx: &AppContext,
    result: Result<T, OAuthError>,
) -> HttpResponse {
    match result {
        Ok(body) => {
            let mut res = no_store(HttpResponse::Ok());
            if let Some(nonce) = ctx.oauth.dpop_nonce() {
                res.insert_header(("DPoP-Nonce", nonce));
            }
            res.json(body)
        }
        Err(err) => error_response(req, ctx, &err),
    }
}

/// The one mapping from `OAuthError` to HTTP (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8628 §3.5,
/// RFC 9449 §7–8): a `use_dpop_nonce` answer always carries a fresh `DPoP-Nonce` and pairgate's
/// `Date`.
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
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
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
        res.insert_header(super::credentials::date(ctx));
    } else if let Some(nonce) = ctx.oauth.dpop_nonce() {
        res.insert_header(("DPoP-Nonce", nonce));
    }
    let mut body = json!({ "error": err.code() });
    if let Some(description) = err.description() {
        body["error_description"] = json!(description);
    }
    res.json(body)
}
