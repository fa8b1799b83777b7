//! Reading telemetry back: only signed-in people, only devices their access covers, only what
//! the device uploaded while it belonged to their tenant; metric, range and limit filters; the
//! device page's overview; and retention.

use pairgate::accounts::{DeviceAccess, Role};
use pairgate::ids::DeviceSerial;
use pairgate::store::registry;
use pairgate::telemetry::TelemetryError;
use serde_json::{Value, json};

use super::{accepted, batch, pair_into, paired, read, readings, sign_in, stored, upload};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    people_read_their_devices_readings,
    reads_are_filtered_by_device_access,
    metric_range_and_limit_select_readings,
    a_device_page_gets_latest_values_and_series,
    a_new_owner_does_not_see_the_previous_owners_readings,
);

/// SQLite deletes old readings to the millisecond; PostgreSQL drops whole days (see
/// `partitions.rs`).
#[actix_web::test]
async fn sqlite_old_readings_are_deleted_after_the_retention_period() {
    old_readings_are_deleted_after_the_retention_period(Backend::Sqlite).await;
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn people_read_their_devices_readings(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7401").await;
    let t0 = app.now() * 1000;
    let body = json!({ "readings": [
        { "id": "r1", "ts": t0 - 2000, "metrics": { "temperature": 21.5, "humidity": 40 } },
        { "id": "r2", "ts": t0 - 1000, "metrics": { "temperature": 21.75 } },
    ]});
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (2, 0));
    let (_, cookie) = sign_in(&app, Some(p.tenant), Role::Viewer, "viewer@acme.example").await;
    let answer = json_of(read(&app, Some(&cookie), "SN-7401", "").await, 200).await;
    assert_eq!(answer["readings"].as_array().unwrap().len(), 2);
    assert_eq!(answer["readings"][0]["id"], "r1", "oldest first");
    assert_eq!(answer["truncated"], false);
    insta::assert_json_snapshot!("telemetry_read_response", answer, {
        ".from" => "[from]",
        ".to" => "[to]",
        ".readings[].ts" => "[ts]",
    });
    let ts = answer["readings"][1]["ts"].as_str().unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(ts)
            .unwrap()
            .timestamp_millis(),
        t0 - 1000
    );
}

