//! The code flow as apps use it: a first-party app signs a person in without a question, a
//! third-party app asks once, a fresh sign-in asked by `max_age` is a step-up, refresh rotates,
//! a confidential app authenticates, and RP-initiated logout ends the portal session.

use pairgate::accounts::Role;

use super::{
    AFTER_LOGOUT, Pkce, REDIRECT, authorize_path, bearer_get, code, handoff, id_token_claims,
    person, query, redeem, register, token,
};
use crate::backend_tests;
use crate::portal::owner;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_first_party_app_signs_a_person_in_with_pkce,
    refresh_tokens_rotate_and_a_reused_one_ends_the_family,
    a_third_party_app_asks_for_consent_once,
    max_age_asks_for_a_step_up_and_the_id_token_says_so,
    a_confidential_app_authenticates_at_the_token_endpoint,
    an_app_with_keys_authenticates_with_private_key_jwt,
    prompt_none_and_logout,
);

async fn a_first_party_app_signs_a_person_in_with_pkce(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (id, mut b) = person(&app, Some(tenant), Role::Operator, "ops@acme.example").await;
    let dash = register(&app, false, None, true).await;
    assert!(dash.secret.is_none(), "a public app has no secret");
    let pkce = Pkce::new();
    let page = b.get(&authorize_path(&dash.client_id, &pkce, &[])).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.contains("Allow"), "a first-party app asks nothing");
    let target = handoff(&page).expect("a hand-off page");
    let q = query(&target);
    assert_eq!(q["iss"], app.base, "RFC 9207");
    let code = code(&mut b, &authorize_path(&dash.client_id, &pkce, &[])).await;

    let (status, tokens) = redeem(&app, &dash.client_id, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid email profile telemetry:read");
    let claims = id_token_claims(&app, tokens["id_token"].as_str().unwrap(), &dash.client_id).await;
    assert_eq!(claims["sub"], format!("user:{id}"));
    assert_eq!(claims["azp"], dash.client_id);
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["tenant_id"], tenant.get());
    assert_eq!(claims["roles"], serde_json::json!(["operator"]));
    assert_eq!(claims["email"], "ops@acme.example");
    assert_eq!(claims["email_verified"], false, "created, not invited");
    assert_eq!(claims["name"], "Test Person");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], "pwd");
    assert!(claims["auth_time"].as_i64().unwrap() <= app.now());

    let access = tokens["access_token"].as_str().unwrap();
    let (status, me, _) = bearer_get(&app, "/oauth/userinfo", access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], format!("user:{id}"));
    assert_eq!(me["email"], "ops@acme.example");
    assert_eq!(me["tenant_id"], tenant.get());

    // The access token is an RFC 9068 token for pairgate's APIs, for the person.
    let at = crate::oauth::discovery::verify_with_jwks(&app, access).await;
    assert_eq!(at["sub"], format!("user:{id}"));
    assert_eq!(at["client_id"], dash.client_id);
}

async fn refresh_tokens_rotate_and_a_reused_one_ends_the_family(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Viewer, "v@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let pkce = Pkce::new();
    let code = code(&mut b, &authorize_path(&dash.client_id, &pkce, &[])).await;
    let (_, first) = redeem(&app, &dash.client_id, &code, &pkce).await;
    let refresh = |t: &str| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", t.to_owned()),
            ("client_id", dash.client_id.clone()),
        ]
    };
    let old = first["refresh_token"].as_str().unwrap();
    let form = refresh(old);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, second) = token(&app, &form).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (_, me, _) = bearer_get(
        &app,
        "/oauth/userinfo",
        second["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me["email"], "v@acme.example");

    // The old one again: a copy. The whole family ends, the newest token too.
    let (status, refused) = token(&app, &form).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"], "invalid_grant");
    let newest = refresh(second["refresh_token"].as_str().unwrap());
    let newest: Vec<(&str, &str)> = newest.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, refused) = token(&app, &newest).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // And so do the access tokens the family issued, at once.
    for access in [&first["access_token"], &second["access_token"]] {
        let (status, _, _) = bearer_get(&app, "/oauth/userinfo", access.as_str().unwrap()).await;
        assert_eq!(status, 401, "the family's access tokens end with it");
    }
}

async fn a_third_party_app_asks_for_consent_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Owner, "o@acme.example").await;
    let tool = register(&app, false, Some(tenant), false).await;
    let pkce = Pkce::new();
    let path = authorize_path(&tool.client_id, &pkce, &[]);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.contains("Sign in to Acme Dashboard"), "{}", page.body);
    assert!(page.contains("the readings of the devices you can see"));
    assert!(
        handoff(&page).is_none(),
        "nothing happens without the person"
    );
    let fields = |decision: &'static str| {
        let mut f: Vec<(String, String)> = query(&format!("https://x{path}")).into_iter().collect();
        f.push(("decision".into(), decision.into()));
        f
    };
    // Cancel: the app hears access_denied.
    let declined = fields("deny");
    let declined: Vec<(&str, &str)> = declined
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = b.post("/oauth/authorize", &declined).await;
    let q = query(&handoff(&page).expect("back to the app"));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    // Allow: a code, and the consent is remembered.
    b.get(&path).await;
    let allowed = fields("allow");
    let allowed: Vec<(&str, &str)> = allowed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = b.post("/oauth/authorize", &allowed).await;
    let q = query(&handoff(&page).expect("back to the app"));
    let (status, tokens) = redeem(&app, &tool.client_id, &q["code"], &pkce).await;
    assert_eq!(status, 200);
    let again = code(&mut b, &path).await;
    assert!(!again.is_empty(), "no second question");
    // prompt=consent asks again.
    let page = b
        .get(&authorize_path(
            &tool.client_id,
            &pkce,
            &[("prompt", "consent")],
        ))
        .await;
    assert!(page.contains("Allow"), "{}", page.body);

    // Withdrawn on the account page: the app's tokens end, and it must ask again.
    let account = b.get("/account").await;
    assert!(
        account.contains("Withdraw Acme Dashboard"),
        "{}",
        account.body
    );
    let page = b
        .post(&format!("/account/apps/{}/withdraw", tool.client_id), &[])
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/account?done=app-withdrawn")
    );
    let (status, refused) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &tool.client_id),
        ],
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let access = tokens["access_token"].as_str().unwrap();
    let (status, _, _) = bearer_get(&app, "/oauth/userinfo", access).await;
    assert_eq!(status, 401, "its access token ends with the withdrawal");
    let page = b.get(&path).await;
    assert!(page.contains("Allow"), "asks again: {}", page.body);
}

