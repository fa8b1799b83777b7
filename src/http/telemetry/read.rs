//! `GET /api/v1/devices/{serial}/telemetry?metric=&from=&to=&limit=`: a device's readings, and
//! `GET /api/v1/devices`: the devices, for a person signed in to the portal (session cookie) or
//! an app acting for them (their access token with `telemetry:read`), filtered by their device
//! access in the domain exactly as the portal filters it.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{ErrorBody, TelemetryHttpError, no_store};
use crate::accounts::Session;
use crate::app::AppContext;
use crate::http::user_token;
use crate::oauth::resource::ResourceError;
use crate::telemetry::{ReadQuery, TelemetryError};

/// What an app needs to read for a person.
pub(super) const READ_SCOPE: &str = "telemetry:read";

/// A device's readings in a time range.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TelemetrySeries)]
pub struct Series {
    #[schema(format = DateTime)]
    from: String,
    /// Oldest first.
    readings: Vec<StoredReading>,
    serial: String,
    #[schema(format = DateTime)]
    to: String,
    /// The range holds more readings than `limit`; ask again from the last `ts`.
    truncated: bool,
}

/// One stored reading.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoredReading {
    id: String,
    metrics: BTreeMap<String, f64>,
    #[schema(format = DateTime)]
    ts: String,
}

/// The query of a read, as the OpenAPI document describes it ([`query`] reads it).
#[expect(
    dead_code,
    reason = "described, never built: `query` reads the query string"
)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Only readings carrying this metric, with only its value.
    metric: Option<String>,
    /// Inclusive; RFC 3339 or Unix milliseconds; default a day before `to`.
    from: Option<String>,
    /// Exclusive; RFC 3339 or Unix milliseconds; default now.
    to: Option<String>,
    /// Most readings returned (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

/// Read a device's readings (people, and apps acting for them).
///
/// For signed-in portal users (session cookie), or an app with the person's access token
/// (`telemetry:read`; `Bearer`, or `DPoP` with a proof), whose device access covers the device;
/// only what the device uploaded while it belonged to the person's company. Oldest first.
#[utoipa::path(get, path = "/api/v1/devices/{serial}/telemetry", operation_id = "telemetryGet",
    tag = "telemetry", security(("session" = []), ("bearer" = [])),
    params(("serial" = String, Path, description = "The device's serial number",
        pattern = "^[A-Za-z0-9._-]{1,64}$"), ReadParams),
    responses(
        (status = 200, description = "Readings in time order", body = Series),
        (status = 400, body = ErrorBody, description = "invalid_request: a malformed query \
            (metric, from, to, limit, a parameter given twice)"),
        (status = 401, body = ErrorBody, description = "Not signed in, or the token was refused",
            headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "insufficient_scope: not a person's \
            token with telemetry:read", headers(("WWW-Authenticate" = String))),
        (status = 404, body = ErrorBody,
            description = "No such device, or not visible to this user"),
        (status = 503, body = ErrorBody, description = "Retry later",
            headers(("Retry-After" = u32))),
    ))]
pub async fn device_telemetry_get(
    req: HttpRequest,
    serial: web::Path<String>,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, TelemetryHttpError> {
    let query = query(req.query_string())?;
    let session = match viewer(&req, &ctx).await? {
        Ok(session) => session,
        Err(refusal) => return Ok(refusal),
    };
    let body = read(&session, &serial, &query, &ctx).await?;
    Ok(no_store(StatusCode::OK).json(body))
}

/// The person a read is for: by their app's token when the request carries an
/// `Authorization` header, else by their portal session. `Err` is a refused token's answer.
pub(super) async fn viewer(
    req: &HttpRequest,
    ctx: &AppContext,
) -> Result<Result<Session, HttpResponse>, TelemetryError> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        let (authorized, user) = match user_token::authorize(req, ctx, READ_SCOPE).await {
            Ok(found) => found,
            Err(e) => return Ok(Err(user_token::refusal(ctx, &e))),
        };
        return match ctx.accounts.acting_for(user).await? {
            Some(session) => Ok(Ok(session)),
            None => {
                let gone = ResourceError::InvalidToken(
                    authorized.scheme,
                    "the person can no longer sign in",
                );
                Ok(Err(user_token::refusal(ctx, &gone.into())))
            }
        };
    }
    let cookie = req
        .cookie(session_cookie_name(ctx))
        .ok_or(TelemetryError::SignInRequired)?;
    let session = ctx
        .accounts
        .session(cookie.value())
        .await?
        .ok_or(TelemetryError::SignInRequired)?;
    Ok(Ok(session))
}

async fn read(
    session: &Session,
    serial: &str,
    query: &ReadQuery,
    ctx: &AppContext,
) -> Result<Series, TelemetryError> {
    let page = ctx
        .telemetry
        .readings(session, &serial.into(), query)
        .await?;
    Ok(Series {
        from: rfc3339(page.from),
        readings: page
            .readings
            .into_iter()
            .map(|r| StoredReading {
                id: r.id,
                metrics: r.metrics,
                ts: rfc3339(r.ts),
            })
            .collect(),
        serial: page.serial.into(),
        to: rfc3339(page.to),
        truncated: page.truncated,
    })
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

pub(super) fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}
