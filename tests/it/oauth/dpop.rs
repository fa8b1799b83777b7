//! DPoP (RFC 9449) at the authorization server: the §4.3 proof checks at the token and device
//! authorization endpoints, replay, binding a device authorization to a key (§10, `dpop_jkt`),
//! and server nonces (§8) for devices whose clocks cannot be trusted.

use pairgate::crypto::jose;
use pairgate::ids::TenantId;
use pairgate::oauth::device_flow::Verdict;
use serde_json::{Value, json};

use super::{error_of, server_date};
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, DEVICE_CODE_GRANT, JWT_BEARER, TestApp};

backend_tests!(
    device_code_grant_requires_a_proof,
    more_than_one_proof_is_refused,
    bad_proofs_are_refused_at_device_authorization,
    bad_proofs_are_refused_at_the_token_endpoint,
    htu_ignores_query_and_fragment,
    htu_is_checked_against_the_public_url_not_the_host_header,
    proof_iat_must_be_recent,
    a_wrong_clock_learns_the_time_at_the_token_endpoint,
    a_nonce_is_checked_whenever_a_proof_has_one,
    replayed_proof_is_refused,
    client_credentials_checks_a_proof_when_one_is_sent,
    dpop_jkt_binds_the_authorization_to_its_key,
    proof_at_device_authorization_binds_the_flow,
    a_pending_flow_refuses_polls_with_another_key,
    dpop_jkt_must_agree_with_the_proof,
    nonce_mode_asks_for_a_nonce_then_accepts_it,
    nonce_mode_at_the_token_endpoint,
    stale_or_forged_nonces_are_refused,
    valid_nonce_excuses_a_bad_clock,
);

const DA: &str = "/oauth/device_authorization";
const TOKEN: &str = "/oauth/token";
const NONCE_MODE: &str = "[oauth]\ndpop_require_nonce = true";

/// A device authorization request with a fresh assertion and exactly the given DPoP headers.
async fn authorize(
    app: &TestApp,
    device: &TestDevice,
    proofs: &[&str],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let assertion = device.assertion(app.now());
    let mut form = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    form.extend_from_slice(extra);
    let headers: Vec<(&str, &str)> = proofs.iter().map(|p| ("DPoP", *p)).collect();
    app.post_form(DA, &form, &headers).await
}

/// A device_code poll with a fresh assertion by `device` and exactly the given DPoP headers.
async fn poll_with(
    app: &TestApp,
    device: &TestDevice,
    device_code: &str,
    proofs: &[&str],
) -> reqwest::Response {
    let assertion = device.assertion(app.now());
    let headers: Vec<(&str, &str)> = proofs.iter().map(|p| ("DPoP", *p)).collect();
    app.post_form(
        TOKEN,
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", device_code),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
        &headers,
    )
    .await
}

/// The same device, proving possession of another key.
fn with_key(device: &TestDevice, key: Signer) -> TestDevice {
    TestDevice {
        serial: device.serial.clone(),
        key,
        issuer: device.issuer.clone(),
    }
}

async fn assert_bad_proof(res: reqwest::Response, case: &str) -> Value {
    let status = res.status();
    assert_eq!(res.headers()["cache-control"], "no-store", "{case}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 400, "{case}: {body}");
    assert_eq!(body["error"], "invalid_dpop_proof", "{case}: {body}");
    body
}

async fn approve(app: &TestApp, started: &Value, tenant: TenantId) {
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
}

/// A compact JWS with any header and signature (for algorithms the test keys cannot make).
fn forged(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        jose::b64(header.to_string()),
        jose::b64(claims.to_string()),
        jose::b64(signature)
    )
}

const NOT_A_JWS: &str = "the DPoP proof is not a valid JWS with an allowed alg";
const BAD_JWK: &str = "the DPoP proof's jwk is not an acceptable public key";
const BAD_HTU: &str = "the DPoP proof's htu does not match the request URL";
const BAD_HTM: &str = "the DPoP proof's htm does not match the request method";
const NO_IAT: &str = "the DPoP proof needs an iat";
const NO_JTI: &str = "the DPoP proof needs a jti";

