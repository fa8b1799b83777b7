//! Customer accounts and the portal's rules: tenants, users and roles, sign-up and invitations,
//! sign-in with argon2id and TOTP, throttling, server-side sessions with step-up, device groups and
//! per-user device access. Knows neither actix nor diesel.

pub mod app_access;
mod credentials;
pub mod device_list;
mod groups;
pub mod history;
mod invitations;
mod login;
mod mails;
mod members;
mod own_account;
mod passkey_sign_in;
mod passkey_use;
pub mod passkeys;
pub mod password;
mod pending;
pub mod roles;
mod second_factor;
mod sessions;
mod throttle;
pub mod totp;
pub mod zone;
mod zone_choice;

use std::sync::Arc;

use aws_lc_rs::hmac;
use serde_json::json;

pub use crate::store::registry::TotpRequirement;
pub use crate::store::users::{ActiveStatus, DeviceAccess};
pub use credentials::TotpEnrolment;
pub use groups::{DeviceView, GroupView};
pub use invitations::InvitationView;
pub use login::LoginOutcome;
pub use members::{NewUser, SignUp, UserView, create_tenant};
pub use own_account::{SecondFactorState, SessionView};
pub use passkey_use::PasskeyUse;
pub use passkeys::{Ceremony, PasskeyError, PasskeyView};
pub use roles::Role;
pub use second_factor::SecondFactor;
pub use sessions::{Session, Stage};
pub use zone::{TimeZones, Zone, ZoneSource};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::master_key::MasterKey;
use crate::crypto::sealing::SecretBox;
use crate::events::{self, Action, Event, Subject};
use crate::mail::Outbox;
use crate::meters::{self, Meters};
use crate::store::{Store, StoreError, StoreFailure, registry};
use password::{Admission, Hashing, PasswordProblem};

