//! The pairing ceremony (issue 5, DESIGN.md §1): a person of the customer's company confirms, on
//! the verification page, that the device in front of them may join their tenant. This module
//! joins the pieces in one transaction: the person's fresh second factor and role, the RFC 8628
//! flow (`oauth::device_flow`), the ERP sale record through the ownership [`gate`], the pairing
//! record, disputes for manufacturer staff, notifications, the audit log and the ERP event feed.

mod attempts;
pub mod gate;
pub(crate) mod mails;
mod shown;
mod staff;

use std::sync::Arc;

use serde_json::json;

pub use attempts::Origin;
pub use gate::{Basis, DistributorPolicy, Refusal, SaleFacts, SaleView, Verdict};
pub use staff::{DisputeView, Resolution, StaffDevice, TenantRow};

use crate::accounts::{AccountError, Accounts, GroupView, Session};
use crate::audit::{self, Action};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::erp::events::{EventType, NewEvent};
use crate::oauth::master_key::MasterKey;
use crate::oauth::user_code;
use crate::store::flows::{self, Decision, FlowRecord, FlowStatus};
use crate::store::pairings::{self, NewPairing, PairingRecord};
use crate::store::{Store, StoreError, StoreFailure, Tx, groups, registry, users};

use attempts::{Attempt, Budgets};
use shown::ShownProofs;

/// Why a ceremony step did not happen. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// No pending request has this code (wrong, expired, decided or superseded): one answer for
    /// all, so codes cannot be probed.
    #[error("no pending pairing request has this code; check the code on the device's screen")]
    UnknownCode,
    #[error("too many codes tried; wait {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("storage: {0}")]
    Store(StoreError),
}

impl From<StoreError> for PairingError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl StoreFailure for PairingError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) | Self::Account(AccountError::Store(e)) => Some(e),
            _ => None,
        }
    }
}

/// What the confirmation page shows before a person decides.
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub serial: String,
    pub model: String,
    /// `XXXX-XXXX`, to compare with the device's screen.
    pub user_code: String,
    pub requested_ip: Option<String>,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    /// The sale record as this tenant may see it.
    pub sale: SaleView,
    pub verdict: Verdict,
    /// The device is paired to this same tenant already (a re-pairing after a reset).
    pub repairing: bool,
    pub groups: Vec<GroupView>,
    /// The proof that this session was shown this request; a decision brings it back.
    pub proof: String,
}

/// A decision's reference to a request: the code, as the confirmation page showed it, and the
/// proof that this session was shown it ([`Confirmation::proof`]).
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub user_code: &'a str,
    pub proof: &'a str,
}

/// The outcome of an approval attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Approved; the device receives its tokens at its next poll.
    Paired { serial: String, provisional: bool },
    /// The gate refused; a dispute was opened (or one was open already).
    Refused {
        serial: String,
        refusal: Refusal,
        dispute_id: i64,
    },
    /// Distributor sale under the review policy: staff decide first.
    HeldForReview { serial: String, dispute_id: i64 },
}

pub struct Ceremony {
    store: Store,
    clock: SharedClock,
    settings: Arc<Settings>,
    accounts: Arc<Accounts>,
    budgets: Budgets,
    proofs: ShownProofs,
}

