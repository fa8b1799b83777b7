//! The OAuth surface: `/oauth/*` and the RFC 8414 metadata. Handlers take the form
//! ([`OAuthForm`]), call the domain, and return [`OAuthHttpError`] with `?`; `error.rs` is the one
//! place where an `OAuthError` becomes HTTP.

mod api;
mod error;
mod form;

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::Serialize;
use serde_json::json;

use crate::app::AppContext;
use crate::http::user_token;
use crate::oauth::paths;
use crate::oauth::resource::ResourceError;
pub use api::OAuthApi;
pub use error::{ErrorBody, OAuthHttpError};
use form::OAuthForm;

/// The OAuth surface's routes as (method, path); the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", paths::DEVICE_AUTHORIZATION),
    ("POST", paths::TOKEN),
    ("POST", paths::INTROSPECT),
    ("POST", paths::REVOKE),
    ("GET", paths::JWKS),
    ("GET", paths::METADATA),
    ("GET", paths::OPENID_CONFIGURATION),
    ("GET", paths::USERINFO),
    ("POST", paths::USERINFO),
];

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
    )
    .service(
        web::resource(paths::OPENID_CONFIGURATION)
            .route(super::get().to(openid_configuration_get))
            .default_service(web::to(|| method_not_allowed("GET, HEAD"))),
    )
    .service(
        web::resource(paths::USERINFO)
            .route(super::get().to(userinfo_get))
            .route(web::post().to(userinfo_post))
            .default_service(web::to(|| method_not_allowed("GET, HEAD, POST"))),
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

/// Start pairing (a device).
///
/// A registered device, authenticated by its factory key (private_key_jwt), asks to be paired
/// and gets a device_code to poll with and a user code for a person to enter at
/// `verification_uri`. A DPoP proof (or `dpop_jkt`) binds the flow to the key the tokens will be
/// bound to.
#[utoipa::path(post, path = "/oauth/device_authorization", operation_id = "deviceAuthorization",
    tag = "oauth", security(()), params(api::Dpop),
    request_body(content = api::DeviceAuthorizationForm,
        content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Started", body = crate::oauth::DeviceAuthorization,
            headers(("DPoP-Nonce" = String, description = "Put it in the next DPoP proof"))),
        api::Refusals, api::RateLimited,
    ))]
async fn device_authorization_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    Ok(answer(&ctx, ctx.oauth.device_authorization(&form.0).await?))
}

/// Get tokens.
///
/// The device_code grant (a device polls until a person approves; `authorization_pending`,
/// `slow_down`), refresh_token (rotated on each use), and client_credentials (service clients,
/// client_secret_basic, client_secret_post or private_key_jwt). With a DPoP proof the access
/// token is bound to its key and `token_type` is `DPoP`.
#[utoipa::path(post, path = "/oauth/token", operation_id = "token",
    tag = "oauth", security((), ("client_basic" = [])), params(api::Dpop),
    request_body(content = api::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Issued", body = crate::oauth::TokenResponse,
            headers(("DPoP-Nonce" = String, description = "Put it in the next DPoP proof"))),
        api::Refusals,
    ))]
async fn token_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    Ok(answer(&ctx, ctx.oauth.token(&form.0).await?))
}

/// Introspect a token (service clients with the `introspect` scope).
#[utoipa::path(post, path = "/oauth/introspect", operation_id = "introspect",
    tag = "oauth", security((), ("client_basic" = [])),
    request_body(content = api::TokenQuestion, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "What the token is", body = api::Introspection),
        api::Refusals, api::Forbidden,
    ))]
async fn introspect_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    Ok(answer(&ctx, ctx.oauth.introspect(&form.0).await?))
}

