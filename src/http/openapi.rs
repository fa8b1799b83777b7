//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the ERP and telemetry APIs. The
//! document is written by hand (`openapi.json` beside this file); the integration tests check it
//! against the routes, the request fields the domain accepts, and real responses.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::app::AppContext;

/// The document as written.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub const PATH: &str = "/api/openapi.json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(super::get().to(openapi_get))
            .default_service(super::erp::only("GET, HEAD")),
    );
}

async fn openapi_get(ctx: web::Data<AppContext>) -> HttpResponse {
    let mut doc: Value = match serde_json::from_str(DOCUMENT) {
        Ok(doc) => doc,
        // The tests parse the document; this cannot happen in a tested build.
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
