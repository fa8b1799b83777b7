//! The RFC 8628 state machine, in one place: a device's new request starts a flow and supersedes
//! its live ones ([`start`]), the token endpoint polls ([`poll`]), whoever
//! decides settles a pending request ([`settle`]: the verification page through `pairing`, the
//! CLI through [`OAuth::decide`]), and the end of a pairing withdraws an approval the device has
//! not collected ([`withdraw`]). Nothing else moves a flow from one state to another.
//!
//! ```text
//! pending ──approve──▶ approved ──poll──▶ consumed (tokens issued, exactly once)
//!    │  │                  └──pairing ended──▶ denied (the approval is withdrawn)
//!    │  └──deny────▶ denied            (polls answer access_denied)
//!    └──a new request from the same device──▶ superseded
//! any state past expires_at polls as expired_token
//! ```
//!
//! Every transition is a conditional update on the expected state, so of two racing requests
//! (two polls, two approvers, approve against deny) exactly one wins.

use serde_json::json;

use super::{OAuth, OAuthError, user_code};
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::{DeviceSerial, TenantId};
use crate::store::flows::{self, Decision, FlowRecord, FlowStatus, NewFlow};
use crate::store::pairings::{self, NewPairing, PairingStatus};
use crate::store::{StoreError, Tx, registry};

/// Polls arriving up to this much early still count as on time: network jitter can shorten the
/// gap between two polls that the device sent exactly `interval` apart.
pub const POLL_TOLERANCE_MS: i64 = 500;

