//! A certified third-party OpenID Connect client signs a person in through pairgate's real pages
//! in a real headless Chromium: the `openidconnect` crate discovers the provider and builds the
//! authorization request (PKCE S256, state, nonce); the person signs in with a password and a
//! code and allows the third-party app on the consent page; the hand-off page brings the browser
//! to the app's loopback callback with the code, the state and the issuer. The library redeems
//! the code, verifies the ID token (and refuses it with another nonce) and calls UserInfo; the
//! access token reads the company's devices and their readings, and nothing of another
//! company's; a second redemption of the code is refused and ends that token. Both engines.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreGenderClaim,
    CoreIdTokenVerifier, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, CsrfToken,
    EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SubjectIdentifier, TokenResponse, UserInfoError, http,
};
use pairgate::ids::TenantId;
use pairgate::oauth::apps::{AppKind, AppRegistration, create_app};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::backend_tests;
use crate::browser::{acme_owner, totp_code};
use crate::oidc::bearer_get;
use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};
use crate::telemetry::{accepted, pair_into, readings, upload};

backend_tests!(an_openid_connect_client_signs_a_person_in_through_chromium);

const EMAIL: &str = "olivia@example.com";

/// What openidconnect asks of its HTTP client, sent with reqwest (which follows no redirects, as
/// oauth2's documentation asks of every client it is given).
async fn send(
    http_client: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let mut outgoing = http_client.request(parts.method, parts.uri.to_string());
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let res = outgoing.body(body).send().await?;
    let mut response = http::Response::builder().status(res.status());
    for (name, value) in res.headers() {
        response = response.header(name, value);
    }
    let body = res.bytes().await?.to_vec();
    Ok(response.body(body).expect("a response"))
}

/// The app's callback on loopback (RFC 8252 §7.3): answers every request with a short page and
/// hands over the request target of each `/callback`, which is all a real app reads.
struct Callback {
    url: String,
    targets: mpsc::UnboundedReceiver<String>,
}

impl Callback {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let (tx, targets) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::answer(stream, tx.clone()));
            }
        });
        Self { url, targets }
    }

    async fn answer(mut stream: tokio::net::TcpStream, tx: mpsc::UnboundedSender<String>) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head);
        let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
        let found = target.starts_with("/callback");
        if found {
            let _ = tx.send(target);
        }
        let (status, body) = if found {
            (
                "200 OK",
                "<!doctype html><title>Tank Monitor</title><p>Signed in</p>",
            )
        } else {
            ("404 Not Found", "")
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
    }

    /// The query of the next request to the callback (waits up to 10 s).
    async fn next(&mut self) -> Vec<(String, String)> {
        let target = tokio::time::timeout(Duration::from_secs(10), self.targets.recv())
            .await
            .expect("the browser reaches the app's callback")
            .unwrap();
        let url = url::Url::parse(&format!("http://app.invalid{target}")).unwrap();
        url.query_pairs().into_owned().collect()
    }
}

/// The one value of `name` in `query`.
fn param<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    let values: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values.len(), 1, "one {name} in {query:?}");
    values[0]
}

/// Registers Tank Monitor, a public third-party app of `tenant` whose redirect URI is
/// `redirect`; its client id.
async fn register_third_party(app: &TestApp, tenant: TenantId, redirect: &str) -> String {
    let created = create_app(
        &app.ctx.store,
        app.now() * 1000,
        "test",
        AppRegistration {
            name: "Tank Monitor".into(),
            kind: AppKind::Public,
            tenant_id: Some(tenant),
            first_party: false,
            redirect_uris: vec![redirect.into()],
            post_logout_redirect_uris: vec![],
        },
    )
    .await
    .expect("register an app");
    assert!(created.secret.is_none(), "a public app has no secret");
    created.client_id
}