/// Proofs for `POST path` that each break one rule of RFC 9449 §4.3, with the reason expected.
fn bad_proofs(
    app: &TestApp,
    device: &TestDevice,
    path: &str,
) -> Vec<(&'static str, String, &'static str)> {
    let now = app.now();
    let other_path = if path == DA { TOKEN } else { DA };
    let proof = |header: Value, claims: Value| device.dpop_with("POST", path, now, header, claims);
    let mut private = device.key.jwk();
    private["d"] = json!(jose::b64([9u8; 32]));
    let good_claims = json!({
        "jti": "forged-1", "htm": "POST", "htu": app.url(path), "iat": now,
    });
    vec![
        (
            "typ JWT",
            proof(json!({"typ": "JWT"}), json!({})),
            "the DPoP proof's typ must be dpop+jwt",
        ),
        (
            "no typ",
            proof(json!({"typ": null}), json!({})),
            "the DPoP proof's typ must be dpop+jwt",
        ),
        (
            "no jwk",
            proof(json!({"jwk": null}), json!({})),
            "the DPoP proof has no jwk header",
        ),
        (
            "jwk with private material",
            proof(json!({"jwk": private}), json!({})),
            BAD_JWK,
        ),
        (
            "symmetric jwk",
            proof(
                json!({"jwk": {"kty": "oct", "k": jose::b64([1u8; 32])}}),
                json!({}),
            ),
            BAD_JWK,
        ),
        (
            "jwk not an object",
            proof(json!({"jwk": "key"}), json!({})),
            BAD_JWK,
        ),
        (
            "jwk alg member disagrees",
            proof(
                json!({"jwk": {"alg": "EdDSA", "kty": "EC", "crv": "P-256",
                    "x": device.key.jwk()["x"], "y": device.key.jwk()["y"]}}),
                json!({}),
            ),
            BAD_JWK,
        ),
        (
            "signed by another key than its jwk",
            proof(json!({"jwk": Signer::es256().jwk()}), json!({})),
            "the DPoP proof's signature does not verify",
        ),
        (
            "alg does not match the jwk",
            proof(json!({"jwk": Signer::ed25519().jwk()}), json!({})),
            "the DPoP proof's alg does not match its key",
        ),
        ("htm GET", proof(json!({}), json!({"htm": "GET"})), BAD_HTM),
        (
            "htm lower case",
            proof(json!({}), json!({"htm": "post"})),
            BAD_HTM,
        ),
        ("no htm", proof(json!({}), json!({"htm": null})), BAD_HTM),
        (
            "htu of another endpoint",
            proof(json!({}), json!({"htu": app.url(other_path)})),
            BAD_HTU,
        ),
        (
            "htu on another host",
            proof(
                json!({}),
                json!({"htu": format!("http://evil.example{path}")}),
            ),
            BAD_HTU,
        ),
        (
            "htu with another scheme",
            proof(
                json!({}),
                json!({"htu": app.url(path).replacen("http:", "https:", 1)}),
            ),
            BAD_HTU,
        ),
        (
            "htu with a trailing slash",
            proof(json!({}), json!({"htu": format!("{}/", app.url(path))})),
            BAD_HTU,
        ),
        (
            "htu relative",
            proof(json!({}), json!({"htu": path})),
            BAD_HTU,
        ),
        (
            "no htu",
            proof(json!({}), json!({"htu": null})),
            "the DPoP proof needs an htu",
        ),
        ("no iat", proof(json!({}), json!({"iat": null})), NO_IAT),
        (
            "iat a string",
            proof(json!({}), json!({"iat": "now"})),
            NO_IAT,
        ),
        ("no jti", proof(json!({}), json!({"jti": null})), NO_JTI),
        ("empty jti", proof(json!({}), json!({"jti": ""})), NO_JTI),
        (
            "jti with a NUL",
            proof(json!({}), json!({"jti": "a\u{0}b"})),
            NO_JTI,
        ),
        (
            "oversized jti",
            proof(json!({}), json!({"jti": "j".repeat(257)})),
            NO_JTI,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                jose::b64(
                    json!({"typ": "dpop+jwt", "alg": "none", "jwk": device.key.jwk()}).to_string()
                ),
                jose::b64(good_claims.to_string())
            ),
            NOT_A_JWS,
        ),
        (
            "HS256",
            forged(
                &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": device.key.jwk()}),
                &good_claims,
                &[1; 32],
            ),
            NOT_A_JWS,
        ),
        ("not a JWS", "definitely-not-a-jws".to_owned(), NOT_A_JWS),
    ]
}

