//! The verifier a relying app uses, fed only by discovery and the JWKS over HTTP: it verifies a
//! device's token and proof like the telemetry endpoint does, caches the key set, fetches again
//! for a new kid at most once per interval, and refuses metadata that names another issuer.

use std::sync::Arc;

use pairgate::crypto::jose;
use pairgate::verifier::jwks::{JwksCache, JwksPolicy};
use pairgate::verifier::{KeySource, ResourceRequest, Verifier, VerifierConfig, VerifyError};
use serde_json::Value;

use super::paired;
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_relying_app_verifies_device_tokens_from_discovery_and_jwks,
    unknown_kids_are_fetched_at_most_once_per_interval,
);

async fn relying_app(app: &TestApp) -> (Verifier, Arc<JwksCache>) {
    let (jwks, meta) =
        JwksCache::discover(reqwest::Client::new(), &app.base, JwksPolicy::default())
            .await
            .unwrap();
    assert_eq!(meta["issuer"], app.base);
    let jwks = Arc::new(jwks);
    let mut config = VerifierConfig::relying_app(&app.base, &app.url("/api"));
    config.token_cache_entries = 0;
    let verifier = Verifier::new(
        config,
        Arc::clone(&jwks) as Arc<dyn KeySource>,
        app.clock.clone(),
    );
    (verifier, jwks)
}

/// A fresh client_credentials token (a new one each call: `jti` differs).
async fn service_token(app: &TestApp, id: &str, secret: &str) -> String {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_relying_app_verifies_device_tokens_from_discovery_and_jwks(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7501").await;
    let (verifier, jwks) = relying_app(&app).await;
    assert_eq!(
        jwks.fetches(),
        0,
        "nothing is fetched before a key is needed"
    );

    // The relying app's own resource URL: the proof is bound to it.
    let url = app.url("/dashboard/ingest");
    let proof = p.device.dpop_with(
        "POST",
        "/dashboard/ingest",
        app.now(),
        serde_json::json!({}),
        serde_json::json!({ "ath": jose::sha256_b64(&p.access_token) }),
    );
    let auth = format!("DPoP {}", p.access_token);
    let verified = verifier
        .verify(&ResourceRequest {
            authorization: Some(&auth),
            dpop: std::slice::from_ref(&proof),
            method: "POST",
            url: &url,
        })
        .await
        .unwrap();
    assert_eq!(verified.claims.device.as_deref(), Some("SN-7501"));
    assert_eq!(verified.claims.tenant_id, Some(p.tenant.get()));
    assert!(verified.has_scope("telemetry:write"));
    assert_eq!(verified.proof.jkt, p.device.key.thumbprint());
    assert_eq!(jwks.fetches(), 1);

    // Another request, another proof: the key set is cached.
    let proof = p.device.dpop_with(
        "POST",
        "/dashboard/ingest",
        app.now(),
        serde_json::json!({}),
        serde_json::json!({ "ath": jose::sha256_b64(&p.access_token) }),
    );
    let wrong_url = app.url("/api/v1/telemetry");
    let refused = verifier
        .verify(&ResourceRequest {
            authorization: Some(&auth),
            dpop: std::slice::from_ref(&proof),
            method: "POST",
            url: &wrong_url,
        })
        .await;
    assert_eq!(
        refused.unwrap_err(),
        VerifyError::InvalidDpopProof("the DPoP proof's htu does not match the request URL")
    );
    assert_eq!(jwks.fetches(), 1);

    // A relying app with another audience refuses the token (RFC 9068 §4 step 3).
    let mut config = VerifierConfig::relying_app(&app.base, "https://other.example/api");
    config.token_cache_entries = 0;
    let other = Verifier::new(
        config,
        Arc::clone(&jwks) as Arc<dyn KeySource>,
        app.clock.clone(),
    );
    assert_eq!(
        other
            .verify_access_token(&p.access_token)
            .await
            .unwrap_err(),
        VerifyError::InvalidToken("the access token is not meant for this resource")
    );

    discovery_insists_on_the_issuer(&app).await;
}

/// Discovery insists that the metadata names the issuer asked for (RFC 8414 §3.3).
async fn discovery_insists_on_the_issuer(app: &TestApp) {
    let port = app.base.rsplit(':').next().unwrap();
    let alias = format!("http://localhost:{port}");
    let err = JwksCache::discover(reqwest::Client::new(), &alias, JwksPolicy::default())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("its issuer is not the one asked for"),
        "{err}"
    );
}

async fn unknown_kids_are_fetched_at_most_once_per_interval(backend: Backend) {
    // New keys sign a second later, so the relying app meets a kid it has not fetched.
    let app = TestApp::builder(backend)
        .config("[keys]\npublish_before_use_secs = 1\nring_reload_secs = 1")
        .start()
        .await;
    let (id, secret) = app.service_client_with_secret("erp").await;
    let (verifier, jwks) = relying_app(&app).await;
    let before = service_token(&app, &id, &secret).await;
    verifier.verify_access_token(&before).await.unwrap();
    assert_eq!(jwks.fetches(), 1);

    // (A second later: keys activating in the same millisecond would tie.)
    app.advance(1);
    app.ctx.oauth.rotate_signing_key("test").await.unwrap();
    app.advance(1);
    let after = service_token(&app, &id, &secret).await;
    // Within min_refetch (30 s) of the last fetch, an unknown kid is just unknown...
    assert_eq!(
        verifier.verify_access_token(&after).await.unwrap_err(),
        VerifyError::InvalidToken("the access token's signing key is not published")
    );
    assert_eq!(jwks.fetches(), 1);
    // ...after it, one fetch finds the new key.
    app.advance(30);
    let after = service_token(&app, &id, &secret).await;
    verifier.verify_access_token(&after).await.unwrap();
    assert_eq!(jwks.fetches(), 2);
    // A stream of made-up kids causes no fetch within the interval.
    let forged = pairgate::crypto::jose::b64(r#"{"alg":"EdDSA","typ":"at+jwt","kid":"made-up"}"#);
    let rest: Vec<&str> = after.split('.').skip(1).collect();
    let forged = format!("{forged}.{}", rest.join("."));
    for _ in 0..5 {
        assert!(verifier.verify_access_token(&forged).await.is_err());
    }
    assert_eq!(jwks.fetches(), 2);
    // The set expires after the JWKS max-age (keys.jwks_max_age_secs, 900 s) and is fetched
    // again at its next use.
    app.advance(901);
    let later = service_token(&app, &id, &secret).await;
    verifier.verify_access_token(&later).await.unwrap();
    assert_eq!(jwks.fetches(), 3);
}
