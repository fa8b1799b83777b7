//! Registering apps in the portal (`/apps`): an owner registers one for the company after a
//! step-up (third-party, that company's people only, whatever the form claims), a confidential
//! app's secret is shown once and authenticates at the token endpoint, refused forms keep what
//! was typed, staff register apps for every company or one and may make them first-party, other
//! roles and other companies neither see nor disable them, a disabled app signs no one in and
//! its refresh tokens are refused, and an app's addresses and secret change after a step-up.

use pairgate::accounts::Role;
use pairgate::oauth::apps::{Registrar, apps_of};
use pairgate::store::apps::AppRecord;

use super::{PASSWORD, invited, owner};
use crate::backend_tests;
use crate::oidc::{Pkce, REDIRECT, authorize_path, handoff, person, query, redeem, token};
use crate::support::portal::{Browser, Page, extract};
use crate::support::{Backend, TestApp};

backend_tests!(
    an_owner_registers_an_app_for_the_company_after_a_step_up,
    a_confidential_app_gets_its_secret_once,
    refused_registrations_keep_what_was_typed,
    staff_register_apps_for_every_company_or_one,
    only_owners_and_staff_see_and_disable_apps,
    a_disabled_app_signs_no_one_in_and_its_tokens_stop,
    an_owner_changes_an_apps_addresses_and_secret,
);

/// The registration form's fields for an app named `name`, with `extra` fields added.
fn fields<'a>(
    name: &'a str,
    kind: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("name", name),
        ("kind", kind),
        (
            "redirect_uris",
            "https://dash.example.com/callback\r\nhttps://dash.example.com/cb2",
        ),
        (
            "post_logout_redirect_uris",
            "https://dash.example.com/signed-out",
        ),
    ];
    f.extend_from_slice(extra);
    f
}

/// Registers an app through the page (the session has a fresh step-up): its client id, and the
/// page that showed it.
async fn register_in_portal(b: &mut Browser<'_>, form: &[(&str, &str)]) -> (String, Page) {
    let page = b.submit("/apps", "/apps", form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("App registered"), "{}", page.body);
    let id = extract(&page.body, "<code id=\"client-id\">").expect("the client id is shown");
    (id, page)
}

/// The person allows the app on its consent page: the code it hands back.
async fn allowed_code(b: &mut Browser<'_>, client_id: &str, pkce: &Pkce) -> String {
    let path = authorize_path(client_id, pkce, &[]);
    let page = b.get(&path).await;
    assert!(page.contains("Allow"), "{}", page.body);
    let mut allow: Vec<(String, String)> = query(&format!("https://x{path}")).into_iter().collect();
    allow.push(("decision".into(), "allow".into()));
    let allow: Vec<(&str, &str)> = allow
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = b.post("/oauth/authorize", &allow).await;
    query(&handoff(&page).expect("back to the app"))["code"].clone()
}

/// The owner of another company, signed in with a fresh step-up.
async fn other_owner(app: &TestApp) -> Browser<'_> {
    let mut oscar = Browser::new(app);
    let page = oscar
        .sign_up(
            "Other Water",
            "Oscar Owner",
            "oscar@other.example",
            PASSWORD,
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    oscar.enrol_totp().await;
    oscar.step_up().await;
    oscar
}

async fn all_apps(app: &TestApp) -> Vec<AppRecord> {
    apps_of(&app.ctx.store, Registrar::Manufacturer)
        .await
        .unwrap()
}