/// Why an account operation was refused. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Wrong email or password, or a disabled account: one answer for all (no enumeration).
    #[error("the email or password is not right")]
    InvalidCredentials,
    #[error("that code is not right, or was already used")]
    InvalidCode,
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    #[error("{0}")]
    InvalidInput(&'static str),
    #[error(transparent)]
    WeakPassword(#[from] PasswordProblem),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("you are not allowed to do that")]
    Forbidden,
    /// The action needs a TOTP check within the last `portal.step_up_secs`.
    #[error("confirm with your authentication code first")]
    StepUpRequired,
    #[error("set up two-factor authentication first")]
    TotpRequired,
    #[error("your session has ended; sign in again")]
    SessionEnded,
    #[error("not found")]
    NotFound,
    #[error("this link is invalid, used or expired")]
    InvalidLink,
    /// Too much password work queued (`portal.password_hash_queue`): answered 503.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl StoreFailure for AccountError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The accounts service, shared by the portal handlers and the CLI.
pub struct Accounts {
    store: Store,
    clock: SharedClock,
    settings: Arc<Settings>,
    hashing: Arc<Hashing>,
    csrf_key: hmac::Key,
    /// Seals actions waiting for a step-up (`pending.rs`).
    pending_box: SecretBox,
    /// What transaction closures (which must be `'static`) need.
    core: Arc<Core>,
    /// The WebAuthn relying party (`passkeys.rs`); `None` when the public URL has no domain.
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Derives each account's WebAuthn user handle.
    handle_key: hmac::Key,
}

/// Settings and keys used inside transactions.
pub(crate) struct Core {
    settings: Arc<Settings>,
    totp_box: SecretBox,
    outbox: Outbox,
    meters: Meters,
}

impl Accounts {
    pub fn new(
        store: Store,
        clock: SharedClock,
        settings: Arc<Settings>,
        master: &MasterKey,
    ) -> Self {
        let p = &settings.portal;
        let meters = store.meters().clone();
        Self {
            store,
            clock,
            hashing: Hashing::new(
                p.password_hash_concurrency.get() as usize,
                p.password_hash_queue as usize,
            ),
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, &master.derive("csrf")),
            pending_box: SecretBox::new(master.derive("step-up-pending")),
            webauthn: passkeys::relying_party(settings.server.public_url.as_str()).map(Arc::new),
            handle_key: hmac::Key::new(hmac::HMAC_SHA256, &master.derive("passkey-user-handle")),
            core: Arc::new(Core {
                settings: Arc::clone(&settings),
                totp_box: SecretBox::new(master.derive("totp-secrets")),
                outbox: Outbox::new(master),
                meters,
            }),
            settings,
        }
    }

    /// The mail outbox with its sealing key (for delivery, operators and other services).
    pub fn outbox(&self) -> &Outbox {
        &self.core.outbox
    }

    /// What password hashing has done since start.
    pub fn password_hashing(&self) -> password::HashingStats {
        self.hashing.stats()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// The CSRF token for forms shown under `binding` (a session, or an anonymous visitor's
    /// random cookie): an HMAC, so nothing needs storing and no other binding can reuse it.
    pub fn csrf_token(&self, binding: &str) -> String {
        crate::crypto::tokens::encode(hmac::sign(&self.csrf_key, binding.as_bytes()))
    }

    pub fn csrf_ok(&self, binding: &str, token: &str) -> bool {
        let expected = self.csrf_token(binding);
        !binding.is_empty()
            && subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), token.as_bytes()).into()
    }

    /// A place in the password-hashing queue, taken before anything is counted or stored.
    fn admit(&self) -> Result<Admission, AccountError> {
        let admission = self.hashing.admit();
        if admission.is_none() {
            self.store
                .meters()
                .throttled(meters::Limit::PasswordHashQueue);
        }
        admission.ok_or(AccountError::Busy)
    }

    /// Hashes a new password in a slot of the hashing queue.
    async fn hash_password(&self, password: String) -> Result<String, AccountError> {
        self.admit()?
            .hash(password)
            .await
            .ok_or(AccountError::Internal("password hashing failed"))
    }

    /// Requires a fresh step-up on `session` (sensitive actions).
    pub fn require_step_up(&self, session: &Session) -> Result<(), AccountError> {
        if self.is_stepped_up(session) {
            Ok(())
        } else {
            Err(AccountError::StepUpRequired)
        }
    }

    pub fn is_stepped_up(&self, session: &Session) -> bool {
        let window = i64::from(self.settings.portal.step_up_secs.get()) * 1000;
        session
            .stepped_up_at
            .is_some_and(|t| self.now_ms() - t <= window)
    }

    /// Requires or relaxes TOTP for every member of the session's tenant (owners only).
    pub async fn set_tenant_requires_totp(
        &self,
        session: &Session,
        requirement: TotpRequirement,
    ) -> Result<(), AccountError> {
        if session.user.role != Role::Owner {
            return Err(AccountError::Forbidden);
        }
        self.require_step_up(session)?;
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                registry::set_tenant_requires_totp(tx, tenant, requirement)?;
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::TenantSettingsChanged,
                        actor,
                        Subject::Tenant(tenant),
                    )
                    .tenant(Some(tenant))
                    .detail(json!({ "require_totp": requirement == TotpRequirement::Required })),
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(())
    }
}

impl Accounts {
    /// Requires (or stops requiring) a passkey to approve a pairing, for the session's tenant
    /// (owners only, after a step-up).
    pub async fn set_tenant_requires_passkey_approval(
        &self,
        session: &Session,
        required: bool,
    ) -> Result<(), AccountError> {
        if session.user.role != Role::Owner {
            return Err(AccountError::Forbidden);
        }
        self.require_step_up(session)?;
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let now = self.now_ms();
        let actor = session.actor();
        self.store
            .write(move |tx| {
                registry::set_tenant_requires_passkey_approval(tx, tenant, required)?;
                let event = Event::new(
                    Action::TenantSettingsChanged,
                    actor,
                    Subject::Tenant(tenant),
                )
                .tenant(Some(tenant))
                .detail(json!({ "require_passkey_approval": required }));
                events::record(tx, now, event)
            })
            .await?;
        Ok(())
    }
}

/// Emails are compared lower-cased and trimmed; anything not shaped like an address is refused.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    ok.then_some(email)
}
