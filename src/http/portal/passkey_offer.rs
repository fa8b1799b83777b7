//! Passkey ceremonies on forms: the one script (`static/passkey.js`, allowed by the CSP through
//! its hash), the offer of a ceremony that a form carries (`templates/passkey.html`), and the
//! answer the form sends back.
//!
//! A ceremony is plain forms: the page that offers it holds webauthn-rs's options and a handle;
//! the script asks the browser's authenticator, writes its answer into the form's
//! `passkey_answer` field and sends the form. The server checks the answer as part of the form's
//! action, so without the script the same form works with a code.

use std::sync::LazyLock;

use base64::Engine;
use serde::de::DeserializeOwned;

use crate::accounts::passkeys::{CreationChallengeResponse, RequestChallengeResponse};
use crate::accounts::{Ceremony, PasskeyError, Session};
use crate::app::AppContext;

/// The ceremony script, inlined into the pages that offer a ceremony.
pub const SCRIPT: &str = include_str!("../../../static/passkey.js");

/// The CSP source that allows [`SCRIPT`] and nothing else: `'sha256-…'`.
pub static SCRIPT_SOURCE: LazyLock<String> = LazyLock::new(|| {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SCRIPT.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!("'sha256-{hash}'")
});

/// A ceremony a form offers (`templates/passkey.html`).
pub struct PasskeyOffer {
    /// webauthn-rs's options for `navigator.credentials`, as JSON.
    pub options: String,
    /// The ceremony's handle, sent back with the answer.
    pub handle: String,
    /// `create` (registration) or `get` (authentication).
    pub ceremony: &'static str,
    /// The button's words.
    pub label: &'static str,
    /// The names of the form's fields: `{field}_handle` and `{field}_answer` (`passkey`, or
    /// `step_up_passkey` for a step-up, which wraps another form's fields).
    pub field: &'static str,
}

impl PasskeyOffer {
    fn of<T: serde::Serialize>(
        ceremony: Ceremony<T>,
        kind: &'static str,
        label: &'static str,
    ) -> Option<Self> {
        Some(Self {
            options: serde_json::to_string(&ceremony.options).ok()?,
            handle: ceremony.handle,
            ceremony: kind,
            label,
            field: "passkey",
        })
    }

    /// A registration begun by `begin_passkey_registration`.
    pub fn registration(
        ceremony: Ceremony<CreationChallengeResponse>,
        label: &'static str,
    ) -> Option<Self> {
        Self::of(ceremony, "create", label)
    }

    /// An authentication with one of the session user's passkeys, if they have one and passkeys
    /// work on this server. A failure to begin it only loses the offer: the code still works.
    /// Its fields are `passkey_handle` and `passkey_answer`.
    pub async fn authentication(
        ctx: &AppContext,
        session: &Session,
        label: &'static str,
    ) -> Option<Self> {
        if !session.user.has_passkey {
            return None;
        }
        match ctx.accounts.begin_passkey_authentication(session).await {
            Ok(ceremony) => Self::of(ceremony, "get", label),
            Err(e) => {
                tracing::warn!(error = %e, "passkey authentication not offered");
                None
            }
        }
    }

    /// A sign-in with a passkey alone, begun by `begin_passkey_sign_in_from`.
    pub fn sign_in(ceremony: Ceremony<RequestChallengeResponse>) -> Option<Self> {
        Self::of(ceremony, "get", "Use your passkey")
    }

    /// An authentication for a step-up of another form's action: its fields are
    /// `step_up_passkey_handle` and `step_up_passkey_answer`, apart from the action's own.
    pub async fn step_up(ctx: &AppContext, session: &Session) -> Option<Self> {
        let offer = Self::authentication(ctx, session, "Confirm with a passkey").await?;
        Some(Self {
            field: "step_up_passkey",
            ..offer
        })
    }
}

/// The passkey answer a form carries (a handle and an answer field), if it carries one.
/// An answer that does not parse is refused like one that does not verify.
pub fn answer<T: DeserializeOwned>(
    handle: Option<&str>,
    answer: Option<&str>,
) -> Option<Result<(String, T), PasskeyError>> {
    let answer = answer.filter(|a| !a.trim().is_empty())?;
    let handle = handle.unwrap_or("").to_owned();
    Some(
        serde_json::from_str(answer)
            .map(|parsed| (handle, parsed))
            .map_err(|_| PasskeyError::Rejected),
    )
}

/// Refusals a person can act on, shown beside the form that caused them.
pub fn shown_inline(e: &PasskeyError) -> bool {
    matches!(
        e,
        PasskeyError::Rejected
            | PasskeyError::CeremonyExpired
            | PasskeyError::PossibleClone
            | PasskeyError::NoPasskeys
            | PasskeyError::Unavailable
    )
}

/// A refusal's sentence with its first letter in capitals, for a page.
pub fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
