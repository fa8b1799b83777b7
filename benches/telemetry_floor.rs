//! The telemetry floor: what an upload costs this machine with storage taken away.
//!
//! A bare actix server that answers `POST /api/v1/telemetry` by running pairgate's own checks
//! of an upload ([`pairgate::telemetry::Telemetry::check`]: the access token, the DPoP proof, the
//! device and tenant, the batch) and then acknowledging it without storing anything: no
//! writer, no replay store, no commit. It also serves the metadata document, so that the
//! simulator's fleet finds it as it finds pairgate. It is configured exactly like
//! `pairgate serve` (the `PAIRGATE_*` environment, the same database for the key ring), so the
//! fleet's tokens, issued by the real server during set-up, verify here.
//!
//! `scripts/bench-telemetry.sh floor …` runs it in place of the server for the timed part. It is
//! a measuring instrument, not a server: it drops every reading it acknowledges.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use pairgate::app::AppContext;
use pairgate::clock::SystemClock;
use pairgate::config::Settings;
use pairgate::telemetry::{TelemetryError, Upload};

fn main() {
    let settings = Settings::load(None).unwrap_or_else(|e| panic!("configuration: {e}"));
    let bind = settings.server.bind;
    let workers = match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    actix_web::rt::System::new().block_on(async move {
        let ctx = AppContext::start(settings, Arc::new(SystemClock))
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        eprintln!("telemetry floor listening on {bind} ({workers} workers); readings are dropped");
        let ctx = web::Data::new(ctx);
        HttpServer::new(move || {
            App::new()
                .app_data(ctx.clone())
                .route("/readyz", web::get().to(HttpResponse::NoContent))
                .route(
                    "/.well-known/oauth-authorization-server",
                    web::get().to(metadata),
                )
                .route("/api/v1/telemetry", web::post().to(upload))
        })
        .workers(workers)
        .listen(listener)
        .unwrap_or_else(|e| panic!("listen: {e}"))
        .run()
        .await
        .unwrap_or_else(|e| panic!("server: {e}"));
    });
}

async fn metadata(ctx: web::Data<AppContext>) -> HttpResponse {
    HttpResponse::Ok().json(ctx.oauth.metadata())
}

/// Checks the upload as pairgate does, then acknowledges it without storing it.
async fn upload(req: HttpRequest, body: web::Bytes, ctx: web::Data<AppContext>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let dpop: Vec<String> = req
        .headers()
        .get_all("dpop")
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let checked = ctx
        .telemetry
        .check(Upload {
            authorization: header("authorization"),
            dpop: &dpop,
            body: &body,
        })
        .await;
    match checked {
        Ok(upload) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "accepted": upload.readings(), "duplicates": 0 })),
        // The fleet counts failures by their error code; a fixed one per kind of refusal is all
        // it needs (and no error's text reaches a response, here either).
        Err(e) => {
            let code = match e {
                TelemetryError::Auth(_) => "invalid_token",
                TelemetryError::InsufficientScope => "insufficient_scope",
                TelemetryError::InvalidBatch(_) => "invalid_request",
                _ => "refused",
            };
            HttpResponse::BadRequest().json(serde_json::json!({ "error": code }))
        }
    }
}
