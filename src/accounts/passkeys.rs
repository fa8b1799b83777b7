//! Passkeys (WebAuthn credentials, through webauthn-rs): registering them, listing and removing
//! them. Using them is in `passkey_use.rs`. The relying party is `server.public_url`: its host is
//! the RP id and the URL the one accepted origin.
//!
//! A ceremony (begin, then finish in a later request) keeps webauthn-rs's state in the database
//! under the hash of a random handle, which the page carries from one request to the other. The
//! state is read and deleted in one statement at finish, so it serves once, and it expires after
//! [`CEREMONY_TTL_MS`].

use serde::{Deserialize, Serialize};
use serde_json::json;
/// What the browser's WebAuthn API takes and gives, in webauthn-rs's (serde) types.
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use webauthn_rs::prelude::{Passkey, PasskeyRegistration, Url, Uuid, Webauthn, WebauthnBuilder};

use super::sessions::{Session, Stage};
use super::{AccountError, Accounts, Role};
use crate::crypto::tokens;
use crate::events::{self, Action, Event, Subject};
use crate::ids::UserId;
use crate::store::passkeys::{self as stored, CeremonyRecord, NewPasskey, PasskeyRecord};
use crate::store::users::UserRecord;
use crate::store::{StoreError, StoreFailure, Tx, registry, users};

/// The most passkeys one person may hold: enough for every phone, computer and key they own,
/// and a bound on what each sign-in offers and checks.
pub const MAX_PASSKEYS: usize = 20;

/// How long a begun ceremony may wait for its finish.
pub const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;

/// Why a passkey operation was refused. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The public URL is not a domain name (an IP address), which WebAuthn cannot use as RP id.
    #[error("passkeys are not available on this server")]
    Unavailable,
    #[error("give the passkey a name of 1 to 64 characters")]
    InvalidName,
    #[error("you already have a passkey with this name")]
    NameTaken,
    #[error("you have as many passkeys as one person may have; remove one you no longer use")]
    TooMany,
    /// The authenticator holds a credential registered already (to this or another account).
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// No such ceremony, used already, expired, or begun by another user.
    #[error("this passkey request has expired; try again")]
    CeremonyExpired,
    /// The authenticator's answer did not verify (wrong origin or RP id, bad signature, ...).
    #[error("the passkey could not be verified")]
    Rejected,
    /// The signature counter did not go up: the credential may have been cloned.
    #[error("this passkey may have been copied; it was refused, use another factor")]
    PossibleClone,
    #[error("you have no passkey")]
    NoPasskeys,
    /// A passkey-only sign-in by a person who has not allowed it.
    #[error(
        "your passkeys do not sign you in on their own: sign in with your password, then use \
         your passkey (you can change this on your account page)"
    )]
    NotAlone,
    /// Removing it would leave no second factor while one is required.
    #[error("this is your last second factor, and your organisation requires one")]
    LastFactor,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0}")]
    Internal(&'static str),
}

impl StoreFailure for PasskeyError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            Self::Account(e) => e.store_error(),
            _ => None,
        }
    }
}

/// A stored passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<&PasskeyRecord> for PasskeyView {
    fn from(r: &PasskeyRecord) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A begun ceremony: `options` go to the browser's `navigator.credentials`, `handle` comes back
/// with its answer.
#[derive(Debug)]
pub struct Ceremony<T> {
    pub handle: String,
    pub options: T,
}

/// The relying party, built once at start from the public URL. `None` when the URL's host is
/// not a domain name: browsers refuse IP addresses as RP ids, so passkeys are then unavailable.
pub(super) fn relying_party(public_url: &str) -> Option<Webauthn> {
    let origin = Url::parse(public_url).ok()?;
    let rp_id = origin.domain()?.to_owned();
    let built = WebauthnBuilder::new(&rp_id, &origin).and_then(|b| b.rp_name("pairgate").build());
    match built {
        Ok(webauthn) => Some(webauthn),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys unavailable: no relying party for the public URL");
            None
        }
    }
}

/// What a registration keeps between begin and finish.
#[derive(Serialize, Deserialize)]
struct RegistrationState {
    name: String,
    state: PasskeyRegistration,
}

/// Ceremony kinds, as stored.
pub(super) const REGISTRATION: &str = "registration";

/// A name as stored: trimmed, 1 to 64 characters, no control characters.
fn valid_name(raw: &str) -> Result<String, PasskeyError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if (1..=64).contains(&chars) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(PasskeyError::InvalidName)
    }
}

pub(super) fn credential_key(bytes: &[u8]) -> String {
    tokens::encode(bytes)
}

/// Registration options that ask the authenticator to keep the credential discoverable where it
/// can (`residentKey: "preferred"`): webauthn-rs 0.5 asks it not to, and only a discoverable
/// credential can sign in alone. The answer is verified the same way either way.
fn discoverable(
    options: CreationChallengeResponse,
) -> Result<CreationChallengeResponse, PasskeyError> {
    let failed = |_| PasskeyError::Internal("registration options");
    let mut value = serde_json::to_value(options).map_err(failed)?;
    value["publicKey"]["authenticatorSelection"]["residentKey"] = json!("preferred");
    serde_json::from_value(value).map_err(failed)
}

