//! Discovery (RFC 8414) and JWKS, and a relying-app style verification that uses nothing else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::service_clients::basic;
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    metadata_document_follows_rfc_8414,
    every_advertised_endpoint_exists,
    jwks_publishes_public_signing_keys_only,
    a_rotated_key_is_published_before_use_and_kept_until_its_tokens_expire,
    tokens_are_signed_with_es256_when_configured,
);

/// Verifies an access token as a relying app would: metadata → jwks_uri → key by kid → signature,
/// `typ`, issuer, audience, expiry. Returns the claims.
pub async fn verify_with_jwks(app: &TestApp, token: &str) -> Value {
    let meta: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let jwks: JwkSet = app
        .client
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    // Both of jsonwebtoken's providers are built for the tests: it needs one named.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[meta["issuer"].as_str().unwrap()]);
    validation.set_audience(&[app.url("/api")]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("token verifies with the published JWKS")
        .claims
}

/// The metadata document, after checking the response.
async fn metadata(app: &TestApp) -> Value {
    let res = app.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "RFC 8414 §3.2"
    );
    res.json().await.unwrap()
}

/// The JWK Set, after checking the response.
async fn jwks(app: &TestApp) -> Value {
    let res = app.get("/oauth/jwks").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/jwk-set+json",
        "RFC 7517 §8.5.1"
    );
    res.json().await.unwrap()
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The RFC 7638 thumbprint of a public JWK, computed here from the RFC rather than by pairgate:
/// the required members only, in lexicographic order, no whitespace, SHA-256, base64url.
fn rfc7638_thumbprint(jwk: &Value) -> String {
    let required: &[&str] = match jwk["kty"].as_str().unwrap() {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        other => panic!("unexpected kty {other}"),
    };
    let members: Vec<String> = required
        .iter()
        .map(|m| format!("{}:{}", json!(m), jwk[*m]))
        .collect();
    let canonical = format!("{{{}}}", members.join(","));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A fresh access token from the client_credentials grant.
async fn service_token(app: &TestApp, client: &(String, String)) -> String {
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&client.0, &client.1))],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn metadata_document_follows_rfc_8414(backend: Backend) {
    let app = TestApp::start(backend).await;
    let meta = metadata(&app).await;

    // §3.3: the issuer is exactly the URL the document was fetched under, minus the well-known
    // suffix; every endpoint lives under it.
    assert_eq!(meta["issuer"], app.base);
    for (name, value) in meta.as_object().unwrap() {
        if name.ends_with("_endpoint") || name.ends_with("_uri") {
            assert!(
                value.as_str().unwrap().starts_with(&app.base),
                "{name} is not under the issuer"
            );
        }
    }
    assert_eq!(meta["token_endpoint"], app.url("/oauth/token"));
    assert_eq!(meta["jwks_uri"], app.url("/oauth/jwks"));
    assert_eq!(
        meta["device_authorization_endpoint"],
        app.url("/oauth/device_authorization"),
        "RFC 8628 §4"
    );
    assert_eq!(meta["introspection_endpoint"], app.url("/oauth/introspect"));
    assert_eq!(meta["revocation_endpoint"], app.url("/oauth/revoke"));
    // §2: response_types_supported is REQUIRED (and a list).
    assert!(
        !meta["response_types_supported"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let grants = meta["grant_types_supported"].as_array().unwrap();
    for grant in [
        "urn:ietf:params:oauth:grant-type:device_code",
        "refresh_token",
        "client_credentials",
    ] {
        assert!(grants.contains(&json!(grant)), "{grant} not advertised");
    }
    // §2: with private_key_jwt offered, the signing algs MUST be listed, and "none" MUST NOT be.
    for endpoint in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let methods = meta[format!("{endpoint}_auth_methods_supported")]
            .as_array()
            .unwrap();
        assert!(methods.contains(&json!("private_key_jwt")), "{endpoint}");
        let algs = meta[format!("{endpoint}_auth_signing_alg_values_supported")]
            .as_array()
            .unwrap();
        assert!(!algs.is_empty(), "{endpoint}");
        assert!(!algs.contains(&json!("none")), "{endpoint}");
    }
    // RFC 9449 §5.1.
    let dpop = meta["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(dpop.contains(&json!("ES256")) && dpop.contains(&json!("EdDSA")));
    assert!(!dpop.contains(&json!("none")));

    let redacted: Value =
        serde_json::from_str(&meta.to_string().replace(&app.base, "[base]")).unwrap();
    insta::assert_json_snapshot!("authorization_server_metadata", redacted);
}

async fn every_advertised_endpoint_exists(backend: Backend) {
    let app = TestApp::start(backend).await;
    let meta = metadata(&app).await;
    // The POST endpoints answer an empty request with an OAuth error, not a 404.
    for endpoint in [
        "token_endpoint",
        "device_authorization_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        let res = app
            .client
            .post(meta[endpoint].as_str().unwrap())
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{endpoint}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{endpoint}: {body}");
    }
    let res = app
        .client
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn jwks_publishes_public_signing_keys_only(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[keys]\njwks_max_age_secs = 120")
        .start()
        .await;
    let res = app.get("/oauth/jwks").await;
    assert_eq!(res.headers()["cache-control"], "public, max-age=120");
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{set}");
    for key in keys {
        let members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for member in &members {
            assert!(
                ["kty", "crv", "x", "y", "kid", "use", "alg"].contains(member),
                "unexpected member {member} in {key}"
            );
        }
        assert!(key.get("d").is_none(), "private key published: {key}");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(
            key["kid"],
            rfc7638_thumbprint(key),
            "kid is not the thumbprint"
        );
    }
    // Tokens name the published key.
    let client = app.service_client_with_secret("erp").await;
    let token = service_token(&app, &client).await;
    assert_eq!(kids(&set), [kid_of(&token)]);
    verify_with_jwks(&app, &token).await;
}

async fn a_rotated_key_is_published_before_use_and_kept_until_its_tokens_expire(backend: Backend) {
    // Defaults: publish_before_use_secs 3600, access tokens 600 s, clock skew 30 s.
    let app = TestApp::start(backend).await;
    let client = app.service_client_with_secret("erp").await;
    let old = kids(&jwks(&app).await);
    assert_eq!(old.len(), 1);
    let old = old[0].clone();

    let new = app.ctx.oauth.rotate_signing_key("test").await.unwrap();
    assert_ne!(new, old);
    // Published at once, so relying parties' caches fill before the key signs anything...
    let set = jwks(&app).await;
    assert_eq!(kids(&set).len(), 2, "{set}");
    assert!(kids(&set).contains(&old) && kids(&set).contains(&new));
    let published_new = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == new)
        .unwrap();
    assert_eq!(published_new["kid"], rfc7638_thumbprint(published_new));
    // ...while tokens are still signed by the old key, until the publication period is over.
    assert_eq!(kid_of(&service_token(&app, &client).await), old);
    app.advance(3599);
    let last_old = service_token(&app, &client).await;
    assert_eq!(kid_of(&last_old), old);

    app.advance(1);
    let first_new = service_token(&app, &client).await;
    assert_eq!(kid_of(&first_new), new);
    verify_with_jwks(&app, &first_new).await;
    // The old key's last token is still verifiable, from the JWKS alone.
    assert!(kids(&jwks(&app).await).contains(&old));
    verify_with_jwks(&app, &last_old).await;

    // Kept until the old tokens expired: lifetime (600 s) plus clock skew (30 s).
    app.advance(629);
    assert!(kids(&jwks(&app).await).contains(&old));
    app.advance(1);
    assert_eq!(kids(&jwks(&app).await), std::slice::from_ref(&new));
    verify_with_jwks(&app, &service_token(&app, &client).await).await;

    let events = app.ctx.store.audit_page(None, None, 100).await.unwrap();
    let rotated = events
        .iter()
        .find(|e| e.action == "keys.rotated")
        .expect("rotation audited");
    assert_eq!(rotated.subject, format!("key:{new}"));
}

async fn tokens_are_signed_with_es256_when_configured(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[keys]\nsigning_alg = \"ES256\"")
        .start()
        .await;
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{set}");
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["kid"], rfc7638_thumbprint(&keys[0]));
    assert!(keys[0].get("d").is_none());

    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-5001").await;
    let tokens = app.pair(&device, tenant).await;
    let token = tokens["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), keys[0]["kid"].as_str());
    let claims = verify_with_jwks(&app, token).await;
    assert_eq!(claims["cnf"]["jkt"], device.key.thumbprint());
}
