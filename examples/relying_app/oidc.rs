//! What the dashboard asks pairgate: its OpenID configuration, tokens for a code, the keys to
//! check an ID token with, and the person's devices and readings.

use pairgate_verifier::jose::CompactJws;
use serde_json::{Map, Value};
use url::Url;

use crate::sign_in::{Device, Fail, Rp, now_ms};

/// Clock difference tolerated on the ID token's `exp` and `iat`.
const SKEW_SECS: i64 = 60;
/// The most devices the page lists (each costs one telemetry read at sign-in).
const MAX_DEVICES: usize = 20;

/// OpenID Connect Discovery §4: the configuration, which must name the issuer it was read for.
pub(crate) async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Value, String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let res = http.get(&url).send().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("{url} answered {}", res.status()));
    }
    let meta: Value = res.json().await.map_err(|e| e.to_string())?;
    if meta["issuer"].as_str() != Some(issuer) {
        return Err(format!("{url} names another issuer"));
    }
    Ok(meta)
}

/// The token request (RFC 6749 §4.1.3 with RFC 7636 §4.5's verifier).
pub(crate) async fn redeem(rp: &Rp, code: &str, verifier: &str) -> Result<Value, Fail> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &rp.redirect_uri),
        ("client_id", &rp.client_id),
        ("code_verifier", verifier),
    ];
    if let Some(secret) = &rp.client_secret {
        form.push(("client_secret", secret));
    }
    let res = rp.http.post(&rp.token_endpoint).form(&form).send().await;
    let res = res.map_err(|e| Fail::Upstream(format!("The token endpoint: {e}")))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        let error = body["error"].as_str().unwrap_or("no error code");
        return Err(Fail::Refused(format!(
            "pairgate refused the code: {error}."
        )));
    }
    Ok(body)
}

/// OpenID Connect Core §3.1.3.7: the signature with the issuer's published key, then `typ`,
/// `iss`, `aud` (and `azp` when several), `exp`, `iat` and the `nonce` this sign-in sent.
pub(crate) async fn verify_id_token(
    rp: &Rp,
    token: &str,
    nonce: &str,
) -> Result<Map<String, Value>, Fail> {
    let bad = |why: &str| Fail::Refused(format!("The ID token was refused: {why}."));
    let jws = CompactJws::parse(token).map_err(|e| bad(&e.to_string()))?;
    let kid = jws
        .header_str("kid")
        .ok_or_else(|| bad("it names no key"))?;
    let now = now_ms();
    let key = match rp.jwks.key(kid, now).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(bad("its key is not one the issuer publishes")),
        Err(e) => return Err(Fail::Upstream(e.to_string())),
    };
    if !key.verify(&jws) {
        return Err(bad("its signature does not verify"));
    }
    let me = Some(rp.client_id.as_str());
    let aud_ok = match jws.claims.get("aud") {
        Some(Value::String(aud)) => *aud == rp.client_id,
        Some(Value::Array(auds)) => {
            auds.iter().any(|a| a.as_str() == me) && (auds.len() == 1 || jws.claim_str("azp") == me)
        }
        _ => false,
    };
    let secs = now / 1000;
    let checks = [
        (jws.header_str("typ") == Some("JWT"), "its typ is not JWT"),
        (
            jws.claim_str("iss") == Some(rp.issuer.as_str()),
            "another issuer signed it",
        ),
        (aud_ok, "it is meant for another app"),
        (
            jws.claim_time("exp").is_some_and(|t| secs < t + SKEW_SECS),
            "it has expired",
        ),
        (
            jws.claim_time("iat").is_some_and(|t| t <= secs + SKEW_SECS),
            "it is from the future",
        ),
        (
            jws.claim_str("nonce") == Some(nonce),
            "its nonce is not this sign-in's",
        ),
        (jws.claim_str("sub").is_some(), "it names nobody"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, why)) => Err(bad(why)),
        None => Ok(jws.claims),
    }
}

/// The devices the person may see (`GET /api/v1/devices`), each with its newest reading: the
/// readings from the device's `last_reading` on (`GET /api/v1/devices/{serial}/telemetry`, oldest
/// first), the last of them.
pub(crate) async fn read_devices(rp: &Rp, token: &str) -> Result<(Vec<Device>, i64), Fail> {
    let api = |segments: &[&str], query: &[(&str, &str)]| {
        let mut url = Url::parse(&format!("{}/api/v1/devices", rp.issuer)).ok()?;
        url.path_segments_mut().ok()?.extend(segments);
        url.query_pairs_mut().extend_pairs(query);
        Some(url)
    };
    let limit = MAX_DEVICES.to_string();
    let list = api_get(rp, api(&[], &[("limit", &limit)]), token).await?;
    let mut devices = Vec::new();
    for d in list["devices"].as_array().into_iter().flatten() {
        let serial = d["serial"].as_str().unwrap_or_default();
        let latest = match d["last_reading"].as_str() {
            Some(ts) => {
                let url = api(&[serial, "telemetry"], &[("from", ts), ("limit", "100")]);
                let series = api_get(rp, url, token).await?;
                series["readings"]
                    .as_array()
                    .and_then(|r| r.last())
                    .cloned()
            }
            None => None,
        };
        devices.push(Device {
            serial: serial.to_owned(),
            model: d["model"].as_str().unwrap_or_default().to_owned(),
            latest,
        });
    }
    Ok((devices, list["total"].as_i64().unwrap_or(0)))
}

/// A read with the person's access token (RFC 6750 §2.1).
async fn api_get(rp: &Rp, url: Option<Url>, token: &str) -> Result<Value, Fail> {
    let url = url.ok_or_else(|| Fail::Upstream("The issuer's URL takes no API path.".into()))?;
    let res = rp.http.get(url.clone()).bearer_auth(token).send().await;
    let res = res.map_err(|e| Fail::Upstream(format!("{}: {e}", url.path())))?;
    if !res.status().is_success() {
        return Err(Fail::Upstream(format!(
            "{} answered {}",
            url.path(),
            res.status()
        )));
    }
    res.json().await.map_err(|e| Fail::Upstream(e.to_string()))
}
