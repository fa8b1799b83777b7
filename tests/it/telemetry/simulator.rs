//! The device simulator end to end, on the test's clock: it pairs (approved through the domain),
//! measures and uploads, refreshes its tokens before they expire, keeps its readings while the
//! server is down and delivers them after the restart; a person then reads them back.

use pairgate::accounts::Role;
use pairgate::ids::{DeviceSerial, TenantId};
use pairgate::oauth::device_flow::Verdict;
use pairgate::simulator::DeviceKey;
use pairgate::simulator::client::{DeviceClient, Poll};
use pairgate::simulator::firmware::{Firmware, FirmwareOptions, SyncError, load_tokens};
use serde_json::Value;

use super::{read, sign_in, stored};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    the_simulator_pairs_uploads_and_a_person_reads_it,
    the_simulator_refreshes_and_rides_out_a_server_restart,
);

/// Registers a simulated device, pairs it through the simulator's client, and returns its
/// firmware keeping tokens in `dir`.
async fn paired_firmware(
    app: &TestApp,
    serial: &str,
    tenant: TenantId,
    dir: &std::path::Path,
) -> Firmware {
    let key = DeviceKey::generate_es256().unwrap();
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
    let client = DeviceClient::discover(&app.base, serial, key)
        .await
        .unwrap()
        .with_clock(app.clock.clone());
    let auth = client.start_pairing().await.unwrap();
    assert!(matches!(
        client.poll(&auth.device_code).await.unwrap(),
        Poll::Pending
    ));
    app.ctx
        .oauth
        .decide(
            &auth.user_code,
            Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    app.advance(5);
    let Poll::Tokens(tokens) = client.poll(&auth.device_code).await.unwrap() else {
        panic!("no tokens after approval");
    };
    let path = dir.join(format!("{serial}.tokens.json"));
    let mut firmware = Firmware::new(
        client,
        None,
        Some(path),
        FirmwareOptions {
            batch: 4,
            ..FirmwareOptions::default()
        },
    );
    firmware.set_tokens(tokens).unwrap();
    firmware
}

async fn the_simulator_pairs_uploads_and_a_person_reads_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let dir = tempfile::tempdir().unwrap();
    let mut firmware = paired_firmware(&app, "SIM-0001", tenant, dir.path()).await;
    let path = dir.path().join("SIM-0001.tokens.json");
    assert_eq!(
        load_tokens(&path).unwrap().unwrap().token_type,
        "DPoP",
        "tokens kept on disk"
    );

    // A reading a minute, over six minutes.
    let ids: Vec<String> = (0..6)
        .map(|_| {
            app.advance(60);
            firmware.measure()
        })
        .collect();
    let done = firmware.sync().await.unwrap();
    assert_eq!(
        (done.uploads, done.accepted, done.duplicates),
        (2, 6, 0),
        "batches of at most 4"
    );
    assert_eq!(done.acknowledged, ids);
    assert_eq!(firmware.buffered(), 0);

    let (_, cookie) = sign_in(&app, Some(tenant), Role::Viewer, "viewer@acme.example").await;
    let res = read(&app, Some(&cookie), "SIM-0001", "metric=temperature").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let seen: Vec<&str> = body["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert!(body["readings"][0]["metrics"]["temperature"].is_number());

    // The device page shows the latest value and a chart per metric.
    let all = body["readings"].as_array().unwrap();
    let newest_ts = all.iter().map(|r| r["ts"].as_str().unwrap()).max().unwrap();
    let candidates: Vec<String> = all
        .iter()
        .filter(|r| r["ts"].as_str() == Some(newest_ts))
        .map(|r| {
            let v = format!("{:.4}", r["metrics"]["temperature"].as_f64().unwrap());
            v.trim_end_matches('0').trim_end_matches('.').to_owned()
        })
        .collect();
    let page = app
        .client
        .get(app.url("/devices/SIM-0001?window=1h"))
        .header("Cookie", format!("pairgate_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let caption = html
        .split(r#">temperature</h3>"#)
        .nth(1)
        .and_then(|rest| rest.split("</figcaption>").next())
        .expect("a chart titled temperature");
    assert!(
        candidates
            .iter()
            .any(|shown| caption.contains(&format!(r#"<span class="latest">{shown}</span>"#))),
        "one of {candidates:?} as the latest temperature on the page: {html}"
    );
    let charts = html.matches(r#"<figure class="chart""#).count();
    let metrics = firmware_metrics(&app, &cookie).await;
    assert!(charts >= metrics, "{charts} charts for {metrics} metrics");
    assert!(html.contains(r#"-desc">temperature over the last hour: between"#));
    // Readings a minute apart up to now, in one-minute buckets ending now: the reading taken
    // at this very moment joins the last minute's bucket, so six readings make five points.
    let line = html
        .split(r#"<polyline class="mean" points=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a mean line");
    assert_eq!(line.split(' ').count(), 5, "{line}");
}

async fn the_simulator_refreshes_and_rides_out_a_server_restart(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let dir = tempfile::tempdir().unwrap();
    let mut firmware = paired_firmware(&app, "SIM-0002", tenant, dir.path()).await;
    let first = firmware.tokens().unwrap().clone();

    firmware.measure();
    let done = firmware.sync().await.unwrap();
    assert!(!done.refreshed);
    // 60 s before the access token ends, the next sync refreshes first (and keeps the new
    // tokens on disk).
    app.advance(541);
    firmware.measure();
    let done = firmware.sync().await.unwrap();
    assert!(done.refreshed);
    assert_eq!(done.accepted, 1);
    let second = firmware.tokens().unwrap().clone();
    assert_ne!(second.access_token, first.access_token);
    let path = dir.path().join("SIM-0002.tokens.json");
    assert_eq!(
        load_tokens(&path).unwrap().unwrap().refresh_token,
        second.refresh_token
    );

    // The server goes away: readings stay in the buffer.
    app.stop_server().await;
    for _ in 0..3 {
        firmware.measure();
    }
    match firmware.sync().await {
        Err(SyncError::Transient { .. }) => {}
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert_eq!(firmware.buffered(), 3);

    // It comes back: the buffered readings go up (a stale pooled connection may cost a try).
    app.start_server();
    let mut delivered = None;
    for _ in 0..3 {
        match firmware.sync().await {
            Ok(done) => {
                delivered = Some(done);
                break;
            }
            Err(SyncError::Transient { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let done = delivered.expect("delivered after the restart");
    // A request in flight when the server stopped may have committed without being answered:
    // the retry then counts those readings as duplicates. Either way each is stored once.
    assert_eq!(done.accepted + done.duplicates, 3);
    assert_eq!(done.acknowledged.len(), 3);
    assert_eq!(firmware.buffered(), 0);
    assert_eq!(stored(&app, "SIM-0002").await, 5);

    // Revoked tokens make the device pair again, and it says so.
    let serial = "SIM-0002".to_owned();
    app.ctx
        .store
        .write(move |tx| {
            pairgate::store::registry::revoke_device_tokens(tx, &DeviceSerial::from(&serial))
        })
        .await
        .unwrap();
    firmware.measure();
    match firmware.sync().await {
        Err(SyncError::NeedsPairing(_)) => {}
        other => panic!("expected NeedsPairing, got {other:?}"),
    }
    assert!(firmware.tokens().is_none());
}

/// How many metrics the simulator's readings carry (read without a metric filter).
async fn firmware_metrics(app: &TestApp, cookie: &str) -> usize {
    let body: Value = read(app, Some(cookie), "SIM-0001", "")
        .await
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = body["readings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["metrics"].as_object().unwrap().keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names.len()
}