async fn reads_are_filtered_by_device_access(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = paired(&app, "SN-7402").await;
    let b = pair_into(&app, "SN-7403", a.tenant).await;
    for p in [&a, &b] {
        assert_eq!(
            accepted(upload(&app, p, &readings(&app, "r", 1)).await).await,
            (1, 0)
        );
    }
    let (_, owner) = sign_in(&app, Some(a.tenant), Role::Owner, "owner@acme.example").await;
    let (viewer_id, viewer) =
        sign_in(&app, Some(a.tenant), Role::Viewer, "viewer@acme.example").await;
    // The viewer may see SN-7402 only.
    let mut owner_session = app.ctx.accounts.session(&owner).await.unwrap().unwrap();
    // Changing someone's access needs a fresh step-up.
    owner_session.stepped_up_at = Some(app.now() * 1000);
    app.ctx
        .accounts
        .set_device_access(
            &owner_session,
            viewer_id,
            DeviceAccess::Selected,
            vec![],
            vec!["SN-7402".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        json_of(read(&app, Some(&viewer), "SN-7402", "").await, 200).await["readings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let hidden = json_of(read(&app, Some(&viewer), "SN-7403", "").await, 404).await;
    // Exactly what an unknown device answers: no way to tell one from the other.
    let unknown = json_of(read(&app, Some(&viewer), "SN-NOPE", "").await, 404).await;
    assert_eq!(hidden, unknown);
    assert_eq!(
        json_of(read(&app, Some(&owner), "SN-7403", "").await, 200).await["readings"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Another tenant's people see neither.
    let elsewhere = app.tenant("Elsewhere").await;
    let (_, stranger) = sign_in(
        &app,
        Some(elsewhere),
        Role::Owner,
        "owner@elsewhere.example",
    )
    .await;
    json_of(read(&app, Some(&stranger), "SN-7402", "").await, 404).await;

    // Manufacturer staff belong to no tenant: not through this API.
    let (_, staff) = sign_in(&app, None, Role::Staff, "support@maker.example").await;
    json_of(read(&app, Some(&staff), "SN-7402", "").await, 403).await;

    // No session, or one that is not live.
    for cookie in [None, Some("x".repeat(43))] {
        let res = read(&app, cookie.as_deref(), "SN-7402", "").await;
        assert_eq!(
            res.headers()["www-authenticate"],
            "Cookie realm=\"pairgate\""
        );
        let body = json_of(res, 401).await;
        assert_eq!(body["error"], "unauthorized");
    }
    app.ctx.accounts.sign_out(&owner_session).await.unwrap();
    json_of(read(&app, Some(&owner), "SN-7402", "").await, 401).await;
    // The session idles out after portal.session_idle_secs.
    app.advance(1801);
    json_of(read(&app, Some(&viewer), "SN-7402", "").await, 401).await;
}

async fn metric_range_and_limit_select_readings(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7404").await;
    let now = app.now() * 1000;
    let hour = 3_600_000;
    let body = json!({ "readings": [
        { "id": "h3", "ts": now - 3 * hour, "metrics": { "t": 1, "h": 30 } },
        { "id": "h2", "ts": now - 2 * hour, "metrics": { "t": 2 } },
        { "id": "h1", "ts": now - hour, "metrics": { "t": 3, "h": 31 } },
        { "id": "h0", "ts": now, "metrics": { "t": 4 } },
        { "id": "d2", "ts": now - 48 * hour, "metrics": { "t": 0 } },
    ]});
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (5, 0));
    let (_, cookie) = sign_in(&app, Some(p.tenant), Role::Viewer, "viewer@acme.example").await;
    let ids = |v: &Value| -> Vec<String> {
        v["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // By default: the last day.
    let all = json_of(read(&app, Some(&cookie), "SN-7404", "").await, 200).await;
    assert_eq!(ids(&all), ["h3", "h2", "h1", "h0"]);

    let humidity = json_of(read(&app, Some(&cookie), "SN-7404", "metric=h").await, 200).await;
    assert_eq!(ids(&humidity), ["h3", "h1"]);
    assert_eq!(
        humidity["readings"][0]["metrics"],
        json!({ "h": 30.0 }),
        "only the metric asked for"
    );

    let from = chrono::DateTime::from_timestamp_millis(now - 2 * hour)
        .unwrap()
        .to_rfc3339();
    let q = format!("from={}&to={}", urlencode(&from), now);
    assert_eq!(
        ids(&json_of(read(&app, Some(&cookie), "SN-7404", &q).await, 200).await),
        ["h2", "h1"],
        "from inclusive, to exclusive"
    );
    let q = format!("from={}", now - 49 * hour);
    assert_eq!(
        ids(&json_of(read(&app, Some(&cookie), "SN-7404", &q).await, 200).await),
        ["d2", "h3", "h2", "h1", "h0"]
    );

    let page = json_of(read(&app, Some(&cookie), "SN-7404", "limit=2").await, 200).await;
    assert_eq!(ids(&page), ["h3", "h2"]);
    assert_eq!(page["truncated"], true);
    let page = json_of(read(&app, Some(&cookie), "SN-7404", "limit=4").await, 200).await;
    assert_eq!(page["truncated"], false);

    for bad in [
        "metric=1x",
        "from=yesterday",
        "to=soon",
        &format!("from={now}&to={now}"),
        "limit=0",
        "limit=10001",
        "limit=two",
        "metric=t&metric=h",
    ] {
        let body = json_of(read(&app, Some(&cookie), "SN-7404", bad).await, 400).await;
        assert_eq!(body["error"], "invalid_request", "{bad}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn a_device_page_gets_latest_values_and_series(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7405").await;
    let now = app.now() * 1000;
    let hour = 3_600_000;
    let body = batch(&[
        ("a", now - 5 * hour),
        ("b", now - 5 * hour + 60_000),
        ("c", now - hour),
        // A device clock a minute fast: accepted, and shown as the latest value.
        ("d", now + 60_000),
    ]);
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (4, 0));
    let (viewer_id, cookie) =
        sign_in(&app, Some(p.tenant), Role::Viewer, "viewer@acme.example").await;
    let session = app.ctx.accounts.session(&cookie).await.unwrap().unwrap();
    let page = app
        .ctx
        .telemetry
        .device_overview(&session, &DeviceSerial::from("SN-7405"), 24 * hour, 24)
        .await
        .unwrap();
    assert_eq!(page.metrics.len(), 1);
    let t = &page.metrics[0];
    assert_eq!(t.name, "t");
    // batch() gives the n-th reading the value 20 + n.
    assert_eq!(t.latest, (now + 60_000, 23.0));
    assert_eq!(page.to, now, "the window ends now");
    assert_eq!(
        t.series.len(),
        2,
        "a and b share an hour's bucket; c and d the last one"
    );
    assert_eq!(t.series[0].mean, 20.5);
    assert_eq!((t.series[0].min, t.series[0].max), (20.0, 21.0));
    assert_eq!(
        t.series[1].ts,
        now - hour,
        "the last bucket starts an hour before now"
    );
    assert_eq!((t.series[1].min, t.series[1].max), (22.0, 23.0));

    // The same access filter as the API.
    let (_, owner) = sign_in(&app, Some(p.tenant), Role::Owner, "owner@acme.example").await;
    let mut owner = app.ctx.accounts.session(&owner).await.unwrap().unwrap();
    owner.stepped_up_at = Some(app.now() * 1000);
    app.ctx
        .accounts
        .set_device_access(&owner, viewer_id, DeviceAccess::Selected, vec![], vec![])
        .await
        .unwrap();
    // (Each request reads its session afresh, with the access as it is now.)
    let session = app.ctx.accounts.session(&cookie).await.unwrap().unwrap();
    let denied = app
        .ctx
        .telemetry
        .device_overview(&session, &DeviceSerial::from("SN-7405"), 24 * hour, 24)
        .await;
    assert!(
        matches!(denied, Err(TelemetryError::NotFound)),
        "{denied:?}"
    );
}

async fn a_new_owner_does_not_see_the_previous_owners_readings(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7406").await;
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "old", 3)).await).await,
        (3, 0)
    );
    let (_, first_owner) = sign_in(&app, Some(p.tenant), Role::Owner, "owner@acme.example").await;

    // Resold: the device now belongs to another tenant, with a new generation.
    let buyer = app.tenant("Buyer").await;
    let (serial, at) = (p.device.serial.clone(), app.now() * 1000);
    app.ctx
        .store
        .write(move |tx| {
            super::move_device(tx, &serial, buyer, at)?;
            registry::revoke_device_tokens(tx, &DeviceSerial::from(&serial))
        })
        .await
        .unwrap();
    app.advance(5);
    let tokens = app.pair(&p.device, buyer).await;
    let p = super::Paired {
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        tenant: buyer,
        ..p
    };
    assert_eq!(
        accepted(upload(&app, &p, &readings(&app, "new", 2)).await).await,
        (2, 0)
    );
    assert_eq!(stored(&app, "SN-7406").await, 5);

    let (_, new_owner) = sign_in(&app, Some(buyer), Role::Owner, "owner@buyer.example").await;
    let seen = json_of(read(&app, Some(&new_owner), "SN-7406", "").await, 200).await;
    let ids: Vec<&str> = seen["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["new-0", "new-1"]);
    json_of(read(&app, Some(&first_owner), "SN-7406", "").await, 404).await;
}

async fn old_readings_are_deleted_after_the_retention_period(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[telemetry]\nretention_days = 2")
        .start()
        .await;
    let p = paired(&app, "SN-7407").await;
    let day = 86_400_000;
    let now = app.now() * 1000;
    let body = batch(&[("a", now - day - 1000), ("b", now - 1000), ("c", now)]);
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (3, 0));
    let sweep =
        |at: i64| pairgate::maintenance::sweep(&app.ctx.store, &app.ctx.oauth, 3_600_000, at);
    assert_eq!(sweep(now).await.unwrap().telemetry_readings, 0);
    // "a" goes once it is more than two days old, not a millisecond earlier.
    let report = sweep(now + day - 1000).await.unwrap();
    assert_eq!(report.telemetry_readings, 0);
    let report = sweep(now + day - 999).await.unwrap();
    assert_eq!(report.telemetry_readings, 1, "{report:?}");
    assert_eq!(stored(&app, "SN-7407").await, 2);
    let report = sweep(now + 2 * day + 1).await.unwrap();
    assert_eq!(report.telemetry_readings, 2, "{report:?}");
    assert_eq!(stored(&app, "SN-7407").await, 0);
}
