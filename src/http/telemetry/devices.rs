//! `GET /api/v1/devices?search=&offset=&limit=`: the devices a person may see, with their
//! newest reading's time, for the portal's session or an app acting for the person (their
//! access token with `telemetry:read`): the portal's device list, as JSON.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::read::{rfc3339, viewer};
use super::{ErrorBody, TelemetryHttpError, no_store};
use crate::accounts::device_list::{DeviceFilter, DeviceOrder, PairingState, SortKey};
use crate::app::AppContext;
use crate::telemetry::TelemetryError;

/// The most devices one answer lists.
const MAX_LIMIT: i64 = 500;

/// One page of the devices a person may see, by serial number.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<ListedDevice>,
    /// How many devices match in all.
    total: i64,
    offset: i64,
    limit: i64,
}

/// A device as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedDevice {
    serial: String,
    model: String,
    /// The device group it is in, if any.
    #[schema(nullable = false)]
    group: Option<String>,
    /// `paired`, or `provisional` while the manufacturer's records do not confirm the sale.
    pairing: &'static str,
    /// The newest reading's time.
    #[schema(format = DateTime, nullable = false)]
    last_reading: Option<String>,
}

/// The query of the list, as the OpenAPI document describes it.
#[expect(
    dead_code,
    reason = "described, never built: `device_list_get` reads the query string"
)]
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Part of the serial number, any case.
    search: Option<String>,
    /// Devices to skip (default 0).
    offset: Option<u32>,
    /// Most devices listed (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

fn number(q: &HashMap<String, String>, name: &str, default: i64, max: i64) -> Option<i64> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Some(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| (0..=max).contains(n)),
    }
}

/// List the devices a person may see (people, and apps acting for them).
#[utoipa::path(get, path = "/api/v1/devices", operation_id = "deviceList", tag = "telemetry",
    security(("session" = []), ("bearer" = [])), params(ListParams),
    responses(
        (status = 200, description = "The devices, by serial number", body = DeviceList),
        (status = 400, body = ErrorBody, description = "invalid_request: a malformed query"),
        (status = 401, body = ErrorBody, description = "Not signed in, or the token was refused",
            headers(("WWW-Authenticate" = String))),
        (status = 403, body = ErrorBody, description = "insufficient_scope, or a person who \
            sees no company's devices (the manufacturer's staff)"),
        (status = 503, body = ErrorBody, description = "Retry later",
            headers(("Retry-After" = u32))),
    ))]
pub async fn device_list_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, TelemetryHttpError> {
    let q: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let offset = number(&q, "offset", 0, i64::from(u32::MAX)).ok_or(
        TelemetryError::InvalidQuery("offset must be a whole number from 0"),
    )?;
    let limit = number(&q, "limit", 100, MAX_LIMIT)
        .filter(|l| *l >= 1)
        .ok_or(TelemetryError::InvalidQuery(
            "limit must be a whole number from 1 to 500",
        ))?;
    let session = match viewer(&req, &ctx).await? {
        Ok(session) => session,
        Err(refusal) => return Ok(refusal),
    };
    let filter = DeviceFilter {
        search: q.get("search").filter(|s| !s.is_empty()).cloned(),
        ..DeviceFilter::default()
    };
    let order = DeviceOrder {
        sort: SortKey::Serial,
        descending: false,
        offset,
        limit,
    };
    let page = ctx
        .accounts
        .device_list(&session, filter, order)
        .await
        .map_err(TelemetryError::from)?;
    let devices = page
        .rows
        .into_iter()
        .map(|r| ListedDevice {
            serial: r.serial.into(),
            model: r.model,
            group: r.group,
            pairing: match r.pairing {
                PairingState::Provisional => "provisional",
                PairingState::Active | PairingState::None => "paired",
            },
            last_reading: r.last_reading.map(rfc3339),
        })
        .collect();
    Ok(no_store(StatusCode::OK).json(DeviceList {
        devices,
        total: page.total,
        offset,
        limit,
    }))
}
