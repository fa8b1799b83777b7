//! Uploads that succeed: counting, idempotent retries, the group-commit writer under concurrent
//! uploads, and the batch rules (all or nothing).

use serde_json::{Value, json};

use super::{UPLOAD, accepted, batch, paired, readings, refusal, stored, upload};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_batch_is_stored_and_counted,
    retries_are_idempotent,
    concurrent_uploads_are_each_answered_after_their_commit,
    batch_rules_refuse_the_whole_batch,
    only_json_bodies_within_the_limit_are_read,
);

async fn a_batch_is_stored_and_counted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7001").await;
    let res = upload(&app, &p, &readings(&app, "r", 10)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    insta::assert_json_snapshot!("telemetry_upload_accepted", body);
    assert_eq!(stored(&app, "SN-7001").await, 10);
}

async fn retries_are_idempotent(backend: Backend) {
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7002").await;
    let now = app.now() * 1000;
    let first = batch(&[("a", now), ("b", now), ("c", now)]);
    assert_eq!(accepted(upload(&app, &p, &first).await).await, (3, 0));
    // The answer was lost, say: the device sends the same batch again, with a new proof.
    assert_eq!(accepted(upload(&app, &p, &first).await).await, (0, 3));
    // A batch that overlaps: only the new readings count.
    let overlap = batch(&[("c", now), ("d", now), ("e", now)]);
    assert_eq!(accepted(upload(&app, &p, &overlap).await).await, (2, 1));
    assert_eq!(stored(&app, "SN-7002").await, 5);
    // Ids are per device: another device may use the same ones.
    let q = super::pair_into(&app, "SN-7003", p.tenant).await;
    assert_eq!(accepted(upload(&app, &q, &first).await).await, (3, 0));
}

async fn concurrent_uploads_are_each_answered_after_their_commit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let mut devices = Vec::new();
    for i in 0..4 {
        devices.push(super::pair_into(&app, &format!("SN-71{i:02}"), tenant).await);
    }
    // 4 devices × 10 uploads of 10 readings, all in flight at once; plus every upload of the
    // first device sent twice at the same moment.
    let bodies: Vec<Value> = (0..10)
        .map(|u| readings(&app, &format!("u{u}"), 10))
        .collect();
    let mut requests = Vec::new();
    for (d, p) in devices.iter().enumerate() {
        for body in &bodies {
            requests.push(upload(&app, p, body));
            if d == 0 {
                requests.push(upload(&app, p, body));
            }
        }
    }
    let answers = futures_util::future::join_all(requests).await;
    let (mut new, mut dup) = (0, 0);
    for res in answers {
        let (a, d) = accepted(res).await;
        assert_eq!(a + d, 10, "every acknowledged reading is accounted for");
        new += a;
        dup += d;
    }
    assert_eq!((new, dup), (400, 100));
    for i in 0..4 {
        assert_eq!(stored(&app, &format!("SN-71{i:02}")).await, 100);
    }
    // Every upload was taken off the queue.
    let depth = app.metric("pairgate_telemetry_queue_depth").await;
    assert_eq!(depth, Some(0.0));
    if app.ctx.store.backend() == pairgate::store::Backend::Sqlite {
        let groups = app.metric("pairgate_sqlite_group_commit_size_count").await;
        let writes = app.metric("pairgate_sqlite_group_commit_size_sum").await;
        assert!(groups.is_some_and(|g| g >= 1.0), "{groups:?}");
        // Each upload batch and each device's pairing wrote, so at least that many writes.
        assert!(writes.is_some_and(|w| w >= 4.0), "{writes:?}");
    }
}