async fn an_owner_registers_an_app_for_the_company_after_a_step_up(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@acme.example").await;
    let other = app.tenant("Other Water").await;
    let page = olivia.get("/apps").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.contains("<a href=\"/apps\">Apps</a>"),
        "in the navigation"
    );
    assert!(page.contains("No app is registered yet."));
    assert!(
        !page.contains("First-party"),
        "owners do not choose: {}",
        page.body
    );

    // Without a fresh step-up the registration waits on the code, naming the app.
    app.advance(301);
    let other_id = other.get().to_string();
    let sneaky = [("first_party", "yes"), ("company", other_id.as_str())];
    let asked = olivia
        .post("/apps", &fields("Acme Dashboard", "public", &sneaky))
        .await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert!(
        asked.contains("Confirm with your code to register the app “Acme Dashboard”"),
        "{}",
        asked.body
    );
    assert!(all_apps(&app).await.is_empty(), "nothing before the code");
    let code = olivia.code();
    let page = olivia.confirm_pending(&asked, &code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("App registered"), "{}", page.body);
    assert!(
        !page.contains("client-secret"),
        "a public app has no secret"
    );
    let client_id = extract(&page.body, "<code id=\"client-id\">").unwrap();

    // Olivia's company's, third-party, whatever the form said; both redirect URIs kept.
    let apps = all_apps(&app).await;
    assert_eq!(apps.len(), 1);
    let dash = &apps[0];
    assert_eq!(dash.client_id, client_id);
    assert!(dash.public && !dash.first_party, "{dash:?}");
    assert_ne!(dash.tenant_id, Some(other));
    assert!(dash.tenant_id.is_some());
    assert_eq!(dash.redirect_uris.len(), 2, "{dash:?}");
    assert_eq!(
        dash.post_logout_redirect_uris,
        ["https://dash.example.com/signed-out"]
    );
    let page = olivia.get("/apps").await;
    assert!(page.contains(&client_id) && page.contains("public: PKCE, no secret"));
    let page = olivia.get("/audit").await;
    assert!(
        page.contains("registered the app Acme Dashboard"),
        "{}",
        page.body
    );

    // It works: Olivia is asked to allow it; another company's person is refused.
    let pkce = Pkce::new();
    let path = authorize_path(&client_id, &pkce, &[]);
    let page = olivia.get(&path).await;
    assert!(page.contains("Sign in to Acme Dashboard"), "{}", page.body);
    let (_, mut stranger) = person(&app, Some(other), Role::Owner, "o@other.example").await;
    let page = stranger.get(&path).await;
    let q = query(&handoff(&page).expect("back to the app"));
    assert_eq!(q["error"], "access_denied");
}

async fn a_confidential_app_gets_its_secret_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@acme.example").await;
    olivia.step_up().await;
    let (client_id, page) =
        register_in_portal(&mut olivia, &fields("Backend", "secret", &[])).await;
    let secret = extract(&page.body, "<p class=\"secret\" id=\"client-secret\">")
        .expect("the secret is shown");
    assert!(page.contains("it is shown only this once"));
    let page = olivia.get("/apps").await;
    assert!(!page.contains(&secret), "never shown again");
    assert!(page.contains("confidential: client secret"));

    // Olivia allows it; her code is redeemed with the secret, not with the client_id alone.
    let pkce = Pkce::new();
    let code = allowed_code(&mut olivia, &client_id, &pkce).await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", &client_id),
        ("code_verifier", &pkce.verifier),
    ];
    let (status, body) = token(&app, &form).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_client");
    form.push(("client_secret", &secret));
    let (status, body) = token(&app, &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id_token"].is_string(), "{body}");
}

async fn refused_registrations_keep_what_was_typed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@acme.example").await;
    olivia.step_up().await;
    let plain = [("redirect_uris", "http://dash.example.com/cb")];
    let mut form = fields("Acme Dashboard", "public", &[]);
    form.retain(|(k, _)| *k != "redirect_uris");
    form.extend_from_slice(&plain);
    let page = olivia.submit("/apps", "/apps", &form).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.contains("is not an acceptable redirect URI"),
        "{}",
        page.body
    );
    assert!(
        page.contains("value=\"Acme Dashboard\""),
        "the name is kept"
    );
    assert!(
        page.contains(">http://dash.example.com/cb</textarea>"),
        "the URI is kept"
    );

    form.retain(|(k, _)| *k != "redirect_uris");
    let page = olivia.post("/apps", &form).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.contains("At least one redirect URI is needed."),
        "{}",
        page.body
    );

    let page = olivia
        .post("/apps", &fields("Keys", "keys", &[("jwks", "not json")]))
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.contains("must be a JWK Set"), "{}", page.body);
    assert!(
        page.contains("value=\"keys\" checked"),
        "the choice is kept"
    );

    let page = olivia.post("/apps", &fields(" ", "public", &[])).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.contains("The name must be 1–100 printable characters."));
    assert!(all_apps(&app).await.is_empty(), "nothing was registered");
}

