//! Every refusal of the upload endpoint as a resource server: the challenge (RFC 6750 §3,
//! RFC 9449 §7.1), the RFC 9068 §4 token checks, the RFC 9449 §4.3 proof checks with `ath`,
//! replay through the shared replay store, nonces (§9), scope, and the device the token names.
//! Tokens with one thing wrong are minted with pairgate's own key ring, so that only that one
//! check can fail.

use pairgate::crypto::jose;
use serde_json::{Value, json};

use super::{Paired, UPLOAD, accepted, paired, readings, refusal, stored, upload_with};
use crate::backend_tests;
use crate::support::device::Signer;
use crate::support::device::TestDevice;
use crate::support::{Backend, TestApp};

backend_tests!(
    no_credentials_get_a_bare_dpop_challenge,
    other_schemes_and_malformed_headers_are_refused,
    tokens_failing_rfc_9068_checks_are_refused,
    tokens_not_bound_to_a_key_are_refused,
    proofs_failing_rfc_9449_checks_are_refused,
    a_replayed_proof_is_refused,
    the_scope_and_the_device_come_from_the_token,
    nonce_mode_asks_for_a_nonce_then_accepts_it,
    a_proof_out_of_the_window_gets_a_nonce_and_the_time,
    one_credential_per_request,
);

const ALGS: &str = "algs=\"ES256 EdDSA\"";

/// The claims of a token (not verified: the test made it).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&jose::b64_decode(payload).unwrap()).unwrap()
}

/// A token like `p`'s, with claims changed (`null` removes one), signed by pairgate's ring.
fn mint(app: &TestApp, p: &Paired, typ: &str, changes: Value) -> String {
    let mut claims = claims_of(&p.access_token);
    if let (Some(c), Value::Object(o)) = (claims.as_object_mut(), changes) {
        for (k, v) in o {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    app.ctx
        .oauth
        .keys()
        .sign(typ, &claims, app.now() * 1000)
        .unwrap()
}

async fn assert_refused(res: reqwest::Response, status: u16, code: &str, description: &str) {
    let (got, challenge, body) = refusal(res).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{code}\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("error_description=\"{description}\"")),
        "{challenge}"
    );
    assert!(challenge.contains(ALGS), "{challenge}");
}

async fn no_credentials_get_a_bare_dpop_challenge(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app
        .client
        .post(app.url(UPLOAD))
        .json(&readings(&app, "r", 1))
        .send()
        .await
        .unwrap();
    let (status, challenge, body) = refusal(res).await;
    assert_eq!(status, 401);
    // RFC 6750 §3.1: no error code when the request carried no credentials at all.
    assert_eq!(challenge, format!("DPoP {ALGS}"));
    insta::assert_json_snapshot!("telemetry_missing_token_error", body);
}

async fn other_schemes_and_malformed_headers_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7201").await;
    let body = readings(&app, "r", 1);
    let send = |auth: String| {
        let proof = p.device.dpop_with(
            "POST",
            UPLOAD,
            app.now(),
            json!({}),
            json!({ "ath": jose::sha256_b64(&p.access_token) }),
        );
        app.client
            .post(app.url(UPLOAD))
            .header("Authorization", auth)
            .header("DPoP", proof)
            .json(&body)
            .send()
    };
    // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused.
    assert_refused(
        send(format!("Bearer {}", p.access_token)).await.unwrap(),
        401,
        "invalid_token",
        "this resource takes DPoP-bound tokens under the DPoP scheme only",
    )
    .await;
    for bad in ["DPoP", "DPoP a b", "DPoP a\"b"] {
        assert_refused(
            send(bad.to_owned()).await.unwrap(),
            400,
            "invalid_request",
            "the Authorization header is malformed",
        )
        .await;
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    assert_eq!(
        accepted(send(format!("dpop {}", p.access_token)).await.unwrap()).await,
        (1, 0)
    );
}

