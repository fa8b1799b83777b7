//! The decision on the verification page: approving a request this session was shown (the
//! person's fresh second factor, the ownership gate, the flow's transition through
//! `oauth::device_flow`, the pairing record, notifications and the event, in one transaction),
//! denying one, and what a refused approval leaves for staff.

use serde_json::json;

use super::attempts::{self, Origin};
use super::gate::{Basis, Refusal, SaleFacts, Verdict};
use super::mails;
use super::{
    Approval, Ceremony, PairingError, Shown, active_sale, attempt, evaluate, notify_admins, record,
    shown_flow,
};
use crate::accounts::{AccountError, PasskeyUse, SecondFactor, Session};
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::{DeviceSerial, GroupId, TenantId};
use crate::oauth::device_flow::{self, Verdict as FlowVerdict};
use crate::oauth::user_code;
use crate::store::flows::FlowRecord;
use crate::store::pairings::{self, NewPairing, PairingStatus};
use crate::store::registry::DeviceRecord;
use crate::store::{StoreError, Tx, groups, registry};

/// The fresh second factor an approval comes with.
#[derive(Debug, Clone, Copy)]
pub enum Fresh<'a> {
    /// A TOTP code, checked in the approval's own transaction.
    Totp(&'a str),
    /// A passkey this request verified for the session's user (it serves once: its ceremony
    /// was taken when it was checked).
    Passkey(PasskeyUse),
}

impl Ceremony {
    /// Approves with a fresh TOTP code: [`Self::approve_with`].
    pub async fn approve(
        &self,
        session: &Session,
        shown: Shown<'_>,
        totp_code: &str,
        group_id: Option<GroupId>,
        ip: Option<&str>,
    ) -> Result<Approval, PairingError> {
        self.approve_with(session, shown, Fresh::Totp(totp_code), group_id, ip)
            .await
    }

    /// Approves a request this session was shown into the session's tenant. Counts a code
    /// attempt, then needs a fresh second factor (a TOTP code, checked here in the same
    /// transaction, refused when the tenant requires passkeys for approvals; or a passkey just
    /// verified for this user) and a role allowed to pair. The gate decides what an approval
    /// means; a refusal opens a dispute and changes nothing else. An approval proves the address
    /// it came from (see `attempts`).
    pub async fn approve_with(
        &self,
        session: &Session,
        shown: Shown<'_>,
        factor: Fresh<'_>,
        group_id: Option<GroupId>,
        ip: Option<&str>,
    ) -> Result<Approval, PairingError> {
        let tenant = self.pairing_tenant(session)?;
        let now = self.now_ms();
        let code = user_code::normalize(shown.user_code);
        let second_factor = self.accounts.second_factor();
        let (budgets, proofs, policy) = (self.budgets.clone(), self.proofs.clone(), self.policy());
        let (session, proof) = (session.clone(), shown.proof.to_owned());
        let factor = match factor {
            Fresh::Totp(code) => Err(code.to_owned()),
            Fresh::Passkey(used) => Ok(used),
        };
        let (ip, origin) = (ip.map(str::to_owned), Origin::of(ip));
        self.store
            .write(
                move |tx| -> Result<Result<Approval, PairingError>, StoreError> {
                    if let Err(e) = budgets.count(tx, &attempt(&session, &origin), now)? {
                        return Ok(Err(e));
                    }
                    let fresh = (&factor, &second_factor, ip.as_deref());
                    if let Err(e) = check_fresh(tx, &session, tenant, fresh, now)? {
                        return Ok(Err(e));
                    }
                    let flow =
                        shown_flow(tx, &proofs, &session.id_hash, code.as_deref(), &proof, now)?;
                    let Some(flow) = flow else {
                        return Ok(Err(PairingError::UnknownCode));
                    };
                    let Some(device) =
                        registry::find_device(tx, &DeviceSerial::from(&flow.client_id))?
                    else {
                        return Ok(Err(PairingError::UnknownCode));
                    };
                    if let Some(g) = group_id
                        && groups::find(tx, g)?.map(|g| g.tenant_id) != Some(tenant)
                    {
                        return Ok(Err(PairingError::NotFound));
                    }
                    let claim = Claim {
                        flow,
                        device,
                        tenant,
                        actor: session.actor(),
                        now,
                    };
                    let sale = active_sale(tx, &claim.device.serial)?;
                    let serial = &claim.device.serial;
                    let (verdict, _) = evaluate(
                        tx,
                        serial,
                        claim.device.tenant_id,
                        sale.as_ref(),
                        tenant,
                        policy,
                    )?;
                    let grounds = match claim.grounds(tx, verdict, sale.as_ref())? {
                        Ok(grounds) => grounds,
                        Err(settled) => return Ok(Ok(settled)),
                    };
                    if !claim.pair(tx, &grounds, group_id)? {
                        return Ok(Err(PairingError::UnknownCode));
                    }
                    attempts::prove(tx, &origin, now)?;
                    claim.announce(tx, &session, &grounds)?;
                    Ok(Ok(claim.paired(grounds.status)))
                },
            )
            .await?
    }

