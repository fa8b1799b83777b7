//! `PUT /api/erp/v1/customers/{customer_number}`: the customer's tenant is created or linked,
//! kept in step, and its first owner invited by mail exactly once.

use serde_json::json;

use super::{ErpClient, expect_problem};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_customer_gets_a_tenant_and_its_first_owner_one_invitation,
    staff_matched_tenants_are_linked_once,
);

/// The outbox, newest first, with sealed bodies opened.
async fn outbox(app: &TestApp) -> Vec<pairgate::store::mail::MailRecord> {
    let mut mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 100))
        .await
        .unwrap();
    for m in &mut mails {
        m.body = app.ctx.accounts.outbox().body(m).unwrap();
    }
    mails
}

async fn a_customer_gets_a_tenant_and_its_first_owner_one_invitation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let body = json!({ "name": "Acme Water", "admin_email": " IT@Acme.example " });
    let created = erp.put_ok("/api/erp/v1/customers/C-100", &body, 201).await;
    assert_eq!(created["created"], true);
    assert_eq!(created["invitation"], "queued");
    let tenant = created["tenant_id"].as_i64().unwrap();
    let mails = outbox(&app).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].recipient, "it@acme.example");
    assert!(mails[0].subject.contains("Acme Water"));
    // The link is the accounts module's one-time invitation, for the owner role.
    let token = mails[0]
        .body
        .split(&format!("{}/invite/", app.base))
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let offer = app.ctx.accounts.invitation(token).await.unwrap();
    assert_eq!(offer.tenant_name, "Acme Water");
    assert_eq!(offer.role, pairgate::accounts::Role::Owner);

    // The same PUT again: nothing new, no second mail.
    let again = erp.put_ok("/api/erp/v1/customers/C-100", &body, 200).await;
    assert_eq!(again["tenant_id"], tenant);
    assert_eq!(again["applied"], false);
    assert_eq!(again["invitation"], "already_open");
    assert_eq!(outbox(&app).await.len(), 1);

    // A new name follows the ERP.
    let renamed = erp
        .put_ok(
            "/api/erp/v1/customers/C-100",
            &json!({ "name": "Acme Water GmbH" }),
            200,
        )
        .await;
    assert_eq!(renamed["applied"], true);
    assert_eq!(renamed["invitation"], "not_requested");

    // Once the owner has joined, no further invitation goes out.
    app.ctx
        .accounts
        .accept_invitation(
            token,
            "Ida Owner",
            "a long enough passphrase 42",
            None,
            None,
        )
        .await
        .unwrap();
    let joined = erp
        .put_ok(
            "/api/erp/v1/customers/C-100",
            &json!({ "name": "Acme Water GmbH", "admin_email": "other@acme.example" }),
            200,
        )
        .await;
    assert_eq!(joined["invitation"], "owner_exists");
    assert_eq!(outbox(&app).await.len(), 1);

    let types: Vec<String> = erp
        .all_events()
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["customer.linked", "customer.updated"]);
}

async fn staff_matched_tenants_are_linked_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let signed_up = app.tenant("Beta Pumps (self sign-up)").await;
    let linked = erp
        .put_ok(
            "/api/erp/v1/customers/C-200",
            &json!({ "name": "Beta Pumps", "tenant_id": signed_up }),
            200,
        )
        .await;
    assert_eq!(linked["tenant_id"], signed_up.get());
    assert_eq!(linked["linked"], true);
    assert_eq!(linked["created"], false);

    // The link is idempotent, and the customer cannot move to another tenant silently.
    let again = erp
        .put_ok(
            "/api/erp/v1/customers/C-200",
            &json!({ "name": "Beta Pumps", "tenant_id": signed_up }),
            200,
        )
        .await;
    assert_eq!(again["applied"], false);
    let other = app.tenant("Gamma").await;
    let res = erp
        .put(
            "/api/erp/v1/customers/C-200",
            &json!({ "name": "Beta Pumps", "tenant_id": other }),
        )
        .await;
    expect_problem(res, 409, "customer-linked-elsewhere").await;
    // A tenant stands for one customer.
    let res = erp
        .put(
            "/api/erp/v1/customers/C-201",
            &json!({ "name": "Beta Pumps", "tenant_id": signed_up }),
        )
        .await;
    expect_problem(res, 409, "tenant-linked-elsewhere").await;
    let res = erp
        .put(
            "/api/erp/v1/customers/C-202",
            &json!({ "name": "Nobody", "tenant_id": 999_999 }),
        )
        .await;
    let body = expect_problem(res, 422, "validation").await;
    assert_eq!(body["errors"][0]["pointer"], "#/tenant_id");

    let events = erp.all_events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "customer.linked");
    assert_eq!(events[0]["customer_number"], "C-200");
    assert_eq!(events[0]["tenant_id"], signed_up.get());
}
