//! How a pairing ends or settles after the approval: the tenant unpairs or releases a device,
//! the ERP confirms or rejects a provisional pairing, and the ending every path shares
//! ([`end_pairing`]).

use serde_json::json;

use super::mails;
use super::{Ceremony, PairingError, notify_admins, record};
use crate::accounts::{AccountError, Session};
use crate::events::{Action, FeedType};
use crate::ids::DeviceSerial;
use crate::oauth::device_flow;
use crate::store::pairings::{self, PairingRecord, PairingStatus};
use crate::store::{StoreError, Tx, groups, registry};

/// How a tenant gives up one of its devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The device leaves the tenant.
    Unpair,
    /// The device leaves the tenant for transfer to another customer.
    Release,
}

impl Removal {
    /// The pairing's end reason, also the event's.
    fn reason(self) -> &'static str {
        match self {
            Self::Unpair => "unpaired",
            Self::Release => "released",
        }
    }

    fn action(self) -> Action {
        match self {
            Self::Unpair => Action::DeviceUnpaired,
            Self::Release => Action::DeviceReleased,
        }
    }
}

impl Ceremony {
    /// Unpairs or releases one of the tenant's devices: needs a fresh step-up; every token of
    /// the device stops working at once.
    pub async fn unpair(
        &self,
        session: &Session,
        serial: &DeviceSerial,
        removal: Removal,
    ) -> Result<(), PairingError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.manages_users() && !session.user.role.pairs_devices() {
            return Err(AccountError::Forbidden.into());
        }
        self.accounts.require_step_up(session)?;
        let now = self.now_ms();
        let (actor, serial) = (session.actor(), serial.to_owned());
        self.store
            .write(move |tx| {
                if registry::find_device(tx, &serial)?.and_then(|d| d.tenant_id) != Some(tenant) {
                    return Ok(Err(PairingError::NotFound));
                }
                let reason = removal.reason();
                end_pairing(tx, &serial, reason, now)?;
                record(
                    tx,
                    now,
                    &actor,
                    &serial,
                    Some(tenant),
                    removal.action(),
                    FeedType::PairingEnded,
                    json!({ "reason": reason }),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// The ERP confirms a provisional pairing; false when the device has none.
    pub async fn erp_confirm(
        &self,
        serial: &DeviceSerial,
        actor: &str,
    ) -> Result<bool, PairingError> {
        self.erp_verdict(serial, actor, ErpVerdict::Confirm).await
    }

    /// The ERP rejects a provisional pairing: the device is unpaired and its tokens revoked;
    /// false when the device has no provisional pairing.
    pub async fn erp_reject(
        &self,
        serial: &DeviceSerial,
        actor: &str,
    ) -> Result<bool, PairingError> {
        self.erp_verdict(serial, actor, ErpVerdict::Reject).await
    }

    /// Settles the device's provisional pairing as the ERP decided, records it and, on a
    /// rejection, tells the tenant's admins; false when the device has no provisional pairing.
    async fn erp_verdict(
        &self,
        serial: &DeviceSerial,
        actor: &str,
        verdict: ErpVerdict,
    ) -> Result<bool, PairingError> {
        let now = self.now_ms();
        let (serial, actor) = (serial.to_owned(), actor.to_owned());
        self.store
            .write(move |tx| {
                let Some(current) = pairings::current(tx, &serial)?
                    .filter(|p| p.status == PairingStatus::Provisional)
                else {
                    return Ok(false);
                };
                let (action, feed) = match verdict {
                    ErpVerdict::Confirm => {
                        pairings::confirm(tx, current.id, now)?;
                        (Action::PairingConfirmed, FeedType::PairingConfirmed)
                    }
                    ErpVerdict::Reject => {
                        end_pairing(tx, &serial, "rejected_by_erp", now)?;
                        (Action::PairingRejected, FeedType::PairingRejected)
                    }
                };
                record(
                    tx,
                    now,
                    &actor,
                    &serial,
                    Some(current.tenant_id),
                    action,
                    feed,
                    json!({ "pairing": current.id }),
                )?;
                if verdict == ErpVerdict::Reject {
                    notify_admins(
                        tx,
                        current.tenant_id,
                        &format!("Device {serial} was removed from your account"),
                        &crate::mail::render(&mails::ProvisionalPairingEnded {
                            serial: serial.as_str(),
                        })?,
                        now,
                    )?;
                }
                Ok::<_, StoreError>(true)
            })
            .await
            .map_err(Into::into)
    }
}

/// What the ERP decided about a provisional pairing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ErpVerdict {
    Confirm,
    Reject,
}

/// Ends the device's pairing, every token it holds, and any approval it has not collected yet
/// (its next poll answers `access_denied`). The approval goes first: a poll redeeming it takes
/// the flow's row and then the device's, and taking them in the same order here keeps two
/// PostgreSQL transactions from waiting on each other. Of the two, one gets the approval: the
/// poll, whose tokens the revocation below then ends, or this, and the poll finds it withdrawn.
pub(crate) fn end_pairing(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    reason: &str,
    now: i64,
) -> Result<Option<PairingRecord>, StoreError> {
    device_flow::withdraw(tx, serial)?;
    let ended = pairings::end_current(tx, serial, reason, now)?;
    registry::revoke_device_tokens(tx, serial)?;
    groups::set_device_group(tx, serial, None)?;
    Ok(ended)
}
