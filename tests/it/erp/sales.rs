//! `PUT`/`DELETE /api/erp/v1/sales/{sale_id}`: idempotency, one active sale per device, the same
//! final state whatever the order of deliveries, and cancellation revoking the tokens of a device
//! paired to the buyer's tenant.

use pairgate::ids::TenantId;
use serde_json::json;

use super::{ErpClient, expect_json, expect_problem, sale};
use crate::backend_tests;
use crate::support::device::TestDevice;
use crate::support::{Backend, TestApp};

backend_tests!(
    sales_are_idempotent_and_one_per_device,
    out_of_order_and_repeated_deliveries_end_in_the_same_state,
    ending_a_sale_revokes_the_tokens_of_a_device_paired_to_its_buyer,
    sale_bodies_are_validated_field_by_field,
);

async fn sales_are_idempotent_and_one_per_device(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let first = erp
        .put_ok("/api/erp/v1/sales/S-1", &sale("SN-S-1", "C-1", 1), 201)
        .await;
    assert_eq!(first["created"], true);
    assert_eq!(first["applied"], true);
    assert_eq!(first["sale"]["status"], "active");
    assert_eq!(first["sale"]["sold_at"], "2026-11-20T10:00:00.000Z");
    let again = erp
        .put_ok("/api/erp/v1/sales/S-1", &sale("SN-S-1", "C-1", 1), 200)
        .await;
    assert_eq!(again["applied"], false);
    assert_eq!(again["sale"], first["sale"]);

    // A second active sale of the same device.
    let res = erp
        .put("/api/erp/v1/sales/S-2", &sale("SN-S-1", "C-2", 1))
        .await;
    let problem = expect_problem(res, 409, "device-already-sold").await;
    assert!(problem["detail"].as_str().unwrap().contains("S-1"));

    // Cancelled (twice: the same answer), then the resale goes through.
    let cancelled = expect_json(erp.delete("/api/erp/v1/sales/S-1").await, 200).await;
    assert_eq!(cancelled["sale"]["status"], "cancelled");
    assert_eq!(cancelled["applied"], true);
    let twice = expect_json(erp.delete("/api/erp/v1/sales/S-1").await, 200).await;
    assert_eq!(twice["applied"], false);
    assert_eq!(twice["sale"], cancelled["sale"]);
    erp.put_ok("/api/erp/v1/sales/S-2", &sale("SN-S-1", "C-2", 1), 201)
        .await;
    // An ended sale is not revived by a later update: a resale is a new sale id.
    let mut corrected = sale("SN-S-1", "C-1", 2);
    corrected["sold_to"]["name"] = json!("Acme Water GmbH");
    let revived = erp.put_ok("/api/erp/v1/sales/S-1", &corrected, 200).await;
    assert_eq!(revived["sale"]["status"], "cancelled");
    assert_eq!(revived["sale"]["revision"], 2);

    let types: Vec<String> = erp
        .all_events()
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "sale.recorded",
            "sale.cancelled",
            "sale.recorded",
            "sale.updated"
        ]
    );
}

/// The sale's state as `GET` would show it (the answer of an idempotent repeat).
async fn final_state(erp: &ErpClient<'_>, id: &str) -> serde_json::Value {
    let res = erp.delete(&format!("/api/erp/v1/sales/{id}")).await;
    let mut body = expect_json(res, 200).await;
    body["sale"]["ended_at"] = json!(null);
    body["sale"].take()
}

