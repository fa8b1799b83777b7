//! `GET /api/v1/devices/{serial}/telemetry?metric=&from=&to=&limit=`: a device's readings for a
//! person signed in to the portal (session cookie), filtered by their device access in the domain.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};

use super::{TelemetryHttpError, no_store};
use crate::app::AppContext;
use crate::telemetry::{ReadQuery, TelemetryError};

pub async fn device_telemetry_get(
    req: HttpRequest,
    serial: web::Path<String>,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, TelemetryHttpError> {
    let body = read(&req, &serial, &ctx).await?;
    Ok(no_store(StatusCode::OK).json(body))
}

async fn read(req: &HttpRequest, serial: &str, ctx: &AppContext) -> Result<Value, TelemetryError> {
    let query = query(req.query_string())?;
    let cookie = req
        .cookie(session_cookie_name(ctx))
        .ok_or(TelemetryError::SignInRequired)?;
    let session = ctx
        .accounts
        .session(cookie.value())
        .await?
        .ok_or(TelemetryError::SignInRequired)?;
    let page = ctx.telemetry.readings(&session, serial, &query).await?;
    Ok(json!({
        "serial": page.serial,
        "from": rfc3339(page.from),
        "to": rfc3339(page.to),
        "truncated": page.truncated,
        "readings": page.readings.iter().map(|r| json!({
            "id": r.id,
            "ts": rfc3339(r.ts),
            "metrics": r.metrics,
        })).collect::<Vec<_>>(),
    }))
}

/// The portal's session cookie (named as `http::portal` names it: `__Host-` needs Secure, which
/// a plain-http development URL cannot have).
fn session_cookie_name(ctx: &AppContext) -> &'static str {
    if ctx.settings.server.public_url.is_https() {
        "__Host-pairgate"
    } else {
        "pairgate_session"
    }
}

/// The known query parameters, each at most once; unknown ones are ignored.
fn query(raw: &str) -> Result<ReadQuery, TelemetryError> {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if seen.insert(key.into_owned(), value.into_owned()).is_some() {
            return Err(TelemetryError::InvalidQuery(
                "a query parameter was given more than once",
            ));
        }
    }
    let mut take = |name: &str| seen.remove(name).filter(|v| !v.is_empty());
    Ok(ReadQuery {
        metric: take("metric"),
        from: take("from"),
        to: take("to"),
        limit: take("limit"),
    })
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}