/// Signs Olivia in on the login page (password, then a code from her authenticator) after the
/// authorization request sent her there, and allows the app on the consent page.
async fn sign_in_and_allow(app: &TestApp, chrome: &Chrome, secret: &[u8], engine: &str) {
    chrome.wait_for_path("/login").await;
    chrome.fill("Email", EMAIL).await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    chrome
        .fill("Authentication code", &totp_code(app, secret))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_path("/oauth/authorize").await;
    chrome
        .wait_for_text(&format!("Tank Monitor asks to sign you in as {EMAIL}"))
        .await;
    let text = chrome.text().await;
    assert!(
        text.contains("the readings of the devices you can see"),
        "the consent page names what the app receives: {text}"
    );
    chrome.screenshot(&format!("oidc-consent-{engine}")).await;
    chrome.press("Allow").await;
}

/// Pairs SN-9301 into Acme with two readings, and SN-9302 into another company with one.
async fn devices(app: &TestApp, acme: TenantId) {
    let ours = pair_into(app, "SN-9301", acme).await;
    assert_eq!(
        accepted(upload(app, &ours, &readings(app, "r", 2)).await).await,
        (2, 0)
    );
    let elsewhere = app.tenant("Elsewhere").await;
    let theirs = pair_into(app, "SN-9302", elsewhere).await;
    accepted(upload(app, &theirs, &readings(app, "x", 1)).await).await;
}

/// The relying app's client as discovery builds it (authorization endpoint set; token and
/// UserInfo endpoints as the provider's metadata names them).
type RelyingApp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The app's HTTP client: reqwest, following no redirects.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What the app knows of pairgate from its issuer URL alone: discovery gives it the endpoints
/// and the keys.
async fn discover(app: &TestApp, client_id: String, redirect: &str) -> RelyingApp {
    let http_client = http_client();
    let http = |request: HttpRequest| send(&http_client, request);
    let issuer = IssuerUrl::new(app.url("")).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http)
        .await
        .expect("discovery");
    assert_eq!(metadata.issuer().as_str(), app.base);
    CoreClient::from_provider_metadata(metadata, ClientId::new(client_id), None)
        .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap())
}

async fn an_openid_connect_client_signs_a_person_in_through_chromium(backend: Backend) {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let engine = match backend {
        Backend::Sqlite => "sqlite",
        _ => "postgres",
    };
    let app = TestApp::start(backend).await;
    let (acme, secret) = acme_owner(&app, None).await;
    devices(&app, acme).await;
    let mut callback = Callback::start().await;
    let client_id = register_third_party(&app, acme, &callback.url).await;
    let client = discover(&app, client_id, &callback.url).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("telemetry:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        authorize_url
            .as_str()
            .starts_with(&app.url("/oauth/authorize?"))
    );

    // The person, in the browser: sign-in, consent, and back to the app by the hand-off page.
    chrome.goto(authorize_url.as_str()).await;
    sign_in_and_allow(&app, &chrome, &secret, engine).await;
    let answer = callback.next().await;
    assert_eq!(
        param(&answer, "state"),
        csrf.secret(),
        "the state comes back"
    );
    assert_eq!(param(&answer, "iss"), app.base, "RFC 9207");
    assert!(answer.iter().all(|(k, _)| k != "error"), "{answer:?}");
    chrome.wait_for_text("Signed in").await;
    let landed = chrome.client.current_url().await.unwrap();
    assert_eq!(
        landed.as_str().split('?').next(),
        Some(callback.url.as_str())
    );
    chrome.close().await;

    let code = AuthorizationCode::new(param(&answer, "code").to_owned());
    redeem_and_use(&app, &client, code, verifier, &nonce).await;
}

