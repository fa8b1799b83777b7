//! What the operator commands list: every tenant with its number of users, every user, the
//! devices with their pairing and readings, the service clients.

use diesel::dsl::{count_star, max};
use diesel::prelude::*;

use super::kinds::{ClientKind, PairingStatus};
use super::pairings::PairingRecord;
use super::registry::{ClientRecord, DeviceRecord};
use super::schema::{clients, devices, pairings, telemetry_readings, tenants, users};
use super::users::UserRecord;
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, TenantId};

/// A tenant as `pairgate tenant list` shows it.
#[derive(Debug, Clone)]
pub struct TenantLine {
    pub id: TenantId,
    pub name: String,
    pub erp_customer_number: Option<String>,
    pub created_at: i64,
    pub users: i64,
}

/// Every tenant, by id, with the number of its users.
pub fn tenants(tx: &mut Tx<'_>) -> Result<Vec<TenantLine>, StoreError> {
    let rows: Vec<(TenantId, String, Option<String>, i64)> = tenants::table
        .select((
            tenants::id,
            tenants::name,
            tenants::erp_customer_number,
            tenants::created_at,
        ))
        .order(tenants::id.asc())
        .load(tx.conn)?;
    let counts: Vec<(Option<TenantId>, i64)> = users::table
        .group_by(users::tenant_id)
        .select((users::tenant_id, count_star()))
        .load(tx.conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, erp_customer_number, created_at)| TenantLine {
            users: counts
                .iter()
                .find(|(t, _)| *t == Some(id))
                .map_or(0, |(_, n)| *n),
            id,
            name,
            erp_customer_number,
            created_at,
        })
        .collect())
}

/// Every user by id, or a tenant's.
pub fn users(tx: &mut Tx<'_>, tenant: Option<TenantId>) -> Result<Vec<UserRecord>, StoreError> {
    let query = users::table
        .select(UserRecord::as_select())
        .order(users::id.asc());
    Ok(match tenant {
        Some(t) => query.filter(users::tenant_id.eq(t)).load(tx.conn)?,
        None => query.load(tx.conn)?,
    })
}

/// Every device by serial, or those paired to a tenant.
pub fn devices(tx: &mut Tx<'_>, tenant: Option<TenantId>) -> Result<Vec<DeviceRecord>, StoreError> {
    let query = devices::table
        .select(DeviceRecord::as_select())
        .order(devices::serial.asc());
    Ok(match tenant {
        Some(t) => query.filter(devices::tenant_id.eq(t)).load(tx.conn)?,
        None => query.load(tx.conn)?,
    })
}

/// What `pairgate device list|show` says of one device beyond its row.
#[derive(Debug, Clone)]
pub struct DeviceState {
    pub pairing: Option<PairingRecord>,
    pub last_reading: Option<i64>,
    pub readings: i64,
}

/// The device's current pairing, its last reading's time and its number of readings.
pub fn device_state(tx: &mut Tx<'_>, serial: &DeviceSerial) -> Result<DeviceState, StoreError> {
    let pairing = pairings::table
        .filter(pairings::serial.eq(serial))
        .filter(pairings::status.ne(PairingStatus::Ended))
        .select(PairingRecord::as_select())
        .first(tx.conn)
        .optional()?;
    let (last_reading, readings): (Option<i64>, i64) = telemetry_readings::table
        .filter(telemetry_readings::serial.eq(serial))
        .select((max(telemetry_readings::ts), count_star()))
        .first(tx.conn)?;
    Ok(DeviceState {
        pairing,
        last_reading,
        readings,
    })
}

/// Every service client (not devices), by client_id.
pub fn service_clients(tx: &mut Tx<'_>) -> Result<Vec<ClientRecord>, StoreError> {
    let ids: Vec<String> = clients::table
        .filter(clients::kind.eq_any([ClientKind::Service, ClientKind::App]))
        .select(clients::client_id)
        .order(clients::client_id.asc())
        .load(tx.conn)?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(client) = super::registry::find_client(tx, &id)? {
            found.push(client);
        }
    }
    Ok(found)
}
