//! `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2): a registered device, authenticated by
//! its factory key, asks to be paired and gets a device_code and a user code to show.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::client_auth::{AuthMethod, AuthenticatedClient};
use super::tokens::DEVICE_SCOPE;
use super::{OAuth, OAuthError, OAuthRequest, device_flow, paths, remember_jtis, user_code};
use crate::crypto::tokens;
use crate::events::{self, Action, Event, FeedType, Subject};
use crate::ids::DeviceSerial;
use crate::meters::Limit;
use crate::store::flows::{FlowStatus, NewFlow};
use crate::store::registry::{self, ClientKind};
use crate::store::{StoreError, Tx, replay};
use crate::verifier::dpop::DpopProof;

/// The response body (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceAuthorization {
    /// What the device polls the token endpoint with.
    pub device_code: String,
    /// What the person enters at `verification_uri`.
    pub user_code: String,
    #[schema(format = "uri")]
    pub verification_uri: String,
    /// `verification_uri` with the user code in it.
    #[schema(format = "uri")]
    pub verification_uri_complete: String,
    /// Seconds until the device_code expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

impl OAuth {
    pub async fn device_authorization(
        &self,
        req: &OAuthRequest,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let mut authenticated = None;
        let result = self
            .device_authorization_inner(req, &mut authenticated)
            .await;
        if let Err(err) = &result {
            if matches!(err, OAuthError::RateLimited { .. }) {
                self.store.meters().throttled(Limit::DeviceAuthorization);
            }
            self.forget_refused_client(req, err);
            let who = authenticated.as_deref();
            self.record_refusal(paths::DEVICE_AUTHORIZATION, req, who, err)
                .await;
        }
        result
    }

    /// Sets `authenticated` to the client id once the client has authenticated.
    async fn device_authorization_inner(
        &self,
        req: &OAuthRequest,
        authenticated: &mut Option<String>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let device = self.authenticate_device(req, authenticated).await?;
        let device_code = tokens::random_token();
        let start = self.flow_start(req, device, &device_code);
        let code = self.store.write(move |tx| start.run(tx)).await??;
        Ok(self.answer(device_code, &code))
    }

    /// The checks before any write, in this order: a proof that needs a nonce, the client's
    /// authentication, its kind and method, the scope, the rest of the proof, `dpop_jkt`.
    async fn authenticate_device(
        &self,
        req: &OAuthRequest,
        authenticated: &mut Option<String>,
    ) -> Result<AuthenticatedDevice, OAuthError> {
        let proof = self.check_dpop_before_client(req, paths::DEVICE_AUTHORIZATION)?;
        let client = self.authenticate_cached(&req.credentials).await?;
        *authenticated = Some(client.client.client_id.clone());
        if client.client.kind != ClientKind::Device || client.method != AuthMethod::PrivateKeyJwt {
            return Err(OAuthError::UnauthorizedClient);
        }
        if let Some(scope) = req.params.get("scope")
            && scope.split(' ').any(|s| s != DEVICE_SCOPE)
        {
            return Err(OAuthError::InvalidScope);
        }
        // RFC 9449 §10: bind the flow to a key, from dpop_jkt or from a proof sent along.
        let proof = proof?;
        let requested_jkt = req.params.get("dpop_jkt");
        if let Some(jkt) = requested_jkt
            && (jkt.len() != 43 || crate::crypto::jose::b64_decode(jkt).is_none())
        {
            return Err(OAuthError::InvalidRequest(
                "dpop_jkt must be a SHA-256 JWK thumbprint",
            ));
        }
        let dpop_jkt = match (&proof, requested_jkt) {
            (Some(p), Some(j)) if p.jkt != j => {
                return Err(OAuthError::InvalidDpopProof(
                    "dpop_jkt does not match the DPoP proof's key",
                ));
            }
            (Some(p), _) => Some(p.jkt.clone()),
            (None, j) => j.map(str::to_owned),
        };
        Ok(AuthenticatedDevice {
            client,
            proof,
            dpop_jkt,
        })
    }

