//! Discovery (RFC 8414) and JWKS, and a relying-app style verification that uses nothing else.

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

use crate::support::TestApp;

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
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[meta["issuer"].as_str().unwrap()]);
    validation.set_audience(&[app.url("/api")]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("token verifies with the published JWKS")
        .claims
}
