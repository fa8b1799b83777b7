//! The only module that knows actix-web: the server, the middleware, and one module per surface.
//! Handlers extract, call the domain, and map the result; nothing here decides policy.

mod client_addr;
mod credentials;
/// The ERP API (`/api/erp/v1`); `ROUTES` is public for the OpenAPI check.
pub mod erp;
mod errors;
mod fallback;
mod oauth;
mod observe;
pub mod openapi;
mod ops;
mod portal;
mod render;
mod security;
mod telemetry;
mod user_token;

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::app::AppContext;
pub use observe::RequestId;

/// A route for GET that also answers HEAD (RFC 9110 §9.3.2: HEAD is supported wherever GET is;
/// actix sends the headers without the body).
pub fn get() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Whether the server installs its own SIGINT/SIGTERM handlers (graceful shutdown). Tests that
/// run many servers in one process turn them off and stop servers through their handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    Handle,
    Ignore,
}

/// Builds the HTTP server on an already bound listener. Awaiting the returned [`Server`] runs it
/// until it is stopped; in-flight requests get `server.shutdown_timeout_secs` to finish.
pub fn server(ctx: AppContext, listener: TcpListener, signals: Signals) -> std::io::Result<Server> {
    let settings = &ctx.settings.server;
    let workers = match settings.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let shutdown_timeout = settings.shutdown_timeout_secs;
    let max_form = settings.max_form_bytes.get() as usize;
    let max_json = settings.max_json_bytes.get() as usize;
    let public_url = settings.public_url.clone();
    let ctx = web::Data::new(ctx);
    let metrics = web::Data::from(std::sync::Arc::clone(&ctx.metrics));

    let server = HttpServer::new(move || {
        App::new()
            .app_data(ctx.clone())
            .app_data(metrics.clone())
            .app_data(web::FormConfig::default().limit(max_form))
            .app_data(web::JsonConfig::default().limit(max_json))
            .app_data(web::PayloadConfig::new(max_json))
            .wrap(from_fn(render::render))
            .wrap(security::headers(&public_url))
            .wrap(from_fn(observe::observe))
            .configure(ops::configure)
            .configure(oauth::configure)
            .configure(portal::configure)
            .configure(erp::configure)
            .configure(openapi::configure)
            .configure(telemetry::configure)
            .default_service(web::to(fallback::unknown_path))
    })
    .workers(workers)
    .shutdown_timeout(shutdown_timeout)
    .listen(listener)?;
    Ok(match signals {
        Signals::Handle => server.run(),
        Signals::Ignore => server.disable_signals().run(),
    })
}
