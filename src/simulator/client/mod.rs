//! A device's client of pairgate: discovery, the device authorization request, polling, refresh
//! (each request with a fresh client assertion and DPoP proof, with server nonces when asked),
//! and telemetry uploads under its DPoP-bound access token.
//!
//! A device's clock may be wrong: one that booted without a battery-backed clock says 1970 until
//! it reaches NTP. pairgate answers a proof whose `iat` is out of its window with
//! `use_dpop_nonce`, a `DPoP-Nonce` and its own time in `Date`. The client then sets its clock
//! from that `Date` (a client assertion's `exp` must be in the server's future, RFC 7523 §3,
//! which no nonce can excuse) and asks again with the nonce. It sends the nonce of the latest
//! answer, and none when that answer had none: a server that requires nonces sends one with
//! every answer, one that does not only with `use_dpop_nonce`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DeviceKey;
use crate::clock::{SharedClock, SystemClock};

mod upload;

pub use upload::{SimReading, UploadResult};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot reach {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("unexpected answer from {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("the device key cannot sign")]
    Key,
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Clone, Deserialize)]
pub struct Authorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: Option<u64>,
}

/// Tokens as the device keeps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    pub scope: Option<String>,
}

/// What one poll found.
#[derive(Debug)]
pub enum Poll {
    Pending,
    SlowDown,
    Tokens(TokenSet),
    /// A final refusal: `access_denied`, `expired_token`, `invalid_grant`…
    Failed(String),
}

/// Where a device talks to: the authorization server's endpoints (from its metadata) and the
/// telemetry endpoint (`/api/v1/telemetry` under the issuer, by pairgate's public contract).
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub token_endpoint: String,
    pub device_authorization_endpoint: String,
    pub telemetry_endpoint: String,
}

/// A shared HTTP client for simulated devices.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("pairgate-device/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .pool_max_idle_per_host(4096)
        .build()
}

impl Endpoints {
    /// Reads the server's metadata (RFC 8414) to find its endpoints.
    pub async fn discover(http: &reqwest::Client, server: &str) -> Result<Self, SimError> {
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            server.trim_end_matches('/')
        );
        let meta: Value = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|source| SimError::Http {
                url: url.clone(),
                source,
            })?
            .json()
            .await
            .map_err(|source| SimError::Http {
                url: url.clone(),
                source,
            })?;
        let field = |name: &str| {
            meta[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| SimError::Protocol {
                    url: url.clone(),
                    reason: format!("the metadata has no {name}"),
                })
        };
        let issuer = field("issuer")?;
        Ok(Self {
            telemetry_endpoint: format!("{issuer}{}", crate::telemetry::UPLOAD_PATH),
            token_endpoint: field("token_endpoint")?,
            device_authorization_endpoint: field("device_authorization_endpoint")?,
            issuer,
        })
    }
}

pub struct DeviceClient {
    http: reqwest::Client,
    serial: String,
    key: DeviceKey,
    endpoints: Arc<Endpoints>,
    clock: SharedClock,
    /// Seconds added to `clock`: how far the device has set its clock, from the server's `Date`.
    clock_offset: AtomicI64,
    nonce: Mutex<Option<String>>,
}

/// A clock off by less than this is left alone: `Date` has whole seconds, and the answer took
/// some time to arrive.
const CLOCK_TOLERANCE_SECS: i64 = 5;

impl DeviceClient {
    /// Reads the server's metadata (RFC 8414) to find its endpoints.
    pub async fn discover(server: &str, serial: &str, key: DeviceKey) -> Result<Self, SimError> {
        let http = http_client().map_err(|source| SimError::Http {
            url: server.into(),
            source,
        })?;
        let endpoints = Endpoints::discover(&http, server).await?;
        Ok(Self::new(
            http,
            Arc::new(endpoints),
            serial,
            key,
            Arc::new(SystemClock),
        ))
    }

    /// A device on known endpoints, sharing an HTTP client (fleets).
    pub fn new(
        http: reqwest::Client,
        endpoints: Arc<Endpoints>,
        serial: &str,
        key: DeviceKey,
        clock: SharedClock,
    ) -> Self {
        Self {
            http,
            serial: serial.to_owned(),
            key,
            endpoints,
            clock,
            clock_offset: AtomicI64::new(0),
            nonce: Mutex::new(None),
        }
    }

    /// The same device on another clock (tests drive pairgate's clock by hand).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The same device with its clock off by `secs` (e.g. minus the current Unix time: a device
    /// that booted in 1970), as a test of how it recovers.
    pub fn with_clock_offset(self, secs: i64) -> Self {
        self.clock_offset.store(secs, Ordering::Relaxed);
        self
    }

    /// How many seconds the device's clock is ahead of the clock it runs on; it changes when the
    /// device sets its clock from a server's `Date`.
    pub fn clock_offset_secs(&self) -> i64 {
        self.clock_offset.load(Ordering::Relaxed)
    }

