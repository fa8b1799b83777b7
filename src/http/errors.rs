//! What every surface shares when mapping errors: the answer for an unavailable database, and the
//! fallbacks for unknown routes and oversized or malformed bodies. Surface-specific error bodies
//! (OAuth, problem+json, HTML) are mapped in their own modules.

use actix_web::http::header::{CacheControl, CacheDirective, RETRY_AFTER};
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::json;

use crate::app::AppContext;

/// 503 with `Retry-After`, for any request that needed the database while it was unreachable.
pub fn unavailable(ctx: &AppContext) -> HttpResponseBuilder {
    let mut res = HttpResponse::ServiceUnavailable();
    res.insert_header((
        RETRY_AFTER,
        ctx.settings.server.retry_after_secs.to_string(),
    ))
    .insert_header(CacheControl(vec![CacheDirective::NoStore]));
    res
}

/// The answer for a path no surface serves.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "not_found" }))
}
