//! The apps a person let sign them in (consents to third-party apps), as the account page lists
//! them, and withdrawing one: the consent goes, and so does every refresh token the app holds
//! for the person, so the app loses its access at its next refresh (its access tokens end within
//! their lifetime).

use serde_json::json;

use super::sessions::Session;
use super::{AccountError, Accounts};
use crate::events::{self, Action, Event, Subject};
use crate::store::StoreError;
use crate::store::apps;
use crate::store::tokens as stored_tokens;

/// An app the person allowed.
#[derive(Debug, Clone)]
pub struct AppAccessView {
    pub client_id: String,
    pub app_name: String,
    pub scope: String,
    /// When they allowed it (Unix ms).
    pub granted_at: i64,
}

impl Accounts {
    /// The apps the session's person allowed, newest first.
    pub async fn app_access(&self, session: &Session) -> Result<Vec<AppAccessView>, AccountError> {
        let user = session.user.id;
        let rows = self
            .store
            .read(move |tx| apps::consents_of(tx, user))
            .await?;
        Ok(rows
            .into_iter()
            .map(|c| AppAccessView {
                client_id: c.client_id,
                app_name: c.app_name,
                scope: c.scope,
                granted_at: c.granted_at,
            })
            .collect())
    }

    /// Withdraws the person's consent to an app and ends the app's refresh tokens for them.
    pub async fn withdraw_app_access(
        &self,
        session: &Session,
        client_id: &str,
    ) -> Result<(), AccountError> {
        let (user, tenant, actor) = (session.user.id, session.user.tenant_id, session.actor());
        let client_id = client_id.to_owned();
        let now = self.now_ms();
        self.store
            .write(move |tx| {
                if !apps::revoke_consent(tx, user, &client_id)? {
                    return Ok(Err(AccountError::NotFound));
                }
                let subject = format!("user:{user}");
                let ended = stored_tokens::revoke_subject_families(tx, &client_id, &subject)?;
                let event = Event::new(
                    Action::AppConsentRevoked,
                    actor,
                    Subject::Client(client_id.clone()),
                )
                .tenant(tenant)
                .detail(json!({ "refresh_families": ended }));
                events::record(tx, now, event)?;
                Ok::<_, StoreError>(Ok(()))
            })
            .await?
    }
}