/// The passkeys stored for a user, parsed.
pub(super) fn parsed(records: &[PasskeyRecord]) -> Result<Vec<Passkey>, PasskeyError> {
    records
        .iter()
        .map(|r| {
            serde_json::from_str(&r.passkey).map_err(|_| PasskeyError::Internal("stored passkey"))
        })
        .collect()
}

/// Stores a ceremony's state under a new handle; returns the handle.
pub(super) fn put_ceremony(
    tx: &mut Tx<'_>,
    user: Option<UserId>,
    kind: &str,
    state: String,
    now: i64,
) -> Result<String, StoreError> {
    let handle = tokens::random_token();
    let record = CeremonyRecord {
        id_hash: tokens::hash_token(&handle),
        user_id: user,
        kind: kind.to_owned(),
        state,
        expires_at: now + CEREMONY_TTL_MS,
    };
    stored::put_ceremony(tx, &record, now)?;
    Ok(handle)
}

/// Takes (once) the state of a ceremony of `kind` begun for `user`.
pub(super) fn take_ceremony(
    tx: &mut Tx<'_>,
    handle: &str,
    kind: &str,
    user: Option<UserId>,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let taken = stored::take_ceremony(tx, &tokens::hash_token(handle), kind, now)?;
    Ok(taken.filter(|c| c.user_id == user).map(|c| c.state))
}

/// Records a refused passkey operation in the audit log.
pub(super) fn audit_refusal(
    tx: &mut Tx<'_>,
    user: &UserRecord,
    reason: &str,
    passkey: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    events::record(
        tx,
        now,
        Event::new(
            Action::UserPasskeyRefused,
            format!("user:{}", user.id),
            Subject::User(user.id),
        )
        .tenant(user.tenant_id)
        .detail(json!({ "reason": reason, "passkey": passkey })),
    )
}

impl Accounts {
    /// Whether passkeys work on this server (its public URL has a domain name).
    pub fn passkeys_available(&self) -> bool {
        self.webauthn.is_some()
    }

    pub(super) fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_deref().ok_or(PasskeyError::Unavailable)
    }

    /// The WebAuthn user handle of a user: an HMAC of the id, so it reveals nothing about the
    /// account and stays the same for all its passkeys.
    pub(super) fn user_handle(&self, user: UserId) -> Uuid {
        let tag = aws_lc_rs::hmac::sign(&self.handle_key, &user.get().to_be_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&tag.as_ref()[..16]);
        Uuid::from_bytes(bytes)
    }

    /// The session user's passkeys, oldest first.
    pub async fn passkeys(&self, session: &Session) -> Result<Vec<PasskeyView>, PasskeyError> {
        let user = session.user.id;
        let records = self
            .store
            .read(move |tx| stored::list_for_user(tx, user))
            .await?;
        Ok(records.iter().map(PasskeyView::from).collect())
    }

    /// Begins registering a passkey named `name` for the signed-in user (after a step-up). The
    /// user's own passkeys are excluded, so an authenticator already registered says so.
    pub async fn begin_passkey_registration(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<Ceremony<CreationChallengeResponse>, PasskeyError> {
        let webauthn = self.webauthn()?;
        if session.stage != Stage::Full {
            return Err(AccountError::SessionEnded.into());
        }
        self.require_step_up(session)?;
        let name = valid_name(name)?;
        let user = session.user.id;
        let existing = self
            .store
            .read(move |tx| stored::list_for_user(tx, user))
            .await?;
        if existing.iter().any(|p| p.name == name) {
            return Err(PasskeyError::NameTaken);
        }
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let exclude = parsed(&existing)?
            .iter()
            .map(|p| p.cred_id().clone())
            .collect();
        let (options, state) = webauthn
            .start_passkey_registration(
                self.user_handle(user),
                &session.user.email,
                &session.user.name,
                Some(exclude),
            )
            .map_err(|_| PasskeyError::Internal("starting a registration"))?;
        let options = discoverable(options)?;
        let state = serde_json::to_string(&RegistrationState { name, state })
            .map_err(|_| PasskeyError::Internal("registration state"))?;
        let now = self.now_ms();
        let handle = self
            .store
            .write(move |tx| put_ceremony(tx, Some(user), REGISTRATION, state, now))
            .await?;
        Ok(Ceremony { handle, options })
    }

    /// Finishes a registration begun by [`Self::begin_passkey_registration`] in this session's
    /// account: verifies the authenticator's answer and stores the passkey.
    pub async fn finish_passkey_registration(
        &self,
        session: &Session,
        handle: &str,
        answer: &RegisterPublicKeyCredential,
    ) -> Result<PasskeyView, PasskeyError> {
        let webauthn = self.webauthn()?;
        self.require_step_up(session)?;
        let (user, actor, tenant) = (session.user.id, session.actor(), session.user.tenant_id);
        let now = self.now_ms();
        let handle = handle.to_owned();
        let state = self
            .store
            .write(move |tx| take_ceremony(tx, &handle, REGISTRATION, Some(user), now))
            .await?
            .ok_or(PasskeyError::CeremonyExpired)?;
        let RegistrationState { name, state } =
            serde_json::from_str(&state).map_err(|_| PasskeyError::Internal("stored state"))?;
        let verified = webauthn.finish_passkey_registration(answer, &state);
        let credential = credential_key(answer.raw_id.as_slice());
        self.store
            .write(move |tx| {
                let Some(record) = users::find(tx, user)? else {
                    return Ok(Err(AccountError::SessionEnded.into()));
                };
                let passkey = match verified {
                    Ok(passkey) => passkey,
                    // webauthn-rs 0.5 reports an excluded credential as an altered algorithm.
                    Err(_) if stored::find_by_credential(tx, &credential)?.is_some() => {
                        audit_refusal(tx, &record, "registered_already", None, now)?;
                        return Ok(Err(PasskeyError::AlreadyRegistered));
                    }
                    Err(e) => {
                        let (reason, refusal) = registration_refusal(&e);
                        audit_refusal(tx, &record, reason, None, now)?;
                        return Ok(Err(refusal));
                    }
                };
                store_passkey(tx, &record, &actor, tenant, &name, &passkey, now)
            })
            .await?
    }

    /// Removes one of the session user's passkeys (after a step-up). The last second factor
    /// (passkey or TOTP) stays while the tenant requires one, or the user is staff.
    pub async fn remove_passkey(&self, session: &Session, id: i64) -> Result<(), PasskeyError> {
        self.require_step_up(session)?;
        let (user, actor) = (session.user.id, session.actor());
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                let Some(record) = users::find(tx, user)? else {
                    return Ok(Err(AccountError::SessionEnded.into()));
                };
                let Some(passkey) = stored::find_for_user(tx, user, id)? else {
                    return Ok(Err(AccountError::NotFound.into()));
                };
                let others = stored::count_for_user(tx, user)? - 1;
                if others == 0 && !record.totp_enabled && second_factor_required(tx, &record)? {
                    audit_refusal(tx, &record, "last_factor", Some(id), now)?;
                    return Ok(Err(PasskeyError::LastFactor));
                }
                stored::delete(tx, user, id)?;
                events::record(
                    tx,
                    now,
                    Event::new(Action::UserPasskeyRemoved, actor, Subject::User(user))
                        .tenant(record.tenant_id)
                        .detail(json!({ "passkey": id, "name": passkey.name })),
                )?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }
}

