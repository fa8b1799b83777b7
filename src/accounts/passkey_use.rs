//! Using a passkey: for a known user (the second step of a password sign-in, or a step-up), or
//! alone (a discoverable credential names its user). A verified use stores the credential's new
//! state (`Passkey::update_credential`) and when it was used. webauthn-rs refuses a signature
//! counter that did not go up when either side's counter is non-zero (its guidance on cloned
//! authenticators); pairgate refuses the sign-in then and audits it.
//!
//! These check the passkey; turning a check into a session (sign-in or step-up) is the caller's.

use serde_json::json;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, DiscoverableKey, PasskeyAuthentication,
    PublicKeyCredential, RequestChallengeResponse, WebauthnError,
};

use super::passkeys::{
    Ceremony, PasskeyError, audit_refusal, credential_key, parsed, put_ceremony, take_ceremony,
};
use super::sessions::Session;
use super::{AccountError, Accounts};
use crate::events::{self, Action, Event, Subject};
use crate::ids::UserId;
use crate::store::passkeys::{self as stored, PasskeyRecord};
use crate::store::users::{self, ActiveStatus, UserRecord};
use crate::store::{StoreError, Tx};

const AUTHENTICATION: &str = "authentication";
const DISCOVERABLE: &str = "discoverable";

/// A verified use of a passkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasskeyUse {
    pub user: UserId,
    /// The passkey's id.
    pub passkey: i64,
}

impl Accounts {
    /// Begins an authentication with one of the session user's passkeys (a session waiting for
    /// its second factor, or a step-up).
    pub async fn begin_passkey_authentication(
        &self,
        session: &Session,
    ) -> Result<Ceremony<RequestChallengeResponse>, PasskeyError> {
        let webauthn = self.webauthn()?;
        let user = session.user.id;
        let records = self
            .store
            .read(move |tx| stored::list_for_user(tx, user))
            .await?;
        if records.is_empty() {
            return Err(PasskeyError::NoPasskeys);
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&parsed(&records)?)
            .map_err(|_| PasskeyError::Internal("starting an authentication"))?;
        let state = serde_json::to_string(&state)
            .map_err(|_| PasskeyError::Internal("authentication state"))?;
        let now = self.now_ms();
        let handle = self
            .store
            .write(move |tx| put_ceremony(tx, Some(user), AUTHENTICATION, state, now))
            .await?;
        Ok(Ceremony { handle, options })
    }

