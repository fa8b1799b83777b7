//! Who may call the ERP API: a pairgate access token with scope `erp`, sent as a bearer token
//! (RFC 6750) or, when DPoP-bound, with a proof by its key (RFC 9449 §7). Everything else is
//! 401 with a challenge, or 403 for a missing scope, as problem details.

use pairgate::crypto::jose;
use serde_json::{Value, json};

use super::{ErpClient, basic, expect_json, expect_problem, token_for};
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, TestApp};

backend_tests!(
    requests_without_a_usable_token_are_refused,
    tokens_without_the_erp_scope_are_forbidden,
    expired_revoked_and_forged_tokens_are_refused,
    dpop_bound_tokens_need_a_fresh_proof_by_their_key,
    a_proof_out_of_the_window_gets_a_nonce_and_the_time,
    one_credential_per_request,
);

const EVENTS: &str = "/api/erp/v1/events";

async fn get_with(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.get(app.url(EVENTS));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn challenges(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn requests_without_a_usable_token_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;

    // No credentials: a bare challenge per scheme (RFC 6750 §3.1: no error code).
    let res = get_with(&app, &[]).await;
    let found = challenges(&res);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("Bearer realm=\"pairgate\"") && !found[0].contains("error="));
    assert!(found[1].starts_with("DPoP "));
    let body = expect_problem(res, 401, "unauthorized").await;
    insta::assert_json_snapshot!("erp_no_token_problem", body);

    // Another scheme counts as no credentials.
    let res = get_with(&app, &[("Authorization", "Basic YTpi")]).await;
    expect_problem(res, 401, "unauthorized").await;

    // A malformed token is a malformed request.
    let res = get_with(&app, &[("Authorization", "Bearer not a token")]).await;
    assert!(challenges(&res)[0].contains("error=\"invalid_request\""));
    expect_problem(res, 400, "invalid-request").await;

    // Garbage that looks like a token.
    let res = get_with(&app, &[("Authorization", "Bearer abc.def.ghi")]).await;
    assert!(challenges(&res)[0].contains("error=\"invalid_token\""));
    expect_problem(res, 401, "unauthorized").await;

    // Nothing is written for an unauthenticated PUT.
    let res = app
        .client
        .put(app.url("/api/erp/v1/customers/C-1"))
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "unauthorized").await;
    let erp = ErpClient::new(&app).await;
    assert!(erp.all_events().await.is_empty());
}

async fn tokens_without_the_erp_scope_are_forbidden(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret("introspect").await;
    let token = token_for(&app, &id, &secret).await;
    let res = get_with(&app, &[("Authorization", &format!("Bearer {token}"))]).await;
    let challenge = challenges(&res).remove(0);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"erp\""), "{challenge}");
    expect_problem(res, 403, "insufficient-scope").await;

    // A device's token (scope telemetry:write) is no ERP token either, whatever its binding.
    let device = app.device("SN-AUTH-1").await;
    let tenant = app.tenant("Acme").await;
    let tokens = app.pair(&device, tenant).await;
    let access = tokens["access_token"].as_str().unwrap();
    let proof = device.dpop_with(
        "GET",
        EVENTS,
        app.now(),
        json!({}),
        json!({ "ath": jose::sha256_b64(access) }),
    );
    let res = get_with(
        &app,
        &[
            ("Authorization", &format!("DPoP {access}")),
            ("DPoP", &proof),
        ],
    )
    .await;
    expect_problem(res, 403, "insufficient-scope").await;
}

