//! The manufacturer's staff console: disputes (both sides, the ERP record, the device's audit
//! trail) and their resolution, devices by serial, tenants and their ERP customer numbers.

use serde_json::json;

use super::{Ceremony, PairingError, SaleFacts, active_sale, end_pairing, notify_admins, record};
use crate::accounts::history::{History, read_back};
use crate::accounts::{AccountError, Role, Session};
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::{DeviceSerial, TenantId};
use crate::store::history::Names;
use crate::store::pairings::{self, DisputeRecord, DisputeStatus, PairingRecord};
use crate::store::{StoreError, Tx, registry};

/// How staff settle a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The current holder keeps the device.
    Keep,
    /// The device leaves its holder (tokens revoked) and the claimant may pair it.
    Move,
    /// The device leaves its holder and is free for whoever the sale record allows.
    Release,
    /// The claimant may pair it (a device nobody holds: not sold, sold to another, review).
    Grant,
    /// Nothing to do (a mistaken attempt).
    Dismiss,
}

impl Resolution {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "keep" => Self::Keep,
            "move" => Self::Move,
            "release" => Self::Release,
            "grant" => Self::Grant,
            "dismiss" => Self::Dismiss,
            _ => return None,
        })
    }

    fn stored(self) -> &'static str {
        match self {
            Self::Keep => "kept",
            Self::Move => "moved",
            Self::Release => "released",
            Self::Grant => "granted",
            Self::Dismiss => "dismissed",
        }
    }
}

/// A dispute with what staff need to decide it.
#[derive(Debug, Clone)]
pub struct DisputeView {
    pub dispute: DisputeRecord,
    pub claimant: String,
    pub holder: Option<String>,
    pub model: String,
    pub sale: Option<SaleFacts>,
    /// The device's events, read back with their names.
    pub trail: History,
    /// The names of the people who opened and settled the dispute.
    pub people: Names,
}

/// A device as staff see it.
#[derive(Debug, Clone)]
pub struct StaffDevice {
    pub serial: DeviceSerial,
    pub model: String,
    pub tenant: Option<String>,
    pub sale: Option<SaleFacts>,
    pub pairings: Vec<(PairingRecord, String)>,
    pub disputes: Vec<DisputeRecord>,
    pub trail: History,
    /// The names of the people who approved its pairings and settled its disputes.
    pub people: Names,
}

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: TenantId,
    pub name: String,
    pub customer_number: Option<String>,
}

fn require_staff(session: &Session) -> Result<(), PairingError> {
    if session.user.role == Role::Staff {
        Ok(())
    } else {
        Err(AccountError::Forbidden.into())
    }
}

fn tenant_name(tx: &mut crate::store::Tx<'_>, id: TenantId) -> Result<String, StoreError> {
    Ok(registry::find_tenant(tx, id)?
        .map_or_else(|| format!("tenant {id}"), |t| format!("{} (#{id})", t.name)))
}

