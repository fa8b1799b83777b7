//! The device list and the dashboard: a tenant's devices as one person may see them (the same
//! device access as [`Accounts::visible_devices`]), one page at a time, and moving several of
//! them to a group at once.

use serde_json::json;

use super::sessions::Session;
use super::{AccountError, Accounts};
use crate::events::{self, Action, Event, Subject};
use crate::ids::{DeviceSerial, GroupId, TenantId};
use crate::store::device_list::{self, ListQuery, ListedDevice};
use crate::store::{StoreError, groups};

pub use crate::store::device_list::{GroupFilter, SeenFilter, SortKey, StatusFilter};

/// A device is online with a reading in the last hour; silent without one.
pub const ONLINE_WINDOW_MS: i64 = 60 * 60 * 1000;

/// What the list shows: the filters a person chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFilter {
    /// Part of the serial, any case.
    pub search: Option<String>,
    pub group: GroupFilter,
    pub status: Option<StatusFilter>,
    pub seen: Option<SeenFilter>,
}

impl Default for DeviceFilter {
    fn default() -> Self {
        Self {
            search: None,
            group: GroupFilter::Any,
            status: None,
            seen: None,
        }
    }
}

/// The order and the slice of the list.
#[derive(Debug, Clone, Copy)]
pub struct DeviceOrder {
    pub sort: SortKey,
    pub descending: bool,
    pub offset: i64,
    pub limit: i64,
}

/// A device's current pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingState {
    Active,
    Provisional,
    /// No current pairing (a device between owners).
    None,
}

/// One row of the list.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub serial: DeviceSerial,
    pub model: String,
    pub group: Option<String>,
    pub pairing: PairingState,
    pub disputed: bool,
    /// The newest reading's time (Unix ms).
    pub last_reading: Option<i64>,
}

/// One page of the list and how many devices match in all.
#[derive(Debug, Clone)]
pub struct DeviceListPage {
    pub rows: Vec<DeviceRow>,
    pub total: i64,
    /// The time the page was read at (Unix ms), to say how long ago each reading was.
    pub now: i64,
}

/// The dashboard's figures; each is the total of the list filtered as [`Dashboard::filter_of`]
/// says (counted in one pass by `store::device_list::figures`).
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub devices: i64,
    pub online: i64,
    pub silent: i64,
    pub provisional: i64,
    pub disputed: i64,
    /// The newest pairings: (serial, status, created at).
    pub latest_pairings: Vec<device_list::RecentPairing>,
    pub now: i64,
}

/// A dashboard figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    Devices,
    Online,
    Silent,
    Provisional,
    Disputed,
}

impl Dashboard {
    /// The list filter behind a figure.
    pub fn filter_of(figure: Figure) -> DeviceFilter {
        let mut f = DeviceFilter::default();
        match figure {
            Figure::Devices => {}
            Figure::Online => f.seen = Some(SeenFilter::Online),
            Figure::Silent => f.seen = Some(SeenFilter::Silent),
            Figure::Provisional => f.status = Some(StatusFilter::Provisional),
            Figure::Disputed => f.status = Some(StatusFilter::Disputed),
        }
        f
    }
}

fn row(d: ListedDevice) -> DeviceRow {
    DeviceRow {
        pairing: match d.pairing_status.as_deref() {
            Some("active") => PairingState::Active,
            Some("provisional") => PairingState::Provisional,
            _ => PairingState::None,
        },
        serial: d.serial,
        model: d.model,
        group: d.group_name,
        disputed: d.disputed,
        last_reading: d.last_reading,
    }
}

fn query(
    tenant_id: TenantId,
    session: &Session,
    f: DeviceFilter,
    o: DeviceOrder,
    now: i64,
) -> ListQuery {
    ListQuery {
        tenant_id,
        who: session.visibility(),
        search: f.search,
        group: f.group,
        status: f.status,
        seen: f.seen,
        online_since: now - ONLINE_WINDOW_MS,
        sort: o.sort,
        descending: o.descending,
        offset: o.offset.max(0),
        limit: o.limit.clamp(1, 500),
    }
}

impl Accounts {
    /// One page of the tenant's devices this person may see.
    pub async fn device_list(
        &self,
        session: &Session,
        filter: DeviceFilter,
        order: DeviceOrder,
    ) -> Result<DeviceListPage, AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let now = self.now_ms();
        let q = query(tenant, session, filter, order, now);
        let (rows, total) = self.store.read(move |tx| device_list::page(tx, &q)).await?;
        Ok(DeviceListPage {
            rows: rows.into_iter().map(row).collect(),
            total,
            now,
        })
    }

    /// The home page's figures, over the devices this person may see.
    pub async fn dashboard(&self, session: &Session) -> Result<Dashboard, AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let now = self.now_ms();
        let who = session.visibility();
        let online_since = now - ONLINE_WINDOW_MS;
        let (counts, latest_pairings) = self
            .store
            .read(move |tx| {
                let counts = device_list::figures(tx, tenant, who, online_since)?;
                let latest = device_list::latest_pairings(tx, tenant, who, 5)?;
                Ok::<_, StoreError>((counts, latest))
            })
            .await?;
        let [devices, online, silent, provisional, disputed] = counts;
        Ok(Dashboard {
            devices,
            online,
            silent,
            provisional,
            disputed,
            latest_pairings,
            now,
        })
    }

    /// Moves the given devices to one of the tenant's groups (or out of any), all or none: every
    /// serial must be one of the tenant's devices this person may see. Returns how many moved.
    pub async fn move_devices(
        &self,
        session: &Session,
        serials: Vec<DeviceSerial>,
        group_id: Option<GroupId>,
    ) -> Result<usize, AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.manages_users() {
            return Err(AccountError::Forbidden);
        }
        let mut serials = serials;
        serials.sort();
        serials.dedup();
        if serials.is_empty() {
            return Err(AccountError::InvalidInput("select at least one device"));
        }
        let now = self.now_ms();
        let (actor, who) = (session.actor(), session.visibility());
        self.store
            .write(move |tx| {
                if let Some(g) = group_id
                    && groups::find(tx, g)?.map(|g| g.tenant_id) != Some(tenant)
                {
                    return Ok(Err(AccountError::NotFound));
                }
                let visible = device_list::visible_of(tx, tenant, who, &serials)?;
                if visible.len() != serials.len() {
                    return Ok(Err(AccountError::NotFound));
                }
                for serial in &serials {
                    groups::set_device_group(tx, serial, group_id)?;
                    events::record(
                        tx,
                        now,
                        Event::new(
                            Action::DeviceGroupAssigned,
                            actor.clone(),
                            Subject::Device(serial.clone()),
                        )
                        .tenant(Some(tenant))
                        .detail(json!({ "group": group_id })),
                    )?;
                }
                Ok::<_, StoreError>(Ok(serials.len()))
            })
            .await?
    }
}
