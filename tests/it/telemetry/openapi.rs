//! The telemetry part of `GET /api/openapi.json` against real requests and responses: the
//! request bodies devices send are valid under the document's schema, and what the server
//! answers (stored, refused, read back) matches the schema documented for that status.

use pairgate::accounts::Role;
use serde_json::{Value, json};

use super::{paired, read, sign_in, upload};
use crate::backend_tests;
use crate::erp::openapi::{conforms, validate};
use crate::support::{Backend, TestApp};

backend_tests!(telemetry_requests_and_answers_match_the_document);

const UPLOAD: &str = "/api/v1/telemetry";
const READ: &str = "/api/v1/devices/{serial}/telemetry";

async fn telemetry_requests_and_answers_match_the_document(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let p = paired(&app, "SN-7901").await;
    let now = app.now() * 1000;
    let earlier = chrono::DateTime::from_timestamp_millis(now - 60_000)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Both forms of `ts` the endpoint takes.
    let body = json!({ "readings": [
        { "id": "a-1", "ts": now - 1000, "metrics": { "temperature": 21.5, "humidity": 40 } },
        { "id": "a-2", "ts": earlier, "metrics": { "temperature": 21.25 } },
    ]});
    let batch = &doc["components"]["schemas"]["TelemetryBatch"];
    validate(&doc, batch, &body).unwrap();
    let stored = conforms(&doc, "post", UPLOAD, upload(&app, &p, &body).await).await;
    assert_eq!(stored, json!({ "accepted": 2, "duplicates": 0 }));

    // A reading that breaks a rule: documented as a 400 with an OAuth-style error body.
    let bad = json!({ "readings": [{ "id": "b-1", "ts": now, "metrics": {} }] });
    let refused = conforms(&doc, "post", UPLOAD, upload(&app, &p, &bad).await).await;
    assert_eq!(refused["error"], "invalid_request");

    // No token at all: a 401 with its challenge.
    let res = app
        .client
        .post(app.url(UPLOAD))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    conforms(&doc, "post", UPLOAD, res).await;

    // Read back by a person of the tenant, and a malformed query.
    let (_, cookie) = sign_in(&app, Some(p.tenant), Role::Viewer, "viewer@acme.example").await;
    let series = conforms(
        &doc,
        "get",
        READ,
        read(&app, Some(&cookie), "SN-7901", "limit=1").await,
    )
    .await;
    assert_eq!(series["truncated"], true);
    assert_eq!(series["readings"].as_array().unwrap().len(), 1);
    let wrong = conforms(
        &doc,
        "get",
        READ,
        read(&app, Some(&cookie), "SN-7901", "limit=0").await,
    )
    .await;
    assert!(wrong["error"].is_string(), "{wrong}");
}