async fn tokens_failing_rfc_9068_checks_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7202").await;
    let body = readings(&app, "r", 1);
    let issuer = app.base.clone();
    let now = app.now();
    let cases = [
        (
            mint(&app, &p, "JWT", json!({})),
            "the access token's typ must be at+jwt",
        ),
        (
            mint(
                &app,
                &p,
                "at+jwt",
                json!({ "iss": format!("{issuer}/other") }),
            ),
            "the access token comes from another issuer",
        ),
        (
            mint(
                &app,
                &p,
                "at+jwt",
                json!({ "aud": format!("{issuer}/elsewhere") }),
            ),
            "the access token is not meant for this resource",
        ),
        (
            mint(
                &app,
                &p,
                "at+jwt",
                json!({ "aud": [format!("{issuer}/elsewhere")] }),
            ),
            "the access token is not meant for this resource",
        ),
        (
            mint(&app, &p, "at+jwt", json!({ "exp": now - 1 })),
            "the access token has expired",
        ),
        (
            mint(&app, &p, "at+jwt", json!({ "exp": null })),
            "the access token has no exp",
        ),
        (
            mint(&app, &p, "at+jwt", json!({ "iat": now + 60 })),
            "the access token is not valid yet",
        ),
        (
            mint(&app, &p, "at+jwt", json!({ "jti": null })),
            "the access token lacks a required claim",
        ),
    ];
    for (token, description) in cases {
        let res = upload_with(&app, &p.device, &token, &body, json!({})).await;
        assert_refused(res, 401, "invalid_token", description).await;
    }
    // An audience list naming this resource is fine (RFC 7519 §4.1.3).
    let listed = mint(
        &app,
        &p,
        "at+jwt",
        json!({ "aud": [format!("{issuer}/x"), format!("{issuer}/api")] }),
    );
    assert_eq!(
        accepted(upload_with(&app, &p.device, &listed, &body, json!({})).await).await,
        (1, 0)
    );

    // Signatures: a changed payload, a foreign key, a made-up kid, and algorithms off the list.
    let parts: Vec<&str> = p.access_token.split('.').collect();
    let mut claims = claims_of(&p.access_token);
    claims["scope"] = json!("telemetry:write erp");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        jose::b64(claims.to_string()),
        parts[2]
    );
    let header: Value = serde_json::from_slice(&jose::b64_decode(parts[0]).unwrap()).unwrap();
    let foreign = Signer::ed25519().sign(
        json!({ "typ": "at+jwt", "kid": header["kid"] }),
        &claims_of(&p.access_token),
    );
    let unknown_kid = Signer::ed25519().sign(
        json!({ "typ": "at+jwt", "kid": "nobody" }),
        &claims_of(&p.access_token),
    );
    let no_kid = Signer::ed25519().sign(json!({ "typ": "at+jwt" }), &claims_of(&p.access_token));
    let hs256 = format!(
        "{}.{}.{}",
        jose::b64(r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#),
        parts[1],
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        jose::b64(r#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    let cases = [
        (tampered, "the access token's signature does not verify"),
        (foreign, "the access token's signature does not verify"),
        (
            unknown_kid,
            "the access token's signing key is not published",
        ),
        (no_kid, "the access token has no kid"),
        (
            hs256,
            "the access token is not a JWS with an accepted algorithm",
        ),
        (
            none,
            "the access token is not a JWS with an accepted algorithm",
        ),
        (
            "not-a-jwt".to_owned(),
            "the access token is not a JWS with an accepted algorithm",
        ),
    ];
    for (token, description) in cases {
        let res = upload_with(&app, &p.device, &token, &body, json!({})).await;
        assert_refused(res, 401, "invalid_token", description).await;
    }
    assert_eq!(stored(&app, "SN-7202").await, 1);
}

async fn tokens_not_bound_to_a_key_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7203").await;
    // A service client's bearer token (client_credentials) is not DPoP-bound.
    let (id, secret) = app.service_client_with_secret("erp").await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let bearer = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = upload_with(&app, &p.device, &bearer, &readings(&app, "r", 1), json!({})).await;
    assert_refused(
        res,
        401,
        "invalid_token",
        "the access token is not bound to a DPoP key",
    )
    .await;
    // The device's own token without its cnf is no better.
    let unbound = mint(&app, &p, "at+jwt", json!({ "cnf": null }));
    let res = upload_with(
        &app,
        &p.device,
        &unbound,
        &readings(&app, "r", 1),
        json!({}),
    )
    .await;
    assert_refused(
        res,
        401,
        "invalid_token",
        "the access token is not bound to a DPoP key",
    )
    .await;
}

