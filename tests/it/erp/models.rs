//! `PUT /api/erp/v1/models/{model}`: the metrics of a device model are stored, replaced as a
//! whole, idempotent and audited; bad bodies are refused field by field; only the ERP may call.

use serde_json::{Value, json};

use super::{ErpClient, expect_json, expect_problem, token_for};
use crate::backend_tests;
use crate::support::{Backend, TestApp};
use pairgate::store::device_page::model_metrics;

backend_tests!(
    metrics_are_stored_replaced_and_audited,
    bad_bodies_are_refused_field_by_field,
    only_the_erp_describes_models,
);

const PATH: &str = "/api/erp/v1/models/Meter%20M1";

fn body() -> Value {
    json!({ "metrics": [
        { "key": "flow", "label": "Flow", "unit": "m³/h", "decimals": 1, "min": 0, "max": 40 },
        { "key": "temperature", "label": "Water temperature", "unit": "°C" },
    ]})
}

async fn stored(app: &TestApp) -> Vec<(String, String, Option<String>, Option<i32>)> {
    app.ctx
        .store
        .read(|tx| model_metrics(tx, "Meter M1"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.metric, m.label, m.unit, m.decimals))
        .collect()
}

async fn metrics_are_stored_replaced_and_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let created = erp.put_ok(PATH, &body(), 201).await;
    assert_eq!(
        created,
        json!({ "model": "Meter M1", "metrics": 2, "change": "created" })
    );
    assert_eq!(
        stored(&app).await,
        [
            ("flow".into(), "Flow".into(), Some("m³/h".into()), Some(1)),
            (
                "temperature".into(),
                "Water temperature".into(),
                Some("°C".into()),
                None
            ),
        ]
    );
    let again = erp.put_ok(PATH, &body(), 200).await;
    assert_eq!(again["change"], "unchanged");
    // A new body replaces the whole description.
    let one = json!({ "metrics": [{ "key": "flow", "label": "Throughput", "unit": "l/min" }] });
    assert_eq!(erp.put_ok(PATH, &one, 200).await["change"], "updated");
    assert_eq!(
        stored(&app).await,
        [(
            "flow".into(),
            "Throughput".into(),
            Some("l/min".into()),
            None
        )]
    );
    let audited = app
        .query_i64(
            "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'erp.model_metrics_set' \
             AND subject = 'model:Meter M1'",
        )
        .await;
    assert_eq!(audited, 2, "created and updated, not the repeat");
}

async fn bad_bodies_are_refused_field_by_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let bad = json!({ "metrics": [
        { "key": "1flow", "label": "", "unit": "m³/h", "decimals": 9, "min": 5, "max": 1 },
        { "key": "temp", "label": "T", "colour": "red" },
        { "key": "temp", "label": "T again" },
    ]});
    let problem = expect_problem(erp.put(PATH, &bad).await, 422, "validation").await;
    let errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap_or_default().to_owned(),
                e["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pointers: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "#/metrics/0/key",
            "#/metrics/0/label",
            "#/metrics/0/decimals",
            "#/metrics/0/max",
            "#/metrics/1/colour",
            "#/metrics/2/key",
        ],
        "{problem}"
    );
    assert!(errors[0].1.contains("starting with a letter"), "{errors:?}");
    assert_eq!(errors[3].1, "must be greater than min");
    assert_eq!(errors[5].1, "names a metric described before in this body");
    let not_a_list = erp.put(PATH, &json!({ "metrics": {} })).await;
    expect_problem(not_a_list, 422, "validation").await;
    assert!(
        stored(&app).await.is_empty(),
        "nothing of a refused body is stored"
    );
}

async fn only_the_erp_describes_models(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app
        .client
        .put(app.url(PATH))
        .json(&body())
        .send()
        .await
        .unwrap();
    expect_problem(res, 401, "unauthorized").await;
    let (id, secret) = app.service_client_with_secret("introspect").await;
    let token = token_for(&app, &id, &secret).await;
    let res = app
        .client
        .put(app.url(PATH))
        .bearer_auth(token)
        .json(&body())
        .send()
        .await
        .unwrap();
    expect_problem(res, 403, "insufficient-scope").await;
    assert!(stored(&app).await.is_empty());
    let erp = ErpClient::new(&app).await;
    expect_json(erp.put(PATH, &body()).await, 201).await;
}