impl Ceremony {
    pub fn new(
        store: Store,
        clock: SharedClock,
        settings: Arc<Settings>,
        accounts: Arc<Accounts>,
        master: &MasterKey,
    ) -> Self {
        Self {
            store,
            clock,
            budgets: Budgets::from_settings(&settings.pairing),
            proofs: ShownProofs::new(master),
            settings,
            accounts,
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn policy(&self) -> DistributorPolicy {
        self.settings.pairing.distributor_sales
    }

    /// Looks a typed code up for the confirmation page (counted against the attempt limits).
    pub async fn look_up(
        &self,
        session: &Session,
        typed_code: &str,
        ip: Option<&str>,
    ) -> Result<Confirmation, PairingError> {
        let tenant = self.pairing_tenant(session)?;
        let now = self.now_ms();
        let code = user_code::normalize(typed_code);
        let (budgets, proofs, policy) = (self.budgets, self.proofs.clone(), self.policy());
        let (session, origin) = (session.clone(), Origin::of(ip));
        self.store
            .write(move |tx| {
                if let Err(e) = budgets.count(tx, &attempt(&session, &origin), now)? {
                    return Ok(Err(e));
                }
                let Some(flow) = live_flow(tx, code.as_deref(), now)? else {
                    return Ok(Err(PairingError::UnknownCode));
                };
                let proof = proofs.issue(&session.id_hash, flow.id);
                confirmation(tx, flow, tenant, policy, proof)
            })
            .await?
    }

    /// The confirmation of a request this session was shown, again (after a decision that did
    /// not happen, such as a mistyped authentication code). It counts no attempt: the proof
    /// shows that a counted look-up came first, and the decision that failed counted its own.
    /// A request the session was not shown is [`PairingError::UnknownCode`].
    pub async fn reshow(
        &self,
        session: &Session,
        shown: Shown<'_>,
    ) -> Result<Confirmation, PairingError> {
        let tenant = self.pairing_tenant(session)?;
        let now = self.now_ms();
        let code = user_code::normalize(shown.user_code);
        let (proofs, policy) = (self.proofs.clone(), self.policy());
        let (session_id, proof) = (session.id_hash.clone(), shown.proof.to_owned());
        self.store
            .read(move |tx| {
                let Some(flow) =
                    shown_flow(tx, &proofs, &session_id, code.as_deref(), &proof, now)?
                else {
                    return Ok(Err(PairingError::UnknownCode));
                };
                confirmation(tx, flow, tenant, policy, proof)
            })
            .await?
    }

    /// The session's tenant, if its person may pair devices.
    fn pairing_tenant(&self, session: &Session) -> Result<i64, PairingError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.pairs_devices() {
            return Err(AccountError::Forbidden.into());
        }
        Ok(tenant)
    }

    /// Approves a request this session was shown into the session's tenant. Counts a code
    /// attempt, then needs a fresh TOTP code (`totp_code`, checked here, in the same transaction)
    /// and a role allowed to pair. The gate decides what an approval means; a refusal opens a
    /// dispute and changes nothing else. An approval proves the address it came from (see
    /// `attempts`).
    pub async fn approve(
        &self,
        session: &Session,
        shown: Shown<'_>,
        totp_code: &str,
        group_id: Option<i64>,
        ip: Option<&str>,
    ) -> Result<Approval, PairingError> {
        let tenant = self.pairing_tenant(session)?;
        let now = self.now_ms();
        let code = user_code::normalize(shown.user_code);
        let second_factor = self.accounts.second_factor();
        let (budgets, proofs, policy) = (self.budgets, self.proofs.clone(), self.policy());
        let (session, totp_code, proof) = (
            session.clone(),
            totp_code.to_owned(),
            shown.proof.to_owned(),
        );
        let (ip, origin) = (ip.map(str::to_owned), Origin::of(ip));
        self.store
            .write(
                move |tx| -> Result<Result<Approval, PairingError>, StoreError> {
                    if let Err(e) = budgets.count(tx, &attempt(&session, &origin), now)? {
                        return Ok(Err(e));
                    }
                    if let Err(e) =
                        second_factor.check(tx, &session, &totp_code, ip.as_deref(), now)?
                    {
                        return Ok(Err(PairingError::Account(e)));
                    }
                    let Some(flow) =
                        shown_flow(tx, &proofs, &session.id_hash, code.as_deref(), &proof, now)?
                    else {
                        return Ok(Err(PairingError::UnknownCode));
                    };
                    let Some(device) = registry::find_device(tx, &flow.client_id)? else {
                        return Ok(Err(PairingError::UnknownCode));
                    };
                    if let Some(g) = group_id
                        && groups::find(tx, g)?.map(|g| g.tenant_id) != Some(tenant)
                    {
                        return Ok(Err(PairingError::NotFound));
                    }
                    let serial = device.serial.clone();
                    let sale = active_sale(tx, &serial)?;
                    let (verdict, _) =
                        evaluate(tx, &serial, device.tenant_id, sale.as_ref(), tenant, policy)?;
                    let actor = session.actor();
                    let (status, basis) = match verdict {
                        Verdict::Active(basis) => ("active", basis),
                        Verdict::Provisional => ("provisional", Basis::DistributorSale),
                        Verdict::Refused(refusal) => {
                            let dispute_id = refuse(
                                tx,
                                &serial,
                                tenant,
                                device.tenant_id,
                                refusal,
                                &actor,
                                now,
                            )?;
                            return Ok(Ok(Approval::Refused {
                                serial,
                                refusal,
                                dispute_id,
                            }));
                        }
                        Verdict::Review => {
                            let (dispute_id, _) = pairings::open_dispute(
                                tx,
                                &serial,
                                tenant,
                                None,
                                "distributor_review",
                                &actor,
                                now,
                            )?;
                            record(
                                tx,
                                now,
                                &actor,
                                &serial,
                                Some(tenant),
                                Action::PairingHeldForReview,
                                EventType::PairingHeld,
                                json!({ "dispute": dispute_id }),
                            )?;
                            return Ok(Ok(Approval::HeldForReview { serial, dispute_id }));
                        }
                    };
                    // The decision on the flow; of racing decisions exactly one gets here.
                    let decision = Decision {
                        tenant_id: Some(tenant),
                        decided_by: actor.clone(),
                        decided_at: now,
                    };
                    if !flows::transition(
                        tx,
                        flow.id,
                        FlowStatus::Pending,
                        FlowStatus::Approved,
                        Some(&decision),
                    )? {
                        return Ok(Err(PairingError::UnknownCode));
                    }
                    if device.tenant_id == Some(tenant) {
                        pairings::end_current(tx, &serial, "repaired", now)?;
                    }
                    pairings::insert(
                        tx,
                        &NewPairing {
                            serial: serial.clone(),
                            tenant_id: tenant,
                            status,
                            basis: basis.as_str(),
                            sale_id: sale.as_ref().map(|s| s.sale_id.clone()),
                            flow_id: Some(flow.id),
                            approved_by: actor.clone(),
                            created_at: now,
                            confirmed_at: (status == "active").then_some(now),
                        },
                    )?;
                    if basis == Basis::StaffGrant {
                        pairings::revoke_grant(tx, &serial, tenant)?;
                    }
                    groups::set_device_group(tx, &serial, group_id)?;
                    attempts::prove(tx, &origin, now)?;
                    let provisional = status == "provisional";
                    let (action, event) = if provisional {
                        (Action::PairingProvisional, EventType::PairingProvisional)
                    } else {
                        (Action::PairingApproved, EventType::PairingApproved)
                    };
                    record(
                        tx,
                        now,
                        &actor,
                        &serial,
                        Some(tenant),
                        action,
                        event,
                        json!({
                            "flow": flow.id,
                            "basis": basis.as_str(),
                            "sale_id": sale.as_ref().map(|s| s.sale_id.clone()),
                            "requested_ip": flow.requested_ip,
                        }),
                    )?;
                    notify_admins(
                        tx,
                        tenant,
                        &format!("Device {serial} joined your account"),
                        &mails::text(&mails::DeviceJoined {
                            name: &session.user.name,
                            email: &session.user.email,
                            serial: &serial,
                            model: &device.model,
                            provisional,
                        })?,
                        now,
                    )?;
                    Ok(Ok(Approval::Paired {
                        serial,
                        provisional,
                    }))
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
        let (budgets, proofs) = (self.budgets, self.proofs.clone());
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
                let decision = Decision {
                    tenant_id: None,
                    decided_by: actor.clone(),
                    decided_at: now,
                };
                if !flows::transition(
                    tx,
                    flow.id,
                    FlowStatus::Pending,
                    FlowStatus::Denied,
                    Some(&decision),
                )? {
                    return Ok(Err(PairingError::UnknownCode));
                }
                record(
                    tx,
                    now,
                    &actor,
                    &flow.client_id,
                    Some(tenant),
                    Action::PairingDenied,
                    EventType::PairingDenied,
                    json!({ "flow": flow.id }),
                )?;
                Ok::<_, StoreError>(Ok(flow.client_id))
            })
            .await?
    }

    /// Unpairs one of the tenant's devices (or releases it for transfer to another customer):
    /// needs a fresh step-up; every token of the device stops working at once.
    pub async fn unpair(
        &self,
        session: &Session,
        serial: &str,
        release: bool,
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
                let reason = if release { "released" } else { "unpaired" };
                end_pairing(tx, &serial, reason, now)?;
                let action = if release {
                    Action::DeviceReleased
                } else {
                    Action::DeviceUnpaired
                };
                record(
                    tx,
                    now,
                    &actor,
                    &serial,
                    Some(tenant),
                    action,
                    EventType::PairingEnded,
                    json!({ "reason": reason }),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }

    /// The tenant's devices that are paired provisionally (the portal flags them).
    pub async fn provisional_serials(
        &self,
        session: &Session,
    ) -> Result<Vec<String>, PairingError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        Ok(self
            .store
            .read(move |tx| pairings::provisional_serials(tx, tenant))
            .await?)
    }

    /// A device's pairing history, for a person who may see the device.
    pub async fn history(
        &self,
        session: &Session,
        serial: &str,
    ) -> Result<Vec<PairingRecord>, PairingError> {
        let visible = self.accounts.visible_devices(session).await?;
        if !visible.iter().any(|d| d.serial == serial) {
            return Err(PairingError::NotFound);
        }
        let tenant = session.user.tenant_id;
        let serial = serial.to_owned();
        let history = self
            .store
            .read(move |tx| pairings::history(tx, &serial))
            .await?;
        // A tenant sees its own pairings of the device, not other customers'.
        Ok(history
            .into_iter()
            .filter(|p| Some(p.tenant_id) == tenant)
            .collect())
    }

    /// The ERP confirms a provisional pairing; false when the device has none.
    pub async fn erp_confirm(&self, serial: &str, actor: &str) -> Result<bool, PairingError> {
        let now = self.now_ms();
        let (serial, actor) = (serial.to_owned(), actor.to_owned());
        self.store
            .write(move |tx| {
                let Some(current) =
                    pairings::current(tx, &serial)?.filter(|p| p.status == "provisional")
                else {
                    return Ok(false);
                };
                pairings::confirm(tx, current.id, now)?;
                record(
                    tx,
                    now,
                    &actor,
                    &serial,
                    Some(current.tenant_id),
                    Action::PairingConfirmed,
                    EventType::PairingConfirmed,
                    json!({ "pairing": current.id }),
                )?;
                Ok::<_, StoreError>(true)
            })
            .await
            .map_err(Into::into)
    }

    /// The ERP rejects a provisional pairing: the device is unpaired and its tokens revoked;
    /// false when the device has no provisional pairing.
    pub async fn erp_reject(&self, serial: &str, actor: &str) -> Result<bool, PairingError> {
        let now = self.now_ms();
        let (serial, actor) = (serial.to_owned(), actor.to_owned());
        self.store
            .write(move |tx| {
                let Some(current) =
                    pairings::current(tx, &serial)?.filter(|p| p.status == "provisional")
                else {
                    return Ok(false);
                };
                end_pairing(tx, &serial, "rejected_by_erp", now)?;
                record(
                    tx,
                    now,
                    &actor,
                    &serial,
                    Some(current.tenant_id),
                    Action::PairingRejected,
                    EventType::PairingRejected,
                    json!({ "pairing": current.id }),
                )?;
                notify_admins(
                    tx,
                    current.tenant_id,
                    &format!("Device {serial} was removed from your account"),
                    &mails::text(&mails::ProvisionalPairingEnded { serial: &serial })?,
                    now,
                )?;
                Ok::<_, StoreError>(true)
            })
            .await
            .map_err(Into::into)
    }
}

/// The pending, unexpired flow holding a normalised code.
fn live_flow(
    tx: &mut Tx<'_>,
    code: Option<&str>,
    now: i64,
) -> Result<Option<FlowRecord>, StoreError> {
    let Some(code) = code else { return Ok(None) };
    Ok(flows::find_pending_by_user_code(tx, code)?.filter(|f| f.expires_at > now))
}

/// The live flow holding a normalised code, if `proof` shows that this session was shown it;
/// `None` alike for an unknown code and for one the session was not shown.
fn shown_flow(
    tx: &mut Tx<'_>,
    proofs: &ShownProofs,
    session: &str,
    code: Option<&str>,
    proof: &str,
    now: i64,
) -> Result<Option<FlowRecord>, StoreError> {
    Ok(live_flow(tx, code, now)?.filter(|flow| proofs.check(session, flow.id, proof)))
}

/// One code attempt by this session's person from `origin`.
fn attempt<'a>(session: &'a Session, origin: &'a Origin) -> Attempt<'a> {
    Attempt {
        user_id: session.user.id,
        session: &session.id_hash,
        origin,
    }
}

/// What the confirmation page shows of a live flow, to the person deciding for `tenant`.
fn confirmation(
    tx: &mut Tx<'_>,
    flow: FlowRecord,
    tenant: i64,
    policy: DistributorPolicy,
    proof: String,
) -> Result<Result<Confirmation, PairingError>, StoreError> {
    let Some(device) = registry::find_device(tx, &flow.client_id)? else {
        return Ok(Err(PairingError::UnknownCode));
    };
    let sale = active_sale(tx, &device.serial)?;
    let (verdict, sale) = evaluate(
        tx,
        &device.serial,
        device.tenant_id,
        sale.as_ref(),
        tenant,
        policy,
    )?;
    let groups = groups::list(tx, tenant)?
        .into_iter()
        .map(|g| GroupView {
            id: g.id,
            name: g.name,
            devices: 0,
        })
        .collect();
    Ok(Ok(Confirmation {
        repairing: device.tenant_id == Some(tenant),
        serial: device.serial,
        model: device.model,
        user_code: user_code::display(&flow.user_code),
        requested_ip: flow.requested_ip,
        requested_at_ms: flow.created_at,
        expires_at_ms: flow.expires_at,
        sale,
        verdict,
        groups,
        proof,
    }))
}

/// The device's active sale as the gate sees it.
fn active_sale(tx: &mut Tx<'_>, serial: &str) -> Result<Option<SaleFacts>, StoreError> {
    Ok(
        crate::store::erp::active_sale_of(tx, serial)?.and_then(|s| {
            Some(SaleFacts {
                sale_id: s.sale_id,
                sold_to_customer_number: s.sold_to_customer_number?,
                sold_to_name: s.sold_to_name.unwrap_or_default(),
                sold_to_distributor: s.sold_to_kind.as_deref() == Some("distributor"),
                end_customer_number: s.end_customer_number,
                sold_at: s.sold_at,
            })
        }),
    )
}

/// The gate's verdict for `tenant`, and the sale as that tenant may see it.
fn evaluate(
    tx: &mut Tx<'_>,
    serial: &str,
    holder: Option<i64>,
    sale: Option<&SaleFacts>,
    tenant: i64,
    policy: DistributorPolicy,
) -> Result<(Verdict, SaleView), StoreError> {
    let customer = crate::store::erp::customer_of_tenant(tx, tenant)?.flatten();
    let granted = pairings::has_grant(tx, serial, tenant)?;
    let verdict = gate::decide(
        sale,
        holder,
        gate::Claim {
            tenant_id: tenant,
            customer_number: customer.as_deref(),
            granted,
        },
        policy,
    );
    Ok((verdict, gate::sale_view(sale, customer.as_deref())))
}

/// A refused approval: open a dispute for staff (once), tell the current holder, record it.
fn refuse(
    tx: &mut Tx<'_>,
    serial: &str,
    claimant: i64,
    holder: Option<i64>,
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
        EventType::PairingRefused,
        json!({ "reason": refusal.as_str(), "dispute": dispute_id }),
    )?;
    if new {
        if let Some(h) = holder {
            notify_admins(
                tx,
                h,
                &format!("Someone tried to pair your device {serial}"),
                &mails::text(&mails::PairingAttempted { serial })?,
                now,
            )?;
        }
        if holder.is_some() {
            // The holder's own audit trail shows the attempt too.
            crate::store::audit::append(
                tx,
                &audit::event(
                    now,
                    Action::PairingRefused,
                    actor.to_owned(),
                    format!("device:{serial}"),
                    holder,
                    json!({ "reason": refusal.as_str(), "dispute": dispute_id, "claimant_tenant": claimant }),
                ),
            )?;
        }
    }
    Ok(dispute_id)
}