async fn proofs_failing_rfc_9449_checks_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7204").await;
    let body = readings(&app, "r", 1);
    let token = p.access_token.clone();
    let send = |proofs: Vec<String>| {
        let mut req = app
            .client
            .post(app.url(UPLOAD))
            .header("Authorization", format!("DPoP {token}"))
            .json(&body);
        for proof in proofs {
            req = req.header("DPoP", proof);
        }
        req.send()
    };
    let ath = jose::sha256_b64(&token);
    let proof = |device: &TestDevice, method: &str, path: &str, claims: Value| {
        // `null` is passed on: dpop_with removes the claim.
        let mut c = json!({ "ath": ath });
        if let (Some(m), Value::Object(o)) = (c.as_object_mut(), claims) {
            m.extend(o);
        }
        device.dpop_with(method, path, app.now(), json!({}), c)
    };
    let d = &p.device;
    let port = app.base.rsplit(':').next().unwrap();
    let cases = [
        (vec![], "a DPoP proof is required with a DPoP-bound token"),
        (
            vec![
                proof(d, "POST", UPLOAD, json!({})),
                proof(d, "POST", UPLOAD, json!({})),
            ],
            "more than one DPoP header",
        ),
        (
            vec!["garbage".to_owned()],
            "the DPoP proof is not a valid JWS with an allowed alg",
        ),
        (
            vec![proof(d, "GET", UPLOAD, json!({}))],
            "the DPoP proof's htm does not match the request method",
        ),
        (
            vec![proof(d, "POST", "/api/v1/other", json!({}))],
            "the DPoP proof's htu does not match the request URL",
        ),
        // htu is built from the configured public URL, never from the Host header.
        (
            vec![proof(
                d,
                "POST",
                UPLOAD,
                json!({ "htu": format!("http://localhost:{port}{UPLOAD}") }),
            )],
            "the DPoP proof's htu does not match the request URL",
        ),
        (
            vec![proof(
                d,
                "POST",
                UPLOAD,
                json!({ "ath": jose::sha256_b64("another token") }),
            )],
            "the DPoP proof's ath does not match the access token",
        ),
        (
            vec![proof(d, "POST", UPLOAD, json!({ "ath": null }))],
            "the DPoP proof's ath does not match the access token",
        ),
        (
            vec![proof(d, "POST", UPLOAD, json!({ "jti": null }))],
            "the DPoP proof needs a jti",
        ),
        (
            vec![d.dpop_with(
                "POST",
                UPLOAD,
                app.now(),
                json!({ "typ": "JWT" }),
                json!({ "ath": ath }),
            )],
            "the DPoP proof's typ must be dpop+jwt",
        ),
        // A key of small order, with a signature forged to verify.
        (
            vec![crate::oauth::weak_keys::forged_proof(
                &app,
                &crate::oauth::weak_keys::identity(),
                "POST",
                UPLOAD,
                json!({ "ath": ath }),
            )],
            crate::oauth::weak_keys::BAD_JWK,
        ),
    ];
    for (proofs, description) in cases {
        assert_refused(
            send(proofs).await.unwrap(),
            401,
            "invalid_dpop_proof",
            description,
        )
        .await;
    }
    // A proof by another key than the token's cnf.jkt: the token is being used by someone else.
    let thief = TestDevice {
        serial: d.serial.clone(),
        key: Signer::es256(),
        issuer: app.base.clone(),
    };
    assert_refused(
        send(vec![proof(&thief, "POST", UPLOAD, json!({}))])
            .await
            .unwrap(),
        401,
        "invalid_token",
        "the access token is bound to another key than the proof's",
    )
    .await;
    assert_eq!(stored(&app, "SN-7204").await, 0);
}

async fn a_replayed_proof_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7205").await;
    let body = readings(&app, "r", 2);
    let proof = p.device.dpop_with(
        "POST",
        UPLOAD,
        app.now(),
        json!({}),
        json!({ "ath": jose::sha256_b64(&p.access_token) }),
    );
    let send = || {
        app.client
            .post(app.url(UPLOAD))
            .header("Authorization", format!("DPoP {}", p.access_token))
            .header("DPoP", &proof)
            .json(&body)
            .send()
    };
    assert_eq!(accepted(send().await.unwrap()).await, (2, 0));
    assert_refused(
        send().await.unwrap(),
        401,
        "invalid_dpop_proof",
        "the DPoP proof was used before",
    )
    .await;
    // The replay store is the one the token endpoint uses: a proof is good once, anywhere.
    let (first, second) = tokio::join!(send(), send());
    for res in [first.unwrap(), second.unwrap()] {
        assert_eq!(res.status(), 401);
    }
    let res = app.get("/metrics").await.text().await.unwrap();
    assert!(
        res.contains("/api/v1/telemetry"),
        "uploads show in the metrics"
    );
}

