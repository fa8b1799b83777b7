//! Pairings (which tenant a device belongs to, with history), disputes and staff grants.

use diesel::prelude::*;

pub use super::kinds::{DisputeStatus, PairingStatus};
use super::schema::{devices, disputes, pairing_grants, pairings};
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, TenantId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pairings)]
pub struct PairingRecord {
    pub id: i64,
    pub serial: DeviceSerial,
    pub tenant_id: TenantId,
    pub status: PairingStatus,
    pub basis: String,
    pub sale_id: Option<String>,
    pub flow_id: Option<i64>,
    pub approved_by: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
    /// The staff member (an actor) whose grant allowed this pairing, if one did.
    pub granted_by: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = pairings)]
pub struct NewPairing {
    pub serial: DeviceSerial,
    pub tenant_id: TenantId,
    pub status: PairingStatus,
    pub basis: &'static str,
    pub sale_id: Option<String>,
    pub flow_id: Option<i64>,
    pub approved_by: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub granted_by: Option<String>,
}

/// The device's current (active or provisional) pairing.
pub fn current(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
) -> Result<Option<PairingRecord>, StoreError> {
    Ok(pairings::table
        .filter(pairings::serial.eq(serial))
        .filter(pairings::status.ne(PairingStatus::Ended))
        .select(PairingRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Every pairing of a device, newest first.
pub fn history(tx: &mut Tx<'_>, serial: &DeviceSerial) -> Result<Vec<PairingRecord>, StoreError> {
    Ok(pairings::table
        .filter(pairings::serial.eq(serial))
        .select(PairingRecord::as_select())
        .order(pairings::id.desc())
        .load(tx.conn)?)
}

/// Records a new current pairing and points the device at its tenant. `Conflict` when the device
/// already has a current pairing (a racing approval won).
pub fn insert(tx: &mut Tx<'_>, pairing: &NewPairing) -> Result<i64, StoreError> {
    let id = tx.conn.transaction(|conn| {
        diesel::insert_into(pairings::table)
            .values(pairing)
            .returning(pairings::id)
            .get_result(conn)
    })?;
    diesel::update(devices::table.find(&pairing.serial))
        .set((
            devices::tenant_id.eq(pairing.tenant_id),
            devices::paired_at.eq(pairing.created_at),
        ))
        .execute(tx.conn)?;
    Ok(id)
}

/// Ends the device's current pairing (and detaches the device from its tenant); returns it.
pub fn end_current(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    reason: &str,
    now: i64,
) -> Result<Option<PairingRecord>, StoreError> {
    let Some(current) = current(tx, serial)? else {
        return Ok(None);
    };
    diesel::update(pairings::table.find(current.id))
        .set((
            pairings::status.eq(PairingStatus::Ended),
            pairings::ended_at.eq(now),
            pairings::end_reason.eq(reason),
        ))
        .execute(tx.conn)?;
    diesel::update(devices::table.find(serial))
        .set((
            devices::tenant_id.eq(None::<TenantId>),
            devices::paired_at.eq(None::<i64>),
        ))
        .execute(tx.conn)?;
    Ok(Some(current))
}

/// Turns a provisional pairing active; false if it was not provisional.
pub fn confirm(tx: &mut Tx<'_>, id: i64, now: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        pairings::table
            .find(id)
            .filter(pairings::status.eq(PairingStatus::Provisional)),
    )
    .set((
        pairings::status.eq(PairingStatus::Active),
        pairings::confirmed_at.eq(now),
    ))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// A tenant's provisional pairings (the portal flags them).
pub fn provisional_serials(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
) -> Result<Vec<DeviceSerial>, StoreError> {
    Ok(pairings::table
        .filter(pairings::tenant_id.eq(tenant_id))
        .filter(pairings::status.eq(PairingStatus::Provisional))
        .select(pairings::serial)
        .load(tx.conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = disputes)]
pub struct DisputeRecord {
    pub id: i64,
    pub serial: DeviceSerial,
    pub claimant_tenant_id: TenantId,
    pub holder_tenant_id: Option<TenantId>,
    pub reason: String,
    pub status: DisputeStatus,
    pub resolution: Option<String>,
    pub opened_by: String,
    pub created_at: i64,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<i64>,
    pub note: Option<String>,
}

/// Opens a dispute, unless one is open already for this device and claimant; returns its id
/// and whether it is new.
pub fn open_dispute(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    claimant: TenantId,
    holder: Option<TenantId>,
    reason: &str,
    opened_by: &str,
    now: i64,
) -> Result<(i64, bool), StoreError> {
    let existing: Option<i64> = disputes::table
        .filter(disputes::serial.eq(serial))
        .filter(disputes::claimant_tenant_id.eq(claimant))
        .filter(disputes::status.eq(DisputeStatus::Open))
        .select(disputes::id)
        .first(tx.conn)
        .optional()?;
    if let Some(id) = existing {
        return Ok((id, false));
    }
    let id = diesel::insert_into(disputes::table)
        .values((
            disputes::serial.eq(serial),
            disputes::claimant_tenant_id.eq(claimant),
            disputes::holder_tenant_id.eq(holder),
            disputes::reason.eq(reason),
            disputes::status.eq(DisputeStatus::Open),
            disputes::opened_by.eq(opened_by),
            disputes::created_at.eq(now),
        ))
        .returning(disputes::id)
        .get_result(tx.conn)?;
    Ok((id, true))
}

pub fn disputes_with_status(
    tx: &mut Tx<'_>,
    status: DisputeStatus,
) -> Result<Vec<DisputeRecord>, StoreError> {
    Ok(disputes::table
        .filter(disputes::status.eq(status))
        .select(DisputeRecord::as_select())
        .order(disputes::id.desc())
        .limit(200)
        .load(tx.conn)?)
}

pub fn disputes_of(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
) -> Result<Vec<DisputeRecord>, StoreError> {
    Ok(disputes::table
        .filter(disputes::serial.eq(serial))
        .select(DisputeRecord::as_select())
        .order(disputes::id.desc())
        .load(tx.conn)?)
}

pub fn find_dispute(tx: &mut Tx<'_>, id: i64) -> Result<Option<DisputeRecord>, StoreError> {
    Ok(disputes::table
        .find(id)
        .select(DisputeRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Resolves an open dispute; false if it was already resolved (two staff members at once).
pub fn resolve_dispute(
    tx: &mut Tx<'_>,
    id: i64,
    resolution: &str,
    by: &str,
    note: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        disputes::table
            .find(id)
            .filter(disputes::status.eq(DisputeStatus::Open)),
    )
    .set((
        disputes::status.eq(DisputeStatus::Resolved),
        disputes::resolution.eq(resolution),
        disputes::resolved_by.eq(by),
        disputes::resolved_at.eq(now),
        disputes::note.eq(note),
    ))
    .execute(tx.conn)?;
    Ok(n == 1)
}

pub fn grant(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    tenant_id: TenantId,
    by: &str,
    now: i64,
) -> Result<(), StoreError> {
    let inserted = tx.conn.transaction(|conn| {
        diesel::insert_into(pairing_grants::table)
            .values((
                pairing_grants::serial.eq(serial),
                pairing_grants::tenant_id.eq(tenant_id),
                pairing_grants::granted_by.eq(by),
                pairing_grants::created_at.eq(now),
            ))
            .execute(conn)
    });
    match inserted.map_err(StoreError::from) {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn has_grant(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    tenant_id: TenantId,
) -> Result<bool, StoreError> {
    Ok(pairing_grants::table
        .find((serial, tenant_id))
        .select(pairing_grants::created_at)
        .first::<i64>(tx.conn)
        .optional()?
        .is_some())
}

/// Grants are spent when used, so a later sale to someone else is not overridden forever.
pub fn revoke_grant(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    tenant_id: TenantId,
) -> Result<(), StoreError> {
    diesel::delete(pairing_grants::table.find((serial, tenant_id))).execute(tx.conn)?;
    Ok(())
}

/// Who granted `tenant_id` the right to pair `serial` (an actor, `user:7`), if anyone did.
pub fn granted_by(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    tenant_id: TenantId,
) -> Result<Option<String>, StoreError> {
    Ok(pairing_grants::table
        .find((serial, tenant_id))
        .select(pairing_grants::granted_by)
        .first::<String>(tx.conn)
        .optional()?)
}
