//! A device's OAuth client: discovery, the device authorization request, polling, refresh, each
//! request carrying a fresh client assertion and DPoP proof, with server nonces when asked.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DeviceKey;
use crate::clock::{Clock, SystemClock};

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

pub struct DeviceClient {
    http: reqwest::Client,
    serial: String,
    key: DeviceKey,
    issuer: String,
    token_endpoint: String,
    device_authorization_endpoint: String,
    nonce: Mutex<Option<String>>,
}

fn now() -> i64 {
    SystemClock.now().timestamp()
}

impl DeviceClient {
    /// Reads the server's metadata (RFC 8414) to find its endpoints.
    pub async fn discover(server: &str, serial: &str, key: DeviceKey) -> Result<Self, SimError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("pairgate-device/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| SimError::Http {
                url: server.into(),
                source,
            })?;
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
        Ok(Self {
            issuer: field("issuer")?,
            token_endpoint: field("token_endpoint")?,
            device_authorization_endpoint: field("device_authorization_endpoint")?,
            http,
            serial: serial.to_owned(),
            key,
            nonce: Mutex::new(None),
        })
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
            let t = now();
            let nonce = self.nonce.lock().map(|n| n.clone()).unwrap_or(None);
            let assertion = self
                .key
                .client_assertion(&self.serial, &self.issuer, t)
                .map_err(|_| SimError::Key)?;
            let proof = self
                .key
                .dpop_proof("POST", url, t, nonce.as_deref(), None)
                .map_err(|_| SimError::Key)?;
            let mut all = form.to_vec();
            all.push(("client_assertion_type", JWT_BEARER));
            all.push(("client_assertion", &assertion));
            let res = self
                .http
                .post(url)
                .header("DPoP", proof)
                .form(&all)
                .send()
                .await
                .map_err(|source| SimError::Http {
                    url: url.into(),
                    source,
                })?;
            if let Some(n) = res
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
            {
                if let Ok(mut slot) = self.nonce.lock() {
                    *slot = Some(n.to_owned());
                }
            }
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if body["error"] == "use_dpop_nonce" {
                continue;
            }
            return Ok((status, body));
        }
        Err(SimError::Protocol {
            url: url.into(),
            reason: "the server keeps asking for a new DPoP nonce".into(),
        })
    }

    /// Starts pairing, binding the flow to this device's key.
    pub async fn start_pairing(&self) -> Result<Authorization, SimError> {
        let url = self.device_authorization_endpoint.clone();
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
        let url = self.token_endpoint.clone();
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
        let url = self.token_endpoint.clone();
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
            expires_at: now() + body["expires_in"].as_i64().unwrap_or(0),
            scope: body["scope"].as_str().map(str::to_owned),
        })
    }
}
