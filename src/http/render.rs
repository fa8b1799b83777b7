//! The middleware that answers a surface's error: a handler or extractor returns its surface's
//! error with `?`, actix keeps it in the response, and [`render`] replaces the placeholder answer
//! with the surface's own mapping ([`SurfaceError::render`]). It sits above the surfaces, which
//! know only the trait. It also sets a [`SetCookie`] an extractor left for the answer.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use super::errors::{SetCookie, SurfaceError, context};
use crate::app::AppContext;

/// Middleware: replaces the placeholder answer of a surface's error with the surface's mapping.
/// Errors of other kinds (actix's own extractor refusals) pass unchanged.
pub async fn render(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?.map_into_boxed_body();
    let rendered = match (res.response().error(), context(res.request())) {
        (Some(err), Ok(ctx)) => rendered(res.request(), ctx, err),
        _ => None,
    };
    let mut res = match rendered {
        Some(answer) => res.into_response(answer),
        None => res,
    };
    let cookie = res.request().extensions_mut().remove::<SetCookie>();
    if let Some(SetCookie(cookie)) = cookie {
        // The handler's answer is built already; this goes on it whatever it is.
        let _ = res.response_mut().add_cookie(&cookie);
    }
    Ok(res)
}

fn rendered(req: &HttpRequest, ctx: &AppContext, err: &actix_web::Error) -> Option<HttpResponse> {
    fn by<E: SurfaceError>(
        req: &HttpRequest,
        ctx: &AppContext,
        err: &actix_web::Error,
    ) -> Option<HttpResponse> {
        err.as_error::<E>().map(|e| e.render(req, ctx))
    }
    by::<super::oauth::OAuthHttpError>(req, ctx, err)
        .or_else(|| by::<super::portal::PortalError>(req, ctx, err))
        .or_else(|| by::<super::erp::ErpHttpError>(req, ctx, err))
        .or_else(|| by::<super::telemetry::TelemetryHttpError>(req, ctx, err))
}