async fn device_code_grant_requires_a_proof(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-DP-1").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let body = assert_bad_proof(poll_with(&app, &device, code, &[]).await, "pending").await;
    insta::assert_json_snapshot!("dpop_missing_proof_error", body);
    approve(&app, &started, tenant).await;
    assert_bad_proof(poll_with(&app, &device, code, &[]).await, "approved").await;
    // The refusals did not consume the approval.
    let res = app.poll(&device, code).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

async fn more_than_one_proof_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-2").await;
    let now = app.now();
    let (a, b) = (device.dpop("POST", DA, now), device.dpop("POST", DA, now));
    let body = assert_bad_proof(authorize(&app, &device, &[&a, &b], &[]).await, "two").await;
    assert_eq!(body["error_description"], "more than one DPoP header");
    assert_bad_proof(authorize(&app, &device, &[&a, &a], &[]).await, "same twice").await;
    // Both in one header value is no proof either.
    let joined = format!("{a}, {b}");
    assert_bad_proof(authorize(&app, &device, &[&joined], &[]).await, "joined").await;

    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let (a, b) = (
        device.dpop("POST", TOKEN, app.now()),
        device.dpop("POST", TOKEN, app.now()),
    );
    assert_bad_proof(poll_with(&app, &device, code, &[&a, &b]).await, "token").await;
    // One of them alone is fine.
    let body = error_of(poll_with(&app, &device, code, &[&a]).await, 400).await;
    assert_eq!(body["error"], "authorization_pending");
}

async fn bad_proofs_are_refused_at_device_authorization(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-3").await;
    for (case, proof, reason) in bad_proofs(&app, &device, DA) {
        let body = assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, case).await;
        assert_eq!(body["error_description"], reason, "{case}");
    }
    let good = device.dpop("POST", DA, app.now());
    assert_eq!(authorize(&app, &device, &[&good], &[]).await.status(), 200);
}

async fn bad_proofs_are_refused_at_the_token_endpoint(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-4").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    for (case, proof, reason) in bad_proofs(&app, &device, TOKEN) {
        let body = assert_bad_proof(poll_with(&app, &device, code, &[&proof]).await, case).await;
        assert_eq!(body["error_description"], reason, "{case}");
    }
    let good = device.dpop("POST", TOKEN, app.now());
    let body = error_of(poll_with(&app, &device, code, &[&good]).await, 400).await;
    assert_eq!(body["error"], "authorization_pending");
}

async fn htu_ignores_query_and_fragment(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-5").await;
    let now = app.now();
    for htu in [
        format!("{}?x=1", app.url(DA)),
        format!("{}#frag", app.url(DA)),
        app.url(DA).replacen("http://", "HTTP://", 1),
    ] {
        let proof = device.dpop_with("POST", DA, now, json!({}), json!({ "htu": htu }));
        let res = authorize(&app, &device, &[&proof], &[]).await;
        assert_eq!(res.status(), 200, "{htu}");
    }
}

async fn htu_is_checked_against_the_public_url_not_the_host_header(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-6").await;
    let now = app.now();
    let send = |proof: String| {
        let assertion = device.assertion(now);
        let req = app
            .client
            .post(app.url(DA))
            .header("Host", "evil.example")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Proto", "https")
            .header("DPoP", proof)
            .form(&[
                ("client_assertion_type", JWT_BEARER.to_owned()),
                ("client_assertion", assertion),
            ]);
        async move { req.send().await.unwrap() }
    };
    for htu in [
        format!("http://evil.example{DA}"),
        format!("https://evil.example{DA}"),
    ] {
        let proof = device.dpop_with("POST", DA, now, json!({}), json!({ "htu": htu }));
        assert_bad_proof(send(proof).await, &htu).await;
    }
    let proof = device.dpop("POST", DA, now);
    assert_eq!(send(proof).await.status(), 200);
}

