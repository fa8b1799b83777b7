//! Device groups (sites) and who sees which devices. Every read of device data for a person goes
//! through [`Accounts::visible_devices`] (or the same store filter), never around it.

use std::collections::HashMap;

use serde_json::json;

use super::sessions::Session;
use super::{AccountError, Accounts};
use crate::events::{self, Action, Event, Subject};
use crate::ids::{DeviceSerial, GroupId, UserId};
use crate::store::groups::{self, Visibility};
use crate::store::users::{self, DeviceAccess};
use crate::store::{StoreError, registry};

#[derive(Debug, Clone)]
pub struct GroupView {
    pub id: GroupId,
    pub name: String,
    pub devices: usize,
}

#[derive(Debug, Clone)]
pub struct DeviceView {
    pub serial: DeviceSerial,
    pub model: String,
    pub group: Option<String>,
    pub paired_at: Option<i64>,
}

impl Session {
    pub(super) fn visibility(&self) -> Visibility {
        if self.user.device_access_all || self.user.role.manages_users() {
            Visibility::All
        } else {
            Visibility::GrantedTo(self.user.id)
        }
    }
}

impl Accounts {
    /// The tenant's devices this person may see.
    pub async fn visible_devices(
        &self,
        session: &Session,
    ) -> Result<Vec<DeviceView>, AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let who = session.visibility();
        self.store
            .read(move |tx| {
                let names: HashMap<GroupId, String> = groups::list(tx, tenant)?
                    .into_iter()
                    .map(|g| (g.id, g.name))
                    .collect();
                let member_of: HashMap<DeviceSerial, GroupId> =
                    groups::memberships(tx, tenant)?.into_iter().collect();
                Ok::<_, AccountError>(
                    groups::visible_devices(tx, tenant, who)?
                        .into_iter()
                        .map(|d| DeviceView {
                            group: member_of.get(&d.serial).and_then(|g| names.get(g)).cloned(),
                            serial: d.serial,
                            model: d.model,
                            paired_at: d.paired_at,
                        })
                        .collect(),
                )
            })
            .await
    }

    /// The tenant's groups with their device counts.
    pub async fn groups(&self, session: &Session) -> Result<Vec<GroupView>, AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        self.store
            .read(move |tx| {
                let mut counts: HashMap<GroupId, usize> = HashMap::new();
                for (_, g) in groups::memberships(tx, tenant)? {
                    *counts.entry(g).or_default() += 1;
                }
                Ok::<_, AccountError>(
                    groups::list(tx, tenant)?
                        .into_iter()
                        .map(|g| GroupView {
                            devices: counts.get(&g.id).copied().unwrap_or(0),
                            id: g.id,
                            name: g.name,
                        })
                        .collect(),
                )
            })
            .await
    }

    pub async fn create_group(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<GroupId, AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.manages_users() {
            return Err(AccountError::Forbidden);
        }
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AccountError::InvalidInput(
                "a group name must be 1–100 characters",
            ));
        }
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                let id = match groups::insert(tx, tenant, &name, now) {
                    Ok(id) => id,
                    Err(StoreError::Conflict(_)) => {
                        return Ok(Err(AccountError::InvalidInput(
                            "a group with this name exists",
                        )));
                    }
                    Err(e) => return Err(e),
                };
                events::record(
                    tx,
                    now,
                    Event::new(Action::DeviceGroupCreated, actor, Subject::Group(id))
                        .tenant(Some(tenant))
                        .detail(json!({ "name": name })),
                )?;
                Ok(Ok(id))
            })
            .await?
    }

    /// Puts one of the tenant's devices in one of its groups (or none).
    pub async fn assign_device_group(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        group_id: Option<GroupId>,
    ) -> Result<(), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.manages_users() {
            return Err(AccountError::Forbidden);
        }
        let now = self.now_ms();
        let (actor, serial) = (session.actor(), serial.to_owned());
        self.store
            .write(move |tx| {
                if registry::find_device(tx, &serial)?.and_then(|d| d.tenant_id) != Some(tenant) {
                    return Ok(Err(AccountError::NotFound));
                }
                if let Some(g) = group_id
                    && groups::find(tx, g)?.map(|g| g.tenant_id) != Some(tenant)
                {
                    return Ok(Err(AccountError::NotFound));
                }
                groups::set_device_group(tx, &serial, group_id)?;
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::DeviceGroupAssigned,
                        actor,
                        Subject::Device(serial.to_owned()),
                    )
                    .tenant(Some(tenant))
                    .detail(json!({ "group": group_id })),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// What a member may see: everything, or the given groups and devices (sensitive: needs a
    /// fresh step-up).
    pub async fn set_device_access(
        &self,
        session: &Session,
        user_id: UserId,
        access: DeviceAccess,
        group_ids: Vec<GroupId>,
        serials: Vec<DeviceSerial>,
    ) -> Result<(), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let actor_role = session.user.role;
        if !actor_role.manages_users() {
            return Err(AccountError::Forbidden);
        }
        self.require_step_up(session)?;
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                if let Err(e) = super::members::managed_member(tx, tenant, actor_role, user_id)? {
                    return Ok(Err(e));
                }
                for g in &group_ids {
                    if groups::find(tx, *g)?.map(|g| g.tenant_id) != Some(tenant) {
                        return Ok(Err(AccountError::NotFound));
                    }
                }
                for s in &serials {
                    if registry::find_device(tx, s)?.and_then(|d| d.tenant_id) != Some(tenant) {
                        return Ok(Err(AccountError::NotFound));
                    }
                }
                users::set_device_access(tx, user_id, access)?;
                let all = access == DeviceAccess::All;
                groups::set_grants(
                    tx,
                    user_id,
                    if all { &[] } else { &group_ids },
                    if all { &[] } else { &serials },
                )?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserAccessChanged, actor, Subject::User(user_id))
                        .tenant(Some(tenant))
                        .detail(json!({ "all": all, "groups": group_ids, "devices": serials })),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// A member's grants: (all devices?, group ids, serials).
    pub async fn device_access(
        &self,
        session: &Session,
        user_id: UserId,
    ) -> Result<(bool, Vec<GroupId>, Vec<DeviceSerial>), AccountError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.manages_users() {
            return Err(AccountError::Forbidden);
        }
        self.store
            .read(move |tx| {
                let Some(user) = users::find(tx, user_id)?.filter(|u| u.tenant_id == Some(tenant))
                else {
                    return Err(AccountError::NotFound);
                };
                let (g, s) = groups::grants(tx, user_id)?;
                Ok((user.device_access == DeviceAccess::All, g, s))
            })
            .await
    }
}
