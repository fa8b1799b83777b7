//! Webhooks to the ERP, from the database outbox: every event recorded while webhooks are enabled
//! is queued in the same transaction, so a crash loses none. Delivery is at least once (a receiver
//! dedupes by `webhook-id`), retried with exponential backoff, and in order per device: the next
//! event of a device is sent only after the one before it was accepted.
//!
//! Requests follow Standard Webhooks: `webhook-id` (the event id), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, keyed by the
//! secret configured as `whsec_<base64>`.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::events::EventView;
use crate::clock::SharedClock;
use crate::config::ErpSettings;
use crate::store::erp as stored;
use crate::store::{Store, StoreError};

/// Why the webhook settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("erp.webhook_url must be an http(s) URL")]
    Url,
    #[error("erp.webhook_secret must be whsec_ followed by 24 to 64 bytes in base64")]
    Secret,
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(String),
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub failed: usize,
}

/// Sends the outbox to the configured URL.
pub struct Webhooks {
    client: reqwest::Client,
    url: String,
    key: hmac::Key,
    timeout_ms: i64,
    retry_base_ms: i64,
    retry_max_ms: i64,
}

/// Deliveries looked at per query.
const BATCH: i64 = 100;
/// Queries per pass at most: each can make the next event of a device ready.
const ROUNDS: usize = 50;

impl Webhooks {
    /// `None` when no webhook URL is configured.
    pub fn from_settings(settings: &ErpSettings) -> Result<Option<Self>, WebhookConfigError> {
        let url = settings.webhook_url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let parsed = url::Url::parse(url).map_err(|_| WebhookConfigError::Url)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WebhookConfigError::Url);
        }
        let secret =
            decode_secret(settings.webhook_secret.expose()).ok_or(WebhookConfigError::Secret)?;
        let timeout = Duration::from_secs(u64::from(settings.webhook_timeout_secs.get()));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pairgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookConfigError::Client(e.to_string()))?;
        Ok(Some(Self {
            client,
            url: url.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(60_000),
            retry_base_ms: i64::from(settings.webhook_retry_base_secs.get()) * 1000,
            retry_max_ms: i64::from(settings.webhook_retry_max_secs.get()) * 1000,
        }))
    }

    /// `v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`.
    pub fn signature(&self, id: &str, timestamp: i64, body: &str) -> String {
        sign(&self.key, id, timestamp, body)
    }

    /// The wait before attempt `attempts + 1`: base · 2^(attempts − 1), capped.
    fn backoff_ms(&self, attempts: i32) -> i64 {
        let exponent = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        self.retry_base_ms
            .saturating_mul(1_i64 << exponent)
            .min(self.retry_max_ms)
    }

    /// Sends every delivery that is due now, in order per device; returns what happened.
    pub async fn deliver_due(
        &self,
        store: &Store,
        clock: &SharedClock,
    ) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        for _ in 0..ROUNDS {
            let now = clock.now().timestamp_millis();
            let due = store
                .read(move |tx| stored::due_deliveries(tx, now, BATCH))
                .await?;
            let mut progressed = false;
            for delivery in due {
                let (id, seen) = (delivery.event_id, delivery.next_attempt_at);
                // A lease: another instance skips it until the attempt is over.
                let lease_until = now + self.timeout_ms + 30_000;
                let claimed = store
                    .write(move |tx| stored::claim_delivery(tx, id, seen, lease_until))
                    .await?;
                if !claimed {
                    continue;
                }
                let Some(event) = store
                    .read(move |tx| stored::events_by_id(tx, &[id]))
                    .await?
                    .pop()
                else {
                    store
                        .write(move |tx| stored::complete_delivery(tx, id))
                        .await?;
                    continue;
                };
                let outcome = self.send(EventView::from(event), clock).await;
                let now = clock.now().timestamp_millis();
                match outcome {
                    Ok(()) => {
                        store
                            .write(move |tx| stored::complete_delivery(tx, id))
                            .await?;
                        report.delivered += 1;
                        progressed = true;
                    }
                    Err(error) => {
                        tracing::warn!(event_id = id, %error, "ERP webhook failed; will retry");
                        let retry_at = now + self.backoff_ms(delivery.attempts + 1);
                        store
                            .write(move |tx| stored::fail_delivery(tx, id, retry_at, &error))
                            .await?;
                        report.failed += 1;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(report)
    }

    /// One POST; any 2xx is success. The error text is for logs and operators only.
    async fn send(&self, event: EventView, clock: &SharedClock) -> Result<(), String> {
        let body = serde_json::to_string(&event).map_err(|e| e.to_string())?;
        let id = event.id.to_string();
        let timestamp = clock.now().timestamp();
        let signature = self.signature(&id, timestamp, &body);
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            // Without the URL: it may carry credentials, and this text goes to logs and the outbox.
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", res.status().as_u16()))
        }
    }
}

/// Signs like Standard Webhooks.
pub fn sign(key: &hmac::Key, id: &str, timestamp: i64, body: &str) -> String {
    let tag = hmac::sign(key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// The key bytes of a `whsec_<base64>` secret.
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD
        .decode(secret.trim().strip_prefix("whsec_")?)
        .ok()?;
    (24..=64).contains(&bytes.len()).then_some(bytes)
}

/// Runs delivery passes every `every` until the runtime stops.
pub async fn run(
    webhooks: std::sync::Arc<Webhooks>,
    store: Store,
    clock: SharedClock,
    every: Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = webhooks.deliver_due(&store, &clock).await {
            tracing::warn!(error = %e, "ERP webhook delivery pass failed; will retry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_need_the_prefix_and_enough_bytes() {
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(decode_secret("whsec_AAAA").is_none());
    }
}
