//! An action waiting for a step-up: the fields of a form that a sensitive action refused for want
//! of a fresh code, sealed (AES-256-GCM under a key of its own) to the session that sent it and
//! to the path it was sent to, for a few minutes. The page that asks for the code carries it;
//! the same path opens it again with the code. A step-up gives the session a new id, so once the
//! code was right the sealed value opens no more: it is used once.

use serde::{Deserialize, Serialize};

use super::{Accounts, Session};

/// How long a pending action waits for its code.
const PENDING_MS: i64 = 10 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Sealed {
    path: String,
    expires_at: i64,
    fields: Vec<(String, String)>,
}

fn aad(session: &Session) -> Vec<u8> {
    format!("step-up-pending:{}", session.id_hash).into_bytes()
}

impl Accounts {
    /// Seals `fields` of a form sent to `path` by `session`.
    pub fn seal_pending(
        &self,
        session: &Session,
        path: &str,
        fields: &[(String, String)],
    ) -> String {
        let sealed = Sealed {
            path: path.to_owned(),
            expires_at: self.now_ms() + PENDING_MS,
            fields: fields.to_vec(),
        };
        let plain = serde_json::to_vec(&sealed).unwrap_or_default();
        self.pending_box
            .seal(&aad(session), &plain)
            .unwrap_or_default()
    }

    /// The fields of a pending action, if it was sealed by this session for this path and has
    /// not expired.
    pub fn open_pending(
        &self,
        session: &Session,
        path: &str,
        sealed: &str,
    ) -> Option<Vec<(String, String)>> {
        let plain = self.pending_box.open(&aad(session), sealed)?;
        let pending: Sealed = serde_json::from_slice(&plain).ok()?;
        (pending.path == path && self.now_ms() < pending.expires_at).then_some(pending.fields)
    }
}