impl Ceremony {
    pub async fn disputes(
        &self,
        session: &Session,
        status: DisputeStatus,
    ) -> Result<Vec<DisputeView>, PairingError> {
        require_staff(session)?;
        let ids: Vec<i64> = self
            .store
            .read(move |tx| pairings::disputes_with_status(tx, status))
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            views.push(self.dispute(session, id, 0).await?);
        }
        Ok(views)
    }

    /// One dispute, with up to `trail` audit events of its device.
    pub async fn dispute(
        &self,
        session: &Session,
        id: i64,
        trail: i64,
    ) -> Result<DisputeView, PairingError> {
        require_staff(session)?;
        self.store
            .read(move |tx| {
                let Some(dispute) = pairings::find_dispute(tx, id)? else {
                    return Ok(Err(PairingError::NotFound));
                };
                let model = registry::find_device(tx, &dispute.serial)?
                    .map(|d| d.model)
                    .unwrap_or_default();
                let claimant = tenant_name(tx, dispute.claimant_tenant_id)?;
                let holder = dispute
                    .holder_tenant_id
                    .map(|h| tenant_name(tx, h))
                    .transpose()?;
                let sale = active_sale(tx, &dispute.serial)?;
                let trail = crate::store::audit::for_subject(
                    tx,
                    &format!("device:{}", dispute.serial),
                    trail,
                )?;
                let trail = read_back(tx, trail, None)?;
                let mut actors = vec![dispute.opened_by.as_str()];
                actors.extend(dispute.resolved_by.as_deref());
                let people = super::names::people(tx, &actors)?;
                Ok::<_, StoreError>(Ok(DisputeView {
                    people,
                    dispute,
                    claimant,
                    holder,
                    model,
                    sale,
                    trail,
                }))
            })
            .await?
    }

    /// Settles an open dispute (needs a fresh step-up). Exactly one of two staff members
    /// settling at once succeeds.
    pub async fn resolve(
        &self,
        session: &Session,
        id: i64,
        resolution: Resolution,
        note: &str,
    ) -> Result<(), PairingError> {
        require_staff(session)?;
        self.accounts.require_step_up(session)?;
        let note = note.trim().chars().take(1000).collect::<String>();
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                let Some(d) =
                    pairings::find_dispute(tx, id)?.filter(|d| d.status == DisputeStatus::Open)
                else {
                    return Ok(Err(PairingError::Invalid(
                        "this dispute is already settled",
                    )));
                };
                let holder_now =
                    registry::find_device(tx, &d.serial)?.and_then(|dev| dev.tenant_id);
                if let Err(refused) = settle(tx, &d, holder_now, resolution, &actor, now)? {
                    return Ok(Err(refused));
                }
                if !pairings::resolve_dispute(
                    tx,
                    id,
                    resolution.stored(),
                    &actor,
                    (!note.is_empty()).then_some(note.as_str()),
                    now,
                )? {
                    return Ok(Err(PairingError::Invalid(
                        "this dispute is already settled",
                    )));
                }
                if matches!(resolution, Resolution::Move | Resolution::Grant) {
                    notify_admins(
                        tx,
                        d.claimant_tenant_id,
                        &format!("You may now pair device {}", d.serial),
                        &crate::mail::render(&super::mails::MayPair {
                            serial: d.serial.as_str(),
                        })?,
                        now,
                    )?;
                }
                record(
                    tx,
                    now,
                    &actor,
                    &d.serial,
                    Some(d.claimant_tenant_id),
                    Action::DisputeResolved,
                    FeedType::DisputeResolved,
                    json!({ "dispute": id, "resolution": resolution.stored() }),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// Everything about a device, by serial.
    pub async fn staff_device(
        &self,
        session: &Session,
        serial: &DeviceSerial,
    ) -> Result<StaffDevice, PairingError> {
        require_staff(session)?;
        let serial = DeviceSerial::from(serial.as_str().trim());
        self.store
            .read(move |tx| {
                let Some(device) = registry::find_device(tx, &serial)? else {
                    return Ok(Err(PairingError::NotFound));
                };
                let tenant = device.tenant_id.map(|t| tenant_name(tx, t)).transpose()?;
                let mut history = Vec::new();
                for p in pairings::history(tx, &serial)? {
                    let name = tenant_name(tx, p.tenant_id)?;
                    history.push((p, name));
                }
                let disputes = pairings::disputes_of(tx, &serial)?;
                let mut actors: Vec<&str> = history
                    .iter()
                    .flat_map(|(p, _)| [Some(p.approved_by.as_str()), p.granted_by.as_deref()])
                    .flatten()
                    .collect();
                actors.extend(disputes.iter().filter_map(|d| d.resolved_by.as_deref()));
                let people = super::names::people(tx, &actors)?;
                let trail = crate::store::audit::for_subject(tx, &format!("device:{serial}"), 50)?;
                Ok::<_, StoreError>(Ok(StaffDevice {
                    sale: active_sale(tx, &serial)?,
                    trail: read_back(tx, trail, None)?,
                    people,
                    disputes,
                    serial: device.serial,
                    model: device.model,
                    tenant,
                    pairings: history,
                }))
            })
            .await?
    }

    pub async fn staff_tenants(&self, session: &Session) -> Result<Vec<TenantRow>, PairingError> {
        require_staff(session)?;
        Ok(self
            .store
            .read(crate::store::erp::list_tenants)
            .await?
            .into_iter()
            .map(|(id, name, customer_number)| TenantRow {
                id,
                name,
                customer_number,
            })
            .collect())
    }

    /// Links (or unlinks) a tenant to an ERP customer number after staff matched them.
    pub async fn set_customer_number(
        &self,
        session: &Session,
        tenant: TenantId,
        number: Option<&str>,
    ) -> Result<(), PairingError> {
        require_staff(session)?;
        self.accounts.require_step_up(session)?;
        let number = number
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if number
            .as_ref()
            .is_some_and(|n| n.len() > 64 || n.chars().any(char::is_control))
        {
            return Err(PairingError::Invalid(
                "a customer number is 1–64 printable characters",
            ));
        }
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                if registry::find_tenant(tx, tenant)?.is_none() {
                    return Ok(Err(PairingError::NotFound));
                }
                match crate::store::erp::set_tenant_customer(tx, tenant, number.as_deref()) {
                    Ok(()) => {}
                    Err(StoreError::Conflict(_)) => {
                        return Ok(Err(PairingError::Invalid(
                            "another tenant has this customer number",
                        )));
                    }
                    Err(e) => return Err(e),
                }
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::TenantSettingsChanged,
                        actor,
                        Subject::Tenant(tenant),
                    )
                    .tenant(Some(tenant))
                    .detail(json!({ "erp_customer_number": number })),
                )?;
                Ok(Ok(()))
            })
            .await?
    }
}

/// What a resolution does to the device before the dispute is closed: ends the holder's pairing
/// (move, release) and grants the claimant (move, grant). A refusal leaves everything as it was.
fn settle(
    tx: &mut Tx<'_>,
    d: &DisputeRecord,
    holder_now: Option<TenantId>,
    resolution: Resolution,
    actor: &str,
    now: i64,
) -> Result<Result<(), PairingError>, StoreError> {
    match resolution {
        Resolution::Keep | Resolution::Dismiss => {}
        Resolution::Move | Resolution::Release => {
            if holder_now.is_none() {
                return Ok(Err(PairingError::Invalid("nobody holds this device now")));
            }
            end_pairing(
                tx,
                &d.serial,
                if resolution == Resolution::Move {
                    "moved_by_staff"
                } else {
                    "released_by_staff"
                },
                now,
            )?;
            if let Some(h) = holder_now {
                notify_admins(
                    tx,
                    h,
                    &format!("Device {} was removed from your account", d.serial),
                    &crate::mail::render(&super::mails::RemovedAfterDispute {
                        serial: d.serial.as_str(),
                    })?,
                    now,
                )?;
            }
            if resolution == Resolution::Move {
                pairings::grant(tx, &d.serial, d.claimant_tenant_id, actor, now)?;
            }
        }
        Resolution::Grant => {
            if holder_now.is_some_and(|h| h != d.claimant_tenant_id) {
                return Ok(Err(PairingError::Invalid(
                    "another tenant holds this device: move or release it instead",
                )));
            }
            pairings::grant(tx, &d.serial, d.claimant_tenant_id, actor, now)?;
        }
    }
    Ok(Ok(()))
}
