//! Storage for the ERP integration: tenants' ERP customer numbers, device keys as the ERP
//! replaces them, sale records, the event feed (ids handed out in commit order under the lock of
//! the single `erp_event_head` row) and the webhook outbox.

use diesel::prelude::*;

use super::kinds::ClientKind;
pub use super::kinds::{BuyerKind, SaleStatus};
use super::schema::{clients, devices, erp_event_head, erp_events, erp_outbox, erp_sales, tenants};
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, TenantId};

// ---------------------------------------------------------------------------------------------
// Tenants and ERP customers

/// The tenant that stands for an ERP customer: (id, name).
pub fn tenant_for_customer(
    tx: &mut Tx<'_>,
    customer_number: &str,
) -> Result<Option<(TenantId, String)>, StoreError> {
    Ok(tenants::table
        .filter(tenants::erp_customer_number.eq(customer_number))
        .select((tenants::id, tenants::name))
        .first(tx.conn)
        .optional()?)
}

/// A tenant's ERP customer number: `None` if the tenant does not exist, `Some(None)` if it is
/// not linked to a customer.
pub fn customer_of_tenant(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
) -> Result<Option<Option<String>>, StoreError> {
    Ok(tenants::table
        .find(tenant_id)
        .select(tenants::erp_customer_number)
        .first(tx.conn)
        .optional()?)
}

/// Links a tenant to an ERP customer number; `Conflict` if another tenant has that number.
pub fn link_tenant(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    customer_number: &str,
) -> Result<(), StoreError> {
    diesel::update(tenants::table.find(tenant_id))
        .set(tenants::erp_customer_number.eq(customer_number))
        .execute(tx.conn)?;
    Ok(())
}

/// Sets or clears a tenant's ERP customer number (staff matching), inside a savepoint so that a
/// `Conflict` (another tenant has the number) leaves the caller's transaction usable.
pub fn set_tenant_customer(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    customer_number: Option<&str>,
) -> Result<(), StoreError> {
    tx.conn
        .transaction(|conn| {
            diesel::update(tenants::table.find(tenant_id))
                .set(tenants::erp_customer_number.eq(customer_number))
                .execute(conn)
        })
        .map(drop)
        .map_err(StoreError::from)
}

/// Every tenant with its ERP customer number: (id, name, number).
pub fn list_tenants(
    tx: &mut Tx<'_>,
) -> Result<Vec<(TenantId, String, Option<String>)>, StoreError> {
    Ok(tenants::table
        .select((tenants::id, tenants::name, tenants::erp_customer_number))
        .order(tenants::id.asc())
        .load(tx.conn)?)
}