async fn max_age_asks_for_a_step_up_and_the_id_token_says_so(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let pkce = Pkce::new();
    // Signed in (and stepped up at enrolment) a while ago.
    app.advance(400);
    let path = authorize_path(&dash.client_id, &pkce, &[("max_age", "60")]);
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.contains("confirm it's you"), "{}", page.body);
    let mut form: Vec<(String, String)> = query(&format!("https://x{path}")).into_iter().collect();
    form.push(("decision".into(), "allow".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let pending = b.post("/oauth/authorize", &form).await;
    assert_eq!(pending.status, 401, "{}", pending.body);
    assert!(
        pending.contains("sign in to the app that sent you here"),
        "{}",
        pending.body
    );
    let code_now = b.code();
    let page = b.confirm_pending(&pending, &code_now).await;
    let target = handoff(&page).unwrap_or_else(|| panic!("{}", page.body));
    let (status, tokens) = redeem(&app, &dash.client_id, &query(&target)["code"], &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = id_token_claims(&app, tokens["id_token"].as_str().unwrap(), &dash.client_id).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["auth_time"], app.now(), "the step-up just now");
}

async fn a_confidential_app_authenticates_at_the_token_endpoint(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Viewer, "v@acme.example").await;
    let dash = register(&app, true, None, true).await;
    let secret = dash.secret.clone().expect("a secret");
    let pkce = Pkce::new();
    let code = code(&mut b, &authorize_path(&dash.client_id, &pkce, &[])).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", dash.client_id.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, refused) = token(&app, &form).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_client")),
        "{refused}"
    );
    form.push(("client_secret", &secret));
    let (status, tokens) = token(&app, &form).await;
    assert_eq!(status, 200, "{tokens}");
    // An app is no service client: no client_credentials.
    let (status, refused) = token(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &dash.client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

async fn prompt_none_and_logout(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let dash = register(&app, false, None, true).await;
    let pkce = Pkce::new();
    let mut stranger = crate::support::portal::Browser::new(&app);
    let page = stranger
        .get(&authorize_path(
            &dash.client_id,
            &pkce,
            &[("prompt", "none")],
        ))
        .await;
    let q = query(&handoff(&page).expect("back to the app"));
    assert_eq!(q["error"], "login_required");
    // Without prompt=none, the person is sent to sign in and back.
    let page = stranger
        .get(&authorize_path(&dash.client_id, &pkce, &[]))
        .await;
    assert_eq!(page.status, 303);
    assert!(
        page.location
            .as_deref()
            .unwrap()
            .starts_with("/login?next=%2Foauth%2Fauthorize")
    );

    let (_, mut b) = person(&app, Some(tenant), Role::Viewer, "v@acme.example").await;
    let code = code(&mut b, &authorize_path(&dash.client_id, &pkce, &[])).await;
    let (_, tokens) = redeem(&app, &dash.client_id, &code, &pkce).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let logout = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "bye-1"),
        ])
        .finish();
    let page = b.get(&format!("/oauth/logout?{logout}")).await;
    let target = handoff(&page).unwrap_or_else(|| panic!("{}", page.body));
    assert_eq!(target, format!("{AFTER_LOGOUT}?state=bye-1"));
    assert_eq!(b.get("/").await.status, 303, "the portal session ended");

    // An address the app did not register is not followed.
    let bad = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", REDIRECT),
        ])
        .finish();
    let page = b.get(&format!("/oauth/logout?{bad}")).await;
    assert_eq!(page.status, 400);
    assert!(handoff(&page).is_none());
    assert!(
        page.contains("has not registered for after signing out"),
        "{}",
        page.body
    );
}

async fn an_app_with_keys_authenticates_with_private_key_jwt(backend: Backend) {
    use crate::support::device::{Signer, TestDevice};
    use pairgate::oauth::apps::{AppKind, AppRegistration, create_app};
    use pairgate::oauth::clients::ClientCredential;

    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Viewer, "v@acme.example").await;
    let key = Signer::es256();
    let jwks = serde_json::json!({ "keys": [key.jwk()] });
    let created = create_app(
        &app.ctx.store,
        app.now() * 1000,
        "test",
        AppRegistration {
            name: "Service desk".into(),
            kind: AppKind::Confidential(ClientCredential::Jwks(jwks)),
            tenant_id: None,
            first_party: true,
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
        },
    )
    .await
    .unwrap();
    assert!(created.secret.is_none());
    let desk = TestDevice {
        serial: created.client_id.clone(),
        key,
        issuer: app.base.clone(),
    };
    let pkce = Pkce::new();
    let code = code(&mut b, &authorize_path(&desk.serial, &pkce, &[])).await;
    let assertion = desk.assertion(app.now());
    let (status, tokens) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());
    // The same assertion again is a replay, whatever it carries.
    let (status, refused) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_client"))
    );
}
