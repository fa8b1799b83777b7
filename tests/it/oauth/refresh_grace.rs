//! A lost refresh answer does not cost the pairing: within `oauth.refresh_retry_grace_secs` of a
//! refresh, its refresh token presented again by the same device with the same DPoP key gets
//! the same successor back (no new rotation), and so do concurrent presentations of one token.
//! Anything else stays a reuse that revokes the family. End to end, `pairgate-device` rides out
//! an answer that a proxy drops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pairgate::ids::DeviceSerial;
use pairgate::simulator::client::{DeviceClient, Poll};
use pairgate::simulator::firmware::{load_tokens, save_tokens};
use pairgate::simulator::{DeviceKey, KeyAlg, generate_pkcs8, pkcs8_pem};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::discovery::verify_with_jwks;
use super::error_of;
use super::refresh::{refresh, refresh_with, refreshed};
use crate::backend_tests;
use crate::support::device::{Signer, TestDevice};
use crate::support::{Backend, TestApp};
use crate::telemetry::{accepted, paired, readings, stored, upload_with};

backend_tests!(
    a_lost_answer_is_given_again_within_the_grace,
    concurrent_refreshes_with_one_token_all_get_the_successor,
    after_the_grace_a_retry_is_a_reuse_that_ends_the_family,
    only_the_holder_of_the_key_can_retry,
    the_grace_can_be_turned_off,
    pairgate_device_recovers_from_a_dropped_refresh_answer,
);

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

fn access_token_of(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// The counter of the device's refresh-token family (how often it rotated, plus one).
async fn counter(app: &TestApp, serial: &str) -> i64 {
    app.query_i64(&format!(
        "SELECT counter AS n FROM refresh_families WHERE client_id = '{serial}'"
    ))
    .await
}

async fn reuse_events(app: &TestApp) -> usize {
    app.ctx
        .store
        .audit_page(None, None, 200)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "token.refresh_reuse_detected")
        .count()
}

/// The device carries on with `tokens`: it uploads with the access token, and its refresh token
/// rotates.
async fn still_works(app: &TestApp, device: &TestDevice, tokens: &Value, batch: &str) {
    let res = upload_with(
        app,
        device,
        &access_token_of(tokens),
        &readings(app, batch, 1),
        json!({}),
    )
    .await;
    assert_eq!(accepted(res).await, (1, 0));
    let next = refreshed(app, device, &refresh_token_of(tokens)).await;
    assert_ne!(refresh_token_of(&next), refresh_token_of(tokens));
}

async fn a_lost_answer_is_given_again_within_the_grace(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-2101").await;
    // The device refreshes; the answer is lost on the way back.
    let lost = refreshed(&app, &p.device, &p.refresh_token).await;
    assert_eq!(counter(&app, "SN-2101").await, 2);

    // It sends the same refresh again, with the same key, some seconds later.
    app.advance(20);
    let again = refreshed(&app, &p.device, &p.refresh_token).await;
    assert_eq!(
        refresh_token_of(&again),
        refresh_token_of(&lost),
        "the same successor refresh token"
    );
    assert_eq!(counter(&app, "SN-2101").await, 2, "no new rotation");
    assert_eq!(again["token_type"], "DPoP");
    assert_eq!(again["expires_in"], 600);
    // A new access token with the same claims: same device, tenant, key and generation.
    let (first, second) = (
        verify_with_jwks(&app, &access_token_of(&lost)).await,
        verify_with_jwks(&app, &access_token_of(&again)).await,
    );
    for same in [
        "sub",
        "client_id",
        "device",
        "tenant_id",
        "cnf",
        "gen",
        "scope",
        "aud",
    ] {
        assert_eq!(first[same], second[same], "{same}");
    }
    assert_ne!(first["jti"], second["jti"]);
    assert_eq!(reuse_events(&app).await, 0);

    still_works(&app, &p.device, &again, "after-retry").await;
    // The access token of the lost answer is as good: the relying party sees two tokens of one
    // grant, both ending with it.
    let res = upload_with(
        &app,
        &p.device,
        &access_token_of(&lost),
        &readings(&app, "lost-answer", 1),
        json!({}),
    )
    .await;
    assert_eq!(accepted(res).await, (1, 0));
}

