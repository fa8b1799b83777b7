//! Token introspection (RFC 7662) and revocation (RFC 7009): who may ask, what an active token
//! looks like, that everything else is exactly `{"active": false}`, and what revocation ends.

use pairgate::crypto::jose;
use serde_json::{Value, json};

use super::error_of;
use super::refresh::{refresh, refreshed};
use super::service_clients::basic;
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, JWT_BEARER, TestApp};

backend_tests!(
    introspection_needs_an_authenticated_service_client,
    introspection_needs_the_introspect_scope,
    an_active_access_token_is_described,
    anything_not_active_is_only_active_false,
    an_expired_access_token_is_inactive,
    a_refresh_token_is_described_only_to_its_client,
    revocation_answers_200_for_unknown_tokens,
    revoking_a_refresh_token_ends_the_family_and_its_access_tokens,
    revoking_an_access_token_makes_it_inactive,
    a_client_cannot_revoke_another_clients_tokens,
    re_pairing_ends_the_previous_tokens,
    a_service_client_revokes_its_own_refresh_token_family_only,
);

/// A service client that authenticates with a secret (client_secret_basic).
struct Introspector {
    id: String,
    secret: String,
}

impl Introspector {
    async fn new(app: &TestApp) -> Self {
        let (id, secret) = app.service_client_with_secret("introspect").await;
        Self { id, secret }
    }

    async fn request(&self, app: &TestApp, token: &str) -> reqwest::Response {
        app.post_form(
            "/oauth/introspect",
            &[("token", token)],
            &[("Authorization", &basic(&self.id, &self.secret))],
        )
        .await
    }

    /// The introspection response for `token`, which must be a 200.
    async fn introspect(&self, app: &TestApp, token: &str) -> Value {
        let res = self.request(app, token).await;
        assert_eq!(res.status(), 200, "introspection failed");
        assert_eq!(res.headers()["cache-control"], "no-store");
        res.json().await.unwrap()
    }

    async fn assert_inactive(&self, app: &TestApp, token: &str, what: &str) {
        let body = self.introspect(app, token).await;
        assert_eq!(body, json!({ "active": false }), "{what}");
    }

    async fn assert_active(&self, app: &TestApp, token: &str, what: &str) {
        let body = self.introspect(app, token).await;
        assert_eq!(body["active"], true, "{what}: {body}");
    }
}

