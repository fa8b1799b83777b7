//! What every surface shares when mapping errors: the answer for an unavailable database, the
//! fallback for unknown routes, and [`SurfaceError`], the trait through which the `render`
//! middleware (`http::render`) hands a surface's error to that surface's mapping together with
//! the request and the [`AppContext`] (the request id, the `Referer`, `Retry-After`, a fresh
//! `DPoP-Nonce`), which `ResponseError::error_response` cannot see. Each surface's mapping lives
//! in its own module.

use std::pin::Pin;

use actix_web::http::header::{CacheControl, CacheDirective, RETRY_AFTER};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError, web};
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

/// A cookie that an extractor decided on (a session that changed its id while the request was
/// read), set by the `render` middleware on the answer, whatever the handler answers.
pub struct SetCookie(pub actix_web::cookie::Cookie<'static>);

/// A surface's error: the surface maps it to its answer, with the request and the context.
pub trait SurfaceError: ResponseError + 'static {
    /// The one mapping of this surface's errors to HTTP.
    fn render(&self, req: &HttpRequest, ctx: &AppContext) -> HttpResponse;
}

/// What `ResponseError::error_response` answers for a surface's error: a bare 500 without a body
/// (never the error's text). The `render` middleware replaces it; this is only seen if the
/// middleware is missing, which the integration tests would show at once.
pub fn unrendered() -> HttpResponse {
    HttpResponse::InternalServerError()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .finish()
}

/// The future of an extractor that reads the body or asks the domain.
pub type Extracting<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// The request's id (`observe`), for log lines that a client can quote.
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<super::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The context, from the app data (installed once at start).
pub fn context(req: &HttpRequest) -> Result<&web::Data<AppContext>, actix_web::Error> {
    req.app_data::<web::Data<AppContext>>()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("no application context"))
}