    /// Denies a request this session was shown (no second factor needed: denying is always
    /// safe). Counts a code attempt like a look-up; a request the session was not shown answers
    /// exactly as an unknown code does, so deny can neither probe codes nor cancel a request
    /// somebody else is looking at.
    pub async fn deny(
        &self,
        session: &Session,
        shown: Shown<'_>,
        ip: Option<&str>,
    ) -> Result<String, PairingError> {
        let tenant = self.pairing_tenant(session)?;
        let now = self.now_ms();
        let code = user_code::normalize(shown.user_code);
        let actor = session.actor();
        let (budgets, proofs) = (self.budgets.clone(), self.proofs.clone());
        let (session, proof, origin) = (session.clone(), shown.proof.to_owned(), Origin::of(ip));
        self.store
            .write(move |tx| {
                if let Err(e) = budgets.count(tx, &attempt(&session, &origin), now)? {
                    return Ok(Err(e));
                }
                let Some(flow) =
                    shown_flow(tx, &proofs, &session.id_hash, code.as_deref(), &proof, now)?
                else {
                    return Ok(Err(PairingError::UnknownCode));
                };
                if !device_flow::settle(tx, &flow, &FlowVerdict::Deny, &actor, now)? {
                    return Ok(Err(PairingError::UnknownCode));
                }
                record(
                    tx,
                    now,
                    &actor,
                    &DeviceSerial::from(&flow.client_id),
                    Some(tenant),
                    Action::PairingDenied,
                    FeedType::PairingDenied,
                    json!({ "flow": flow.id }),
                )?;
                Ok::<_, StoreError>(Ok(flow.client_id))
            })
            .await?
    }
}

/// What the gate decided an approval means: the pairing's status and basis, the sale it rests
/// on, and (for a staff grant) the staff member who granted it.
struct Grounds<'a> {
    status: PairingStatus,
    basis: Basis,
    sale: Option<&'a SaleFacts>,
    granted_by: Option<String>,
}

/// A shown request that a person of `tenant` approves, inside the approval's transaction.
struct Claim {
    flow: FlowRecord,
    device: DeviceRecord,
    tenant: TenantId,
    actor: String,
    now: i64,
}

impl Claim {
    /// What the approver is told of a pairing recorded with `status`.
    fn paired(self, status: PairingStatus) -> Approval {
        Approval::Paired {
            serial: self.device.serial,
            provisional: status == PairingStatus::Provisional,
        }
    }

    /// What the gate's `verdict` means for this claim: the grounds to pair on, or (refused,
    /// held for review) what the approver is told, already recorded.
    fn grounds<'s>(
        &self,
        tx: &mut Tx<'_>,
        verdict: Verdict,
        sale: Option<&'s SaleFacts>,
    ) -> Result<Result<Grounds<'s>, Approval>, StoreError> {
        let (status, basis) = match verdict {
            Verdict::Active(basis) => (PairingStatus::Active, basis),
            Verdict::Provisional => (PairingStatus::Provisional, Basis::DistributorSale),
            Verdict::Refused(refusal) => return self.refused(tx, refusal).map(Err),
            Verdict::Review => return self.held(tx).map(Err),
        };
        let granted_by = match basis {
            Basis::StaffGrant => pairings::granted_by(tx, &self.device.serial, self.tenant)?,
            _ => None,
        };
        Ok(Ok(Grounds {
            status,
            basis,
            sale,
            granted_by,
        }))
    }

    /// The gate refused: a dispute for staff, nothing else changes.
    fn refused(&self, tx: &mut Tx<'_>, refusal: Refusal) -> Result<Approval, StoreError> {
        let serial = &self.device.serial;
        let dispute_id = refuse(
            tx,
            serial,
            self.tenant,
            self.device.tenant_id,
            refusal,
            &self.actor,
            self.now,
        )?;
        Ok(Approval::Refused {
            serial: serial.clone(),
            refusal,
            dispute_id,
        })
    }

    /// A distributor sale under the review policy: held for staff, the flow stays pending.
    fn held(&self, tx: &mut Tx<'_>) -> Result<Approval, StoreError> {
        let serial = &self.device.serial;
        let (dispute_id, _) = pairings::open_dispute(
            tx,
            serial,
            self.tenant,
            None,
            "distributor_review",
            &self.actor,
            self.now,
        )?;
        record(
            tx,
            self.now,
            &self.actor,
            serial,
            Some(self.tenant),
            Action::PairingHeldForReview,
            FeedType::PairingHeld,
            json!({ "dispute": dispute_id }),
        )?;
        Ok(Approval::HeldForReview {
            serial: serial.clone(),
            dispute_id,
        })
    }

    /// The flow's approval and the pairing record (replacing the device's pairing to the same
    /// tenant), in `group_id`. False when the flow was no longer pending: of racing decisions
    /// exactly one pairs.
    fn pair(
        &self,
        tx: &mut Tx<'_>,
        grounds: &Grounds<'_>,
        group_id: Option<GroupId>,
    ) -> Result<bool, StoreError> {
        let Grounds {
            status,
            basis,
            sale,
            ..
        } = *grounds;
        let (serial, now) = (&self.device.serial, self.now);
        let verdict = FlowVerdict::Approve {
            tenant_id: self.tenant,
        };
        if !device_flow::settle(tx, &self.flow, &verdict, &self.actor, now)? {
            return Ok(false);
        }
        if self.device.tenant_id == Some(self.tenant) {
            pairings::end_current(tx, serial, "repaired", now)?;
        }
        pairings::insert(
            tx,
            &NewPairing {
                serial: serial.clone(),
                tenant_id: self.tenant,
                status,
                basis: basis.as_str(),
                sale_id: sale.map(|s| s.sale_id.clone()),
                flow_id: Some(self.flow.id),
                approved_by: self.actor.clone(),
                created_at: now,
                confirmed_at: (status == PairingStatus::Active).then_some(now),
                granted_by: grounds.granted_by.clone(),
            },
        )?;
        if basis == Basis::StaffGrant {
            pairings::revoke_grant(tx, serial, self.tenant)?;
        }
        groups::set_device_group(tx, serial, group_id)?;
        Ok(true)
    }

    /// The approval's event, and a mail to the tenant's admins.
    fn announce(
        &self,
        tx: &mut Tx<'_>,
        session: &Session,
        grounds: &Grounds<'_>,
    ) -> Result<(), StoreError> {
        let Grounds {
            status,
            basis,
            sale,
            ..
        } = *grounds;
        let (serial, now) = (&self.device.serial, self.now);
        let provisional = status == PairingStatus::Provisional;
        let (action, kind) = if provisional {
            (Action::PairingProvisional, FeedType::PairingProvisional)
        } else {
            (Action::PairingApproved, FeedType::PairingApproved)
        };
        let mut detail = json!({
            "flow": self.flow.id,
            "basis": basis.as_str(),
            "sale_id": sale.map(|s| s.sale_id.clone()),
            "requested_ip": self.flow.requested_ip,
        });
        if let Some(granter) = &grounds.granted_by {
            detail["granted_by"] = json!(granter);
        }
        record(
            tx,
            now,
            &self.actor,
            serial,
            Some(self.tenant),
            action,
            kind,
            detail,
        )?;
        notify_admins(
            tx,
            self.tenant,
            &format!("Device {serial} joined your account"),
            &crate::mail::render(&mails::DeviceJoined {
                name: &session.user.name,
                email: &session.user.email,
                serial: serial.as_str(),
                model: &self.device.model,
                provisional,
            })?,
            now,
        )
    }
}