/// The answer to a proof that needs a nonce: 400 `use_dpop_nonce` with a fresh `DPoP-Nonce` and
/// pairgate's time in `Date`; returns the nonce.
async fn assert_use_nonce(app: &TestApp, res: reqwest::Response, case: &str) -> String {
    let nonce = nonce_of(&res);
    assert_eq!(
        server_date(&res),
        app.now(),
        "{case}: Date is pairgate's clock"
    );
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "use_dpop_nonce", "{case}: {body}");
    nonce
}

/// RFC 9449 §8: a proof whose iat is out of the window gets a nonce, although nonces are not
/// required, and the answer's Date is pairgate's time (here an hour ahead of the machine's, so
/// a Date from anywhere else would differ).
async fn proof_iat_must_be_recent(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.advance(3600);
    let device = app.device("SN-DP-7").await;
    let now = app.now();
    // 60 s of age plus 30 s of skew in the past, 30 s of skew in the future.
    for (iat, ok) in [
        (now - 89, true),
        (now + 29, true),
        (now - 91, false),
        (now + 31, false),
        (now - 86_400, false),
        (now + 86_400, false),
        (0, false),
        (i64::MIN, false),
        (i64::MAX, false),
    ] {
        let proof = device.dpop_with("POST", DA, now, json!({}), json!({ "iat": iat }));
        let res = authorize(&app, &device, &[&proof], &[]).await;
        if ok {
            assert_eq!(res.status(), 200, "iat {iat}");
            assert!(res.headers().get("dpop-nonce").is_none(), "iat {iat}");
        } else {
            let nonce = assert_use_nonce(&app, res, &format!("iat {iat}")).await;
            // With the nonce, the same iat passes: the nonce proves freshness.
            let proof = device.dpop_with(
                "POST",
                DA,
                now,
                json!({}),
                json!({ "iat": iat, "nonce": nonce }),
            );
            let res = authorize(&app, &device, &[&proof], &[]).await;
            assert_eq!(res.status(), 200, "iat {iat} with a nonce");
        }
    }
    // A proof made now needs a nonce once it is too old.
    let proof = device.dpop("POST", DA, now);
    app.advance(91);
    let res = authorize(&app, &device, &[&proof], &[]).await;
    assert_use_nonce(&app, res, "aged").await;
}

/// At the token endpoint the proof is checked before the client: a device whose clock says
/// 1970 makes an expired assertion too, and must learn of its clock, not of invalid_client.
async fn a_wrong_clock_learns_the_time_at_the_token_endpoint(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.advance(3600);
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-DP-13").await;
    let started = app.start_pairing(&device).await;
    approve(&app, &started, tenant).await;
    let code = started["device_code"].as_str().unwrap();
    let boot = 120;
    let res = app
        .post_form(
            TOKEN,
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", code),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &device.assertion(boot)),
            ],
            &[("DPoP", &device.dpop("POST", TOKEN, boot))],
        )
        .await;
    let nonce = assert_use_nonce(&app, res, "1970").await;
    // The device sets its clock from Date; its proof may keep any iat along with the nonce.
    let proof = device.dpop_with("POST", TOKEN, boot, json!({}), json!({ "nonce": nonce }));
    let res = poll_with(&app, &device, code, &[&proof]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

/// RFC 9449 §4.3 check 10: a nonce in a proof is checked even when nonces are not required. One
/// pairgate never issued, an expired one, or one that is not a string gets use_dpop_nonce; the
/// proof's recent iat does not excuse it.
async fn a_nonce_is_checked_whenever_a_proof_has_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-14").await;
    let old = device.dpop_with("POST", DA, app.now() - 3600, json!({}), json!({}));
    let issued = assert_use_nonce(&app, authorize(&app, &device, &[&old], &[]).await, "old").await;
    let mut tampered = jose::b64_decode(&issued).unwrap();
    tampered[23] ^= 1;
    for nonce in [
        json!(jose::b64([0u8; 24])),
        json!(jose::b64(tampered)),
        json!("never-issued"),
        json!(""),
        json!(42),
        json!({ "nonce": issued }),
    ] {
        let proof = device.dpop_with("POST", DA, app.now(), json!({}), json!({ "nonce": nonce }));
        let res = authorize(&app, &device, &[&proof], &[]).await;
        assert_use_nonce(&app, res, &nonce.to_string()).await;
    }
    // A nonce is good for dpop_nonce_lifetime_secs, and bounds the proof that carries it: the
    // proof is accepted once, refused as a replay while its nonce lives, then for its nonce.
    let proof = device.dpop_with("POST", DA, 0, json!({}), json!({ "nonce": issued }));
    assert_eq!(authorize(&app, &device, &[&proof], &[]).await.status(), 200);
    app.advance(299);
    assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, "replay").await;
    app.advance(2);
    let res = authorize(&app, &device, &[&proof], &[]).await;
    assert_use_nonce(&app, res, "expired").await;
}