async fn staff_register_apps_for_every_company_or_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = app.tenant("Acme Water").await;
    let (_, mut sam) = person(&app, None, Role::Staff, "support@maker.example").await;
    sam.enrol_totp().await;
    sam.step_up().await;
    let page = sam.get("/apps").await;
    assert!(
        page.contains("Every company") && page.contains("Acme Water"),
        "{}",
        page.body
    );
    let (service, _) = register_in_portal(
        &mut sam,
        &fields("Maker Service", "public", &[("first_party", "yes")]),
    )
    .await;
    let acme_id = acme.get().to_string();
    let for_acme = [("company", acme_id.as_str())];
    let (tool, _) = register_in_portal(&mut sam, &fields("Acme Tool", "public", &for_acme)).await;
    let apps = all_apps(&app).await;
    let find = |id: &str| apps.iter().find(|a| a.client_id == id).unwrap().clone();
    assert_eq!(find(&service).tenant_id, None);
    assert!(find(&service).first_party);
    assert_eq!(find(&tool).tenant_id, Some(acme));
    assert!(!find(&tool).first_party);
    let page = sam.get("/apps").await;
    assert!(
        page.contains("first-party, no consent page"),
        "{}",
        page.body
    );

    // A first-party app for every company signs Acme's people in without a question.
    let (_, mut ann) = person(&app, Some(acme), Role::Viewer, "ann@acme.example").await;
    let pkce = Pkce::new();
    let page = ann.get(&authorize_path(&service, &pkce, &[])).await;
    let q = query(&handoff(&page).expect("straight back to the app"));
    assert!(q.contains_key("code"), "{q:?}");

    // A company that does not exist is refused beside the form.
    let missing = [("company", "999999")];
    let page = sam
        .post("/apps", &fields("Nowhere", "public", &missing))
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.contains("No such company."), "{}", page.body);
}

async fn only_owners_and_staff_see_and_disable_apps(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@acme.example").await;
    olivia.step_up().await;
    let (client_id, _) =
        register_in_portal(&mut olivia, &fields("Acme Dashboard", "public", &[])).await;
    let mut adam = invited(&app, &mut olivia, "adam@acme.example", "admin").await;
    let page = adam.get("/users").await;
    assert!(
        !page.contains("href=\"/apps\""),
        "no Apps link for an admin"
    );
    assert_eq!(adam.get("/apps").await.status, 403);
    adam.step_up().await;
    let page = adam.post("/apps", &fields("Mine", "public", &[])).await;
    assert_eq!(page.status, 403, "{}", page.body);
    let disable = format!("/apps/{client_id}/disable");
    assert_eq!(adam.post(&disable, &[]).await.status, 403);

    // Another company's owner neither sees it nor disables it.
    let mut oscar = other_owner(&app).await;
    let page = oscar.get("/apps").await;
    assert!(!page.contains(&client_id), "{}", page.body);
    let page = oscar.post(&disable, &[]).await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(all_apps(&app).await[0].active, "still active");
}

