//! The pairing ceremony (issue 5, DESIGN.md §1): a person of the customer's company confirms, on
//! the verification page, that the device in front of them may join their tenant. This module
//! joins the pieces in one transaction: the person's fresh second factor and role, the RFC 8628
//! flow (`oauth::device_flow`), the ERP sale record through the ownership [`gate`], the pairing
//! record, disputes for manufacturer staff, notifications, the audit log and the ERP event feed.

mod approval;
mod attempts;
mod ending;
pub mod gate;
pub(crate) mod mails;
mod names;
mod shown;
mod staff;

use std::sync::Arc;

pub use approval::Fresh;
pub use attempts::Origin;
pub use ending::Removal;
pub(crate) use ending::end_pairing;
pub use gate::{Basis, DistributorPolicy, Refusal, SaleFacts, SaleView, Verdict};
pub use names::PairingHistory;
pub use staff::{DisputeView, Resolution, StaffDevice, TenantRow};

use crate::accounts::{AccountError, Accounts, GroupView, Session};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::master_key::MasterKey;
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::{DeviceSerial, TenantId};
use crate::oauth::user_code;
use crate::store::erp::BuyerKind;
use crate::store::flows::{self, FlowRecord};
use crate::store::pairings::{self, PairingRecord};
pub use crate::store::pairings::{DisputeStatus, PairingStatus};
use crate::store::users::{ActiveStatus, Role};
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
    /// The tenant approves pairings with a passkey only, and a TOTP code came.
    #[error(
        "your company approves devices with a passkey only: a code from an app can be passed on \
         to someone who tricked you, a passkey cannot"
    )]
    PasskeyRequired,
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
    pub serial: DeviceSerial,
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
    /// Who on the manufacturer's support team let this tenant pair the device, by name (a
    /// verdict on the basis of a staff grant).
    pub granted_by: Option<String>,
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
    Paired {
        serial: DeviceSerial,
        provisional: bool,
    },
    /// The gate refused; a dispute was opened (or one was open already).
    Refused {
        serial: DeviceSerial,
        refusal: Refusal,
        dispute_id: i64,
    },
    /// Distributor sale under the review policy: staff decide first.
    HeldForReview {
        serial: DeviceSerial,
        dispute_id: i64,
    },
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
            budgets: Budgets::from_settings(&settings.pairing, store.meters().clone()),
            store,
            clock,
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
        let (budgets, proofs, policy) = (self.budgets.clone(), self.proofs.clone(), self.policy());
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
    fn pairing_tenant(&self, session: &Session) -> Result<TenantId, PairingError> {
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        if !session.user.role.pairs_devices() {
            return Err(AccountError::Forbidden.into());
        }
        Ok(tenant)
    }

    /// The tenant's devices that are paired provisionally (the portal flags them).
    pub async fn provisional_serials(
        &self,
        session: &Session,
    ) -> Result<Vec<DeviceSerial>, PairingError> {
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
        serial: &DeviceSerial,
    ) -> Result<Vec<PairingRecord>, PairingError> {
        let visible = self.accounts.visible_devices(session).await?;
        if !visible.iter().any(|d| d.serial == *serial) {
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
    tenant: TenantId,
    policy: DistributorPolicy,
    proof: String,
) -> Result<Result<Confirmation, PairingError>, StoreError> {
    let Some(device) = registry::find_device(tx, &DeviceSerial::from(&flow.client_id))? else {
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
    let granted_by = match verdict {
        Verdict::Active(Basis::StaffGrant) => names::granter(tx, &device.serial, tenant)?,
        _ => None,
    };
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
        granted_by,
    }))
}

/// The device's active sale as the gate sees it.
fn active_sale(tx: &mut Tx<'_>, serial: &DeviceSerial) -> Result<Option<SaleFacts>, StoreError> {
    Ok(
        crate::store::erp::active_sale_of(tx, serial)?.and_then(|s| {
            Some(SaleFacts {
                sale_id: s.sale_id,
                sold_to_customer_number: s.sold_to_customer_number?,
                sold_to_name: s.sold_to_name.unwrap_or_default(),
                sold_to_distributor: s.sold_to_kind == Some(BuyerKind::Distributor),
                end_customer_number: s.end_customer_number,
                sold_at: s.sold_at,
            })
        }),
    )
}

/// The gate's verdict for `tenant`, and the sale as that tenant may see it.
fn evaluate(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    holder: Option<TenantId>,
    sale: Option<&SaleFacts>,
    tenant: TenantId,
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

/// An event about `serial` that the ERP hears of as `kind`, with the same tenant and detail.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site shape, clearer than a struct"
)]
fn record(
    tx: &mut Tx<'_>,
    now: i64,
    actor: &str,
    serial: &DeviceSerial,
    tenant: Option<TenantId>,
    action: Action,
    kind: FeedType,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let event = Event::new(action, actor, Subject::Device(serial.to_owned()))
        .tenant(tenant)
        .detail(detail)
        .erp(kind);
    events::record(tx, now, event)
}

/// Mails the tenant's active owners and admins.
pub(crate) fn notify_admins(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), StoreError> {
    for user in users::list(tx, Some(tenant))? {
        if user.status == ActiveStatus::Active && matches!(user.role, Role::Owner | Role::Admin) {
            crate::mail::queue(tx, &user.email, subject, body, now)?;
        }
    }
    Ok(())
}