async fn replayed_proof_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-8").await;
    let proof = device.dpop("POST", DA, app.now());
    assert_eq!(authorize(&app, &device, &[&proof], &[]).await.status(), 200);
    let body = assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, "replay").await;
    assert_eq!(body["error_description"], "the DPoP proof was used before");
    insta::assert_json_snapshot!("dpop_replayed_proof_error", body);
    // Still refused later, while it could otherwise pass the iat check.
    app.advance(60);
    assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, "later").await;

    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let proof = device.dpop("POST", TOKEN, app.now());
    let first = error_of(poll_with(&app, &device, code, &[&proof]).await, 400).await;
    assert_eq!(first["error"], "authorization_pending");
    app.advance(5);
    assert_bad_proof(poll_with(&app, &device, code, &[&proof]).await, "token").await;
}

async fn client_credentials_checks_a_proof_when_one_is_sent(backend: Backend) {
    let app = TestApp::start(backend).await;
    let client = app
        .service_client_with_key("erp:read", Signer::ed25519())
        .await;
    let token = |proof: Option<String>| {
        let mut req = app.client.post(app.url(TOKEN)).form(&[
            ("grant_type", "client_credentials".to_owned()),
            ("client_assertion_type", JWT_BEARER.to_owned()),
            ("client_assertion", client.assertion(app.now())),
        ]);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move { req.send().await.unwrap() }
    };
    let now = app.now();
    // A broken proof is refused, not ignored into a Bearer token.
    let wrong_url = client.dpop("POST", DA, now);
    assert_bad_proof(token(Some(wrong_url)).await, "wrong htu").await;
    let holder = with_key(&client, Signer::es256());
    let res = token(Some(holder.dpop("POST", TOKEN, now))).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let claims =
        super::discovery::verify_with_jwks(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["cnf"]["jkt"], holder.key.thumbprint());
    let res = token(None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "Bearer");
}