/// The app redeems `code`, checks the ID token, asks UserInfo and reads the devices with the
/// access token; then a second redemption of the same code is refused and ends that token.
async fn redeem_and_use(
    app: &TestApp,
    client: &RelyingApp,
    code: AuthorizationCode,
    verifier: PkceCodeVerifier,
    nonce: &Nonce,
) {
    let http_client = http_client();
    let http = |request: HttpRequest| send(&http_client, request);
    let verifier_copy = PkceCodeVerifier::new(verifier.secret().clone());
    let tokens: CoreTokenResponse = client
        .exchange_code(code.clone())
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code is redeemed");
    let subject = check_id_token(app, &client.id_token_verifier(), &tokens, nonce).await;
    let access = tokens.access_token().clone();
    let user_info = || async {
        client
            .user_info(access.clone(), Some(subject.clone()))
            .unwrap()
            .request_async::<EmptyAdditionalClaims, _, CoreGenderClaim>(&http)
            .await
    };
    let me = user_info().await.expect("UserInfo");
    assert_eq!(me.subject(), &subject);
    assert_eq!(me.email().map(|e| e.as_str()), Some(EMAIL));
    check_reads(app, &access).await;

    // The code again (as a thief who copied it would): refused, and the token it gave is ended.
    let again = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier_copy)
        .request_async(&http)
        .await;
    assert!(
        matches!(&again, Err(RequestTokenError::ServerResponse(e))
            if *e.error() == CoreErrorResponseType::InvalidGrant),
        "a code is redeemed once: {again:?}"
    );
    let ended = user_info().await;
    assert!(
        matches!(&ended, Err(UserInfoError::Response(status, _, _)) if status.as_u16() == 401),
        "the first token is revoked: {ended:?}"
    );
}

/// Verifies the ID token as the library does (signature by the published keys, issuer,
/// audience, expiry, nonce) and checks its claims; refused with any other nonce. The subject.
async fn check_id_token(
    app: &TestApp,
    verifier: &CoreIdTokenVerifier<'_>,
    tokens: &CoreTokenResponse,
    nonce: &Nonce,
) -> SubjectIdentifier {
    let id_token = tokens.id_token().expect("an ID token");
    let refused = id_token.claims(verifier, &Nonce::new_random());
    assert!(
        matches!(refused, Err(ClaimsVerificationError::InvalidNonce(_))),
        "another nonce is refused: {refused:?}"
    );
    let claims = id_token
        .claims(verifier, nonce)
        .expect("the ID token verifies");
    let id = app
        .query_i64(&format!(
            "SELECT id AS n FROM users WHERE email = '{EMAIL}'"
        ))
        .await;
    assert_eq!(claims.subject().as_str(), format!("user:{id}"));
    assert_eq!(claims.issuer().as_str(), app.base);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    let name = claims.name().and_then(|n| n.get(None));
    assert_eq!(name.map(|n| n.as_str()), Some("Olivia Owner"));
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .into_iter()
        .flatten()
        .map(|m| m.as_str())
        .collect();
    assert_eq!(
        amr,
        ["pwd", "otp", "mfa"],
        "signed in with a password and a code"
    );
    let acr = claims.auth_context_ref().map(|a| a.as_str());
    assert_eq!(acr, Some("mfa"));
    claims.subject().clone()
}

fn serials(list: &Value) -> Vec<&str> {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["serial"].as_str().unwrap())
        .collect()
}

/// With the person's access token: Acme's device and its readings, nothing of Elsewhere's.
async fn check_reads(app: &TestApp, access: &AccessToken) {
    let token = access.secret();
    let (status, list, _) = bearer_get(app, "/api/v1/devices", token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(serials(&list), ["SN-9301"]);
    assert_eq!(list["total"], 1);
    let (status, series, _) = bearer_get(app, "/api/v1/devices/SN-9301/telemetry", token).await;
    assert_eq!(status, 200, "{series}");
    let ids: Vec<&str> = series["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r-0", "r-1"]);
    assert_eq!(series["readings"][1]["metrics"]["t"], 21.0);
    let (status, _, _) = bearer_get(app, "/api/v1/devices/SN-9302/telemetry", token).await;
    assert_eq!(status, 404, "another company's device is not there");
}