async fn concurrent_refreshes_with_one_token_all_get_the_successor(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-2102").await;
    let token = p.refresh_token.clone();

    // Several presentations of one token at once (retries that overtook their original). On
    // PostgreSQL most of them read the family before the first one commits, and lose the race
    // to move it on.
    let presentations = (0..8).map(|_| refresh(&app, &p.device, &token));
    let mut answers = Vec::new();
    for res in futures_util::future::join_all(presentations).await {
        assert_eq!(res.status(), 200, "every presentation is answered");
        answers.push(res.json::<Value>().await.unwrap());
    }
    let successor = refresh_token_of(&answers[0]);
    for answer in &answers {
        assert_eq!(refresh_token_of(answer), successor, "one answer for all");
    }
    assert_eq!(counter(&app, "SN-2102").await, 2, "one rotation");
    assert_eq!(reuse_events(&app).await, 0);
    still_works(&app, &p.device, &answers[7], "after-race").await;
}

async fn after_the_grace_a_retry_is_a_reuse_that_ends_the_family(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-2103").await;
    let next = refreshed(&app, &p.device, &p.refresh_token).await;

    app.advance(30);
    let body = error_of(refresh(&app, &p.device, &p.refresh_token).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
    let body = error_of(
        refresh(&app, &p.device, &refresh_token_of(&next)).await,
        400,
    )
    .await;
    assert_eq!(body["error_description"], "the refresh token was revoked");
    assert_eq!(reuse_events(&app).await, 1);
}

/// The grace is for the device that sent the lost request: a proof by another key, no proof, a
/// token older than the previous one, or another client are no retries.
async fn only_the_holder_of_the_key_can_retry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;

    // A copy of the token, presented with a proof by another key, or with none.
    for (serial, with_proof) in [("SN-2104", true), ("SN-2105", false)] {
        let device = app.device(serial).await;
        let first = refresh_token_of(&app.pair(&device, tenant).await);
        let next = refresh_token_of(&refreshed(&app, &device, &first).await);
        let thief = TestDevice {
            serial: serial.to_owned(),
            key: Signer::es256(),
            issuer: device.issuer.clone(),
        };
        let prover = with_proof.then_some(&thief);
        let body = error_of(refresh_with(&app, &device, &first, prover).await, 400).await;
        assert_eq!(
            body["error_description"], "the refresh token was already used",
            "{serial}"
        );
        let body = error_of(refresh(&app, &device, &next).await, 400).await;
        assert_eq!(
            body["error_description"], "the refresh token was revoked",
            "{serial}: the family ended"
        );
    }

    // Two tokens back, even at once and with the right key.
    let device = app.device("SN-2106").await;
    let first = refresh_token_of(&app.pair(&device, tenant).await);
    let second = refresh_token_of(&refreshed(&app, &device, &first).await);
    let third = refresh_token_of(&refreshed(&app, &device, &second).await);
    let body = error_of(refresh(&app, &device, &first).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
    let body = error_of(refresh(&app, &device, &third).await, 400).await;
    assert_eq!(body["error_description"], "the refresh token was revoked");

    // Another device, authenticating as itself, cannot retry someone else's refresh; nor does
    // its attempt cost the owner the family.
    let owner = app.device("SN-2107").await;
    let other = app.device("SN-2108").await;
    let first = refresh_token_of(&app.pair(&owner, tenant).await);
    let next = refreshed(&app, &owner, &first).await;
    let body = error_of(refresh(&app, &other, &first).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was issued to another client"
    );
    assert_eq!(
        refresh_token_of(&refreshed(&app, &owner, &first).await),
        refresh_token_of(&next)
    );
    assert_eq!(reuse_events(&app).await, 3);
}

async fn the_grace_can_be_turned_off(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[oauth]\nrefresh_retry_grace_secs = 0")
        .start()
        .await;
    let p = paired(&app, "SN-2109").await;
    refreshed(&app, &p.device, &p.refresh_token).await;
    let body = error_of(refresh(&app, &p.device, &p.refresh_token).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
}

/// A loopback TCP proxy in front of pairgate, as a cellular link would be: it forwards
/// everything, except that the first answer to a refresh_token grant never reaches the device.
/// The proxy reads that answer from pairgate in full (so pairgate has committed it), keeps it
/// for the test, and closes the device's connection.
struct LossyProxy {
    dropped: Arc<Mutex<Option<Vec<u8>>>>,
}

impl LossyProxy {
    fn start(listener: TcpListener, upstream: String) -> Self {
        let dropped = Arc::new(Mutex::new(None));
        let armed = Arc::new(AtomicBool::new(true));
        let keep = Arc::clone(&dropped);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, Arc::clone(&armed), Arc::clone(&keep)));
            }
        });
        Self { dropped }
    }

    /// The body of the answer the device never got.
    fn dropped_answer(&self) -> Option<Value> {
        let raw = self.dropped.lock().unwrap().clone()?;
        let text = String::from_utf8(raw).ok()?;
        let (_, body) = text.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }
}