async fn a_disabled_app_signs_no_one_in_and_its_tokens_stop(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@acme.example").await;
    olivia.step_up().await;
    let (client_id, _) =
        register_in_portal(&mut olivia, &fields("Acme Dashboard", "public", &[])).await;
    // Olivia allows it and the app holds her tokens.
    let pkce = Pkce::new();
    let path = authorize_path(&client_id, &pkce, &[]);
    let code = allowed_code(&mut olivia, &client_id, &pkce).await;
    let (status, tokens) = redeem(&app, &client_id, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");

    // Disabled after a step-up.
    app.advance(301);
    let disable = format!("/apps/{client_id}/disable");
    let asked = olivia.post(&disable, &[]).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert!(
        asked.contains(&format!("disable the app {client_id}")),
        "{}",
        asked.body
    );
    let code = olivia.code();
    let page = olivia.confirm_pending(&asked, &code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = olivia.get("/apps?done=app-disabled").await;
    assert!(page.contains("The app has been disabled"), "{}", page.body);
    assert!(page.contains("<em>Disabled</em>"), "{}", page.body);
    let page = olivia.get("/audit").await;
    assert!(
        page.contains("disabled the app Acme Dashboard"),
        "{}",
        page.body
    );

    // Its refresh token is refused, and a sign-in request is not even sent back to it.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", &client_id),
    ];
    let (status, body) = token(&app, &refresh).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let page = olivia.get(&path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(handoff(&page).is_none(), "never back to a disabled app");
}

/// A token request authenticated with `secret` for a code nobody issued: `invalid_grant` once
/// the app is authenticated, `invalid_client` otherwise.
async fn try_secret(app: &TestApp, client_id: &str, secret: &str) -> String {
    let verifier = Pkce::new().verifier;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "no-such-code"),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
        ("client_secret", secret),
        ("code_verifier", &verifier),
    ];
    token(app, &form).await.1["error"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn an_owner_changes_an_apps_addresses_and_secret(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@acme.example").await;
    olivia.step_up().await;
    let (client_id, page) =
        register_in_portal(&mut olivia, &fields("Backend", "secret", &[])).await;
    let old = extract(&page.body, "<p class=\"secret\" id=\"client-secret\">").unwrap();
    let path = format!("/apps/{client_id}");
    let page = olivia.get("/apps").await;
    assert!(page.contains(&format!("href=\"{path}\"")), "{}", page.body);
    let page = olivia.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains(">https://dash.example.com/callback\nhttps://dash.example.com/cb2<"));

    // New addresses, after a step-up: the old redirect URI is refused from then on.
    app.advance(301);
    let new_uris = [
        ("redirect_uris", "https://dash.example.com/cb2"),
        ("post_logout_redirect_uris", ""),
    ];
    let asked = olivia.post(&format!("{path}/uris"), &new_uris).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert!(asked.contains(&format!(
        "change where the app {client_id} sends people back"
    )));
    let code = olivia.code();
    let page = olivia.confirm_pending(&asked, &code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = olivia.get(&format!("{path}?done=uris")).await;
    assert!(page.contains("Saved: the app sends people back only to these addresses now."));
    let apps = all_apps(&app).await;
    assert_eq!(apps[0].redirect_uris, ["https://dash.example.com/cb2"]);
    assert!(apps[0].post_logout_redirect_uris.is_empty());
    let pkce = Pkce::new();
    let page = olivia.get(&authorize_path(&client_id, &pkce, &[])).await;
    assert_eq!(page.status, 400, "the removed address: {}", page.body);
    // A bad list is refused as typed, and changes nothing.
    let bad = [("redirect_uris", "http://dash.example.com/cb")];
    let page = olivia.post(&format!("{path}/uris"), &bad).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.contains(">http://dash.example.com/cb</textarea>"),
        "{}",
        page.body
    );
    assert_eq!(all_apps(&app).await[0].redirect_uris.len(), 1);

    // A new secret, shown once: the old one stops at once.
    assert_eq!(try_secret(&app, &client_id, &old).await, "invalid_grant");
    let page = olivia.post(&format!("{path}/secret"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let new = extract(&page.body, "<p class=\"secret\" id=\"client-secret\">").unwrap();
    assert_ne!(new, old);
    assert_eq!(try_secret(&app, &client_id, &old).await, "invalid_client");
    assert_eq!(try_secret(&app, &client_id, &new).await, "invalid_grant");
    assert!(!olivia.get(&path).await.contains(&new), "shown once");
    let page = olivia.get("/audit").await;
    assert!(
        page.contains("gave the app Backend a new secret"),
        "{}",
        page.body
    );
    assert!(page.contains("changed where the app Backend sends people back"));

    // A public app has no secret to replace; another company sees none of this app.
    let (public, _) = register_in_portal(&mut olivia, &fields("Tool", "public", &[])).await;
    let page = olivia.post(&format!("/apps/{public}/secret"), &[]).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.contains("This app has no secret"), "{}", page.body);
    let mut oscar = other_owner(&app).await;
    assert_eq!(oscar.get(&path).await.status, 404);
    assert_eq!(oscar.post(&format!("{path}/secret"), &[]).await.status, 404);
    assert_eq!(try_secret(&app, &client_id, &new).await, "invalid_grant");
}