async fn the_scope_and_the_device_come_from_the_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7206").await;
    let other = super::pair_into(&app, "SN-7207", p.tenant).await;
    let body = readings(&app, "r", 1);

    let erp = mint(&app, &p, "at+jwt", json!({ "scope": "erp" }));
    let (status, challenge, answer) =
        refusal(upload_with(&app, &p.device, &erp, &body, json!({})).await).await;
    assert_eq!(status, 403);
    assert_eq!(answer["error"], "insufficient_scope");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"telemetry:write\""),
        "{challenge}"
    );

    let not_a_device = "the access token is not a paired device's";
    for changes in [
        json!({ "device": null }),
        json!({ "tenant_id": null }),
        json!({ "gen": null }),
        json!({ "sub": "device:SN-7207" }),
        json!({ "client_id": "SN-7207" }),
    ] {
        let token = mint(&app, &p, "at+jwt", changes.clone());
        let res = upload_with(&app, &p.device, &token, &body, json!({})).await;
        assert_refused(res, 401, "invalid_token", not_a_device).await;
    }
    // A token naming the other device (signed by pairgate, bound to this key) writes nowhere:
    // the device's generation and tenant are checked at commit, and this one's are not its.
    let claims = claims_of(&other.access_token);
    let wrong_tenant = mint(
        &app,
        &p,
        "at+jwt",
        json!({ "tenant_id": p.tenant.get() + 1 }),
    );
    let res = upload_with(&app, &p.device, &wrong_tenant, &body, json!({})).await;
    assert_refused(
        res,
        401,
        "invalid_token",
        "the device's tokens have been revoked",
    )
    .await;
    let wrong_gen = mint(
        &app,
        &p,
        "at+jwt",
        json!({ "gen": claims["gen"].as_i64().unwrap() + 5 }),
    );
    let res = upload_with(&app, &p.device, &wrong_gen, &body, json!({})).await;
    assert_refused(
        res,
        401,
        "invalid_token",
        "the device's tokens have been revoked",
    )
    .await;
    assert_eq!(
        stored(&app, "SN-7206").await + stored(&app, "SN-7207").await,
        0
    );
}

