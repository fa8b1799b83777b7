//! Webhooks from the outbox, against a receiver on 127.0.0.1 that refuses the first attempts:
//! Standard Webhooks signatures, retries with backoff on the injected clock, order per device,
//! and nothing lost while the receiver is down.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{ErpClient, sale};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(webhooks_are_signed_retried_and_in_order_per_device);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver saw, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    accepted: bool,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    /// Requests still to refuse with 503.
    refuse: Arc<AtomicUsize>,
}

async fn receive(req: HttpRequest, body: String, state: web::Data<Receiver>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let accepted = state
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_err();
    state.seen.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        accepted,
    });
    if accepted {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::ServiceUnavailable().finish()
    }
}

/// Starts the receiver; returns its URL, its state and its handle.
fn start_receiver() -> (String, Receiver, actix_web::dev::ServerHandle) {
    let state = Receiver::default();
    let data = web::Data::new(state.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/pairgate", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hooks/pairgate", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (url, state, handle)
}

fn verify(r: &Received) -> bool {
    let secret = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let signed = format!("{}.{}.{}", r.id, r.timestamp, r.body);
    let expected = STANDARD.encode(hmac::sign(&key, signed.as_bytes()).as_ref());
    r.signature == format!("v1,{expected}")
}

/// Runs the Python `verify` of `docs/erp-integration.md` on a request, as a receiver would on
/// arrival (at `now`, the server's clock).
fn guide_verifies(r: &Received, now: i64) -> bool {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/erp-integration.md"),
    )
    .unwrap();
    let start = page.find("```python\n").unwrap() + "```python\n".len();
    let code = &page[start..start + page[start..].find("```").unwrap()];
    let script = format!(
        "{code}\nimport sys, time\ntime.time = lambda: {now}\n\
         ok = verify(sys.argv[1], {{'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], \
         'webhook-signature': sys.argv[4]}}, sys.stdin.buffer.read())\nprint(ok)\n"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", &script, SECRET, &r.id, &r.timestamp, &r.signature])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3, to run the guide's receiver code");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(r.body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    match String::from_utf8(out.stdout).unwrap().trim() {
        "True" => true,
        "False" => false,
        other => panic!("{other}"),
    }
}

async fn webhooks_are_signed_retried_and_in_order_per_device(backend: Backend) {
    let (url, receiver, handle) = start_receiver();
    let app = TestApp::builder(backend)
        .config(&format!(
            "[erp]\nwebhook_url = \"{url}\"\nwebhook_secret = \"{SECRET}\"\n\
             webhook_retry_base_secs = 10\nwebhook_retry_max_secs = 40"
        ))
        .start()
        .await;
    let erp = ErpClient::new(&app).await;
    // The receiver is "down" for the first three attempts.
    receiver.refuse.store(3, Ordering::SeqCst);
    erp.device("SN-W-1").await; // event 1
    erp.put_ok("/api/erp/v1/sales/W-1", &sale("SN-W-1", "C-1", 1), 201)
        .await; // event 2, same device
    erp.device("SN-W-2").await; // event 3, another device

    // Pass 1: SN-W-1's first event fails (and holds back its second); SN-W-2's fails too.
    let report = app.ctx.erp.deliver_webhooks().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 2));
    // Nothing is due again before the backoff has passed.
    let report = app.ctx.erp.deliver_webhooks().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 0));

    // Pass 2, 10 s later: event 1 fails once more (the third refusal), event 3 goes through.
    app.advance(10);
    let report = app.ctx.erp.deliver_webhooks().await.unwrap();
    assert_eq!((report.delivered, report.failed), (1, 1));
    // The second failure doubles the wait: nothing at +10 s, delivery at +20 s.
    app.advance(10);
    let report = app.ctx.erp.deliver_webhooks().await.unwrap();
    assert_eq!((report.delivered, report.failed), (0, 0));
    app.advance(10);
    let report = app.ctx.erp.deliver_webhooks().await.unwrap();
    assert_eq!(
        (report.delivered, report.failed),
        (2, 0),
        "event 1, then event 2 behind it in the same pass"
    );
    let pending = app
        .ctx
        .store
        .read(|tx| pairgate::store::erp::pending_deliveries(tx, 10))
        .await
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");

    let seen = receiver.seen.lock().unwrap().clone();
    handle.stop(false).await;
    let attempts: Vec<(&str, bool)> = seen.iter().map(|r| (r.id.as_str(), r.accepted)).collect();
    assert_eq!(
        attempts,
        [
            ("1", false),
            ("3", false),
            ("1", false),
            ("3", true),
            ("1", true),
            ("2", true)
        ]
    );
    assert!(seen.iter().all(verify), "every request is signed");
    // A tampered body would not verify.
    let mut forged = seen[4].clone();
    forged.body = forged.body.replace("SN-W-1", "SN-W-9");
    assert!(!verify(&forged));
    // And the receiver code the ERP guide gives agrees on both.
    assert!(seen.iter().all(|r| guide_verifies(r, app.now())));
    assert!(!guide_verifies(&forged, app.now()));

    // The body is the feed's event.
    let feed = erp.all_events().await;
    for r in seen.iter().filter(|r| r.accepted) {
        let body: Value = serde_json::from_str(&r.body).unwrap();
        let id: i64 = r.id.parse().unwrap();
        assert_eq!(body["id"], id);
        assert_eq!(&body, feed.iter().find(|e| e["id"] == id).unwrap());
    }
    assert_eq!(seen[5].timestamp, app.now().to_string());
    assert_eq!(feed.len(), 3);
    assert_eq!(feed[1]["data"]["status"], json!("active"));
}
