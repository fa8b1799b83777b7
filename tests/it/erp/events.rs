//! `GET /api/erp/v1/events`: ordered, resumable with a cursor, and fed by every module that has
//! something to tell the ERP (devices, sales, customers, the pairing state machine).

use pairgate::ids::TenantId;
use serde_json::{Value, json};

use super::{ErpClient, expect_json, expect_problem, sale};
use crate::backend_tests;
use crate::support::device::TestDevice;
use crate::support::{Backend, TestApp};

backend_tests!(
    the_feed_is_ordered_and_resumable,
    pairing_steps_reach_the_feed_with_the_customer_number,
);

async fn page(erp: &ErpClient<'_>, query: &str) -> Value {
    expect_json(erp.get(&format!("/api/erp/v1/events{query}")).await, 200).await
}

fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

async fn the_feed_is_ordered_and_resumable(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let empty = page(&erp, "").await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["next_cursor"], "0");
    assert_eq!(empty["has_more"], false);

    erp.device("SN-F-1").await;
    erp.put_ok("/api/erp/v1/sales/F-1", &sale("SN-F-1", "C-1", 1), 201)
        .await;
    erp.put_ok("/api/erp/v1/customers/C-1", &json!({ "name": "Acme" }), 201)
        .await;
    expect_json(erp.delete("/api/erp/v1/sales/F-1").await, 200).await;
    erp.device("SN-F-2").await;

    let first = page(&erp, "?limit=2").await;
    assert_eq!(first["has_more"], true);
    let second = page(
        &erp,
        &format!("?limit=2&after={}", first["next_cursor"].as_str().unwrap()),
    )
    .await;
    let third = page(
        &erp,
        &format!("?limit=2&after={}", second["next_cursor"].as_str().unwrap()),
    )
    .await;
    assert_eq!(third["has_more"], false);
    let all: Vec<i64> = [&first, &second, &third]
        .iter()
        .flat_map(|p| ids(p))
        .collect();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    let types: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["events"].as_array().unwrap().iter())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "device.registered",
            "sale.recorded",
            "customer.linked",
            "sale.cancelled",
            "device.registered"
        ]
    );

    // Resuming at the end returns nothing and keeps the cursor; new events appear after it.
    let cursor = third["next_cursor"].as_str().unwrap().to_owned();
    let end = page(&erp, &format!("?after={cursor}")).await;
    assert_eq!(end["events"], json!([]));
    assert_eq!(end["next_cursor"], cursor.as_str());
    erp.device("SN-F-3").await;
    let later = page(&erp, &format!("?after={cursor}")).await;
    assert_eq!(later["events"][0]["serial"], "SN-F-3");

    // One event in full.
    let mut sold = first["events"][1].clone();
    sold["occurred_at"] = json!("[time]");
    insta::assert_json_snapshot!("erp_sale_recorded_event", sold, { ".id" => "[id]" });

    for bad in ["?after=abc", "?after=-1", "?limit=0", "?limit=1001"] {
        expect_problem(
            erp.get(&format!("/api/erp/v1/events{bad}")).await,
            422,
            "validation",
        )
        .await;
    }
}

async fn pairing_steps_reach_the_feed_with_the_customer_number(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let tenant = erp
        .put_ok("/api/erp/v1/customers/C-9", &json!({ "name": "Acme" }), 201)
        .await["tenant_id"]
        .as_i64()
        .map(TenantId)
        .unwrap();
    let device = TestDevice {
        serial: "SN-P-1".into(),
        key: erp.device("SN-P-1").await,
        issuer: app.base.clone(),
    };
    app.pair(&device, tenant).await;
    // A denied request, too.
    let started = app.start_pairing(&device).await;
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            pairgate::oauth::device_flow::Verdict::Deny,
            "user:test",
        )
        .await
        .unwrap();

    let events = erp.all_events().await;
    let pairing: Vec<(&str, &Value, &Value)> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("pairing."))
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                &e["tenant_id"],
                &e["customer_number"],
            )
        })
        .collect();
    let (t, c) = (json!(tenant), json!("C-9"));
    let none = Value::Null;
    assert_eq!(
        pairing,
        [
            ("pairing.requested", &none, &none),
            ("pairing.approved", &t, &c),
            ("pairing.completed", &t, &c),
            ("pairing.requested", &t, &c),
            ("pairing.denied", &t, &c),
        ]
    );
}