async fn nonce_mode_asks_for_a_nonce_then_accepts_it(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[oauth]\ndpop_require_nonce = true")
        .start()
        .await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-7208").await;
    // Pairing in nonce mode: the helpers' first requests are answered with a nonce to use.
    let started = app.device_authorization(&device).await;
    let nonce = started.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let assertion = device.assertion(app.now());
    let proof = device.dpop_with(
        "POST",
        "/oauth/device_authorization",
        app.now(),
        json!({}),
        json!({ "nonce": nonce }),
    );
    let started: Value = app
        .post_form(
            "/oauth/device_authorization",
            &[
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await
        .json()
        .await
        .unwrap();
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            pairgate::oauth::device_flow::Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    let assertion = device.assertion(app.now());
    let proof = device.dpop_with(
        "POST",
        "/oauth/token",
        app.now(),
        json!({}),
        json!({ "nonce": nonce }),
    );
    let tokens: Value = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", crate::support::DEVICE_CODE_GRANT),
                ("device_code", started["device_code"].as_str().unwrap()),
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let body = readings(&app, "r", 1);

    let res = upload_with(&app, &device, token, &body, json!({})).await;
    let fresh = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_refused(
        res,
        401,
        "use_dpop_nonce",
        "a DPoP nonce is required; use the DPoP-Nonce header",
    )
    .await;
    let res = upload_with(&app, &device, token, &body, json!({ "nonce": fresh })).await;
    assert!(
        res.headers().contains_key("dpop-nonce"),
        "answers keep the nonce fresh"
    );
    assert_eq!(accepted(res).await, (1, 0));
    // A nonce also excuses a device clock that is far off (RFC 9449 §8).
    let res = upload_with(
        &app,
        &device,
        token,
        &readings(&app, "s", 1),
        json!({ "nonce": fresh, "iat": app.now() - 3600 }),
    )
    .await;
    assert_eq!(accepted(res).await, (1, 0));
}

/// RFC 9449 §9: a proof whose iat is out of the window gets 401 `use_dpop_nonce` with a
/// `DPoP-Nonce` (nonces are not required here) and pairgate's time in `Date`; with the nonce, the
/// same clock gets in. A nonce pairgate never issued gets `use_dpop_nonce`, however recent the
/// proof.
async fn a_proof_out_of_the_window_gets_a_nonce_and_the_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    // pairgate's clock an hour ahead of the machine's: the Date must be pairgate's.
    app.advance(3600);
    let p = paired(&app, "SN-7209").await;
    for iat in [120, app.now() - 91, app.now() + 31] {
        let res = upload_with(
            &app,
            &p.device,
            &p.access_token,
            &readings(&app, &format!("w{iat}"), 1),
            json!({ "iat": iat }),
        )
        .await;
        let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        assert_eq!(
            crate::oauth::server_date(&res),
            app.now(),
            "Date is pairgate's clock"
        );
        assert_refused(
            res,
            401,
            "use_dpop_nonce",
            "a DPoP nonce is required; use the DPoP-Nonce header",
        )
        .await;
        let res = upload_with(
            &app,
            &p.device,
            &p.access_token,
            &readings(&app, &format!("w{iat}"), 1),
            json!({ "iat": iat, "nonce": nonce }),
        )
        .await;
        assert_eq!(accepted(res).await, (1, 0), "iat {iat} with the nonce");
    }
    let forged = upload_with(
        &app,
        &p.device,
        &p.access_token,
        &readings(&app, "forged", 1),
        json!({ "nonce": jose::b64([7u8; 24]) }),
    )
    .await;
    assert!(forged.headers().contains_key("dpop-nonce"));
    assert_refused(
        forged,
        401,
        "use_dpop_nonce",
        "a DPoP nonce is required; use the DPoP-Nonce header",
    )
    .await;
    assert_eq!(stored(&app, "SN-7209").await, 3);
}

/// RFC 6750 §3.1: the token comes one way, once. Two Authorization lines (even both right), or
/// a token in the query or a form body as well, are `invalid_request`, never "the first wins".
async fn one_credential_per_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7210").await;
    let token = p.access_token.clone();
    let header = format!("DPoP {token}");
    let proof = || {
        p.device.dpop_with(
            "POST",
            UPLOAD,
            app.now(),
            json!({}),
            json!({ "ath": jose::sha256_b64(&token) }),
        )
    };
    let json_body = readings(&app, "one", 1);
    let cases: Vec<(&str, reqwest::RequestBuilder, &str)> = vec![
        (
            "two Authorization lines",
            app.client
                .post(app.url(UPLOAD))
                .header("Authorization", &header)
                .header("Authorization", &header)
                .header("DPoP", proof())
                .json(&json_body),
            "send one Authorization header, not several",
        ),
        (
            "header and query",
            app.client
                .post(format!("{}?access_token={token}", app.url(UPLOAD)))
                .header("Authorization", &header)
                .header("DPoP", proof())
                .json(&json_body),
            "send the access token one way only, in the Authorization header",
        ),
        (
            "query only",
            app.client
                .post(format!("{}?access_token={token}", app.url(UPLOAD)))
                .header("DPoP", proof())
                .json(&json_body),
            "send the access token in the Authorization header",
        ),
        (
            "header and form body",
            app.client
                .post(app.url(UPLOAD))
                .header("Authorization", &header)
                .header("DPoP", proof())
                .form(&[("access_token", token.as_str())]),
            "send the access token one way only, in the Authorization header",
        ),
    ];
    for (case, req, description) in cases {
        let res = req.send().await.unwrap();
        let (status, challenge, body) = refusal(res).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"], "invalid_request", "{case}: {body}");
        assert_eq!(body["error_description"], description, "{case}");
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{case}: {challenge}"
        );
    }
    assert_eq!(stored(&app, "SN-7210").await, 0);
    // A form body without a token is just the wrong media type.
    let res = app
        .client
        .post(app.url(UPLOAD))
        .header("Authorization", &header)
        .header("DPoP", proof())
        .form(&[("readings", "[]")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    // One header, one proof: stored.
    let res = app
        .client
        .post(app.url(UPLOAD))
        .header("Authorization", &header)
        .header("DPoP", proof())
        .json(&json_body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted(res).await, (1, 0));
}