/// `POST /oauth/revoke` by `client` with private_key_jwt.
async fn revoke(app: &TestApp, client: &TestDevice, token: &str) -> reqwest::Response {
    let assertion = client.assertion(app.now());
    app.post_form(
        "/oauth/revoke",
        &[
            ("token", token),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
        &[],
    )
    .await
}

async fn assert_revoke_ok(res: reqwest::Response) {
    assert_eq!(res.status(), 200, "revocation must answer 200");
    assert_eq!(res.headers()["cache-control"], "no-store");
}

/// Service clients never receive refresh tokens through a grant, so give one a refresh token
/// behind pairgate's back: a token from before the counter form, which migration 000009 left in
/// its family's row as a hash. It was issued now and stays usable for 100 s (idle).
async fn give_refresh_token(app: &TestApp, client_id: &str, family: &str, token: &str) {
    let now_ms = app.now() * 1000;
    app.raw_sql(&format!(
        "INSERT INTO refresh_families (family_id, client_id, subject, tenant_id, scope, jkt, \
         counter, status, created_at, issued_at, idle_expires_at, family_expires_at, \
         legacy_hash) VALUES ('{family}', '{client_id}', 'client:{client_id}', NULL, \
         'introspect', NULL, 0, 'active', {}, {now_ms}, {}, {}, '{}')",
        now_ms - 50_000,
        now_ms + 100_000,
        now_ms + 200_000,
        pairgate::crypto::tokens::hash_token(token),
    ))
    .await;
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap()
}

async fn introspection_needs_an_authenticated_service_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4001").await;
    let tokens = app.pair(&device, tenant).await;
    let token = str_of(&tokens, "access_token");

    // Nobody.
    let res = app
        .post_form("/oauth/introspect", &[("token", token)], &[])
        .await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_client");
    // A wrong secret in Basic: 401 with a challenge.
    let (id, _) = app.service_client_with_secret("introspect").await;
    let res = app
        .post_form(
            "/oauth/introspect",
            &[("token", token)],
            &[("Authorization", &basic(&id, "wrong"))],
        )
        .await;
    assert!(res.headers().contains_key("www-authenticate"));
    assert_eq!(error_of(res, 401).await["error"], "invalid_client");
    // A device, even about its own token.
    let assertion = device.assertion(app.now());
    let res = app
        .post_form(
            "/oauth/introspect",
            &[
                ("token", token),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    assert_eq!(error_of(res, 403).await["error"], "insufficient_scope");

    // A service client with private_key_jwt may; its assertion works once.
    let relying = app
        .service_client_with_key("introspect", Signer::ed25519())
        .await;
    let assertion = relying.assertion(app.now());
    let form = [
        ("token", token),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let res = app.post_form("/oauth/introspect", &form, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
    let res = app.post_form("/oauth/introspect", &form, &[]).await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_client");
}

/// Authenticating is not enough (RFC 7662 §2.1, §4): a service client without the `introspect`
/// scope, an ERP client say, learns nothing about a device's token, not even whether it is
/// active. Its credentials are fine, so not 401: 403 `insufficient_scope` (RFC 6750 §3.1).
async fn introspection_needs_the_introspect_scope(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4011").await;
    let tokens = app.pair(&device, tenant).await;
    let token = str_of(&tokens, "access_token");

    for scope in ["erp", "introspection", "erp introspect:read"] {
        let (id, secret) = app.service_client_with_secret(scope).await;
        let res = app
            .post_form(
                "/oauth/introspect",
                &[("token", token)],
                &[("Authorization", &basic(&id, &secret))],
            )
            .await;
        assert!(!res.headers().contains_key("www-authenticate"), "{scope}");
        let body = error_of(res, 403).await;
        assert_eq!(
            body,
            json!({
                "error": "insufficient_scope",
                "error_description": "introspection needs a client with the introspect scope",
            }),
            "{scope}"
        );
    }
    // The scope among others is enough.
    let (id, secret) = app.service_client_with_secret("erp introspect").await;
    let res = app
        .post_form(
            "/oauth/introspect",
            &[("token", token)],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["tenant_id"], tenant.get());
}

async fn an_active_access_token_is_described(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4002").await;
    let tokens = app.pair(&device, tenant).await;
    let introspector = Introspector::new(&app).await;
    let body = introspector
        .introspect(&app, str_of(&tokens, "access_token"))
        .await;

    let claims = super::discovery::verify_with_jwks(&app, str_of(&tokens, "access_token")).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["iss"], app.base);
    assert_eq!(body["aud"], app.url("/api"));
    assert_eq!(body["tenant_id"], tenant.get());
    assert_eq!(body["cnf"]["jkt"], device.key.thumbprint());
    assert_eq!(body["iat"], app.now());
    assert_eq!(body["exp"], app.now() + 600);
    assert_eq!(body["jti"], claims["jti"]);
    let base = app.base.clone();
    insta::assert_json_snapshot!("introspection_active_access_token", body, {
        ".jti" => "[jti]",
        ".exp" => "[exp]",
        ".iat" => "[iat]",
        ".cnf.jkt" => "[jkt]",
        ".iss" => insta::dynamic_redaction(move |v, _| {
            v.as_str().unwrap().replace(&base, "[base]")
        }),
        ".aud" => "[base]/api",
    });

    // A service client's token: Bearer, no device members.
    let (id, secret) = app.service_client_with_secret("erp").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    let erp: Value = res.json().await.unwrap();
    let body = introspector
        .introspect(&app, str_of(&erp, "access_token"))
        .await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], id);
    assert_eq!(body["sub"], format!("client:{id}"));
    assert_eq!(body["scope"], "erp");
    for absent in ["cnf", "tenant_id", "device"] {
        assert!(body.get(absent).is_none(), "{absent} in {body}");
    }
}

/// The decoded JSON of part `i` (0: header, 1: claims) of a compact JWS.
fn part(token: &str, i: usize) -> Value {
    let encoded = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&jose::b64_decode(encoded).unwrap()).unwrap()
}

async fn anything_not_active_is_only_active_false(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4003").await;
    let tokens = app.pair(&device, tenant).await;
    let token = str_of(&tokens, "access_token");
    let introspector = Introspector::new(&app).await;
    introspector
        .assert_active(&app, token, "the real token")
        .await;

    let (header, claims) = (part(token, 0), part(token, 1));
    let unsigned = format!(
        "{}.{}.",
        jose::b64(json!({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}).to_string()),
        jose::b64(claims.to_string())
    );
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let tampered = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        jose::b64(longer.to_string()),
        token.split('.').nth(2).unwrap()
    );
    let foreign_key = Signer::ed25519();
    let mut own_kid = header.clone();
    own_kid["kid"] = json!(foreign_key.thumbprint());
    let cases = [
        ("garbage", "this is not a token".to_owned()),
        (
            "an unknown refresh token",
            "pgr_not-a-real-token".to_owned(),
        ),
        ("three dots", "a.b.c".to_owned()),
        ("alg none", unsigned),
        ("tampered claims", tampered),
        (
            "signed by a foreign key under our kid",
            foreign_key.sign(header.clone(), &claims),
        ),
        (
            "signed by a foreign key under its own kid",
            foreign_key.sign(own_kid, &claims),
        ),
    ];
    for (what, candidate) in &cases {
        introspector.assert_inactive(&app, candidate, what).await;
    }

    // Revoked by its holder.
    assert_revoke_ok(revoke(&app, &device, token).await).await;
    introspector.assert_inactive(&app, token, "revoked").await;
}

