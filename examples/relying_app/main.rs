//! A relying app of pairgate's, knowing nothing but the issuer's URL, in three modes.
//!
//! `serve` and `verify` accept pairgate access tokens: they read the issuer's metadata
//! (RFC 8414), fetch and cache its JWKS, and verify tokens (RFC 9068) and DPoP proofs (RFC 9449)
//! with the `pairgate-verifier` crate alone (it lives beside pairgate, whose telemetry endpoint
//! runs the same code). No database, no shared secret.
//!
//! `sign-in` is a customer's dashboard: it signs a person in with OpenID Connect (discovery, the
//! code flow with PKCE S256, `state` and `nonce`, the ID token checked with the same crate's JWS
//! and JWK support) and shows the devices that person may see with their newest readings, read
//! with the person's access token. It is a public app registered with the redirect URI
//! `http://<listen>/callback` (`--redirect-uri` for another); `--client-secret` makes it a
//! confidential one (client_secret_post; a real one reads its secret from a secret store, not
//! its command line). Signing out ends pairgate's session too when the app registered the
//! `--post-logout-redirect-uri` it names, and only the dashboard's otherwise. The routes are in
//! `sign_in.rs`, what it asks pairgate (and the ID token's checks) in `oidc.rs`, the HTML in
//! `page.rs`. Only the web framework (actix-web here) is this example's own choice: the crate
//! needs none.
//!
//! ```sh
//! # a resource server: POST /ingest takes a device's DPoP-bound token and proof
//! cargo run --example relying_app -- serve --issuer http://127.0.0.1:8080 --listen 127.0.0.1:9090
//! # or check one token (RFC 9068 only) and print its claims
//! cargo run --example relying_app -- verify --issuer http://127.0.0.1:8080 --token eyJ…
//! # a dashboard people sign in to: open http://127.0.0.1:9091/
//! cargo run --example relying_app -- sign-in --issuer http://127.0.0.1:8080 --client-id ID \
//!     --listen 127.0.0.1:9091 [--post-logout-redirect-uri http://127.0.0.1:9091/]
//! ```
//!
//! A device's proof for `/ingest` must name this app's URL (`htu`, default
//! `http://<listen>/ingest`). What a production app adds: a replay store shared by its instances
//! (this one keeps proof `jti` values, sign-ins under way and sessions in memory), and, where
//! revocation must take effect before a token expires, a call to pairgate's introspection
//! endpoint (RFC 7662) with its own client credentials. A dashboard served over https would also
//! mark its cookies `Secure` and sign out with a POST carrying a CSRF token.

mod oidc;
mod page;
mod sign_in;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use pairgate_verifier::jwks::{JwksCache, JwksPolicy};
use pairgate_verifier::{
    Clock, ResourceRequest, SystemClock, Verifier, VerifierConfig, VerifyError,
};
use serde_json::json;

struct State {
    verifier: Verifier,
    /// This endpoint's URL, as the proofs must name it.
    url: String,
    clock: Arc<dyn Clock>,
    /// Proof jti values until they may be forgotten (a single-instance replay store).
    seen: Mutex<HashMap<String, i64>>,
}

fn usage() -> ! {
    eprintln!(concat!(
        "usage: relying_app serve --issuer URL [--listen ADDR] [--audience AUD] [--url URL]\n",
        "       relying_app verify --issuer URL --token TOKEN [--audience AUD]\n",
        "       relying_app sign-in --issuer URL --client-id ID [--listen ADDR]\n",
        "        [--client-secret SECRET] [--redirect-uri URI] [--post-logout-redirect-uri URI]",
    ));
    std::process::exit(2)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(issuer) = arg(&args, "--issuer") else {
        usage()
    };
    let issuer = issuer.trim_end_matches('/').to_owned();
    if args.get(1).map(String::as_str) == Some("sign-in") {
        return sign_in::run(&args, issuer).await;
    }
    // pairgate's device tokens name `<issuer>/api` unless oauth.access_token_audience says else.
    let audience = arg(&args, "--audience").unwrap_or_else(|| format!("{issuer}/api"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (jwks, meta) =
        match JwksCache::discover(reqwest::Client::new(), &issuer, JwksPolicy::default()).await {
            Ok(found) => found,
            Err(e) => {
                eprintln!("relying_app: {e}");
                std::process::exit(1);
            }
        };
    eprintln!("issuer {issuer}: keys at {}", meta["jwks_uri"]);
    let verifier = Verifier::new(
        VerifierConfig::relying_app(&issuer, &audience),
        Arc::new(jwks),
        clock.clone(),
    );

    match args.get(1).map(String::as_str) {
        Some("verify") => {
            let Some(token) = arg(&args, "--token") else {
                usage()
            };
            match verifier.verify_access_token(&token).await {
                Ok(claims) => {
                    println!("valid: {}", serde_json::to_string_pretty(&*claims)?);
                    Ok(())
                }
                Err(e) => {
                    println!("refused: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("serve") => {
            let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:9090".into());
            let url = arg(&args, "--url").unwrap_or_else(|| format!("http://{listen}/ingest"));
            eprintln!("accepting DPoP-bound tokens for {audience} at {url}");
            let state = web::Data::new(State {
                verifier,
                url,
                clock,
                seen: Mutex::new(HashMap::new()),
            });
            HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .route("/ingest", web::post().to(ingest))
            })
            .workers(2)
            .bind(listen)?
            .run()
            .await
        }
        _ => usage(),
    }
}

async fn ingest(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let dpop: Vec<String> = req
        .headers()
        .get_all("dpop")
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let verified = state
        .verifier
        .verify(&ResourceRequest {
            authorization,
            dpop: &dpop,
            method: "POST",
            url: &state.url,
        })
        .await;
    let verified = match verified {
        Ok(v) => v,
        Err(e) => return refuse(&e),
    };
    // RFC 9449 §11.1: a proof is good once.
    let now = state.clock.now_ms();
    {
        let mut seen = state.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, until| *until > now);
        let key = format!("{}:{}", verified.proof.replay_scope(), verified.proof.jti);
        if seen.insert(key, verified.proof.replay_until_ms).is_some() {
            return refuse(&VerifyError::InvalidDpopProof(
                "the DPoP proof was used before",
            ));
        }
    }
    let c = &verified.claims;
    HttpResponse::Ok().json(json!({
        "sub": c.sub,
        "device": c.device,
        "tenant_id": c.tenant_id,
        "scope": c.scope,
        "expires_in": c.exp - now / 1000,
    }))
}

/// RFC 6750 §3 / RFC 9449 §7.1 challenge.
fn refuse(e: &VerifyError) -> HttpResponse {
    if *e == VerifyError::KeysUnavailable {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .finish();
    }
    let mut challenge = String::from("DPoP ");
    if let Some(code) = e.code() {
        challenge.push_str(&format!("error=\"{code}\", "));
    }
    if let Some(d) = e.description() {
        challenge.push_str(&format!("error_description=\"{d}\", "));
    }
    challenge.push_str(&format!("algs=\"{}\"", Verifier::algs()));
    let mut res = match e {
        VerifyError::InvalidRequest(_) => HttpResponse::BadRequest(),
        _ => HttpResponse::Unauthorized(),
    };
    res.insert_header((header::WWW_AUTHENTICATE, challenge))
        .json(json!({ "error": e.code(), "error_description": e.description() }))
}
