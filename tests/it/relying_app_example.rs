//! `examples/relying_app`'s sign-in mode, run as the compiled example against a real pairgate: a
//! person signs in to the dashboard through pairgate's pages and sees their company's device and
//! its newest reading; sign-out ends both sessions; answers the dashboard did not ask for (another
//! state, another browser, another issuer, another nonce, an expired ID token, an error) sign
//! nobody in.
//!
//! `cargo test` builds the examples before it runs the tests; `cargo test --test it` alone does
//! not, and these tests then skip (or fail, when `PAIRGATE_TEST_EXAMPLES_REQUIRED` is set).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pairgate::accounts::Role;
use pairgate::oauth::apps::{AppKind, AppRegistration, create_app};

use crate::backend_tests;
use crate::oidc::{handoff, person, query};
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};
use crate::telemetry::{accepted, batch, pair_into, upload};

backend_tests!(
    the_example_signs_a_person_in_and_shows_their_devices,
    the_example_signs_nobody_in_with_answers_it_did_not_ask_for,
);

/// The compiled example beside this test binary (`target/debug/deps/it-…` →
/// `target/debug/examples/relying_app`), if it was built.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("examples").join("relying_app"));
    if let Some(binary) = binary.filter(|b| b.is_file()) {
        return Some(binary);
    }
    assert!(
        std::env::var_os("PAIRGATE_TEST_EXAMPLES_REQUIRED").is_none(),
        "PAIRGATE_TEST_EXAMPLES_REQUIRED is set but the relying_app example is not built \
         (`cargo test` builds it; `cargo test --test it` alone does not)"
    );
    eprintln!("the relying_app example is not built (run `cargo test`): skipping");
    None
}

/// The running example, killed when dropped (a failing assertion included).
struct Example {
    child: Child,
    /// `http://127.0.0.1:<port>`
    base: String,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// Registers a first-party public app of `tenant` for a free loopback port and starts the
    /// example's sign-in mode there; returns once it answers.
    async fn start(app: &TestApp, binary: &Path, tenant: pairgate::ids::TenantId) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let registration = AppRegistration {
            name: "Acme Dashboard".into(),
            kind: AppKind::Public,
            tenant_id: Some(tenant),
            first_party: true,
            redirect_uris: vec![format!("{base}/callback")],
            post_logout_redirect_uris: vec![format!("{base}/")],
        };
        let created = create_app(&app.ctx.store, app.now() * 1000, "test", registration)
            .await
            .expect("register the dashboard");
        let child = Command::new(binary)
            .args([
                "sign-in",
                "--issuer",
                &app.base,
                "--client-id",
                &created.client_id,
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--post-logout-redirect-uri", &format!("{base}/")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let mut example = Example { child, base };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(&example.base).send().await.is_ok() {
                return example;
            }
            if let Some(status) = example.child.try_wait().unwrap() {
                let mut stderr = String::new();
                let _ = example
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr);
                panic!("the example exited ({status}):\n{stderr}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the example did not answer at {}", example.base);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A browser of the dashboard: it keeps the dashboard's cookies and follows no redirect.
fn dashboard_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, String) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, res.text().await.unwrap())
}

/// `GET /login` on the dashboard: the authorization request it sends the person to.
async fn login(dash: &reqwest::Client, example: &Example) -> String {
    let (status, location, body) = get(dash, &example.url("/login")).await;
    assert_eq!(status, 303, "{body}");
    location.expect("a Location")
}

/// The person's pairgate session follows an authorization request: where pairgate's hand-off
/// page sends them back.
async fn authorize(b: &mut Browser<'_>, request: &str) -> String {
    let path = request
        .strip_prefix(&b.app.base)
        .unwrap_or_else(|| panic!("not pairgate's URL: {request}"));
    let page = b.get(path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    handoff(&page).unwrap_or_else(|| panic!("a hand-off page: {}", page.body))
}

/// `url` with its query parameter `name` set to `value`, or without it.
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .extend_pairs(value.map(|v| (name, v)));
    parsed.into()
}