async fn dpop_jkt_binds_the_authorization_to_its_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-DP-9").await;
    let holder = with_key(&device, Signer::es256());
    let jkt = holder.key.thumbprint();
    // Bound by dpop_jkt alone, without a proof.
    let res = authorize(&app, &device, &[], &[("dpop_jkt", &jkt)]).await;
    assert_eq!(res.status(), 200);
    let started: Value = res.json().await.unwrap();
    approve(&app, &started, tenant).await;
    let code = started["device_code"].as_str().unwrap();

    // The factory key (which authenticates the device) is not the bound key.
    let proof = device.dpop("POST", TOKEN, app.now());
    let body = error_of(poll_with(&app, &device, code, &[&proof]).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the DPoP key differs from the one that started the authorization"
    );
    // Nor is any other key.
    let stranger = with_key(&device, Signer::ed25519());
    let proof = stranger.dpop("POST", TOKEN, app.now());
    let body = error_of(poll_with(&app, &device, code, &[&proof]).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");

    app.advance(5);
    let proof = holder.dpop("POST", TOKEN, app.now());
    let res = poll_with(&app, &device, code, &[&proof]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let claims =
        super::discovery::verify_with_jwks(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["cnf"]["jkt"], jkt);
}

async fn proof_at_device_authorization_binds_the_flow(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-DP-10").await;
    let started = app.start_pairing(&device).await;
    approve(&app, &started, tenant).await;
    let code = started["device_code"].as_str().unwrap();
    let thief = with_key(&device, Signer::es256());
    let proof = thief.dpop("POST", TOKEN, app.now());
    let body = error_of(poll_with(&app, &device, code, &[&proof]).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    app.advance(5);
    assert_eq!(app.poll(&device, code).await.status(), 200);
}

/// While nobody has decided yet, too: a poll with another key learns nothing about the flow's
/// state, and it does not count as the device's poll (the owner's next poll is on time).
async fn a_pending_flow_refuses_polls_with_another_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-12").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let thief = with_key(&device, Signer::es256());
    let proof = thief.dpop("POST", TOKEN, app.now());
    let body = error_of(poll_with(&app, &device, code, &[&proof]).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "the DPoP key differs from the one that started the authorization"
    );
    let body = error_of(app.poll(&device, code).await, 400).await;
    assert_eq!(body["error"], "authorization_pending");
}

async fn dpop_jkt_must_agree_with_the_proof(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-DP-11").await;
    let other = Signer::es256().thumbprint();
    let proof = device.dpop("POST", DA, app.now());
    let res = authorize(&app, &device, &[&proof], &[("dpop_jkt", &other)]).await;
    let body = assert_bad_proof(res, "mismatch").await;
    assert_eq!(
        body["error_description"],
        "dpop_jkt does not match the DPoP proof's key"
    );
    for malformed in ["abc", &"!".repeat(43), &format!("{other}A")] {
        let proof = device.dpop("POST", DA, app.now());
        let res = authorize(&app, &device, &[&proof], &[("dpop_jkt", malformed)]).await;
        assert_eq!(
            error_of(res, 400).await["error"],
            "invalid_request",
            "{malformed}"
        );
    }
    let proof = device.dpop("POST", DA, app.now());
    let own = device.key.thumbprint();
    let res = authorize(&app, &device, &[&proof], &[("dpop_jkt", &own)]).await;
    assert_eq!(res.status(), 200);
}

fn nonce_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn nonce_mode_asks_for_a_nonce_then_accepts_it(backend: Backend) {
    let app = TestApp::builder(backend).config(NONCE_MODE).start().await;
    let device = app.device("SN-DN-1").await;
    let proof = device.dpop("POST", DA, app.now());
    let res = authorize(&app, &device, &[&proof], &[]).await;
    let nonce = nonce_of(&res);
    assert!(!nonce.is_empty());
    let body = error_of(res, 400).await;
    assert_eq!(body["error"], "use_dpop_nonce");
    insta::assert_json_snapshot!("dpop_use_nonce_error", body);

    let proof = device.dpop_with("POST", DA, app.now(), json!({}), json!({ "nonce": nonce }));
    let res = authorize(&app, &device, &[&proof], &[]).await;
    assert_eq!(res.status(), 200);
    assert!(!nonce_of(&res).is_empty(), "success carries the next nonce");
    // A nonce does not excuse any other check.
    let proof = device.dpop_with(
        "POST",
        DA,
        app.now(),
        json!({}),
        json!({ "nonce": nonce, "htm": "PUT" }),
    );
    assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, "htm").await;
    // Nor does it make a proof reusable.
    let proof = device.dpop_with("POST", DA, app.now(), json!({}), json!({ "nonce": nonce }));
    assert_eq!(authorize(&app, &device, &[&proof], &[]).await.status(), 200);
    assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, "replay").await;
}

