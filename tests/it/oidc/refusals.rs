//! Each refusal of the code flow: what is shown to the person (an app or a redirect URI that
//! does not match: nobody is sent anywhere), what goes back to the app, and what the token
//! endpoint refuses (PKCE, a reused code, another client's code, an expired one).

use pairgate::accounts::Role;

use super::{
    Pkce, REDIRECT, authorize_path, bearer_get, code, handoff, person, query, redeem, register,
    token,
};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

backend_tests!(
    an_unregistered_redirect_uri_or_app_is_shown_not_followed,
    pkce_is_required_and_only_s256,
    other_request_errors_go_back_to_the_app,
    a_code_used_twice_revokes_what_it_issued,
    a_code_is_the_apps_for_its_redirect_uri_within_a_minute,
);

/// What the app hears for `extra`: the `error` of the hand-off.
async fn app_hears(b: &mut Browser<'_>, client_id: &str, extra: &[(&str, &str)]) -> String {
    let page = b.get(&authorize_path(client_id, &Pkce::new(), extra)).await;
    let target = handoff(&page).unwrap_or_else(|| panic!("{extra:?}: {}", page.body));
    assert!(target.starts_with(REDIRECT));
    let q = query(&target);
    assert_eq!(q["state"], "st-123");
    q["error"].clone()
}

async fn an_unregistered_redirect_uri_or_app_is_shown_not_followed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Owner, "o@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let pkce = Pkce::new();
    for (extra, shown) in [
        (
            vec![("redirect_uri", "https://evil.example/callback")],
            "has not registered",
        ),
        (
            vec![("redirect_uri", "https://dash.example.com/callback/")],
            "has not registered",
        ),
        (vec![("redirect_uri", "")], "has not registered"),
        (
            vec![("client_id", "nobody-123")],
            "not registered with pairgate",
        ),
    ] {
        let page = b.get(&authorize_path(&dash.client_id, &pkce, &extra)).await;
        assert_eq!(page.status, 400, "{extra:?}");
        assert!(
            page.location.is_none() && handoff(&page).is_none(),
            "{extra:?}"
        );
        assert!(page.contains(shown), "{extra:?}: {}", page.body);
    }
    // A parameter twice: which one would count? Neither.
    let twice = format!(
        "{}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        authorize_path(&dash.client_id, &pkce, &[])
    );
    let page = b.get(&twice).await;
    assert_eq!(page.status, 400);
    assert!(handoff(&page).is_none());
}

async fn pkce_is_required_and_only_s256(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Owner, "o@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let id = dash.client_id.as_str();
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "too-short")],
    ] {
        assert_eq!(
            app_hears(&mut b, id, &extra).await,
            "invalid_request",
            "{extra:?}"
        );
    }
    // At the token endpoint: the verifier is needed, and must be the challenge's.
    let pkce = Pkce::new();
    let code = code(&mut b, &authorize_path(id, &pkce, &[])).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", id),
    ];
    let (status, body) = token(&app, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let other = Pkce::new();
    form.push(("code_verifier", &other.verifier));
    let (status, body) = token(&app, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

async fn other_request_errors_go_back_to_the_app(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Owner, "o@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let id = dash.client_id.as_str();
    for (extra, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("scope", "openid erp")], "invalid_scope"),
        (vec![("scope", "")], "invalid_scope"),
        (vec![("max_age", "soon")], "invalid_request"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("request", "eyJ")], "request_not_supported"),
    ] {
        assert_eq!(app_hears(&mut b, id, &extra).await, error, "{extra:?}");
    }
}

async fn a_code_used_twice_revokes_what_it_issued(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Owner, "o@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let pkce = Pkce::new();
    let code = code(&mut b, &authorize_path(&dash.client_id, &pkce, &[])).await;
    let (status, first) = redeem(&app, &dash.client_id, &code, &pkce).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(bearer_get(&app, "/oauth/userinfo", access).await.0, 200);
    // The app refreshes once before the copy of the code is used.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ("client_id", &dash.client_id),
    ];
    let (status, refreshed) = token(&app, &refresh).await;
    assert_eq!(status, 200, "{refreshed}");
    let later = refreshed["access_token"].as_str().unwrap();
    assert_eq!(bearer_get(&app, "/oauth/userinfo", later).await.0, 200);

    let (status, again) = redeem(&app, &dash.client_id, &code, &pkce).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        again["error_description"],
        "the authorization code was already used"
    );
    // What the first redemption issued is revoked: its access tokens, the one the refresh
    // issued too, and its refresh tokens.
    for token in [access, later] {
        let (status, body, _) = bearer_get(&app, "/oauth/userinfo", token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token"))
        );
    }
    let newest = [
        ("grant_type", "refresh_token"),
        (
            "refresh_token",
            refreshed["refresh_token"].as_str().unwrap(),
        ),
        ("client_id", &dash.client_id),
    ];
    let (status, body) = token(&app, &newest).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

async fn a_code_is_the_apps_for_its_redirect_uri_within_a_minute(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(tenant), Role::Owner, "o@acme.example").await;
    let dash = register(&app, false, None, true).await;
    let other = register(&app, false, None, true).await;
    let pkce = Pkce::new();
    let code = code(&mut b, &authorize_path(&dash.client_id, &pkce, &[])).await;
    // Another app cannot redeem it.
    let (status, body) = redeem(&app, &other.client_id, &code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Another redirect URI cannot.
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://dash.example.com/other"),
            ("client_id", &dash.client_id),
            ("code_verifier", &pkce.verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // A bare client_id is no authentication for a device or service client.
    let (erp, _) = app.service_client_with_secret("erp").await;
    let (status, body) = redeem(&app, &erp, &code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client"))
    );
    // Past its minute, the code is gone.
    app.advance(61);
    let (status, body) = redeem(&app, &dash.client_id, &code, &pkce).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        body["error_description"],
        "the authorization code has expired"
    );
}
