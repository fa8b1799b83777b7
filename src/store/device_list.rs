//! The portal's device list in SQL: a tenant's devices as a person may see them, searched,
//! filtered, sorted and paged by the database (never loaded whole), the figures the dashboard
//! counts with the same filters, the latest pairings, and moving devices between groups.
//!
//! A device's last reading is the newest `ts` of its readings under its current tenant, one
//! backward step of the `telemetry_readings_by_device_time` index per device (on PostgreSQL,
//! of each daily partition's, newest day first, until one holds a reading of the device).

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::groups::Visibility;
use super::schema::{device_group_members, device_groups, devices, pairings};
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, GroupId, TenantId};

/// The newest reading of the device under its current tenant (NULL without one).
const LAST_READING: &str = "(SELECT r.ts FROM telemetry_readings r \
     WHERE r.serial = devices.serial AND r.tenant_id = devices.tenant_id \
     ORDER BY r.ts DESC LIMIT 1)";

/// The state of the device's current pairing (`active` or `provisional`).
const PAIRING_STATUS: &str = "(SELECT p.status FROM pairings p \
     WHERE p.serial = devices.serial AND p.status <> 'ended')";

/// Whether someone opened a dispute over the device that is still open.
const DISPUTED: &str = "EXISTS (SELECT 1 FROM disputes d \
     WHERE d.serial = devices.serial AND d.status = 'open')";

/// `$serial` (a qualified column's SQL) is a device granted to the user, by its group or by itself.
/// (SQL text: diesel's checks refuse a subquery over a table the outer query joins.)
macro_rules! granted {
    ($serial:literal, $user_id:expr) => {
        sql::<Bool>(concat!(
            "(",
            $serial,
            " IN (SELECT m.serial FROM device_group_members m \
             JOIN user_group_access a ON a.group_id = m.group_id WHERE a.user_id = "
        ))
        .bind::<BigInt, _>($user_id)
        .sql(concat!(
            ") OR ",
            $serial,
            " IN (SELECT u.serial FROM user_device_access u WHERE u.user_id = "
        ))
        .bind::<BigInt, _>($user_id)
        .sql("))")
    };
}

/// Which group a listed device must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupFilter {
    Any,
    Ungrouped,
    Group(GroupId),
}

/// Which pairing state a listed device must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Confirmed by the sale record (or staff).
    Active,
    /// Working, awaiting the ERP's verdict.
    Provisional,
    /// Someone's dispute over it is open.
    Disputed,
}

/// How recently a listed device must have sent a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenFilter {
    /// A reading at or after the cut-off.
    Online,
    /// Readings, none at or after the cut-off.
    Silent,
    /// No reading at all.
    Never,
}

/// The column a list is sorted by (ties by serial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Serial,
    Model,
    Group,
    Status,
    LastReading,
}

/// One page of a tenant's device list.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub tenant_id: TenantId,
    pub who: Visibility,
    /// Case-insensitive part of the serial (prefix or anywhere).
    pub search: Option<String>,
    pub group: GroupFilter,
    pub status: Option<StatusFilter>,
    pub seen: Option<SeenFilter>,
    /// The cut-off between online and silent (Unix ms).
    pub online_since: i64,
    pub sort: SortKey,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A row of the device list; `total` is the number of devices the filters match (all pages).
#[derive(Debug, Clone, Queryable)]
pub struct ListedDevice {
    pub serial: DeviceSerial,
    pub model: String,
    pub group_id: Option<GroupId>,
    pub group_name: Option<String>,
    pub pairing_status: Option<String>,
    pub last_reading: Option<i64>,
    pub disputed: bool,
    pub total: i64,
}

/// The `LIKE` pattern for a part of a serial, `!` escaping the wildcards.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The `ORDER BY` list (ties by serial; what has no group, pairing or reading sorts as the least,
/// alike on both engines).
fn order_by(sort: SortKey, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let key = match sort {
        SortKey::Serial => return format!("devices.serial {dir}"),
        SortKey::Model => "devices.model".to_owned(),
        SortKey::Group => "COALESCE(device_groups.name, '')".to_owned(),
        SortKey::Status => format!("COALESCE({PAIRING_STATUS}, '')"),
        SortKey::LastReading => format!("COALESCE({LAST_READING}, -1)"),
    };
    format!("{key} {dir}, devices.serial ASC")
}