    /// The device's clock, in Unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now().timestamp() + self.clock_offset_secs()
    }

    /// After `use_dpop_nonce`: sets the device's clock from the answer's `Date` (pairgate's
    /// time) if the two differ by more than [`CLOCK_TOLERANCE_SECS`].
    fn set_clock_from(&self, date: Option<&str>) {
        let Some(server) = date
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.timestamp())
        else {
            return;
        };
        let off = server - self.now();
        if off.abs() > CLOCK_TOLERANCE_SECS {
            self.clock_offset.fetch_add(off, Ordering::Relaxed);
            tracing::warn!(
                seconds = off,
                "the device clock was wrong; set from the server's Date"
            );
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn key(&self) -> &DeviceKey {
        &self.key
    }

    /// POSTs a form to an OAuth endpoint with a fresh assertion and proof; retries once when the
    /// server asks for a DPoP nonce. Returns the status and JSON body.
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<(u16, Value), SimError> {
        for _ in 0..2 {
            let t = self.now();
            let nonce = self.current_nonce();
            let assertion = self
                .key
                .client_assertion(&self.serial, &self.endpoints.issuer, t)
                .map_err(|_| SimError::Key)?;
            let proof = self
                .key
                .dpop_proof("POST", url, t, nonce.as_deref(), None)
                .map_err(|_| SimError::Key)?;
            let mut all = form.to_vec();
            all.push(("client_assertion_type", JWT_BEARER));
            all.push(("client_assertion", &assertion));
            let res = self
                .send(url, self.http.post(url).header("DPoP", proof).form(&all))
                .await?;
            let date = header(&res, "date");
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if body["error"] == "use_dpop_nonce" {
                self.set_clock_from(date.as_deref());
                continue;
            }
            return Ok((status, body));
        }
        Err(SimError::Protocol {
            url: url.into(),
            reason: "the server keeps asking for a new DPoP nonce".into(),
        })
    }

    /// Sends a request to `url` and keeps the `DPoP-Nonce` its answer carries.
    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, SimError> {
        let res = request.send().await.map_err(|source| SimError::Http {
            url: url.into(),
            source,
        })?;
        self.keep_nonce(&res);
        Ok(res)
    }

    fn current_nonce(&self) -> Option<String> {
        self.nonce.lock().map(|n| n.clone()).unwrap_or(None)
    }

    /// Keeps the server's latest `DPoP-Nonce` (RFC 9449 §8.2: any response may carry one), or
    /// forgets the one it had when the latest answer carried none.
    fn keep_nonce(&self, res: &reqwest::Response) {
        if let Ok(mut slot) = self.nonce.lock() {
            *slot = header(res, "dpop-nonce");
        }
    }

    /// Starts pairing, binding the flow to this device's key.
    pub async fn start_pairing(&self) -> Result<Authorization, SimError> {
        let url = self.endpoints.device_authorization_endpoint.clone();
        let (status, body) = self.post(&url, &[]).await?;
        if status != 200 {
            return Err(SimError::Refused {
                url,
                status,
                body: body.to_string(),
            });
        }
        serde_json::from_value(body).map_err(|e| SimError::Protocol {
            url,
            reason: e.to_string(),
        })
    }

    /// One poll of the token endpoint.
    pub async fn poll(&self, device_code: &str) -> Result<Poll, SimError> {
        let url = self.endpoints.token_endpoint.clone();
        let (status, body) = self
            .post(
                &url,
                &[
                    ("grant_type", DEVICE_CODE_GRANT),
                    ("device_code", device_code),
                ],
            )
            .await?;
        if status == 200 {
            return self.tokens(&url, body).map(Poll::Tokens);
        }
        Ok(match body["error"].as_str() {
            Some("authorization_pending") => Poll::Pending,
            Some("slow_down") => Poll::SlowDown,
            Some(other) => Poll::Failed(other.to_owned()),
            None => {
                return Err(SimError::Refused {
                    url,
                    status,
                    body: body.to_string(),
                });
            }
        })
    }

    /// Exchanges a refresh token for a new token set (the old refresh token is spent).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, SimError> {
        let url = self.endpoints.token_endpoint.clone();
        let (status, body) = self
            .post(
                &url,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        if status != 200 {
            return Err(SimError::Refused {
                url,
                status,
                body: body.to_string(),
            });
        }
        self.tokens(&url, body)
    }

    fn tokens(&self, url: &str, body: Value) -> Result<TokenSet, SimError> {
        let access_token = body["access_token"]
            .as_str()
            .ok_or_else(|| SimError::Protocol {
                url: url.into(),
                reason: "no access_token".into(),
            })?;
        Ok(TokenSet {
            access_token: access_token.to_owned(),
            token_type: body["token_type"].as_str().unwrap_or("").to_owned(),
            refresh_token: body["refresh_token"].as_str().map(str::to_owned),
            expires_at: self.now() + body["expires_in"].as_i64().unwrap_or(0),
            scope: body["scope"].as_str().map(str::to_owned),
        })
    }
}

/// A response header as text.
fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