async fn the_example_signs_a_person_in_and_shows_their_devices(backend: Backend) {
    let Some(binary) = example_binary() else {
        return;
    };
    let app = TestApp::start(backend).await;
    let acme = app.tenant("Acme Water").await;
    let device = pair_into(&app, "SN-7701", acme).await;
    let now = app.now() * 1000;
    let body = batch(&[("r-0", now - 60_000), ("r-1", now)]);
    accepted(upload(&app, &device, &body).await).await;
    let (_, mut b) = person(&app, Some(acme), Role::Owner, "ann@acme.example").await;
    let example = Example::start(&app, &binary, acme).await;
    let dash = dashboard_browser();
    let (_, _, page) = get(&dash, &example.url("/")).await;
    assert!(page.contains("Sign in with pairgate"), "{page}");

    // The authorization request: the code flow with PKCE S256, a state and a nonce.
    let request = login(&dash, &example).await;
    assert!(
        request.starts_with(&format!("{}/oauth/authorize?", app.base)),
        "{request}"
    );
    let asked = query(&request);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["redirect_uri"], example.url("/callback"));
    assert_eq!(asked["scope"], "openid email profile telemetry:read");
    assert_eq!(asked["code_challenge_method"], "S256");
    for random in ["state", "nonce", "code_challenge"] {
        assert_eq!(asked[random].len(), 43, "{random}: 32 bytes, base64url");
    }
    assert_ne!(asked["state"], asked["nonce"]);

    // pairgate hands the person back with a code; the dashboard redeems it and signs them in.
    let callback = authorize(&mut b, &request).await;
    assert!(
        callback.starts_with(&example.url("/callback?")),
        "{callback}"
    );
    let answer = query(&callback);
    assert_eq!(
        (&answer["state"], &answer["iss"]),
        (&asked["state"], &app.base)
    );
    let res = dash.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("relying_app_session=") && !c.contains("Max-Age=0"))
        .expect("a session cookie")
        .to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );

    // The page: who signed in, their device and its newest reading (not the older one).
    let (status, _, page) = get(&dash, &example.url("/")).await;
    assert_eq!(status, 200);
    for shown in ["Test Person", "ann@acme.example", "SN-7701", "t = 21.0"] {
        assert!(page.contains(shown), "{shown} missing from: {page}");
    }
    assert!(!page.contains("t = 20.0"), "{page}");

    // The same answer again: its state was used.
    let (status, _, page) = get(&dash, &callback).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("unknown, used or expired"), "{page}");

    // Sign-out: the dashboard forgets the person and sends them to end pairgate's session.
    let (status, location, _) = get(&dash, &example.url("/logout")).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let end = location
        .strip_prefix(&app.base)
        .filter(|l| l.starts_with("/oauth/logout?"))
        .unwrap_or_else(|| panic!("{location}"));
    let asked = query(&location);
    assert_eq!(asked["post_logout_redirect_uri"], example.url("/"));
    assert!(asked.contains_key("id_token_hint") && asked.contains_key("state"));
    let page = b.get(end).await;
    let back = handoff(&page).unwrap_or_else(|| panic!("{}", page.body));
    assert_eq!(back, format!("{}/?state={}", example.base, asked["state"]));
    assert_eq!(b.get("/").await.status, 303, "pairgate's session ended");
    let (_, _, page) = get(&dash, &example.url("/")).await;
    assert!(
        page.contains("Sign in with pairgate") && !page.contains("SN-7701"),
        "{page}"
    );
}

/// The callback refuses `url` from `dash` with a page saying `why`, and signs nobody in; the page.
async fn refused(dash: &reqwest::Client, example: &Example, url: &str, why: &str) -> String {
    let res = dash.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    let page = res.text().await.unwrap();
    assert_eq!(status, 400, "{page}");
    assert!(page.contains(why), "{why} missing from: {page}");
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("relying_app_session=")),
        "{cookies:?}"
    );
    let (_, _, home) = get(dash, &example.url("/")).await;
    assert!(home.contains("Sign in with pairgate"), "{home}");
    page
}

async fn the_example_signs_nobody_in_with_answers_it_did_not_ask_for(backend: Backend) {
    let Some(binary) = example_binary() else {
        return;
    };
    // A key may sign a second after it is published: a key made with the clock set back.
    let app = TestApp::builder(backend)
        .config("[keys]\npublish_before_use_secs = 1\nring_reload_secs = 1")
        .start()
        .await;
    let acme = app.tenant("Acme Water").await;
    let (_, mut b) = person(&app, Some(acme), Role::Owner, "ann@acme.example").await;
    let example = Example::start(&app, &binary, acme).await;
    let dash = dashboard_browser();

    // An ID token that expired before it arrived: pairgate's clock 15 minutes behind, with a
    // key of that time (the example's first look at the keys, so it knows the new one).
    app.advance(-900);
    app.ctx.oauth.rotate_signing_key("test").await.unwrap();
    app.advance(1);
    let callback = authorize(&mut b, &login(&dash, &example).await).await;
    refused(&dash, &example, &callback, "it has expired").await;
    // And one issued 15 minutes from now.
    app.advance(1800);
    let callback = authorize(&mut b, &login(&dash, &example).await).await;
    refused(&dash, &example, &callback, "it is from the future").await;
    app.advance(-901);

    // Another state than the one sent; then the right one, but in another browser.
    let callback = authorize(&mut b, &login(&dash, &example).await).await;
    let forged = with_param(&callback, "state", Some("forged-state"));
    refused(&dash, &example, &forged, "unknown, used or expired").await;
    let callback = authorize(&mut b, &login(&dash, &example).await).await;
    let elsewhere = dashboard_browser();
    refused(
        &elsewhere,
        &example,
        &callback,
        "not started in this browser",
    )
    .await;

    // An answer naming another issuer (RFC 9207), or none.
    let callback = authorize(&mut b, &login(&dash, &example).await).await;
    let foreign = with_param(&callback, "iss", Some("https://idp.example.net"));
    refused(&dash, &example, &foreign, "names another issuer").await;
    let callback = authorize(&mut b, &login(&dash, &example).await).await;
    let anonymous = with_param(&callback, "iss", None);
    refused(&dash, &example, &anonymous, "names no issuer").await;

    // An error answer, its description shown as text.
    let request = login(&dash, &example).await;
    let error = url::form_urlencoded::Serializer::new(example.url("/callback?"))
        .append_pair("error", "access_denied")
        .append_pair("error_description", "<script>alert(1)</script>")
        .append_pair("state", &query(&request)["state"])
        .append_pair("iss", &app.base)
        .finish();
    let page = refused(&dash, &example, &error, "access_denied").await;
    assert!(
        page.contains("&lt;script&gt;") && !page.contains("<script>"),
        "{page}"
    );

    // pairgate signs the nonce it was given: an ID token with another one is refused.
    let request = with_param(
        &login(&dash, &example).await,
        "nonce",
        Some("another-nonce"),
    );
    let callback = authorize(&mut b, &request).await;
    refused(&dash, &example, &callback, "nonce is not this sign-in").await;
}