/// Whether the user must keep a second factor: staff always, tenant members when their tenant
/// requires it (`tenants.require_totp`, which covers any second factor).
fn second_factor_required(tx: &mut Tx<'_>, user: &UserRecord) -> Result<bool, StoreError> {
    if user.role == Role::Staff {
        return Ok(true);
    }
    Ok(match user.tenant_id {
        Some(tenant) => registry::find_tenant(tx, tenant)?.is_some_and(|t| t.require_totp),
        None => false,
    })
}

/// How a failed registration is audited and answered.
fn registration_refusal(e: &webauthn_rs::prelude::WebauthnError) -> (&'static str, PasskeyError) {
    use webauthn_rs::prelude::WebauthnError as W;
    match e {
        W::CredentialExcludedFromRequest => ("registered_already", PasskeyError::AlreadyRegistered),
        _ => ("registration_rejected", PasskeyError::Rejected),
    }
}

/// Stores a verified passkey and audits it; a credential registered to any account already is
/// refused (and audited).
fn store_passkey(
    tx: &mut Tx<'_>,
    user: &UserRecord,
    actor: &str,
    tenant: Option<crate::ids::TenantId>,
    name: &str,
    passkey: &Passkey,
    now: i64,
) -> Result<Result<PasskeyView, PasskeyError>, StoreError> {
    let credential_id = credential_key(passkey.cred_id().as_ref());
    if stored::find_by_credential(tx, &credential_id)?.is_some() {
        audit_refusal(tx, user, "registered_already", None, now)?;
        return Ok(Err(PasskeyError::AlreadyRegistered));
    }
    if stored::list_for_user(tx, user.id)?
        .iter()
        .any(|p| p.name == name)
    {
        return Ok(Err(PasskeyError::NameTaken));
    }
    let Ok(json) = serde_json::to_string(passkey) else {
        return Ok(Err(PasskeyError::Internal("serialising a passkey")));
    };
    let id = stored::insert(
        tx,
        &NewPasskey {
            user_id: user.id,
            name,
            credential_id: &credential_id,
            passkey: &json,
            created_at: now,
        },
    )?;
    events::record(
        tx,
        now,
        Event::new(Action::UserPasskeyRegistered, actor, Subject::User(user.id))
            .tenant(tenant)
            .detail(json!({ "passkey": id, "name": name })),
    )?;
    Ok(Ok(PasskeyView {
        id,
        name: name.to_owned(),
        created_at: now,
        last_used_at: None,
    }))
}
