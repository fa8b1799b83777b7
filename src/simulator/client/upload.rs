//! Telemetry uploads: the readings as the endpoint reads them, the upload under the device's
//! DPoP-bound access token, and what the endpoint made of it.

use serde::{Deserialize, Serialize};

use super::{DeviceClient, SimError, header};

/// A telemetry reading as the device sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReading {
    pub id: String,
    /// Unix ms.
    pub ts: i64,
    pub metrics: Vec<(String, f64)>,
}

/// Written as the upload endpoint reads it: `{"id", "ts", "metrics": {name: number}}`.
impl Serialize for SimReading {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeStruct};
        struct Metrics<'a>(&'a [(String, f64)]);
        impl Serialize for Metrics<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
        let mut reading = serializer.serialize_struct("SimReading", 3)?;
        reading.serialize_field("id", &self.id)?;
        reading.serialize_field("ts", &self.ts)?;
        reading.serialize_field("metrics", &Metrics(&self.metrics))?;
        reading.end()
    }
}

/// An upload's body.
#[derive(Serialize)]
struct UploadBody<'a> {
    readings: &'a [SimReading],
}

/// The upload endpoint's answer: the counts, or an error.
#[derive(Deserialize, Default)]
#[serde(default)]
struct UploadAnswer {
    accepted: u64,
    duplicates: u64,
    error: String,
    error_description: String,
}

/// What the telemetry endpoint made of an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadResult {
    /// Committed: every reading is stored, now or by an earlier attempt.
    Stored { accepted: u64, duplicates: u64 },
    /// 401 `invalid_token`: the access token expired or was revoked; refresh, then retry.
    TokenRejected(String),
    /// Another 4xx: the server will never take this batch as it is.
    Rejected { status: u16, error: String },
    /// 429 or 5xx: retry later (after `retry_after` seconds when given).
    RetryLater {
        status: u16,
        retry_after: Option<u64>,
    },
}

impl DeviceClient {
    /// Uploads readings under `access_token` with a fresh DPoP proof (`ath`, `htm`, `htu`, the
    /// server's nonce); asks again once when the server wants a new nonce.
    pub async fn upload(
        &self,
        access_token: &str,
        readings: &[SimReading],
    ) -> Result<UploadResult, SimError> {
        let url = self.endpoints.telemetry_endpoint.as_str();
        let offset_before = self.clock_offset_secs();
        for _ in 0..2 {
            // Readings were stamped by the device's clock: if the server's Date has just set
            // it, their times move with it.
            let shift_ms = (self.clock_offset_secs() - offset_before) * 1000;
            let body = upload_body(readings, shift_ms).map_err(|_| SimError::Protocol {
                url: url.into(),
                reason: "a reading cannot be written as JSON".into(),
            })?;
            let nonce = self.current_nonce();
            let proof = self
                .key
                .dpop_proof(
                    "POST",
                    url,
                    self.now(),
                    nonce.as_deref(),
                    Some(access_token),
                )
                .map_err(|_| SimError::Key)?;
            let request = self
                .http
                .post(url)
                .header("Authorization", format!("DPoP {access_token}"))
                .header("DPoP", proof)
                .header("Content-Type", "application/json")
                .body(body);
            let res = self.send(url, request).await?;
            let date = header(&res, "date");
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let answer: UploadAnswer = match res.bytes().await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                Err(_) => UploadAnswer::default(),
            };
            let error = answer.error;
            return Ok(match status {
                200 => UploadResult::Stored {
                    accepted: answer.accepted,
                    duplicates: answer.duplicates,
                },
                401 if error == "use_dpop_nonce" => {
                    self.set_clock_from(date.as_deref());
                    continue;
                }
                401 if error == "invalid_token" => {
                    UploadResult::TokenRejected(answer.error_description)
                }
                429 | 500.. => UploadResult::RetryLater {
                    status,
                    retry_after,
                },
                _ => UploadResult::Rejected { status, error },
            });
        }
        Err(SimError::Protocol {
            url: url.into(),
            reason: "the server keeps asking for a new DPoP nonce".into(),
        })
    }
}

/// An upload's body, each reading's time moved by `shift_ms`.
fn upload_body(readings: &[SimReading], shift_ms: i64) -> serde_json::Result<Vec<u8>> {
    if shift_ms == 0 {
        return serde_json::to_vec(&UploadBody { readings });
    }
    let shifted: Vec<SimReading> = readings
        .iter()
        .map(|r| SimReading {
            ts: r.ts + shift_ms,
            ..r.clone()
        })
        .collect();
    serde_json::to_vec(&UploadBody { readings: &shifted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_body_is_what_the_endpoint_reads() {
        let readings = [
            SimReading {
                id: "boot-1".into(),
                ts: 1_700_000_000_000,
                metrics: vec![("temperature".into(), 21.5), ("humidity".into(), 45.0)],
            },
            SimReading {
                id: "boot-2".into(),
                ts: 1_700_000_060_000,
                metrics: vec![("pressure".into(), 1013.25)],
            },
        ];
        let body = serde_json::to_string(&UploadBody {
            readings: &readings,
        })
        .unwrap();
        assert_eq!(
            body,
            concat!(
                r#"{"readings":[{"id":"boot-1","ts":1700000000000,"#,
                r#""metrics":{"temperature":21.5,"humidity":45.0}},"#,
                r#"{"id":"boot-2","ts":1700000060000,"metrics":{"pressure":1013.25}}]}"#,
            )
        );
        // And the server's own parser takes it.
        let limits = crate::telemetry::batch::Limits {
            max_readings: 10,
            max_metrics: 10,
            max_age_ms: 86_400_000,
            max_future_ms: 60_000,
        };
        let parsed = crate::telemetry::batch::parse(body.as_bytes(), &limits, 1_700_000_100_000);
        assert_eq!(parsed.map(|r| r.len()), Ok(2));
    }
}
