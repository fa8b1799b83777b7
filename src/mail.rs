//! The mail port. Messages are written to the outbox inside the transaction of the change that
//! causes them, so a crash loses neither; a delivery loop sends them over SMTP when one is
//! configured (at least once, retried), and otherwise they stay in the outbox for an operator
//! (`pairgate mail list`). The log says that a message was queued, never what it says. A body
//! that holds a secret (a one-time link) is sealed under a key derived from the master key
//! before it is stored ([`Outbox::queue_sealed`]) and opened only to be sent or shown to an
//! operator, so whoever reads the database or a backup cannot use the link.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::clock::SharedClock;
use crate::config::MailSettings;
use crate::crypto::master_key::MasterKey;
use crate::crypto::sealing::SecretBox;
use crate::store::mail::{self as outbox, MailRecord};
use crate::store::{Store, StoreError, Tx};

/// How a stored body says it is sealed.
const SEALED: &str = "sealed:v1:";

/// Queues a message inside the caller's transaction; returns its outbox id.
pub fn queue(
    tx: &mut Tx<'_>,
    to: &str,
    subject: &str,
    body: &str,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let id = outbox::enqueue(tx, to, subject, body, now_ms)?;
    tracing::info!(outbox_id = id, recipient = to, subject, "mail queued");
    Ok(id)
}

/// Renders a message from its template (`templates/mail/`) for [`queue`]; an error is a
/// [`StoreError`] so that, inside a transaction, it rolls the change back.
pub fn render(message: &impl askama::Template) -> Result<String, StoreError> {
    message
        .render()
        .map_err(|e| StoreError::Other(format!("rendering a mail: {e}")))
}

/// Seals the bodies of messages that carry secrets, and opens any stored body.
#[derive(Clone)]
pub struct Outbox(Arc<SecretBox>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

impl Outbox {
    pub fn new(master: &MasterKey) -> Self {
        Self(Arc::new(SecretBox::new(master.derive("mail-outbox"))))
    }

    /// Queues a message whose body is sealed at rest (bound to its recipient), inside the
    /// caller's transaction; returns its outbox id.
    pub fn queue_sealed(
        &self,
        tx: &mut Tx<'_>,
        to: &str,
        subject: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let sealed = self
            .0
            .seal(aad(to).as_bytes(), body.as_bytes())
            .ok_or_else(|| StoreError::Other("sealing a mail body failed".into()))?;
        queue(tx, to, subject, &format!("{SEALED}{sealed}"), now_ms)
    }

    /// The body as it is sent: opened when sealed, as stored otherwise. `None` when it was
    /// sealed under another master key or moved to another recipient.
    pub fn body(&self, mail: &MailRecord) -> Option<String> {
        match mail.body.strip_prefix(SEALED) {
            Some(sealed) => self
                .0
                .open(aad(&mail.recipient).as_bytes(), sealed)
                .and_then(|plain| String::from_utf8(plain).ok()),
            None => Some(mail.body.clone()),
        }
    }
}

fn aad(recipient: &str) -> String {
    format!("mail-to:{recipient}")
}

/// Delivers the outbox over SMTP.
pub struct Delivery {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    outbox: Outbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("mail.from is not a mailbox: {0}")]
    From(String),
    #[error("mail.smtp_url is not usable: {0}")]
    Smtp(String),
}

impl Delivery {
    /// `None` when no SMTP server is configured.
    pub fn from_settings(
        settings: &MailSettings,
        outbox: Outbox,
    ) -> Result<Option<Self>, MailConfigError> {
        let url = settings.smtp_url.expose().trim();
        if url.is_empty() {
            return Ok(None);
        }
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| MailConfigError::From(e.to_string()))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailConfigError::Smtp(e.to_string()))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Some(Self {
            transport,
            from,
            outbox,
        }))
    }

    async fn send(&self, mail: &MailRecord) -> Result<(), String> {
        let to = mail
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| e.to_string())?;
        let body = self
            .outbox
            .body(mail)
            .ok_or("the body is sealed under another master key")?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .body(body)
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Sends what is waiting; returns how many went out.
    pub async fn deliver_pending(
        &self,
        store: &Store,
        clock: &SharedClock,
    ) -> Result<usize, StoreError> {
        let pending = store.read(|tx| outbox::unsent(tx, 50)).await?;
        let mut sent = 0;
        for mail in pending {
            // Back off per message: attempt n waits about n² minutes after its creation.
            let due = mail.created_at + i64::from(mail.attempts).pow(2) * 60_000;
            if clock.now().timestamp_millis() < due {
                continue;
            }
            let outcome = self.send(&mail).await;
            let now = clock.now().timestamp_millis();
            let id = mail.id;
            match outcome {
                Ok(()) => {
                    store
                        .write(move |tx| outbox::mark_sent(tx, id, now))
                        .await?;
                    sent += 1;
                }
                Err(error) => {
                    tracing::warn!(outbox_id = id, %error, "mail delivery failed; will retry");
                    store
                        .write(move |tx| outbox::mark_failed(tx, id, &error))
                        .await?;
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(recipient: &str, body: String) -> MailRecord {
        MailRecord {
            id: 1,
            recipient: recipient.to_owned(),
            subject: "s".to_owned(),
            body,
            created_at: 0,
            sent_at: None,
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn sealed_bodies_open_for_their_recipient_only() {
        let outbox = Outbox::new(&MasterKey::from_bytes(&[7; 32]));
        let sealed = outbox
            .0
            .seal(aad("a@example.com").as_bytes(), b"link")
            .unwrap();
        let stored = format!("{SEALED}{sealed}");
        assert_eq!(
            outbox.body(&record("a@example.com", stored.clone())),
            Some("link".to_owned())
        );
        assert_eq!(outbox.body(&record("b@example.com", stored.clone())), None);
        let other = Outbox::new(&MasterKey::from_bytes(&[8; 32]));
        assert_eq!(other.body(&record("a@example.com", stored)), None);
        assert_eq!(
            outbox.body(&record("a@example.com", "plain".into())),
            Some("plain".to_owned())
        );
    }
}