async fn nonce_mode_at_the_token_endpoint(backend: Backend) {
    let app = TestApp::builder(backend).config(NONCE_MODE).start().await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-DN-2").await;
    let first = authorize(&app, &device, &[&device.dpop("POST", DA, app.now())], &[]).await;
    let nonce = nonce_of(&first);
    let proof = device.dpop_with("POST", DA, app.now(), json!({}), json!({ "nonce": nonce }));
    let res = authorize(&app, &device, &[&proof], &[]).await;
    assert_eq!(res.status(), 200);
    let started: Value = res.json().await.unwrap();
    approve(&app, &started, tenant).await;
    let code = started["device_code"].as_str().unwrap();

    let res = poll_with(
        &app,
        &device,
        code,
        &[&device.dpop("POST", TOKEN, app.now())],
    )
    .await;
    let fresh = nonce_of(&res);
    assert_eq!(error_of(res, 400).await["error"], "use_dpop_nonce");
    let proof = device.dpop_with(
        "POST",
        TOKEN,
        app.now(),
        json!({}),
        json!({ "nonce": fresh }),
    );
    let res = poll_with(&app, &device, code, &[&proof]).await;
    assert_eq!(res.status(), 200);
    assert!(!nonce_of(&res).is_empty());
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
}

async fn stale_or_forged_nonces_are_refused(backend: Backend) {
    let app = TestApp::builder(backend).config(NONCE_MODE).start().await;
    let device = app.device("SN-DN-3").await;
    let res = authorize(&app, &device, &[&device.dpop("POST", DA, app.now())], &[]).await;
    let nonce = nonce_of(&res);
    let with_nonce =
        |nonce: &str| device.dpop_with("POST", DA, app.now(), json!({}), json!({ "nonce": nonce }));
    // Valid for dpop_nonce_lifetime_secs (300 s)...
    app.advance(299);
    assert_eq!(
        authorize(&app, &device, &[&with_nonce(&nonce)], &[])
            .await
            .status(),
        200
    );
    // ...and not after.
    app.advance(2);
    let res = authorize(&app, &device, &[&with_nonce(&nonce)], &[]).await;
    let renewed = nonce_of(&res);
    assert_ne!(renewed, nonce);
    assert_eq!(error_of(res, 400).await["error"], "use_dpop_nonce");
    // Forged, tampered, or not a string: asked again for a real one.
    let mut raw = jose::b64_decode(&renewed).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let mut later = jose::b64_decode(&renewed).unwrap();
    later[7] = later[7].wrapping_add(100);
    for forged in [
        jose::b64([0u8; 24]),
        jose::b64(raw),
        jose::b64(later),
        "nonce".to_owned(),
        String::new(),
    ] {
        let res = authorize(&app, &device, &[&with_nonce(&forged)], &[]).await;
        assert_eq!(
            error_of(res, 400).await["error"],
            "use_dpop_nonce",
            "{forged:?}"
        );
    }
    let numeric = device.dpop_with("POST", DA, app.now(), json!({}), json!({ "nonce": 42 }));
    let res = authorize(&app, &device, &[&numeric], &[]).await;
    assert_eq!(error_of(res, 400).await["error"], "use_dpop_nonce");
    assert_eq!(
        authorize(&app, &device, &[&with_nonce(&renewed)], &[])
            .await
            .status(),
        200
    );
}

async fn valid_nonce_excuses_a_bad_clock(backend: Backend) {
    let app = TestApp::builder(backend).config(NONCE_MODE).start().await;
    let device = app.device("SN-DN-4").await;
    let res = authorize(&app, &device, &[&device.dpop("POST", DA, app.now())], &[]).await;
    let nonce = nonce_of(&res);
    let now = app.now();
    for iat in [now - 86_400, now + 86_400, 0] {
        let proof = device.dpop_with(
            "POST",
            DA,
            now,
            json!({}),
            json!({ "nonce": nonce, "iat": iat }),
        );
        let res = authorize(&app, &device, &[&proof], &[]).await;
        assert_eq!(res.status(), 200, "iat {iat}");
    }
    // Without a nonce the same clock is told to get one.
    let proof = device.dpop_with("POST", DA, now, json!({}), json!({ "iat": now - 86_400 }));
    let res = authorize(&app, &device, &[&proof], &[]).await;
    assert_eq!(error_of(res, 400).await["error"], "use_dpop_nonce");
    // An iat is still required, even with a nonce.
    let proof = device.dpop_with(
        "POST",
        DA,
        now,
        json!({}),
        json!({ "nonce": nonce, "iat": null }),
    );
    assert_bad_proof(authorize(&app, &device, &[&proof], &[]).await, "no iat").await;
}