async fn an_expired_access_token_is_inactive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4004").await;
    let tokens = app.pair(&device, tenant).await;
    let token = str_of(&tokens, "access_token");
    let introspector = Introspector::new(&app).await;

    app.advance(599);
    introspector
        .assert_active(&app, token, "one second left")
        .await;
    app.advance(2);
    introspector.assert_inactive(&app, token, "expired").await;
}

async fn a_refresh_token_is_described_only_to_its_client(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4005").await;
    let tokens = app.pair(&device, tenant).await;
    let device_refresh = str_of(&tokens, "refresh_token");
    let introspector = Introspector::new(&app).await;

    // A live device refresh token, asked about by a service client that does not own it.
    introspector
        .assert_inactive(&app, device_refresh, "another client's refresh token")
        .await;
    refreshed(&app, &device, device_refresh).await;

    // Service clients never receive refresh tokens through a grant, so give the introspector one
    // behind pairgate's back to see what its owner is told: a token from before the counter
    // form, which the migration left in its family's row as a hash.
    let own = "pgr_introspectors-own-refresh-token";
    give_refresh_token(&app, &introspector.id, "fam-1", own).await;
    let body = introspector.introspect(&app, own).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], introspector.id);
    assert_eq!(body["scope"], "introspect");
    assert_eq!(body["iss"], app.base);
    assert_eq!(body["iat"], app.now());
    assert_eq!(body["exp"], app.now() + 100);
    let other = Introspector::new(&app).await;
    other
        .assert_inactive(
            &app,
            own,
            "the introspector's refresh token, to someone else",
        )
        .await;
    // Once its family has moved on, the token is a used one.
    app.raw_sql("UPDATE refresh_families SET counter = 1 WHERE family_id = 'fam-1'")
        .await;
    introspector
        .assert_inactive(&app, own, "a refresh token its family moved past")
        .await;
    app.raw_sql("UPDATE refresh_families SET counter = 0 WHERE family_id = 'fam-1'")
        .await;
    assert_eq!(introspector.introspect(&app, own).await["active"], true);
    app.advance(100);
    introspector
        .assert_inactive(&app, own, "an idle-expired refresh token")
        .await;
}

async fn revocation_answers_200_for_unknown_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-4006").await;
    for token in ["garbage", "pgr_unknown", "a.b.c"] {
        let res = revoke(&app, &device, token).await;
        assert_revoke_ok(res).await;
    }
    // With a hint that does not fit, too (RFC 7009 §2.1: the hint is only a hint).
    let assertion = device.assertion(app.now());
    let res = app
        .post_form(
            "/oauth/revoke",
            &[
                ("token", "pgr_unknown"),
                ("token_type_hint", "access_token"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    assert_revoke_ok(res).await;
    // Revocation still needs an authenticated client (RFC 7009 §2.1).
    let res = app
        .post_form("/oauth/revoke", &[("token", "pgr_unknown")], &[])
        .await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_client");
}

async fn revoking_a_refresh_token_ends_the_family_and_its_access_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4007").await;
    let introspector = Introspector::new(&app).await;
    let paired = app.pair(&device, tenant).await;
    let rotated = refreshed(&app, &device, str_of(&paired, "refresh_token")).await;
    for t in [&paired, &rotated] {
        introspector
            .assert_active(&app, str_of(t, "access_token"), "before revocation")
            .await;
    }

    assert_revoke_ok(revoke(&app, &device, str_of(&rotated, "refresh_token")).await).await;

    for (what, t) in [("first", &paired), ("rotated", &rotated)] {
        introspector
            .assert_inactive(&app, str_of(t, "access_token"), what)
            .await;
        let res = refresh(&app, &device, str_of(t, "refresh_token")).await;
        assert_eq!(error_of(res, 400).await["error"], "invalid_grant", "{what}");
    }
    let events = app.ctx.store.audit_page(None, None, 100).await.unwrap();
    let revoked = events
        .iter()
        .find(|e| e.action == "token.revoked")
        .expect("revocation audited");
    assert_eq!(revoked.actor, "client:SN-4007");
    assert!(!revoked.detail.contains("pgr_"), "{}", revoked.detail);
    // Revoking again changes nothing and still answers 200.
    assert_revoke_ok(revoke(&app, &device, str_of(&rotated, "refresh_token")).await).await;
}

async fn revoking_an_access_token_makes_it_inactive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4008").await;
    let introspector = Introspector::new(&app).await;
    let paired = app.pair(&device, tenant).await;
    let rotated = refreshed(&app, &device, str_of(&paired, "refresh_token")).await;

    assert_revoke_ok(revoke(&app, &device, str_of(&paired, "access_token")).await).await;
    introspector
        .assert_inactive(&app, str_of(&paired, "access_token"), "revoked")
        .await;
    // Only that token.
    introspector
        .assert_active(&app, str_of(&rotated, "access_token"), "the other one")
        .await;

    // A service client revokes its own access token too (here with a secret).
    let (id, secret) = app.service_client_with_secret("erp").await;
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    let erp: Value = res.json().await.unwrap();
    let token = str_of(&erp, "access_token");
    introspector.assert_active(&app, token, "ERP token").await;
    let res = app
        .post_form(
            "/oauth/revoke",
            &[("token", token), ("token_type_hint", "access_token")],
            &[("Authorization", &basic(&id, &secret))],
        )
        .await;
    assert_revoke_ok(res).await;
    introspector
        .assert_inactive(&app, token, "revoked ERP token")
        .await;
}