/// A refused approval: open a dispute for staff (once), tell the current holder, record it.
fn refuse(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    claimant: TenantId,
    holder: Option<TenantId>,
    refusal: Refusal,
    actor: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let holder = holder.filter(|h| *h != claimant);
    let (dispute_id, new) =
        pairings::open_dispute(tx, serial, claimant, holder, refusal.as_str(), actor, now)?;
    record(
        tx,
        now,
        actor,
        serial,
        Some(claimant),
        Action::PairingRefused,
        FeedType::PairingRefused,
        json!({ "reason": refusal.as_str(), "dispute": dispute_id }),
    )?;
    if new {
        if let Some(h) = holder {
            notify_admins(
                tx,
                h,
                &format!("Someone tried to pair your device {serial}"),
                &crate::mail::render(&mails::PairingAttempted {
                    serial: serial.as_str(),
                })?,
                now,
            )?;
        }
        if holder.is_some() {
            // The holder's own audit trail shows the attempt too.
            let detail = json!({
                "reason": refusal.as_str(),
                "dispute": dispute_id,
                "claimant_tenant": claimant,
            });
            let subject = Subject::Device(serial.to_owned());
            let event = Event::new(Action::PairingRefused, actor.to_owned(), subject)
                .tenant(holder)
                .detail(detail);
            events::record(tx, now, event)?;
        }
    }
    Ok(dispute_id)
}

/// An approval's fresh second factor, checked in its transaction: a TOTP code (`Err`), refused
/// when the tenant approves with passkeys only, or a passkey verified for the session's user
/// (`Ok`). `Ok(Err(_))` is a refusal whose bookkeeping should still commit.
fn check_fresh(
    tx: &mut Tx<'_>,
    session: &Session,
    tenant: TenantId,
    (factor, second_factor, ip): (&Result<PasskeyUse, String>, &SecondFactor, Option<&str>),
    now: i64,
) -> Result<Result<(), PairingError>, StoreError> {
    match factor {
        Err(_)
            if registry::find_tenant(tx, tenant)?.is_some_and(|t| t.require_passkey_approval) =>
        {
            Ok(Err(PairingError::PasskeyRequired))
        }
        Err(code) => Ok(second_factor
            .check(tx, session, code, ip, now)?
            .map_err(PairingError::Account)),
        Ok(used) if used.user != session.user.id => {
            Ok(Err(PairingError::Account(AccountError::InvalidCode)))
        }
        Ok(_) => Ok(Ok(())),
    }
}
