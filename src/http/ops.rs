//! Operations endpoints: `GET /healthz` (the process is up), `GET /readyz` (the database takes
//! a write), `GET /metrics` (Prometheus text).

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::errors::unavailable;
use crate::app::AppContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", super::get().to(healthz_get))
        .route("/readyz", super::get().to(readyz_get))
        .route("/metrics", super::get().to(metrics_get));
}

async fn healthz_get() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(json!({ "status": "ok" }))
}

async fn readyz_get(ctx: web::Data<AppContext>) -> HttpResponse {
    // A write, not a read: a full disk or a read-only database answers reads and fails writes.
    match ctx.store.ping(ctx.clock.now().timestamp_millis()).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header(CacheControl(vec![CacheDirective::NoStore]))
            .json(json!({ "status": "ready" })),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            unavailable(&ctx).json(json!({ "status": "unavailable" }))
        }
    }
}

async fn metrics_get(ctx: web::Data<AppContext>) -> HttpResponse {
    let (open, idle) = ctx.store.pool_state();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(ctx.metrics.render(open, idle))
}