async fn a_client_cannot_revoke_another_clients_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let owner = app.device("SN-4009").await;
    let other = app.device("SN-4010").await;
    let introspector = Introspector::new(&app).await;
    let tokens = app.pair(&owner, tenant).await;
    let access = str_of(&tokens, "access_token");
    let refresh_token = str_of(&tokens, "refresh_token");

    // Another device, and a service client: both told 200, neither achieves anything.
    assert_revoke_ok(revoke(&app, &other, access).await).await;
    assert_revoke_ok(revoke(&app, &other, refresh_token).await).await;
    let res = app
        .post_form(
            "/oauth/revoke",
            &[("token", access)],
            &[(
                "Authorization",
                &basic(&introspector.id, &introspector.secret),
            )],
        )
        .await;
    assert_revoke_ok(res).await;

    introspector
        .assert_active(&app, access, "after foreign revocations")
        .await;
    let rotated = refreshed(&app, &owner, refresh_token).await;
    introspector
        .assert_active(&app, str_of(&rotated, "access_token"), "rotated")
        .await;
    let events = app.ctx.store.audit_page(None, None, 100).await.unwrap();
    assert!(
        !events.iter().any(|e| e.action == "token.revoked"),
        "nothing was revoked"
    );
}

async fn re_pairing_ends_the_previous_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-4011").await;
    let introspector = Introspector::new(&app).await;
    let first = app.pair(&device, tenant).await;
    introspector
        .assert_active(&app, str_of(&first, "access_token"), "first pairing")
        .await;

    app.advance(10);
    let second = app.pair(&device, tenant).await;
    introspector
        .assert_inactive(&app, str_of(&first, "access_token"), "previous generation")
        .await;
    introspector
        .assert_active(&app, str_of(&second, "access_token"), "current generation")
        .await;
    let res = refresh(&app, &device, str_of(&first, "refresh_token")).await;
    assert_eq!(error_of(res, 400).await["error"], "invalid_grant");
    refreshed(&app, &device, str_of(&second, "refresh_token")).await;
}

async fn a_service_client_revokes_its_own_refresh_token_family_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (alice, bob) = (Introspector::new(&app).await, Introspector::new(&app).await);
    give_refresh_token(&app, &alice.id, "fam-alice", "pgr_alices-token").await;
    give_refresh_token(&app, &bob.id, "fam-bob", "pgr_bobs-token").await;
    let revoke_as = |who: &Introspector, token: &'static str| {
        let auth = basic(&who.id, &who.secret);
        let app = &app;
        async move {
            app.post_form(
                "/oauth/revoke",
                &[("token", token)],
                &[("Authorization", &auth)],
            )
            .await
        }
    };
    let active = |family: &str| {
        format!(
            "SELECT COUNT(*) AS n FROM refresh_families WHERE family_id = '{family}' \
             AND status = 'active'"
        )
    };
    // Bob's token, presented by Alice: 200, and nothing happens.
    assert_revoke_ok(revoke_as(&alice, "pgr_bobs-token").await).await;
    assert_eq!(app.query_i64(&active("fam-bob")).await, 1);
    // Alice's own: her family ends, Bob's stays.
    assert_revoke_ok(revoke_as(&alice, "pgr_alices-token").await).await;
    assert_eq!(app.query_i64(&active("fam-alice")).await, 0);
    assert_eq!(app.query_i64(&active("fam-bob")).await, 1);
    alice
        .assert_inactive(&app, "pgr_alices-token", "a revoked refresh token")
        .await;
    bob.assert_active(&app, "pgr_bobs-token", "another client's family")
        .await;
}
