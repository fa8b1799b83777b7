//! Device groups (sites), group membership of devices, per-user access grants, and the device
//! list a user may see.

use diesel::prelude::*;

use super::registry::DeviceRecord;
use super::schema::{
    device_group_members, device_groups, devices, user_device_access, user_group_access,
};
use super::{StoreError, Tx};
use crate::ids::UserId;
use crate::ids::{DeviceSerial, GroupId, TenantId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = device_groups)]
pub struct GroupRecord {
    pub id: GroupId,
    pub tenant_id: TenantId,
    pub name: String,
    pub created_at: i64,
}

/// Creates a group; `Conflict` when the tenant has one by that name.
pub fn insert(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    name: &str,
    now: i64,
) -> Result<GroupId, StoreError> {
    Ok(diesel::insert_into(device_groups::table)
        .values((
            device_groups::tenant_id.eq(tenant_id),
            device_groups::name.eq(name),
            device_groups::created_at.eq(now),
        ))
        .returning(device_groups::id)
        .get_result(tx.conn)?)
}

pub fn list(tx: &mut Tx<'_>, tenant_id: TenantId) -> Result<Vec<GroupRecord>, StoreError> {
    Ok(device_groups::table
        .filter(device_groups::tenant_id.eq(tenant_id))
        .select(GroupRecord::as_select())
        .order(device_groups::name.asc())
        .load(tx.conn)?)
}

pub fn find(tx: &mut Tx<'_>, id: GroupId) -> Result<Option<GroupRecord>, StoreError> {
    Ok(device_groups::table
        .find(id)
        .select(GroupRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Puts a device in a group (or takes it out with `None`).
pub fn set_device_group(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    group_id: Option<GroupId>,
) -> Result<(), StoreError> {
    diesel::delete(device_group_members::table.find(serial)).execute(tx.conn)?;
    if let Some(group_id) = group_id {
        diesel::insert_into(device_group_members::table)
            .values((
                device_group_members::serial.eq(serial),
                device_group_members::group_id.eq(group_id),
            ))
            .execute(tx.conn)?;
    }
    Ok(())
}

/// The group of each device of a tenant: (serial, group id).
pub fn memberships(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
) -> Result<Vec<(DeviceSerial, GroupId)>, StoreError> {
    Ok(device_group_members::table
        .inner_join(device_groups::table)
        .filter(device_groups::tenant_id.eq(tenant_id))
        .select((device_group_members::serial, device_group_members::group_id))
        .load(tx.conn)?)
}

/// Replaces what a user with `device_access = 'selected'` may see.
pub fn set_grants(
    tx: &mut Tx<'_>,
    user_id: UserId,
    groups: &[GroupId],
    serials: &[DeviceSerial],
) -> Result<(), StoreError> {
    diesel::delete(user_group_access::table.filter(user_group_access::user_id.eq(user_id)))
        .execute(tx.conn)?;
    diesel::delete(user_device_access::table.filter(user_device_access::user_id.eq(user_id)))
        .execute(tx.conn)?;
    for g in groups {
        diesel::insert_into(user_group_access::table)
            .values((
                user_group_access::user_id.eq(user_id),
                user_group_access::group_id.eq(g),
            ))
            .execute(tx.conn)?;
    }
    for s in serials {
        diesel::insert_into(user_device_access::table)
            .values((
                user_device_access::user_id.eq(user_id),
                user_device_access::serial.eq(s),
            ))
            .execute(tx.conn)?;
    }
    Ok(())
}

/// A user's grants: (group ids, serials).
pub fn grants(
    tx: &mut Tx<'_>,
    user_id: UserId,
) -> Result<(Vec<GroupId>, Vec<DeviceSerial>), StoreError> {
    let groups = user_group_access::table
        .filter(user_group_access::user_id.eq(user_id))
        .select(user_group_access::group_id)
        .load(tx.conn)?;
    let serials = user_device_access::table
        .filter(user_device_access::user_id.eq(user_id))
        .select(user_device_access::serial)
        .load(tx.conn)?;
    Ok((groups, serials))
}

/// Which of a tenant's devices a reader sees.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    /// Every device of the tenant.
    All,
    /// Only devices in a granted group, or granted one by one, to this user.
    GrantedTo(UserId),
}

/// The tenant's devices the reader may see, by serial. The filter is part of the query, so no
/// caller can forget it.
pub fn visible_devices(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    who: Visibility,
) -> Result<Vec<DeviceRecord>, StoreError> {
    let base = devices::table
        .filter(devices::tenant_id.eq(tenant_id))
        .select(DeviceRecord::as_select())
        .order(devices::serial.asc());
    Ok(match who {
        Visibility::All => base.load(tx.conn)?,
        Visibility::GrantedTo(user_id) => {
            let by_group = device_group_members::table
                .inner_join(
                    user_group_access::table
                        .on(user_group_access::group_id.eq(device_group_members::group_id)),
                )
                .filter(user_group_access::user_id.eq(user_id))
                .select(device_group_members::serial);
            let by_device = user_device_access::table
                .filter(user_device_access::user_id.eq(user_id))
                .select(user_device_access::serial);
            base.filter(
                devices::serial
                    .eq_any(by_group)
                    .or(devices::serial.eq_any(by_device)),
            )
            .load(tx.conn)?
        }
    })
}