    /// Finishes an authentication begun by [`Self::begin_passkey_authentication`] for the same
    /// user.
    pub async fn finish_passkey_authentication(
        &self,
        session: &Session,
        handle: &str,
        answer: &PublicKeyCredential,
    ) -> Result<PasskeyUse, PasskeyError> {
        let webauthn = self.webauthn()?;
        let user = session.user.id;
        let state: PasskeyAuthentication =
            self.take_state(handle, AUTHENTICATION, Some(user)).await?;
        let result = webauthn.finish_passkey_authentication(answer, &state);
        let credential = credential_key(answer.get_credential_id());
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                let Some(record) = users::find(tx, user)? else {
                    return Ok(Err(AccountError::SessionEnded.into()));
                };
                let passkey = stored::find_by_credential(tx, &credential)?;
                match passkey.filter(|p| p.user_id == user) {
                    Some(passkey) => record_result(tx, &record, &passkey, result, now),
                    None => {
                        audit_refusal(tx, &record, "unknown_credential", None, now)?;
                        Ok(Err(PasskeyError::Rejected))
                    }
                }
            })
            .await?
    }

    /// Begins a passkey-only sign-in: any of the server's discoverable passkeys may answer.
    pub async fn begin_passkey_sign_in(
        &self,
    ) -> Result<Ceremony<RequestChallengeResponse>, PasskeyError> {
        let webauthn = self.webauthn()?;
        let (options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|_| PasskeyError::Internal("starting a sign-in"))?;
        let state =
            serde_json::to_string(&state).map_err(|_| PasskeyError::Internal("sign-in state"))?;
        let now = self.now_ms();
        let handle = self
            .store
            .write(move |tx| put_ceremony(tx, None, DISCOVERABLE, state, now))
            .await?;
        Ok(Ceremony { handle, options })
    }

    /// Finishes a passkey-only sign-in: the credential names the passkey, whose user handle must
    /// be its account's; a disabled account is refused.
    pub async fn finish_passkey_sign_in(
        &self,
        handle: &str,
        answer: &PublicKeyCredential,
    ) -> Result<PasskeyUse, PasskeyError> {
        let webauthn = self.webauthn()?;
        let state: DiscoverableAuthentication = self.take_state(handle, DISCOVERABLE, None).await?;
        let (user_handle, credential) = webauthn
            .identify_discoverable_authentication(answer)
            .map_err(|_| PasskeyError::Rejected)?;
        let credential = credential_key(credential);
        let found = self
            .store
            .read(move |tx| {
                let Some(passkey) = stored::find_by_credential(tx, &credential)? else {
                    return Ok(None);
                };
                Ok::<_, StoreError>(users::find(tx, passkey.user_id)?.map(|u| (passkey, u)))
            })
            .await?;
        let Some((passkey, user)) = found else {
            return Err(PasskeyError::Rejected);
        };
        if user.status != ActiveStatus::Active || self.user_handle(user.id) != user_handle {
            return Err(PasskeyError::Rejected);
        }
        if !user.passkey_sign_in {
            let now = self.now_ms();
            self.store
                .write(move |tx| {
                    audit_refusal(tx, &user, "not_allowed_alone", Some(passkey.id), now)
                })
                .await?;
            return Err(PasskeyError::NotAlone);
        }
        let keys: Vec<DiscoverableKey> = parsed(std::slice::from_ref(&passkey))?
            .iter()
            .map(DiscoverableKey::from)
            .collect();
        let result = webauthn.finish_discoverable_authentication(answer, state, &keys);
        let now = self.now_ms();
        self.store
            .write(move |tx| record_result(tx, &user, &passkey, result, now))
            .await?
    }

    /// Takes a ceremony's stored state (once) and parses it.
    async fn take_state<T: serde::de::DeserializeOwned>(
        &self,
        handle: &str,
        kind: &'static str,
        user: Option<UserId>,
    ) -> Result<T, PasskeyError> {
        let now = self.now_ms();
        let handle = handle.to_owned();
        let state = self
            .store
            .write(move |tx| take_ceremony(tx, &handle, kind, user, now))
            .await?
            .ok_or(PasskeyError::CeremonyExpired)?;
        serde_json::from_str(&state).map_err(|_| PasskeyError::Internal("stored state"))
    }
}

/// Records a verified use (the credential's new counter, when it was used) or audits the
/// refusal. `Ok(Err(_))` is a refusal whose audit should commit.
fn record_result(
    tx: &mut Tx<'_>,
    user: &UserRecord,
    record: &PasskeyRecord,
    result: Result<AuthenticationResult, WebauthnError>,
    now: i64,
) -> Result<Result<PasskeyUse, PasskeyError>, StoreError> {
    let result = match result {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            audit_refusal(tx, user, "counter_regression", Some(record.id), now)?;
            return Ok(Err(PasskeyError::PossibleClone));
        }
        Err(_) => {
            audit_refusal(tx, user, "authentication_rejected", Some(record.id), now)?;
            return Ok(Err(PasskeyError::Rejected));
        }
    };
    let Ok(mut passkeys) = parsed(std::slice::from_ref(record)) else {
        return Ok(Err(PasskeyError::Internal("stored passkey")));
    };
    let Some(mut passkey) = passkeys.pop() else {
        return Ok(Err(PasskeyError::Internal("stored passkey")));
    };
    if passkey.update_credential(&result).is_none() {
        audit_refusal(tx, user, "authentication_rejected", Some(record.id), now)?;
        return Ok(Err(PasskeyError::Rejected));
    }
    let Ok(json) = serde_json::to_string(&passkey) else {
        return Ok(Err(PasskeyError::Internal("serialising a passkey")));
    };
    stored::record_use(tx, record.id, &json, now)?;
    events::record(
        tx,
        now,
        Event::new(
            Action::UserPasskeyUsed,
            format!("user:{}", user.id),
            Subject::User(user.id),
        )
        .tenant(user.tenant_id)
        .detail(json!({ "passkey": record.id, "counter": result.counter() })),
    )?;
    Ok(Ok(PasskeyUse {
        user: user.id,
        passkey: record.id,
    }))
}