/// Revoke a token (service clients).
///
/// An unknown or already revoked token is answered the same way (RFC 7009 §2.2).
#[utoipa::path(post, path = "/oauth/revoke", operation_id = "revoke",
    tag = "oauth", security((), ("client_basic" = [])),
    request_body(content = api::TokenQuestion, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or not a token (empty body)"), api::Refusals))]
async fn revoke_post(
    ctx: web::Data<AppContext>,
    form: OAuthForm,
) -> Result<HttpResponse, OAuthHttpError> {
    ctx.oauth.revoke(&form.0).await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}

/// The keys that sign access tokens.
#[utoipa::path(get, path = "/oauth/jwks", operation_id = "jwks", tag = "oauth", security(()),
    responses((status = 200, description = "The published keys, cacheable for \
        keys.jwks_max_age_secs", body = api::JwkSet, content_type = "application/jwk-set+json")))]
async fn jwks_get(ctx: web::Data<AppContext>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(ctx.settings.keys.jwks_max_age_secs),
        ]))
        .content_type("application/jwk-set+json")
        .body(ctx.oauth.jwks().to_string())
}

/// Authorization server metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", operation_id = "metadata",
    tag = "oauth", security(()),
    responses((status = 200, description = "The endpoints and what they support (RFC 8414)",
        body = api::Metadata)))]
async fn metadata_get(ctx: web::Data<AppContext>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .json(ctx.oauth.metadata())
}

/// OpenID Provider configuration.
#[utoipa::path(get, path = "/.well-known/openid-configuration",
    operation_id = "openidConfiguration", tag = "oauth", security(()),
    responses((status = 200, description = "The RFC 8414 metadata plus the OpenID Connect \
        Discovery fields (userinfo, end_session_endpoint, ID token algorithms, claims, acr \
        values)", body = api::OpenIdConfiguration)))]
async fn openid_configuration_get(ctx: web::Data<AppContext>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .json(ctx.oauth.openid_configuration())
}

/// Who the person is (OpenID Connect UserInfo).
///
/// For an app holding a person's access token with the `openid` scope (`Bearer`, or `DPoP`
/// with a proof): `sub`, `tenant_id`, `roles`, and `email`, `email_verified` and `name` for the
/// `email` and `profile` scopes, as they are now.
#[utoipa::path(get, path = "/oauth/userinfo", operation_id = "userinfo", tag = "oauth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The person's claims", body = api::UserInfo),
        (status = 401, description = "invalid_token, invalid_dpop_proof or use_dpop_nonce",
            body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "insufficient_scope: not a person's token with openid",
            body = ErrorBody, headers(("WWW-Authenticate" = String))),
    ))]
async fn userinfo_get(req: HttpRequest, ctx: web::Data<AppContext>) -> HttpResponse {
    userinfo(&req, &ctx).await
}

/// Who the person is (OpenID Connect UserInfo, by POST).
#[utoipa::path(post, path = "/oauth/userinfo", operation_id = "userinfoPost", tag = "oauth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The person's claims", body = api::UserInfo),
        (status = 401, description = "invalid_token, invalid_dpop_proof or use_dpop_nonce",
            body = ErrorBody, headers(("WWW-Authenticate" = String))),
        (status = 403, description = "insufficient_scope: not a person's token with openid",
            body = ErrorBody, headers(("WWW-Authenticate" = String))),
    ))]
async fn userinfo_post(req: HttpRequest, ctx: web::Data<AppContext>) -> HttpResponse {
    userinfo(&req, &ctx).await
}

async fn userinfo(req: &HttpRequest, ctx: &AppContext) -> HttpResponse {
    let (authorized, user) = match user_token::authorize(req, ctx, "openid").await {
        Ok(found) => found,
        Err(e) => return user_token::refusal(ctx, &e),
    };
    match ctx.oauth.userinfo(user, &authorized.claims.scope).await {
        Ok(Some(claims)) => no_store(HttpResponse::Ok()).json(claims),
        Ok(None) => user_token::refusal(
            ctx,
            &ResourceError::InvalidToken(authorized.scheme, "the person can no longer sign in")
                .into(),
        ),
        Err(e) => user_token::refusal(ctx, &ResourceError::Store(e).into()),
    }
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
