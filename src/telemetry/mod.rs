//! Telemetry: what a paired device is for. `POST /api/v1/telemetry` takes a batch of readings
//! from a device holding a DPoP-bound pairgate access token with scope `telemetry:write`, for
//! exactly the device and tenant the token names; people read it back through their device
//! access. Knows neither actix nor diesel.
//!
//! An upload: the token and proof are verified ([`crate::verifier`], RFC 9068 §4 and RFC 9449
//! §7, on the same code path relying apps use, fed pairgate's key ring directly); the token must
//! be a device's with the right scope; the body is checked ([`batch`]); then the `writer`
//! commits it with other uploads and settles, at commit time, revocation (the token's `gen`
//! against the device's current generation, tenant and status; the token's `jti` against the
//! revoked access tokens) and proof replay (the shared replay store). The answer says how many
//! readings were stored and how many were duplicates.

pub mod batch;
mod buckets;
mod device_page;
mod error;
mod reads;
mod writer;

use std::sync::Arc;

pub use batch::Reading;
pub use buckets::{MetricOverview, ReadingView, SeriesPoint};
pub use device_page::{
    Export, MAX_EXPORT_READINGS, MAX_OVERVIEW_READINGS, MetricMeta, MetricsOfModel,
};
pub use error::{BatchProblem, TelemetryError};
pub use reads::{DeviceOverview, MAX_READ_LIMIT, ReadQuery, ReadingsPage};
pub use writer::UploadOutcome;

use crate::accounts::Accounts;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::master_key::MasterKey;
use crate::ids::{DeviceSerial, TenantId};
use crate::oauth::keyring::KeyRing;
use crate::oauth::tokens::DEVICE_SCOPE;
use crate::store::Store;
use crate::verifier::{ResourceRequest, Verifier, VerifierConfig, VerifyError};
use batch::Limits;
use writer::{PendingUpload, Writer};

/// The upload endpoint's path, under the public URL.
pub const UPLOAD_PATH: &str = "/api/v1/telemetry";

/// One upload as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// Every `DPoP` header value.
    pub dpop: &'a [String],
    pub body: &'a [u8],
}

/// The telemetry service.
pub struct Telemetry {
    store: Store,
    clock: SharedClock,
    accounts: Arc<Accounts>,
    verifier: Verifier,
    writer: Writer,
    limits: Limits,
    upload_url: String,
}

impl Telemetry {
    /// Builds the service and starts its writer on the current tokio runtime. Tokens are checked
    /// against `keys` (pairgate's ring) for `audience`, the access tokens' `aud`.
    pub fn start(
        store: Store,
        clock: SharedClock,
        settings: &Settings,
        keys: Arc<KeyRing>,
        audience: &str,
        master: &MasterKey,
        accounts: Arc<Accounts>,
    ) -> Self {
        let t = &settings.telemetry;
        let issuer = settings.server.public_url.as_str();
        let verifier = Verifier::new(
            VerifierConfig {
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                // Issuer and resource share this process's clock.
                leeway_secs: 0,
                dpop: crate::oauth::dpop::policy(&settings.oauth),
                // The authorization server's nonce key: a device's nonce works on both.
                dpop_nonce_key: master.derive("dpop-nonce"),
                token_cache_entries: t.verified_token_cache as usize,
            },
            keys,
            clock.clone(),
        );
        let limits = Limits::from_settings(t);
        Self {
            writer: Writer::start(
                store.clone(),
                clock.clone(),
                &limits,
                t.writer_batch_rows.get() as usize,
                t.writer_queue.get() as usize,
            ),
            limits,
            upload_url: settings.server.public_url.join(UPLOAD_PATH),
            verifier,
            accounts,
            store,
            clock,
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// A fresh `DPoP-Nonce` for responses, when nonces are required.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.verifier.dpop_nonce()
    }

    /// A fresh `DPoP-Nonce` for a `use_dpop_nonce` answer, required or not.
    pub fn fresh_dpop_nonce(&self) -> String {
        self.verifier.fresh_dpop_nonce()
    }

    /// Verifies, checks and stores one upload; answers once its readings are committed.
    pub async fn upload(&self, upload: Upload<'_>) -> Result<UploadOutcome, TelemetryError> {
        let checked = self.check(upload).await?;
        self.writer.submit(checked.0).await
    }

    /// Every check of an upload that needs no database: the token and the proof (RFC 9068,
    /// RFC 9449), the device and tenant the token names, the batch. What only the database can
    /// settle (revocation, proof replay, duplicate readings) happens when [`Self::upload`]
    /// stores it. The benchmark's verification-only server (`benches/telemetry_floor.rs`) stops
    /// here to measure what an upload costs without storage.
    pub async fn check(&self, upload: Upload<'_>) -> Result<CheckedUpload, TelemetryError> {
        let verified = self
            .verifier
            .verify(&ResourceRequest {
                authorization: upload.authorization,
                dpop: upload.dpop,
                method: "POST",
                url: &self.upload_url,
            })
            .await?;
        if !verified.has_scope(DEVICE_SCOPE) {
            return Err(TelemetryError::InsufficientScope);
        }
        let claims = &verified.claims;
        let not_a_device = TelemetryError::Auth(VerifyError::InvalidToken(
            "the access token is not a paired device's",
        ));
        let (Some(serial), Some(tenant_id), Some(generation)) =
            (&claims.device, claims.tenant_id, claims.generation)
        else {
            return Err(not_a_device);
        };
        if claims.client_id != *serial || claims.sub != format!("device:{serial}") {
            return Err(not_a_device);
        }
        let readings = batch::parse(upload.body, &self.limits, self.now_ms())
            .map_err(TelemetryError::InvalidBatch)?;
        Ok(CheckedUpload(PendingUpload {
            serial: DeviceSerial::from(serial),
            tenant_id: TenantId::from(tenant_id),
            generation,
            token_jti: claims.jti.clone(),
            replay_scope: verified.proof.replay_scope(),
            jti: verified.proof.jti,
            replay_until_ms: verified.proof.replay_until_ms,
            readings,
        }))
    }
}

/// An upload that passed [`Telemetry::check`], not yet stored.
#[derive(Debug)]
pub struct CheckedUpload(PendingUpload);

impl CheckedUpload {
    /// How many readings the batch holds.
    pub fn readings(&self) -> usize {
        self.0.readings.len()
    }
}