async fn batch_rules_refuse_the_whole_batch(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[telemetry]\nmax_batch_readings = 3\nmax_metrics_per_reading = 2")
        .start()
        .await;
    let p = paired(&app, "SN-7004").await;
    let now = app.now() * 1000;
    let ok = |id: &str| json!({ "id": id, "ts": now, "metrics": { "t": 1 } });
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "readings": [ok("a"), ok("b"), ok("c"), ok("d")] }),
            "too many readings",
        ),
        (
            json!({ "readings": [] }),
            "a batch needs at least one reading",
        ),
        (json!([ok("a")]), "the body must be"),
        (
            json!({ "readings": [ok("a")], "extra": 1 }),
            "the body must be",
        ),
        (
            json!({ "readings": [ok("a"), ok("a")] }),
            "reading 1: this id appears twice",
        ),
        (
            json!({ "readings": [ok("a"), { "id": "b c", "ts": now, "metrics": { "t": 1 } }] }),
            "reading 1: id must be",
        ),
        (
            json!({ "readings": [{ "id": 7, "ts": now, "metrics": { "t": 1 } }] }),
            "reading 0: id must be",
        ),
        (
            json!({ "readings": [{ "id": "x".repeat(65), "ts": now, "metrics": { "t": 1 } }] }),
            "reading 0: id must be",
        ),
        (
            json!({
                "readings": [{ "id": "a", "ts": now - 8 * 86_400_000, "metrics": { "t": 1 } }]
            }),
            "reading 0: ts is older",
        ),
        (
            json!({ "readings": [{ "id": "a", "ts": now + 301_000, "metrics": { "t": 1 } }] }),
            "reading 0: ts is in the future",
        ),
        (
            json!({ "readings": [{ "id": "a", "ts": "yesterday", "metrics": { "t": 1 } }] }),
            "reading 0: ts must be",
        ),
        (
            json!({ "readings": [{ "id": "a", "ts": now, "metrics": {} }] }),
            "reading 0: metrics must hold",
        ),
        (
            json!({
                "readings": [{ "id": "a", "ts": now, "metrics": { "a": 1, "b": 2, "c": 3 } }]
            }),
            "reading 0: metrics must hold",
        ),
        (
            json!({ "readings": [{ "id": "a", "ts": now, "metrics": { "2t": 1 } }] }),
            "reading 0: a metric name",
        ),
        (
            json!({ "readings": [{ "id": "a", "ts": now, "metrics": { "t": "warm" } }] }),
            "reading 0: a metric value",
        ),
        (
            json!({ "readings": [{ "id": "a", "ts": now, "metrics": { "t": null } }] }),
            "reading 0: a metric value",
        ),
    ];
    for (body, expected) in cases {
        let (status, challenge, answer) = refusal(upload(&app, &p, &body).await).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(challenge, "", "the token was fine: no challenge");
        assert_eq!(answer["error"], "invalid_request");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.starts_with(expected), "{body}: {description}");
    }
    let (_, _, answer) =
        refusal(upload(&app, &p, &json!({ "readings": [ok("a"), ok("a")] })).await).await;
    insta::assert_json_snapshot!("telemetry_invalid_batch_error", answer);
    assert_eq!(
        stored(&app, "SN-7004").await,
        0,
        "nothing of a refused batch is kept"
    );
    // An RFC 3339 time is as good as Unix milliseconds.
    let rfc3339 = chrono::DateTime::from_timestamp(app.now(), 0)
        .unwrap()
        .to_rfc3339();
    let body =
        json!({ "readings": [{ "id": "a", "ts": rfc3339, "metrics": { "t": 1.5, "h": -2 } }] });
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (1, 0));
}

async fn only_json_bodies_within_the_limit_are_read(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[server]\nmax_json_bytes = 2048")
        .start()
        .await;
    let p = paired(&app, "SN-7005").await;
    let proof = |app: &TestApp| {
        p.device.dpop_with(
            "POST",
            UPLOAD,
            app.now(),
            json!({}),
            json!({ "ath": pairgate::crypto::jose::sha256_b64(&p.access_token) }),
        )
    };
    let res = app
        .client
        .post(app.url(UPLOAD))
        .header("Authorization", format!("DPoP {}", p.access_token))
        .header("DPoP", proof(&app))
        .header("Content-Type", "text/plain")
        .body(readings(&app, "r", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let big = readings(&app, "a-rather-long-reading-identifier", 40);
    assert!(big.to_string().len() > 2048);
    let (status, _, body) = refusal(upload(&app, &p, &big).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "invalid_request");
    // Other methods are not served here.
    let res = app.get(UPLOAD).await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
}
