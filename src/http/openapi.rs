//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the ERP, telemetry and OAuth APIs,
//! generated with utoipa from the code: each handler describes its operation
//! (`#[utoipa::path]`), each request and response body is a type deriving `ToSchema`, and the
//! surfaces gather their operations ([`ErpApi`], `TelemetryApi`, `OAuthApi`). This module
//! adds what the APIs share: the overview, the security schemes and the server.
//! `tests/it/erp/openapi.rs` keeps a snapshot of the document and checks it against the routes
//! and against real responses.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::erp::{ErpApi, ErpModelsApi};
use super::oauth::OAuthApi;
use super::telemetry::TelemetryApi;
use crate::app::AppContext;

pub use super::oauth::ROUTES as OAUTH_ROUTES;
pub use super::telemetry::ROUTES as TELEMETRY_ROUTES;

pub const PATH: &str = "/api/openapi.json";

/// What the APIs share: the overview, and ERP authentication as the default security.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pairgate APIs",
        version = "1",
        description = "The ERP API (devices, sales, customers, events), the telemetry API and the \
OAuth authorization server of pairgate.

ERP errors are RFC 9457 problem details (application/problem+json) whose type is \
urn:pairgate:problem:<slug> (see the Problem schema); every ERP response carries \
Cache-Control: no-store. OAuth and telemetry errors are OAuth-style JSON (the OAuthError \
schema).

The ERP authenticates as an OAuth service client with the client_credentials grant at \
/oauth/token (client_secret_basic or private_key_jwt) and scope erp, and sends the access token \
as Authorization: Bearer <token>, or, for a token bound to a key with a DPoP proof at the token \
endpoint, as Authorization: DPoP <token> with a DPoP proof header (RFC 9449). The token goes in \
one Authorization header and nowhere else: a second header line, or an access_token in the \
query or a form body, is invalid-request (400). A DPoP proof whose iat is out of the window gets \
401 with error=\"use_dpop_nonce\", a DPoP-Nonce and the server's time in Date.

Webhooks (optional, configured with erp.webhook_url and erp.webhook_secret) POST each event of \
the feed, as the Event schema, with the Standard Webhooks headers webhook-id (the event id), \
webhook-timestamp (Unix seconds) and webhook-signature (v1,<base64 HMAC-SHA256 over \
id.timestamp.body>); at least once, retried with backoff, in order per device."
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("dpop" = []))
)]
struct PairgateApi;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (RFC 9068), scope erp")
                    .build(),
            ),
        );
        // Named `DPoP` in the document (see `document`): utoipa has no such HTTP scheme.
        components.add_security_scheme(
            DPOP,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A DPoP-bound access token with a DPoP proof header (RFC 9449)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "client_secret_basic: a service client's id and secret (RFC 6749 \
                         §2.3.1); the OAuth endpoints also take them in the form \
                         (client_secret_post), or a signed client_assertion (private_key_jwt)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-pairgate",
                "The portal's session cookie; named pairgate_session when pairgate's public URL \
                 is plain http on loopback (development).",
            ))),
        );
    }
}

/// The name of the DPoP security scheme.
const DPOP: &str = "dpop";

/// The document, without `servers` (the handler adds the public URL).
pub fn document() -> Result<Value, serde_json::Error> {
    let mut api = PairgateApi::openapi();
    api.merge(ErpApi::openapi());
    api.merge(ErpModelsApi::openapi());
    api.merge(TelemetryApi::openapi());
    api.merge(OAuthApi::openapi());
    let mut doc = serde_json::to_value(api)?;
    // RFC 9449 §7.1 registers the `DPoP` authentication scheme, which utoipa cannot name.
    if let Some(scheme) = doc.pointer_mut(&format!("/components/securitySchemes/{DPOP}/scheme")) {
        *scheme = Value::from("DPoP");
    }
    Ok(doc)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(super::get().to(openapi_get))
            .default_service(super::erp::only("GET, HEAD")),
    );
}

async fn openapi_get(ctx: web::Data<AppContext>) -> HttpResponse {
    let mut doc = match document() {
        Ok(doc) => doc,
        // The tests build the document; this cannot happen in a tested build.
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    doc["servers"] = serde_json::json!([{ "url": ctx.settings.server.public_url.as_str() }]);
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .json(doc)
}