/// The page the query asks for, and how many devices match in all.
pub fn page(tx: &mut Tx<'_>, q: &ListQuery) -> Result<(Vec<ListedDevice>, i64), StoreError> {
    let mut query = devices::table
        .left_join(device_group_members::table.on(device_group_members::serial.eq(devices::serial)))
        .left_join(device_groups::table.on(device_groups::id.eq(device_group_members::group_id)))
        .filter(devices::tenant_id.eq(q.tenant_id))
        .select((
            devices::serial,
            devices::model,
            device_group_members::group_id.nullable(),
            device_groups::name.nullable(),
            sql::<Nullable<Text>>(PAIRING_STATUS),
            sql::<Nullable<BigInt>>(LAST_READING),
            sql::<Bool>(DISPUTED),
            sql::<BigInt>("COUNT(*) OVER ()"),
        ))
        .into_boxed();
    if let Visibility::GrantedTo(user_id) = q.who {
        query = query.filter(granted!("devices.serial", user_id));
    }
    if let Some(needle) = q.search.as_deref().filter(|s| !s.is_empty()) {
        query = query.filter(
            sql::<Bool>("LOWER(devices.serial) LIKE ")
                .bind::<Text, _>(like_pattern(needle))
                .sql(" ESCAPE '!'"),
        );
    }
    query = match q.group {
        GroupFilter::Any => query,
        GroupFilter::Ungrouped => query.filter(device_group_members::group_id.is_null()),
        GroupFilter::Group(id) => query.filter(device_group_members::group_id.eq(id)),
    };
    let status = || sql::<Nullable<Text>>(PAIRING_STATUS);
    query = match q.status {
        None => query,
        Some(StatusFilter::Active) => query.filter(status().eq("active")),
        Some(StatusFilter::Provisional) => query.filter(status().eq("provisional")),
        Some(StatusFilter::Disputed) => query.filter(sql::<Bool>(DISPUTED)),
    };
    let last = || sql::<Nullable<BigInt>>(LAST_READING);
    query = match q.seen {
        None => query,
        Some(SeenFilter::Online) => query.filter(last().ge(q.online_since)),
        Some(SeenFilter::Silent) => query.filter(last().lt(q.online_since)),
        Some(SeenFilter::Never) => query.filter(last().is_null()),
    };
    let query = query.order_by(sql::<Text>(&order_by(q.sort, q.descending)));
    let rows: Vec<ListedDevice> = query.offset(q.offset).limit(q.limit).load(tx.conn)?;
    let total = match rows.first() {
        Some(r) => r.total,
        // Past the last page (or nothing matches): count without rows.
        None if q.offset > 0 => {
            page(
                tx,
                &ListQuery {
                    offset: 0,
                    limit: 1,
                    ..q.clone()
                },
            )?
            .1
        }
        None => 0,
    };
    Ok((rows, total))
}

/// The dashboard's figures over the devices a reader may see, in one pass: all of them, online
/// (a reading at or after `online_since`), silent (readings, none since), awaiting the ERP, and
/// with an open dispute. Each equals the total of [`page`] with the matching filter.
pub fn figures(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    who: Visibility,
    online_since: i64,
) -> Result<[i64; 5], StoreError> {
    let counts = sql::<(BigInt, BigInt, BigInt, BigInt, BigInt)>("COUNT(*), COUNT(CASE WHEN ")
        .sql(LAST_READING)
        .sql(" >= ")
        .bind::<BigInt, _>(online_since)
        .sql(" THEN 1 END), COUNT(CASE WHEN ")
        .sql(LAST_READING)
        .sql(" < ")
        .bind::<BigInt, _>(online_since)
        .sql(" THEN 1 END), COUNT(CASE WHEN ")
        .sql(PAIRING_STATUS)
        .sql(" = 'provisional' THEN 1 END), COUNT(CASE WHEN ")
        .sql(DISPUTED)
        .sql(" THEN 1 END)");
    let mut query = devices::table
        .filter(devices::tenant_id.eq(tenant_id))
        .select(counts)
        .into_boxed();
    if let Visibility::GrantedTo(user_id) = who {
        query = query.filter(granted!("devices.serial", user_id));
    }
    let (all, online, silent, provisional, disputed) = query.get_result(tx.conn)?;
    Ok([all, online, silent, provisional, disputed])
}

/// A pairing for the dashboard: (serial, status, created at).
pub type RecentPairing = (DeviceSerial, String, i64);

/// The tenant's newest pairings of devices the reader may see, newest first.
pub fn latest_pairings(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    who: Visibility,
    limit: i64,
) -> Result<Vec<RecentPairing>, StoreError> {
    let mut query = pairings::table
        .filter(pairings::tenant_id.eq(tenant_id))
        .select((pairings::serial, pairings::status, pairings::created_at))
        .order(pairings::id.desc())
        .limit(limit)
        .into_boxed();
    if let Visibility::GrantedTo(user_id) = who {
        query = query.filter(granted!("pairings.serial", user_id));
    }
    Ok(query.load(tx.conn)?)
}

/// Of `serials`, those that are the tenant's devices the reader may see.
pub fn visible_of(
    tx: &mut Tx<'_>,
    tenant_id: TenantId,
    who: Visibility,
    serials: &[DeviceSerial],
) -> Result<Vec<DeviceSerial>, StoreError> {
    let mut found = Vec::with_capacity(serials.len());
    // Bounded statements: SQLite limits the number of bound values per statement.
    for chunk in serials.chunks(500) {
        let mut query = devices::table
            .filter(devices::tenant_id.eq(tenant_id))
            .filter(devices::serial.eq_any(chunk))
            .select(devices::serial)
            .into_boxed();
        if let Visibility::GrantedTo(user_id) = who {
            query = query.filter(granted!("devices.serial", user_id));
        }
        found.extend(query.load::<DeviceSerial>(tx.conn)?);
    }
    Ok(found)
}