/// One connection: requests flow through untouched; once a request carries the refresh grant
/// (and the proxy is still armed), the answer that follows is swallowed.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    armed: Arc<AtomicBool>,
    dropped: Arc<Mutex<Option<Vec<u8>>>>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let swallow = Arc::new(AtomicBool::new(false));
    let spotted = Arc::clone(&swallow);
    let upstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        // The end of the previous read, in case the parameter straddles two reads.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            tail.extend_from_slice(&buf[..n]);
            if contains(&tail, b"grant_type=refresh_token") && armed.swap(false, Ordering::SeqCst) {
                spotted.store(true, Ordering::SeqCst);
            }
            let keep_from = tail.len().saturating_sub(64);
            tail.drain(..keep_from);
            if to_server.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut answer = Vec::new();
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if swallow.load(Ordering::SeqCst) {
                answer.extend_from_slice(&buf[..n]);
                if complete(&answer) {
                    *dropped.lock().unwrap() = Some(answer);
                    // Returning drops the device's side of the connection: it sees it close
                    // before any answer.
                    return;
                }
            } else if to_client.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `raw` holds a whole HTTP response with a `Content-Length` body.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    raw.len() >= end + 4 + length
}

/// `pairgate-device run` with tokens that are due for a refresh, behind a link that drops the
/// refresh's answer: the device presents the same refresh token again, gets the same successor,
/// uploads, and goes on refreshing, with nobody pairing it again.
async fn pairgate_device_recovers_from_a_dropped_refresh_answer(backend: Backend) {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", front.local_addr().unwrap());
    let app = TestApp::builder(backend).behind(&base).start().await;
    let proxy = LossyProxy::start(front, app.bound.clone());
    // The simulator reads the wall clock: keep pairgate's clock on it for this test.
    let clock = Arc::clone(&app.clock);
    let ticker = tokio::spawn(async move {
        loop {
            clock.set(pairgate::clock::Clock::now(&pairgate::clock::SystemClock));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });

    // A device with its factory key in a file, paired through the simulator's client.
    let dir = tempfile::tempdir().unwrap();
    let der = generate_pkcs8(KeyAlg::Es256).unwrap();
    let key_file = dir.path().join("device.pem");
    std::fs::write(&key_file, pkcs8_pem(&der)).unwrap();
    let serial = "SIM-2110";
    let key = DeviceKey::from_pkcs8(&der).unwrap();
    pairgate::devices::register(
        &app.ctx.store,
        app.now() * 1000,
        "test",
        &DeviceSerial::from(serial),
        "SIM-1",
        &key.public_jwk(),
    )
    .await
    .unwrap();
    let tenant = app.tenant("Acme Water").await;
    let client = DeviceClient::discover(&base, serial, key).await.unwrap();
    let auth = client.start_pairing().await.unwrap();
    app.ctx
        .oauth
        .decide(
            &auth.user_code,
            pairgate::oauth::device_flow::Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    let Poll::Tokens(mut tokens) = client.poll(&auth.device_code).await.unwrap() else {
        panic!("no tokens after approval");
    };
    let paired_with = tokens.refresh_token.clone().unwrap();
    // The device's own bookkeeping says the access token ends in 30 s: it refreshes first.
    tokens.expires_at = client.now() + 30;
    let tokens_file = dir.path().join("tokens.json");
    save_tokens(&tokens_file, &tokens).unwrap();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pairgate-device"));
    command.args(["run", "--serial", serial, "--server", &base]);
    command.arg("--key").arg(&key_file);
    command.arg("--tokens").arg(&tokens_file);
    command.args(["--interval-secs", "1", "--measurements", "1"]);
    let run = tokio::task::spawn_blocking(move || command.output().unwrap());
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("pairgate-device finishes")
        .unwrap();
    ticker.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pairgate-device failed: {stderr}");

    let lost = proxy
        .dropped_answer()
        .expect("the proxy dropped a refresh answer");
    let kept = load_tokens(&tokens_file).unwrap().unwrap();
    assert_ne!(
        kept.refresh_token.as_deref(),
        Some(paired_with.as_str()),
        "the device refreshed: {stderr}"
    );
    assert_eq!(
        kept.refresh_token.as_deref(),
        lost["refresh_token"].as_str(),
        "the retry got the successor of the lost answer"
    );
    assert!(
        stderr.contains("retrying the same token"),
        "the device says what it did: {stderr}"
    );
    assert_eq!(counter(&app, serial).await, 2, "one rotation");
    assert_eq!(reuse_events(&app).await, 0);
    assert_eq!(stored(&app, serial).await, 1, "the reading went up");
    // And the device goes on: its refresh token is the family's current one.
    let next = client
        .refresh(kept.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_ne!(next.refresh_token, kept.refresh_token);
}
