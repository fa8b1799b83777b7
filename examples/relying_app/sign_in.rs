//! The `sign-in` mode: a dashboard people sign in to with OpenID Connect (the authorization code
//! flow with PKCE), showing the devices each person may see. What it asks pairgate is in
//! [`crate::oidc`], its pages in [`crate::page`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use pairgate_verifier::jose::{b64, sha256_b64};
use pairgate_verifier::jwks::{JwksCache, JwksPolicy};
use pairgate_verifier::{Clock, SystemClock};
use serde_json::Value;
use url::Url;

use crate::oidc::{discover, read_devices, redeem, verify_id_token};
use crate::page::{dashboard, esc, page};
use crate::{arg, usage};

/// The scopes the dashboard asks for: who the person is, and the telemetry they may read.
const SCOPE: &str = "openid email profile telemetry:read";
/// How long a sign-in may take between `/login` and `/callback`.
const PENDING_MS: i64 = 10 * 60 * 1000;
/// How long a signed-in session lasts here.
const SESSION_MS: i64 = 8 * 3600 * 1000;
/// The most sign-ins under way at once (anyone may start one).
const MAX_PENDING: usize = 10_000;
const SESSION_COOKIE: &str = "relying_app_session";
/// Binds a sign-in under way to the browser that started it (RFC 6749 §10.12).
const LOGIN_COOKIE: &str = "relying_app_login";

/// The sign-in mode's configuration, the issuer's endpoints, and what it keeps in memory.
pub(crate) struct Rp {
    pub(crate) issuer: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<String>,
    pub(crate) redirect_uri: String,
    after_logout: Option<String>,
    authorization_endpoint: Url,
    pub(crate) token_endpoint: String,
    end_session_endpoint: Option<Url>,
    /// The metadata says every authorization answer carries `iss` (RFC 9207 §3).
    iss_required: bool,
    pub(crate) jwks: JwksCache,
    pub(crate) http: reqwest::Client,
    /// Sign-ins under way, by `state`.
    pending: Mutex<HashMap<String, Pending>>,
    /// Signed-in people, by session cookie.
    sessions: Mutex<HashMap<String, Person>>,
}

struct Pending {
    nonce: String,
    verifier: String,
    started_ms: i64,
}

pub(crate) struct Person {
    pub(crate) name: String,
    pub(crate) email: String,
    /// Sent back as `id_token_hint` when the person signs out; never shown or logged.
    pub(crate) id_token: String,
    pub(crate) devices: Vec<Device>,
    pub(crate) total: i64,
    pub(crate) since_ms: i64,
}

pub(crate) struct Device {
    pub(crate) serial: String,
    pub(crate) model: String,
    /// The newest reading (`id`, `ts`, `metrics`), if the device has sent any.
    pub(crate) latest: Option<Value>,
}

/// Why a callback did not sign the person in: the answer itself (400), or pairgate could not
/// be asked (502).
pub(crate) enum Fail {
    Refused(String),
    Upstream(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 32 random bytes, base64url: states, nonces, PKCE verifiers (RFC 7636 §4.1) and session ids.
fn random() -> String {
    b64(rand::random::<[u8; 32]>())
}

pub(crate) fn now_ms() -> i64 {
    SystemClock.now_ms()
}

fn die(message: String) -> ! {
    eprintln!("relying_app: {message}");
    std::process::exit(1)
}

pub(crate) async fn run(args: &[String], issuer: String) -> std::io::Result<()> {
    let Some(client_id) = arg(args, "--client-id") else {
        usage()
    };
    let listen = arg(args, "--listen").unwrap_or_else(|| "127.0.0.1:9091".into());
    let redirect_uri =
        arg(args, "--redirect-uri").unwrap_or_else(|| format!("http://{listen}/callback"));
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let meta = discover(&http, &issuer)
        .await
        .unwrap_or_else(|e| die(format!("discovery: {e}")));
    let endpoint = |name: &str| -> Url {
        meta[name]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .unwrap_or_else(|| die(format!("the issuer's metadata has no usable {name}")))
    };
    let authorization_endpoint = endpoint("authorization_endpoint");
    let token_endpoint = endpoint("token_endpoint").into();
    let jwks_uri = endpoint("jwks_uri").into();
    let userinfo = meta["userinfo_endpoint"].as_str().unwrap_or("none");
    eprintln!("issuer {issuer}: sign-in at {authorization_endpoint}, keys at {jwks_uri}");
    eprintln!("(UserInfo, for claims an ID token lacks: {userinfo})");
    let rp = web::Data::new(Rp {
        client_id,
        client_secret: arg(args, "--client-secret"),
        redirect_uri,
        after_logout: arg(args, "--post-logout-redirect-uri"),
        authorization_endpoint,
        token_endpoint,
        end_session_endpoint: meta["end_session_endpoint"]
            .as_str()
            .and_then(|u| Url::parse(u).ok()),
        iss_required: meta["authorization_response_iss_parameter_supported"] == true,
        jwks: JwksCache::new(http.clone(), jwks_uri, JwksPolicy::default()),
        http,
        issuer,
        pending: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
    });
    eprintln!("open http://{listen}/ to sign in");
    HttpServer::new(move || {
        App::new()
            .app_data(rp.clone())
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login))
            .route("/callback", web::get().to(callback))
            .route("/logout", web::get().to(logout))
    })
    .workers(2)
    .bind(listen)?
    .run()
    .await
}

/// `GET /`: a sign-in link, or the signed-in person and their devices.
async fn home(req: HttpRequest, rp: web::Data<Rp>) -> HttpResponse {
    let sessions = lock(&rp.sessions);
    let person = req
        .cookie(SESSION_COOKIE)
        .and_then(|c| sessions.get(c.value()))
        .filter(|p| now_ms() - p.since_ms < SESSION_MS);
    match person {
        Some(person) => page(StatusCode::OK, &dashboard(person)),
        None => page(
            StatusCode::OK,
            "<p>You are not signed in.</p><p><a href=\"/login\">Sign in with pairgate</a></p>",
        ),
    }
}