async fn out_of_order_and_repeated_deliveries_end_in_the_same_state(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let v1 = sale("SN-O-1", "C-1", 1);
    let mut v2 = sale("SN-O-1", "C-1", 2);
    v2["end_customer_number"] = json!("C-9");
    let mut returned = v2.clone();
    returned["revision"] = json!(3);
    returned["status"] = json!("returned");

    // In order, on sale A: recorded, updated, returned.
    for body in [&v1, &v2, &returned] {
        erp.put("/api/erp/v1/sales/A", body).await;
    }
    // Out of order and repeated, on sale B: the return first, stale updates after it.
    for body in [&returned, &v1, &v2, &returned, &v1] {
        let res = erp.put("/api/erp/v1/sales/B", body).await;
        assert!(res.status().is_success(), "{}", res.status());
    }
    let (a, mut b) = (final_state(&erp, "A").await, final_state(&erp, "B").await);
    b["sale_id"] = json!("A");
    assert_eq!(a, b);
    assert_eq!(a["status"], "returned");
    assert_eq!(a["revision"], 3);
    assert_eq!(a["end_customer_number"], "C-9");

    // A stale update answers with the current state and changes nothing.
    let stale = erp.put_ok("/api/erp/v1/sales/B", &v1, 200).await;
    assert_eq!(stale["applied"], false);
    assert_eq!(stale["sale"]["revision"], 3);

    // A cancellation that arrives before its sale: the sale stays cancelled when it arrives.
    let early = expect_json(erp.delete("/api/erp/v1/sales/C").await, 200).await;
    assert_eq!(early["created"], true);
    assert_eq!(early["sale"]["serial"], json!(null));
    let late = erp
        .put_ok("/api/erp/v1/sales/C", &sale("SN-O-2", "C-1", 1), 200)
        .await;
    assert_eq!(late["sale"]["status"], "cancelled");
    assert_eq!(late["sale"]["serial"], "SN-O-2");
    // …and it holds no device: another sale of the device is fine.
    erp.put_ok("/api/erp/v1/sales/D", &sale("SN-O-2", "C-2", 1), 201)
        .await;

    // The same revision with other content is a conflict, not a silent overwrite.
    let mut other = sale("SN-O-2", "C-3", 1);
    other["sold_to"]["name"] = json!("Someone Else");
    let res = erp.put("/api/erp/v1/sales/D", &other).await;
    expect_problem(res, 409, "revision-reused").await;
}

async fn ending_a_sale_revokes_the_tokens_of_a_device_paired_to_its_buyer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let customer = erp
        .put_ok(
            "/api/erp/v1/customers/C-77",
            &json!({ "name": "Acme" }),
            201,
        )
        .await;
    let tenant = TenantId(customer["tenant_id"].as_i64().unwrap());
    let key = erp.device("SN-R-1").await;
    let device = TestDevice {
        serial: "SN-R-1".into(),
        key,
        issuer: app.base.clone(),
    };
    erp.put_ok("/api/erp/v1/sales/S-77", &sale("SN-R-1", "C-77", 1), 201)
        .await;
    let tokens = app.pair(&device, tenant).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(
        app.ctx
            .oauth
            .active_access_token(access)
            .await
            .unwrap()
            .is_some()
    );

    // A device paired elsewhere is not touched by the end of a sale to another customer.
    let key = erp.device("SN-R-2").await;
    let bystander = TestDevice {
        serial: "SN-R-2".into(),
        key,
        issuer: app.base.clone(),
    };
    let other_tenant = app.tenant("Other").await;
    let other_tokens = app.pair(&bystander, other_tenant).await;
    erp.put_ok("/api/erp/v1/sales/S-78", &sale("SN-R-2", "C-77", 1), 201)
        .await;
    let kept = expect_json(erp.delete("/api/erp/v1/sales/S-78").await, 200).await;
    assert_eq!(kept["tokens_revoked"], false);
    let other_access = other_tokens["access_token"].as_str().unwrap();
    assert!(
        app.ctx
            .oauth
            .active_access_token(other_access)
            .await
            .unwrap()
            .is_some()
    );

    let ended = expect_json(erp.delete("/api/erp/v1/sales/S-77").await, 200).await;
    assert_eq!(ended["tokens_revoked"], true);
    assert!(
        app.ctx
            .oauth
            .active_access_token(access)
            .await
            .unwrap()
            .is_none()
    );
    // The refresh token is gone too.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (assertion, proof) = (
        device.assertion(app.now()),
        device.dpop("POST", "/oauth/token", app.now()),
    );
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await;
    assert_eq!(res.status(), 400);
    let error: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");

    let cancelled = erp
        .all_events()
        .await
        .into_iter()
        .find(|e| e["type"] == "sale.cancelled" && e["sale_id"] == "S-77")
        .unwrap();
    assert_eq!(cancelled["tenant_id"], tenant.get());
    assert_eq!(cancelled["data"]["tokens_revoked"], true);
    assert_eq!(cancelled["customer_number"], "C-77");
}

async fn sale_bodies_are_validated_field_by_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let res = erp
        .put(
            "/api/erp/v1/sales/S-1",
            &json!({
                "serial": "SN 1",
                "sold_at": "last tuesday",
                "sold_to": { "customer_number": "", "kind": "wholesaler", "vat": 1 },
                "revision": -1,
                "status": "lost",
            }),
        )
        .await;
    let body = expect_problem(res, 422, "validation").await;
    insta::assert_json_snapshot!("erp_sale_validation_problem", body);
    let res = erp.put("/api/erp/v1/sales/S-1", &json!([1, 2])).await;
    expect_problem(res, 422, "validation").await;
    assert!(erp.all_events().await.is_empty());
}