pub fn rename_tenant(tx: &mut Tx<'_>, tenant_id: TenantId, name: &str) -> Result<(), StoreError> {
    diesel::update(tenants::table.find(tenant_id))
        .set(tenants::name.eq(name))
        .execute(tx.conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Devices

/// Replaces a device's factory key (its client JWK Set).
pub fn set_device_jwks(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    jwks: &str,
) -> Result<(), StoreError> {
    let n = diesel::update(
        clients::table
            .find(serial)
            .filter(clients::kind.eq(ClientKind::Device)),
    )
    .set(clients::jwks.eq(jwks))
    .execute(tx.conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Corrects a device's model (also the name of its client).
pub fn set_device_model(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    model: &str,
) -> Result<(), StoreError> {
    diesel::update(devices::table.find(serial))
        .set(devices::model.eq(model))
        .execute(tx.conn)?;
    diesel::update(clients::table.find(serial))
        .set(clients::name.eq(model))
        .execute(tx.conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sales

/// A stored sale. The data fields are `None` only for a cancellation that arrived before its sale.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = erp_sales, treat_none_as_null = true)]
pub struct SaleRecord {
    pub sale_id: String,
    pub serial: Option<DeviceSerial>,
    pub sold_at: Option<i64>,
    pub sold_to_customer_number: Option<String>,
    pub sold_to_name: Option<String>,
    pub sold_to_kind: Option<BuyerKind>,
    pub end_customer_number: Option<String>,
    pub revision: Option<i64>,
    pub status: SaleStatus,
    /// The revision whose update ended the sale (`None` while active, or ended by a DELETE).
    pub ended_revision: Option<i64>,
    pub ended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn find_sale(tx: &mut Tx<'_>, sale_id: &str) -> Result<Option<SaleRecord>, StoreError> {
    Ok(erp_sales::table
        .find(sale_id)
        .select(SaleRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// The device's active sale, if any.
pub fn active_sale_of(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
) -> Result<Option<SaleRecord>, StoreError> {
    Ok(erp_sales::table
        .filter(erp_sales::serial.eq(serial))
        .filter(erp_sales::status.eq(SaleStatus::Active))
        .select(SaleRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Inserts a sale; `Conflict` when the id exists or the device already has an active sale.
pub fn insert_sale(tx: &mut Tx<'_>, sale: &SaleRecord) -> Result<(), StoreError> {
    diesel::insert_into(erp_sales::table)
        .values(sale)
        .execute(tx.conn)?;
    Ok(())
}

/// Replaces every field of a stored sale.
pub fn update_sale(tx: &mut Tx<'_>, sale: &SaleRecord) -> Result<(), StoreError> {
    diesel::update(erp_sales::table.find(&sale.sale_id))
        .set(sale)
        .execute(tx.conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Events and the webhook outbox

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = erp_events)]
pub struct EventRecord {
    pub id: i64,
    pub occurred_at: i64,
    pub event_type: String,
    pub serial: Option<DeviceSerial>,
    pub sale_id: Option<String>,
    pub customer_number: Option<String>,
    pub tenant_id: Option<TenantId>,
    /// Compact JSON object.
    pub data: String,
}

/// Takes the next event id, holding the head row's lock until the transaction ends, so ids
/// become visible in order. Returns the id and whether webhooks are enabled.
pub fn next_event_id(tx: &mut Tx<'_>) -> Result<(i64, bool), StoreError> {
    Ok(diesel::update(erp_event_head::table.find(1))
        .set(erp_event_head::last_id.eq(erp_event_head::last_id + 1))
        .returning((erp_event_head::last_id, erp_event_head::webhooks))
        .get_result(tx.conn)?)
}

/// Takes the head row's lock without changing it (see [`complete_delivery`]).
fn lock_event_head(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    diesel::update(erp_event_head::table.find(1))
        .set(erp_event_head::last_id.eq(erp_event_head::last_id))
        .execute(tx.conn)?;
    Ok(())
}

/// Whether new events are also queued for webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDelivery {
    Enabled,
    Disabled,
}

/// Sets whether new events are also queued for webhook delivery (at start-up, from the settings).
pub fn set_webhook_delivery(tx: &mut Tx<'_>, delivery: WebhookDelivery) -> Result<(), StoreError> {
    diesel::update(erp_event_head::table.find(1))
        .set(erp_event_head::webhooks.eq(delivery == WebhookDelivery::Enabled))
        .execute(tx.conn)?;
    Ok(())
}

pub fn insert_event(tx: &mut Tx<'_>, event: &EventRecord) -> Result<(), StoreError> {
    diesel::insert_into(erp_events::table)
        .values(event)
        .execute(tx.conn)?;
    Ok(())
}

/// Events with an id above `after`, oldest first.
pub fn events_after(
    tx: &mut Tx<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    Ok(erp_events::table
        .filter(erp_events::id.gt(after))
        .order(erp_events::id.asc())
        .limit(limit)
        .select(EventRecord::as_select())
        .load(tx.conn)?)
}

pub fn events_by_id(tx: &mut Tx<'_>, ids: &[i64]) -> Result<Vec<EventRecord>, StoreError> {
    Ok(erp_events::table
        .filter(erp_events::id.eq_any(ids))
        .select(EventRecord::as_select())
        .load(tx.conn)?)
}

/// A pending webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = erp_outbox)]
pub struct OutboxRecord {
    pub event_id: i64,
    pub ordering_key: String,
    pub ready: bool,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

/// Queues an event for delivery behind the undelivered events with the same ordering key. Runs
/// under the head lock taken by [`next_event_id`].
pub fn enqueue_delivery(
    tx: &mut Tx<'_>,
    event_id: i64,
    ordering_key: &str,
    now: i64,
) -> Result<(), StoreError> {
    let waiting: Option<i64> = erp_outbox::table
        .filter(erp_outbox::ordering_key.eq(ordering_key))
        .select(erp_outbox::event_id)
        .first(tx.conn)
        .optional()?;
    diesel::insert_into(erp_outbox::table)
        .values((
            erp_outbox::event_id.eq(event_id),
            erp_outbox::ordering_key.eq(ordering_key),
            erp_outbox::ready.eq(waiting.is_none()),
            erp_outbox::attempts.eq(0),
            erp_outbox::next_attempt_at.eq(now),
        ))
        .execute(tx.conn)?;
    Ok(())
}

/// Deliveries that may be attempted now (the oldest of their ordering key), oldest first.
pub fn due_deliveries(
    tx: &mut Tx<'_>,
    now: i64,
    limit: i64,
) -> Result<Vec<OutboxRecord>, StoreError> {
    Ok(erp_outbox::table
        .filter(erp_outbox::ready.eq(true))
        .filter(erp_outbox::next_attempt_at.le(now))
        .order(erp_outbox::event_id.asc())
        .limit(limit)
        .select(OutboxRecord::as_select())
        .load(tx.conn)?)
}

/// Every pending delivery, oldest first (for operators and tests).
pub fn pending_deliveries(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<OutboxRecord>, StoreError> {
    Ok(erp_outbox::table
        .order(erp_outbox::event_id.asc())
        .limit(limit)
        .select(OutboxRecord::as_select())
        .load(tx.conn)?)
}

/// Claims a delivery until `lease_until`, counting the attempt: false when another worker
/// claimed it first (its `next_attempt_at` moved), so one event is sent by one worker at a time.
pub fn claim_delivery(
    tx: &mut Tx<'_>,
    event_id: i64,
    seen_next_attempt_at: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        erp_outbox::table
            .find(event_id)
            .filter(erp_outbox::next_attempt_at.eq(seen_next_attempt_at)),
    )
    .set((
        erp_outbox::next_attempt_at.eq(lease_until),
        erp_outbox::attempts.eq(erp_outbox::attempts + 1),
    ))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// Removes a delivered event from the outbox and makes the next one of its key ready. Takes the
/// head lock first, so an event queued concurrently cannot miss the promotion.
pub fn complete_delivery(tx: &mut Tx<'_>, event_id: i64) -> Result<(), StoreError> {
    lock_event_head(tx)?;
    let Some(key) = erp_outbox::table
        .find(event_id)
        .select(erp_outbox::ordering_key)
        .first::<String>(tx.conn)
        .optional()?
    else {
        return Ok(());
    };
    diesel::delete(erp_outbox::table.find(event_id)).execute(tx.conn)?;
    let next: Option<i64> = erp_outbox::table
        .filter(erp_outbox::ordering_key.eq(&key))
        .order(erp_outbox::event_id.asc())
        .select(erp_outbox::event_id)
        .first(tx.conn)
        .optional()?;
    if let Some(next) = next {
        diesel::update(erp_outbox::table.find(next))
            .set(erp_outbox::ready.eq(true))
            .execute(tx.conn)?;
    }
    Ok(())
}

/// Records a failed attempt; the delivery is retried at `retry_at`.
pub fn fail_delivery(
    tx: &mut Tx<'_>,
    event_id: i64,
    retry_at: i64,
    error: &str,
) -> Result<(), StoreError> {
    diesel::update(erp_outbox::table.find(event_id))
        .set((
            erp_outbox::next_attempt_at.eq(retry_at),
            erp_outbox::last_error.eq(error),
        ))
        .execute(tx.conn)?;
    Ok(())
}