/// What a poll found.
#[derive(Debug)]
pub enum PollOutcome {
    Pending,
    SlowDown,
    Denied,
    Expired,
    Invalid(&'static str),
    /// This poll consumed the approval: the caller issues the tokens.
    Redeemed(Box<FlowRecord>),
}

impl PollOutcome {
    /// The refusal a non-redeeming poll answers with.
    pub fn into_error(self) -> Option<OAuthError> {
        Some(match self {
            Self::Pending => OAuthError::AuthorizationPending,
            Self::SlowDown => OAuthError::SlowDown,
            Self::Denied => OAuthError::AccessDenied,
            Self::Expired => OAuthError::ExpiredToken,
            Self::Invalid(d) => OAuthError::InvalidGrant(d),
            Self::Redeemed(_) => return None,
        })
    }
}

/// Starts a pending flow for `flow`'s device, inside the caller's transaction: the device's live
/// flows (pending or approved) end superseded, and the new one gets a fresh user code, which it
/// keeps in `flow`. Returns how many flows it superseded.
pub fn start(tx: &mut Tx<'_>, flow: &mut NewFlow) -> Result<usize, StoreError> {
    let superseded = flows::supersede_live(tx, &flow.client_id)?;
    // A collision with another pending code is a 1 in 10^10 event; try again.
    for _ in 0..5 {
        flow.user_code = user_code::generate();
        match flows::insert(tx, flow) {
            Ok(_) => return Ok(superseded),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict("no free user code".into()))
}

/// One poll of the token endpoint (RFC 8628 §3.4–3.5), inside the caller's transaction.
pub fn poll(tx: &mut Tx<'_>, flow: &FlowRecord, now_ms: i64) -> Result<PollOutcome, StoreError> {
    match flow.status {
        FlowStatus::Consumed => {
            return Ok(PollOutcome::Invalid("the device_code was already used"));
        }
        FlowStatus::Superseded => {
            return Ok(PollOutcome::Invalid(
                "the device started a newer authorization",
            ));
        }
        _ => {}
    }
    if now_ms >= flow.expires_at {
        return Ok(PollOutcome::Expired);
    }
    let min_gap = i64::from(flow.interval_secs) * 1000 - POLL_TOLERANCE_MS;
    if !flows::record_poll(tx, flow.id, now_ms, min_gap)? {
        flows::slow_down(tx, flow.id, now_ms)?;
        return Ok(PollOutcome::SlowDown);
    }
    Ok(match flow.status {
        FlowStatus::Pending => PollOutcome::Pending,
        FlowStatus::Denied => PollOutcome::Denied,
        FlowStatus::Approved => {
            if flows::transition(
                tx,
                flow.id,
                FlowStatus::Approved,
                FlowStatus::Consumed,
                None,
            )? {
                PollOutcome::Redeemed(Box::new(flow.clone()))
            } else if flows::find(tx, flow.id)?.is_some_and(|f| f.status == FlowStatus::Denied) {
                // The pairing ended while this poll ran, withdrawing the approval.
                PollOutcome::Denied
            } else {
                PollOutcome::Invalid("the device_code was already used")
            }
        }
        FlowStatus::Consumed | FlowStatus::Superseded => {
            PollOutcome::Invalid("the device_code is no longer valid")
        }
    })
}

/// A pending request, as the person deciding sees it.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    pub flow_id: i64,
    pub serial: DeviceSerial,
    pub model: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub requested_ip: Option<String>,
    pub requested_at_ms: i64,
    pub expires_at_ms: i64,
    /// The tenant the device is paired to now, if any.
    pub current_tenant_id: Option<TenantId>,
}

/// The decision a person takes on a pending request.
#[derive(Debug, Clone)]
pub enum Verdict {
    Approve { tenant_id: TenantId },
    Deny,
}

impl Verdict {
    /// The tenant an approval is for.
    pub fn tenant_id(&self) -> Option<TenantId> {
        match self {
            Self::Approve { tenant_id } => Some(*tenant_id),
            Self::Deny => None,
        }
    }
}

/// Settles a pending request (pending → approved for a tenant, or pending → denied), inside the
/// caller's transaction; `decided_by` in `kind:id` form. Returns whether this decision took
/// effect: false when the flow is no longer pending or has expired, so of racing decisions
/// exactly one does.
pub fn settle(
    tx: &mut Tx<'_>,
    flow: &FlowRecord,
    verdict: &Verdict,
    decided_by: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    if flow.status != FlowStatus::Pending || flow.expires_at <= now_ms {
        return Ok(false);
    }
    let to = match verdict {
        Verdict::Approve { .. } => FlowStatus::Approved,
        Verdict::Deny => FlowStatus::Denied,
    };
    let decision = Decision {
        tenant_id: verdict.tenant_id(),
        decided_by: decided_by.to_owned(),
        decided_at: now_ms,
    };
    flows::transition(tx, flow.id, FlowStatus::Pending, to, Some(&decision))
}

/// The device's pairing ended: every approval it has not collected yet is withdrawn (approved →
/// denied), so its next poll answers `access_denied`; returns how many. Of this and a racing
/// poll, exactly one takes the approval.
pub fn withdraw(tx: &mut Tx<'_>, serial: &DeviceSerial) -> Result<usize, StoreError> {
    flows::withdraw_approved(tx, serial.as_str())
}

/// The approval a poll has just redeemed no longer holds (the device left the tenant it was
/// approved for before the poll): the flow ends denied instead of consumed.
pub fn withdraw_redeemed(tx: &mut Tx<'_>, flow_id: i64) -> Result<(), StoreError> {
    flows::transition(tx, flow_id, FlowStatus::Consumed, FlowStatus::Denied, None)?;
    Ok(())
}

/// Why a decision did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// No pending request has this code (wrong, expired, decided, or superseded). One answer for
    /// all, so that codes cannot be probed.
    #[error("no pending pairing request has this code")]
    UnknownCode,
    #[error("the tenant does not exist")]
    UnknownTenant,
    /// The device belongs to another tenant; taking it needs the dispute process.
    #[error("the device is paired to another tenant")]
    PairedElsewhere,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::store::StoreFailure for DecisionError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl OAuth {
    /// Looks up the pending request for a code someone typed (normalised per DESIGN.md §4).
    pub async fn pending_request(&self, typed_code: &str) -> Result<PendingRequest, DecisionError> {
        let code = user_code::normalize(typed_code).ok_or(DecisionError::UnknownCode)?;
        let now = self.now_ms();
        self.store
            .read(move |tx| {
                let flow = flows::find_pending_by_user_code(tx, &code)?
                    .filter(|f| f.expires_at > now)
                    .ok_or(DecisionError::UnknownCode)?;
                let device = registry::find_device(tx, &DeviceSerial::from(&flow.client_id))?
                    .ok_or(DecisionError::UnknownCode)?;
                Ok(PendingRequest {
                    flow_id: flow.id,
                    serial: device.serial,
                    model: device.model,
                    user_code: user_code::display(&flow.user_code),
                    requested_ip: flow.requested_ip,
                    requested_at_ms: flow.created_at,
                    expires_at_ms: flow.expires_at,
                    current_tenant_id: device.tenant_id,
                })
            })
            .await
    }

    /// Approves or denies the pending request with this code. `actor` is who decided
    /// (`user:7`, `cli`). Exactly one of several racing decisions takes effect.
    pub async fn decide(
        &self,
        typed_code: &str,
        verdict: Verdict,
        actor: &str,
    ) -> Result<PendingRequest, DecisionError> {
        let request = self.pending_request(typed_code).await?;
        let now = self.now_ms();
        let actor = actor.to_owned();
        let req = request.clone();
        self.store
            .write(move |tx| {
                if let Verdict::Approve { tenant_id } = verdict {
                    check_approval(tx, &req, tenant_id)?;
                }
                let flow = flows::find(tx, req.flow_id)?.ok_or(DecisionError::UnknownCode)?;
                if !settle(tx, &flow, &verdict, &actor, now)? {
                    return Err(DecisionError::UnknownCode);
                }
                if let Verdict::Approve { tenant_id } = verdict {
                    record_operator_pairing(tx, &req, tenant_id, &actor, now)?;
                }
                let (action, kind) = match verdict {
                    Verdict::Approve { .. } => (Action::PairingApproved, FeedType::PairingApproved),
                    Verdict::Deny => (Action::PairingDenied, FeedType::PairingDenied),
                };
                let event = Event::new(action, actor, Subject::Device(req.serial.clone()))
                    .tenant(verdict.tenant_id().or(req.current_tenant_id))
                    .detail(json!({ "flow": req.flow_id, "requested_ip": req.requested_ip }))
                    .erp_without_detail(kind);
                events::record(tx, now, event)?;
                Ok(())
            })
            .await?;
        Ok(request)
    }
}

/// An operator may approve into an existing tenant, and not take a device from another one.
fn check_approval(
    tx: &mut Tx<'_>,
    req: &PendingRequest,
    tenant_id: TenantId,
) -> Result<(), DecisionError> {
    if registry::find_tenant(tx, tenant_id)?.is_none() {
        return Err(DecisionError::UnknownTenant);
    }
    let current = registry::find_device(tx, &req.serial)?.and_then(|d| d.tenant_id);
    if current.is_some_and(|t| t != tenant_id) {
        return Err(DecisionError::PairedElsewhere);
    }
    Ok(())
}

/// An operator's approval (the CLI) is recorded as such, replacing any earlier pairing to the
/// same tenant.
fn record_operator_pairing(
    tx: &mut Tx<'_>,
    req: &PendingRequest,
    tenant_id: TenantId,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    pairings::end_current(tx, &req.serial, "repaired", now)?;
    pairings::insert(
        tx,
        &NewPairing {
            serial: req.serial.clone(),
            tenant_id,
            status: PairingStatus::Active,
            basis: "operator",
            sale_id: None,
            flow_id: Some(req.flow_id),
            approved_by: actor.to_owned(),
            created_at: now,
            confirmed_at: Some(now),
            granted_by: None,
        },
    )?;
    Ok(())
}
