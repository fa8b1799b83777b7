//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an app sends the person to
//! `end_session_endpoint` with the ID token it holds (`id_token_hint`) and, optionally, one of
//! its registered `post_logout_redirect_uri`s. The portal ends the session (at once when the
//! hint names the signed-in person, after a confirmation otherwise) and sends the person back.

use super::id_token::Hint;
use super::{OAuth, OAuthError, Params};
use crate::store::apps;

/// A checked logout request.
#[derive(Debug, Clone)]
pub struct Logout {
    /// The signed-in person and app the hint names, if a valid one came along.
    pub hint: Option<Hint>,
    /// Where to send the person afterwards (with `state`), if the app asked and registered it.
    pub back: Option<String>,
    /// The app's name, to tell the person where they came from.
    pub app_name: Option<String>,
}

/// Why a logout request is refused (shown to the person: no redirect to an unchecked URI).
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

impl OAuth {
    pub async fn logout_request(&self, params: &Params) -> Result<Logout, LogoutError> {
        let hint =
            match params.get("id_token_hint").filter(|h| !h.is_empty()) {
                Some(token) => Some(self.id_token_hint(token).await?.ok_or(
                    LogoutError::Refused("The app sent an ID token pairgate did not issue."),
                )?),
                None => None,
            };
        let client_id = match (params.get("client_id").filter(|c| !c.is_empty()), &hint) {
            (Some(c), Some(h)) if c != h.client_id => {
                return Err(LogoutError::Refused(
                    "The app's client_id differs from the ID token's audience.",
                ));
            }
            (Some(c), _) => Some(c.to_owned()),
            (None, Some(h)) => Some(h.client_id.clone()),
            (None, None) => None,
        };
        let app = match client_id {
            Some(id) => self
                .store
                .read(move |tx| apps::find_app(tx, &id))
                .await
                .map_err(OAuthError::from)?,
            None => None,
        };
        let back = match params
            .get("post_logout_redirect_uri")
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(uri) => {
                let registered = app
                    .as_ref()
                    .is_some_and(|a| a.post_logout_redirect_uris.iter().any(|u| u == uri));
                if !registered {
                    return Err(LogoutError::Refused(
                        "The app asked to send you to an address it has not registered for \
                         after signing out.",
                    ));
                }
                let mut url = url::Url::parse(uri)
                    .map_err(|_| LogoutError::Refused("The app's address is not a URL."))?;
                if let Some(state) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", state);
                }
                Some(url.into())
            }
        };
        Ok(Logout {
            hint,
            back,
            app_name: app.map(|a| a.name),
        })
    }
}
