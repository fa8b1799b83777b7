//! What the portal tells the ERP, as the ERP reads it: pages of the event feed (`GET
//! /api/erp/v1/events`) and the events the webhooks deliver. Entries are written by
//! [`crate::events`], inside the transaction of the change they describe.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::ids::{DeviceSerial, TenantId};
use crate::store::erp::{self as stored, EventRecord};
use crate::store::{StoreError, Tx};

/// An event as the feed and the webhooks show it: every member is present, `null` when it has
/// no value.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    /// Increasing; also the webhook-id.
    pub id: i64,
    #[serde(rename = "type")]
    #[schema(value_type = crate::events::FeedType)]
    pub event_type: String,
    /// RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[schema(required = true, value_type = Option<String>)]
    pub serial: Option<DeviceSerial>,
    #[schema(required = true)]
    pub sale_id: Option<String>,
    /// The sale's buyer, or the ERP customer of the tenant concerned.
    #[schema(required = true)]
    pub customer_number: Option<String>,
    #[schema(required = true, value_type = Option<i64>)]
    pub tenant_id: Option<TenantId>,
    /// Details of the event (for sales: the sale as `SaleView` plus `tokens_revoked`).
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<EventRecord> for EventView {
    fn from(e: EventRecord) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            occurred_at: rfc3339(e.occurred_at),
            serial: e.serial,
            sale_id: e.sale_id,
            customer_number: e.customer_number,
            tenant_id: e.tenant_id,
            data: serde_json::from_str(&e.data).unwrap_or_else(|_| json!({})),
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One page of the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = EventPage)]
pub struct FeedPage {
    pub events: Vec<EventView>,
    /// Pass as `after` to continue; unchanged when there was nothing new.
    pub next_cursor: String,
    /// Whether more events are waiting right now.
    pub has_more: bool,
}

/// Reads the events after `after`, at most `limit`.
pub fn page(tx: &mut Tx<'_>, after: i64, limit: i64) -> Result<FeedPage, StoreError> {
    let mut rows = stored::events_after(tx, after, limit + 1)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = rows.last().map_or(after, |e| e.id);
    Ok(FeedPage {
        events: rows.into_iter().map(EventView::from).collect(),
        next_cursor: next.to_string(),
        has_more,
    })
}
