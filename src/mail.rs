//! The mail port. Messages are written to the outbox inside the transaction of the change that
//! causes them, so a crash loses neither; a delivery loop sends them over SMTP when one is
//! configured (at least once, retried), and otherwise they stay in the outbox for an operator
//! (`pairgate mail list`). The log says that a message was queued, never what it says: bodies
//! can hold invitation links.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::clock::SharedClock;
use crate::config::MailSettings;
use crate::store::mail::{self as outbox, MailRecord};
use crate::store::{Store, StoreError, Tx};

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

/// Delivers the outbox over SMTP.
pub struct Delivery {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
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
    pub fn from_settings(settings: &MailSettings) -> Result<Option<Self>, MailConfigError> {
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
        Ok(Some(Self { transport, from }))
    }

    async fn send(&self, mail: &MailRecord) -> Result<(), String> {
        let to = mail
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| e.to_string())?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .body(mail.body.clone())
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