    /// The pending flow for `device`, with the limits its start is counted against.
    fn flow_start(
        &self,
        req: &OAuthRequest,
        device: AuthenticatedDevice,
        device_code: &str,
    ) -> FlowStart {
        let o = &self.settings.oauth;
        let now = self.now_ms();
        let AuthenticatedDevice {
            client,
            proof,
            dpop_jkt,
        } = device;
        let serial = client.client.client_id.clone();
        let ip = req.client_ip.clone();
        let lifetime_ms = i64::from(o.device_code_lifetime_secs.get()) * 1000;
        let interval = o.poll_interval_secs.get();
        let per_device = i64::from(o.device_authorization_per_device_per_hour.get());
        let per_ip = i64::from(o.device_authorization_per_ip_per_minute.get());
        let flow = NewFlow {
            device_code_hash: tokens::hash_token(device_code),
            user_code: String::new(),
            client_id: serial.clone(),
            scope: DEVICE_SCOPE.to_owned(),
            dpop_jkt,
            status: FlowStatus::Pending,
            interval_secs: i32::try_from(interval).unwrap_or(i32::MAX),
            created_at: now,
            expires_at: now + lifetime_ms,
            requested_ip: ip.clone(),
        };
        FlowStart {
            client,
            proof,
            serial: DeviceSerial::from(serial),
            ip,
            now,
            per_device,
            per_ip,
            flow,
        }
    }

    /// The RFC 8628 §3.2 answer for a started flow.
    fn answer(&self, device_code: String, code: &str) -> DeviceAuthorization {
        let o = &self.settings.oauth;
        let shown = user_code::display(code);
        let verification_uri = self.url(paths::VERIFICATION);
        DeviceAuthorization {
            device_code,
            verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
            verification_uri,
            user_code: shown,
            expires_in: u64::from(o.device_code_lifetime_secs.get()),
            interval: u64::from(o.poll_interval_secs.get()),
        }
    }
}

/// A device client that authenticated, and the key its flow is to be bound to.
struct AuthenticatedDevice {
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
    dpop_jkt: Option<String>,
}

/// Everything the write transaction of a device authorization needs.
struct FlowStart {
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
    serial: DeviceSerial,
    ip: Option<String>,
    now: i64,
    /// Flows a device may start per clock hour.
    per_device: i64,
    /// Flows one address may start per clock minute.
    per_ip: i64,
    flow: NewFlow,
}

impl FlowStart {
    /// The transaction, in this order: the jti values, the limits (each counts the attempt
    /// before checking it), the device's registration, the flow and its event. Returns the
    /// flow's user code.
    fn run(self, tx: &mut Tx<'_>) -> Result<Result<String, OAuthError>, StoreError> {
        if let Err(refusal) = remember_jtis(tx, &self.client, self.proof.as_ref())? {
            return Ok(Err(refusal));
        }
        if let Err(refusal) = self.count_against_limits(tx)? {
            return Ok(Err(refusal));
        }
        let Some(device) = registry::find_device(tx, &self.serial)? else {
            return Ok(Err(OAuthError::InvalidClient {
                reason: "this client is not a registered device",
                basic: false,
            }));
        };
        let FlowStart {
            serial, now, flow, ..
        } = self;
        let mut flow = flow;
        let superseded = device_flow::start(tx, &mut flow)?;
        events::record(
            tx,
            now,
            Event::new(
                Action::PairingRequested,
                format!("device:{serial}"),
                Subject::Device(serial.to_owned()),
            )
            .tenant(device.tenant_id)
            .detail(json!({
                "ip": flow.requested_ip,
                "dpop_bound": flow.dpop_jkt.is_some(),
                "superseded": superseded,
            }))
            .erp_without_detail(FeedType::PairingRequested),
        )?;
        Ok(Ok(flow.user_code))
    }

    /// Counts this start against the device's hourly and the address's per-minute limit.
    fn count_against_limits(&self, tx: &mut Tx<'_>) -> Result<Result<(), OAuthError>, StoreError> {
        let (serial, now) = (&self.serial, self.now);
        let device_window = now - now.rem_euclid(HOUR_MS);
        if i64::from(replay::hit(
            tx,
            &format!("devauth:device:{serial}"),
            device_window,
        )?) > self.per_device
        {
            return Ok(Err(OAuthError::RateLimited {
                retry_after_secs: retry_after(device_window + HOUR_MS, now),
            }));
        }
        if let Some(ip) = &self.ip {
            let ip_window = now - now.rem_euclid(MINUTE_MS);
            if i64::from(replay::hit(tx, &format!("devauth:ip:{ip}"), ip_window)?) > self.per_ip {
                return Ok(Err(OAuthError::RateLimited {
                    retry_after_secs: retry_after(ip_window + MINUTE_MS, now),
                }));
            }
        }
        Ok(Ok(()))
    }
}

fn retry_after(window_end_ms: i64, now_ms: i64) -> u64 {
    u64::try_from((window_end_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}