async fn expired_revoked_and_forged_tokens_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    expect_json(erp.get(EVENTS).await, 200).await;

    // Forged: the same claims and kid, signed by a key that is not pairgate's.
    let mut parts = erp.token.split('.');
    let header: Value =
        serde_json::from_slice(&jose::b64_decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims: Value =
        serde_json::from_slice(&jose::b64_decode(parts.next().unwrap()).unwrap()).unwrap();
    let forger = Signer::ed25519();
    let forged = forger.sign(json!({ "typ": "at+jwt", "kid": header["kid"] }), &claims);
    let res = get_with(&app, &[("Authorization", &format!("Bearer {forged}"))]).await;
    assert!(challenges(&res)[0].contains("error=\"invalid_token\""));
    expect_problem(res, 401, "unauthorized").await;

    // Another audience: pairgate's own signature, but not for this API.
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = json!("https://elsewhere.example/api");
    let other = app
        .ctx
        .oauth
        .keys()
        .sign("at+jwt", &elsewhere, app.now() * 1000)
        .unwrap();
    let res = get_with(&app, &[("Authorization", &format!("Bearer {other}"))]).await;
    let body = expect_problem(res, 401, "unauthorized").await;
    assert_eq!(body["detail"], "the access token is not meant for this API");

    // Revoked (RFC 7009) by its client: refused at once.
    let second = token_for(&app, &erp.client_id, &erp.secret).await;
    let res = app
        .post_form(
            "/oauth/revoke",
            &[("token", &second)],
            &[("Authorization", &basic(&erp.client_id, &erp.secret))],
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = get_with(&app, &[("Authorization", &format!("Bearer {second}"))]).await;
    expect_problem(res, 401, "unauthorized").await;
    // The first token still works.
    expect_json(erp.get(EVENTS).await, 200).await;

    // Expired: access tokens live 600 s.
    app.advance(601);
    let res = erp.get(EVENTS).await;
    assert!(challenges(&res)[0].contains("error=\"invalid_token\""));
    expect_problem(res, 401, "unauthorized").await;
}

/// A client_credentials token bound to `key` with a DPoP proof at the token endpoint.
async fn dpop_token(app: &TestApp, client_id: &str, secret: &str, key: &TestDevice) -> String {
    let proof = key.dpop("POST", "/oauth/token", app.now());
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[
                ("Authorization", &basic(client_id, secret)),
                ("DPoP", &proof),
            ],
        )
        .await;
    let body = expect_json(res, 200).await;
    assert_eq!(body["token_type"], "DPoP");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn dpop_bound_tokens_need_a_fresh_proof_by_their_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, secret) = app.service_client_with_secret("erp").await;
    let key = TestDevice {
        serial: id.clone(),
        key: Signer::es256(),
        issuer: app.base.clone(),
    };
    let token = dpop_token(&app, &id, &secret, &key).await;
    let path = "/api/erp/v1/customers/C-DPOP";
    let ath = json!({ "ath": jose::sha256_b64(&token) });
    let put = |proof: Option<String>, scheme: &'static str| {
        let mut req = app
            .client
            .put(app.url(path))
            .header("Authorization", format!("{scheme} {token}"))
            .json(&json!({ "name": "Acme" }));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };

    let proof = key.dpop_with("PUT", path, app.now(), json!({}), ath.clone());
    expect_json(put(Some(proof.clone()), "DPoP").await.unwrap(), 201).await;

    // The same proof again is a replay.
    let res = put(Some(proof), "DPoP").await.unwrap();
    assert!(challenges(&res)[0].contains("error=\"invalid_dpop_proof\""));
    expect_problem(res, 401, "unauthorized").await;

    // No proof; a proof by another key; a proof for another request; no ath.
    expect_problem(put(None, "DPoP").await.unwrap(), 401, "unauthorized").await;
    let stranger = TestDevice {
        serial: id.clone(),
        key: Signer::es256(),
        issuer: app.base.clone(),
    };
    let foreign = stranger.dpop_with("PUT", path, app.now(), json!({}), ath.clone());
    expect_problem(
        put(Some(foreign), "DPoP").await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let elsewhere = key.dpop_with(
        "PUT",
        "/api/erp/v1/customers/C-2",
        app.now(),
        json!({}),
        ath.clone(),
    );
    expect_problem(
        put(Some(elsewhere), "DPoP").await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let no_ath = key.dpop("PUT", path, app.now());
    expect_problem(
        put(Some(no_ath), "DPoP").await.unwrap(),
        401,
        "unauthorized",
    )
    .await;

    // A proof whose jwk is a point of small order, forged to verify, is refused for its key.
    let weak = crate::oauth::weak_keys::small_order_points()[1];
    let forged = crate::oauth::weak_keys::forged_proof(&app, &weak, "PUT", path, ath.clone());
    let res = put(Some(forged), "DPoP").await.unwrap();
    assert!(challenges(&res)[0].contains("error=\"invalid_dpop_proof\""));
    let problem = expect_problem(res, 401, "unauthorized").await;
    assert_eq!(problem["detail"], crate::oauth::weak_keys::BAD_JWK);

    // A DPoP-bound token is no bearer token (RFC 9449 §7.1).
    let res = put(None, "Bearer").await.unwrap();
    let challenge = challenges(&res).remove(0);
    assert!(challenge.starts_with("Bearer") && challenge.contains("invalid_token"));
    expect_problem(res, 401, "unauthorized").await;
}

/// RFC 9449 §9 at the ERP API: a proof whose iat is out of the window gets 401 `use_dpop_nonce`
/// with a `DPoP-Nonce` and pairgate's `Date`, although nonces are not required; the same proof
/// time with the nonce gets in. A nonce pairgate never issued does not.
async fn a_proof_out_of_the_window_gets_a_nonce_and_the_time(backend: Backend) {
    let app = TestApp::start(backend).await;
    // An hour ahead of the machine's clock: the Date must come from pairgate's.
    app.advance(3600);
    let (id, secret) = app.service_client_with_secret("erp").await;
    let key = TestDevice {
        serial: id.clone(),
        key: Signer::ed25519(),
        issuer: app.base.clone(),
    };
    let token = dpop_token(&app, &id, &secret, &key).await;
    let ath = jose::sha256_b64(&token);
    let get = |claims: Value| {
        let mut c = json!({ "ath": ath });
        if let (Some(m), Value::Object(o)) = (c.as_object_mut(), claims) {
            m.extend(o);
        }
        let proof = key.dpop_with("GET", EVENTS, app.now(), json!({}), c);
        app.client
            .get(app.url(EVENTS))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
    };
    let res = get(json!({ "iat": 86_400 })).await.unwrap();
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(crate::oauth::server_date(&res), app.now());
    let challenge = challenges(&res).remove(0);
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    expect_problem(res, 401, "unauthorized").await;
    let res = get(json!({ "iat": 86_400, "nonce": nonce })).await.unwrap();
    expect_json(res, 200).await;
    let res = get(json!({ "nonce": jose::b64([1u8; 24]) })).await.unwrap();
    assert!(res.headers().contains_key("dpop-nonce"));
    assert!(challenges(&res)[0].contains("error=\"use_dpop_nonce\""));
    expect_problem(res, 401, "unauthorized").await;
}

/// RFC 6750 §3.1: one way, once. Two Authorization lines (both right), a token in the query as
/// well or instead, or in a form body as well, are 400 `invalid_request`.
async fn one_credential_per_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let bearer = format!("Bearer {}", erp.token);
    let with_query = format!("{}?access_token={}", app.url(EVENTS), erp.token);
    let cases = vec![
        (
            "two Authorization lines",
            app.client
                .get(app.url(EVENTS))
                .header("Authorization", &bearer)
                .header("Authorization", &bearer),
            "send one Authorization header, not several",
        ),
        (
            "header and query",
            app.client.get(&with_query).header("Authorization", &bearer),
            "send the access token one way only, in the Authorization header",
        ),
        (
            "query only",
            app.client.get(&with_query),
            "send the access token in the Authorization header",
        ),
        (
            "header and form body",
            app.client
                .put(app.url("/api/erp/v1/customers/C-TWO"))
                .header("Authorization", &bearer)
                .form(&[("access_token", erp.token.as_str()), ("name", "Acme")]),
            "send the access token one way only, in the Authorization header",
        ),
    ];
    for (case, req, detail) in cases {
        let res = req.send().await.unwrap();
        let challenge = challenges(&res).join(", ");
        let problem = expect_problem(res, 400, "invalid-request").await;
        assert_eq!(problem["detail"], detail, "{case}");
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{case}: {challenge}"
        );
    }
    // A form body without a token is the wrong media type, once the caller is known.
    let res = app
        .client
        .put(app.url("/api/erp/v1/customers/C-TWO"))
        .header("Authorization", &bearer)
        .form(&[("name", "Acme")])
        .send()
        .await
        .unwrap();
    expect_problem(res, 415, "unsupported-media-type").await;
    let res = app
        .client
        .put(app.url("/api/erp/v1/customers/C-TWO"))
        .form(&[("name", "Acme")])
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "unauthorized").await;
    assert!(erp.all_events().await.is_empty());
}
