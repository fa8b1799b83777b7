//! Per-request bookkeeping: a request id (accepted from `X-Request-Id` when well formed, otherwise
//! generated), a tracing span carrying it and the client address (`client_addr`), one structured
//! log line per request, and the metrics.
//! The query string is never logged: it can carry a user code.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use tracing::Instrument;

use super::client_addr;
use crate::meters::Registry;

/// The id of the request being served, available from the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps every request; installed once in `http::app`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = incoming_id(&req).unwrap_or_else(new_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let metrics = req.app_data::<web::Data<Registry>>().cloned();
    let method = req.method().clone();
    // The address every per-address limit counts, so a log line can be matched to them.
    let client = client_addr::Shown(client_addr::client_addr(req.request()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %req.path(),
        client = %client,
    );

    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let _entered = span.enter();
    match result {
        Ok(mut res) => {
            let status = res.status().as_u16();
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "(unmatched)".to_owned());
            if let Some(m) = &metrics {
                m.request(method.as_str(), &route, status, elapsed);
            }
            if let Ok(value) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID, value);
            }
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            if status >= 500 {
                tracing::warn!(status, latency_ms, route = %route, "request failed");
            } else {
                tracing::info!(status, latency_ms, route = %route, "request");
            }
            Ok(res)
        }
        Err(err) => {
            tracing::warn!(error = %err, "request error");
            Err(err)
        }
    }
}

/// Accepts a caller's id only when it is short and made of safe characters (it ends up in logs).
fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| value.to_owned())
}

fn new_id() -> String {
    let bytes: [u8; 12] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