/// Ends the device's pairing, every token it holds, and any approval it has not collected yet
/// (its next poll answers `access_denied`). The approval goes first: a poll redeeming it takes
/// the flow's row and then the device's, and taking them in the same order here keeps two
/// PostgreSQL transactions from waiting on each other. Of the two, one gets the approval: the
/// poll, whose tokens the revocation below then ends, or this, and the poll finds it withdrawn.
pub(crate) fn end_pairing(
    tx: &mut Tx<'_>,
    serial: &str,
    reason: &str,
    now: i64,
) -> Result<Option<PairingRecord>, StoreError> {
    flows::withdraw_approved(tx, serial)?;
    let ended = pairings::end_current(tx, serial, reason, now)?;
    registry::revoke_device_tokens(tx, serial)?;
    groups::set_device_group(tx, serial, None)?;
    Ok(ended)
}

/// One audit event and the matching ERP event.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site shape, clearer than a struct"
)]
fn record(
    tx: &mut Tx<'_>,
    now: i64,
    actor: &str,
    serial: &str,
    tenant: Option<i64>,
    action: Action,
    event: EventType,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    crate::store::audit::append(
        tx,
        &audit::event(
            now,
            action,
            actor.to_owned(),
            format!("device:{serial}"),
            tenant,
            detail.clone(),
        ),
    )?;
    crate::erp::events::record(
        tx,
        now,
        NewEvent::device(event, serial)
            .with_tenant(tenant)
            .with_data(detail),
    )?;
    Ok(())
}

/// Mails the tenant's active owners and admins.
pub(crate) fn notify_admins(
    tx: &mut Tx<'_>,
    tenant: i64,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), StoreError> {
    for user in users::list(tx, Some(tenant))? {
        if user.status == "active" && (user.role == "owner" || user.role == "admin") {
            crate::mail::queue(tx, &user.email, subject, body, now)?;
        }
    }
    Ok(())
}