/// `GET /login`: a new `state`, `nonce` and PKCE verifier, remembered here; the person goes to
/// the authorization endpoint with the S256 challenge.
async fn login(rp: web::Data<Rp>) -> HttpResponse {
    let (state, nonce, verifier) = (random(), random(), random());
    let mut url = rp.authorization_endpoint.clone();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", &rp.client_id),
        ("redirect_uri", &rp.redirect_uri),
        ("scope", SCOPE),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &sha256_b64(&verifier)),
        ("code_challenge_method", "S256"),
    ]);
    let now = now_ms();
    {
        let mut pending = lock(&rp.pending);
        pending.retain(|_, p| now - p.started_ms < PENDING_MS);
        if pending.len() >= MAX_PENDING {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "<p>Too many sign-ins: try later.</p>",
            );
        }
        let entry = Pending {
            nonce,
            verifier,
            started_ms: now,
        };
        pending.insert(state.clone(), entry);
    }
    let binding = cookie(LOGIN_COOKIE, state, "/callback", CookieAge::minutes(10));
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.as_str()))
        .cookie(binding)
        .finish()
}

fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    age: CookieAge,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(age)
        .finish()
}

/// `GET /callback`: the authorization answer. On success the person has a session here.
async fn callback(
    req: HttpRequest,
    rp: web::Data<Rp>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut done = cookie(LOGIN_COOKIE, String::new(), "/callback", CookieAge::ZERO);
    done.make_removal();
    let (status, why) = match finish(&req, &rp, &query).await {
        Ok(session) => {
            let session = cookie(SESSION_COOKIE, session, "/", CookieAge::hours(8));
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/"))
                .cookie(session)
                .cookie(done)
                .finish();
        }
        Err(Fail::Refused(why)) => (StatusCode::BAD_REQUEST, why),
        Err(Fail::Upstream(why)) => (StatusCode::BAD_GATEWAY, why),
    };
    eprintln!("sign-in refused: {why}");
    let body = format!(
        "<h1>Sign-in failed</h1><p>{}</p><p><a href=\"/login\">Try again</a></p>",
        esc(&why)
    );
    let mut res = page(status, &body);
    let _ = res.add_cookie(&done);
    res
}

/// Checks the answer, redeems the code, verifies the ID token and reads the person's devices;
/// the new session's id.
async fn finish(req: &HttpRequest, rp: &Rp, q: &HashMap<String, String>) -> Result<String, Fail> {
    let refused = |why: &str| Fail::Refused(why.to_owned());
    let state = q
        .get("state")
        .ok_or_else(|| refused("The answer carries no state."))?;
    let pending = lock(&rp.pending)
        .remove(state)
        .filter(|p| now_ms() - p.started_ms < PENDING_MS)
        .ok_or_else(|| refused("This sign-in is unknown, used or expired: start again."))?;
    if req.cookie(LOGIN_COOKIE).is_none_or(|c| c.value() != state) {
        return Err(refused("This sign-in was not started in this browser."));
    }
    // RFC 9207 §2.4: the answer must come from the issuer this sign-in went to.
    match q.get("iss") {
        Some(iss) if *iss != rp.issuer => return Err(refused("The answer names another issuer.")),
        None if rp.iss_required => return Err(refused("The answer names no issuer.")),
        _ => {}
    }
    if let Some(error) = q.get("error") {
        let detail = q.get("error_description").map_or("", String::as_str);
        return Err(Fail::Refused(format!(
            "pairgate answered {error}. {detail}"
        )));
    }
    let code = q
        .get("code")
        .ok_or_else(|| refused("The answer carries no code."))?;
    let tokens = redeem(rp, code, &pending.verifier).await?;
    let text = |name: &str| {
        tokens[name]
            .as_str()
            .ok_or_else(|| refused("No tokens came back."))
    };
    let (id_token, access_token) = (text("id_token")?, text("access_token")?);
    let claims = verify_id_token(rp, id_token, &pending.nonce).await?;
    let (devices, total) = read_devices(rp, access_token).await?;
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let person = Person {
        name: claim("name"),
        email: claim("email"),
        id_token: id_token.to_owned(),
        devices,
        total,
        since_ms: now_ms(),
    };
    eprintln!("signed in: {} <{}>", person.name, person.email);
    let id = random();
    let mut sessions = lock(&rp.sessions);
    sessions.retain(|_, p| now_ms() - p.since_ms < SESSION_MS);
    sessions.insert(id.clone(), person);
    Ok(id)
}

/// `GET /logout`: forgets the session here and, when the app registered where pairgate may send
/// the person back, ends the pairgate session too (RP-Initiated Logout §2).
async fn logout(req: HttpRequest, rp: web::Data<Rp>) -> HttpResponse {
    let person = req
        .cookie(SESSION_COOKIE)
        .and_then(|c| lock(&rp.sessions).remove(c.value()));
    let mut location = "/".to_owned();
    if let (Some(person), Some(back), Some(end)) =
        (person, &rp.after_logout, &rp.end_session_endpoint)
    {
        let mut url = end.clone();
        url.query_pairs_mut().extend_pairs([
            ("id_token_hint", person.id_token.as_str()),
            ("post_logout_redirect_uri", back),
            ("state", &random()),
        ]);
        location = url.into();
    }
    let mut gone = cookie(SESSION_COOKIE, String::new(), "/", CookieAge::ZERO);
    gone.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .cookie(gone)
        .finish()
}
