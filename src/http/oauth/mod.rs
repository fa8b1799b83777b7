//! The OAuth surface: `/oauth/*` and the RFC 8414 metadata. Handlers take the form
//! ([`OAuthForm`]), call the domain, and return [`OAuthHttpError`] with `?`; `error.rs` is the one
//! place where an `OAuthError` becomes HTTP.

mod error;
mod form;

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, HttpResponseBuilder, web};
use serde::Serialize;
use serde_json::json;

use crate::app::AppContext;
use crate::oauth::paths;
pub use error::OAuthHttpError;
use form::OAuthForm;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post_only(
        paths::DEVICE_AUTHORIZATION,
        web::post().to(device_authorization_post),
    ))
    .service(post_only(paths::TOKEN, web::post().to(token_post)))
    .service(post_only(
        paths::INTROSPECT,
        web::post().to(introspect_post),
    ))
    .service(post_only(paths::REVOKE, web::post().to(revoke_post)))
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

fn post_only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| method_not_allowed("POST")))
}

/// 405 with `Allow` (RFC 9110 §15.5.6), with an OAuth-style error body (the telemetry surface
/// answers the same way).
pub(super) async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(json!({ "error": "invalid_request", "error_description": "method not allowed" }))
}

async fn device_authorization_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    Ok(answer(&ctx, ctx.oauth.device_authorization(&form.0).await?))
}

async fn token_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    Ok(answer(&ctx, ctx.oauth.token(&form.0).await?))
}

async fn introspect_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    Ok(answer(&ctx, ctx.oauth.introspect(&form.0).await?))
}

async fn revoke_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    ctx.oauth.revoke(&form.0).await?;
    Ok(no_store(HttpResponse::Ok()).finish())
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

/// A successful JSON answer.
fn answer<T: Serialize>(ctx: &AppContext, body: T) -> HttpResponse {
    let mut res = no_store(HttpResponse::Ok());
    if let Some(nonce) = ctx.oauth.dpop_nonce() {
        res.insert_header(("DPoP-Nonce", nonce));
    }
    res.json(body)
}
