//! Each outcome of the ownership gate, through the verification page.

use pairgate::ids::{DeviceSerial, TenantId};
use pairgate::store::audit::ChainCheck;

use super::{active, approve, company, confirm, poll_result, requesting, sell, shown};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_direct_sale_pairs_at_once_and_the_device_gets_its_tokens,
    a_distributor_sale_pairs_provisionally_until_the_erp_decides,
    a_named_end_customer_pairs_and_everyone_else_is_refused,
    a_refusal_opens_one_dispute_and_changes_nothing_else,
    re_pairing_into_the_same_tenant_after_a_factory_reset,
    the_code_link_only_fills_the_form_in,
    viewers_cannot_approve_and_wrong_codes_change_nothing,
    unpairing_needs_a_step_up_and_ends_every_token_at_once,
    a_cancelled_sale_ends_the_pairing_it_carried,
);

async fn a_direct_sale_pairs_at_once_and_the_device_gets_its_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    acme.owner
        .submit("/groups", "/groups", &[("name", "North site")])
        .await;
    let group = app
        .ctx
        .store
        .read(move |tx| pairgate::store::groups::list(tx, TenantId(1)))
        .await
        .unwrap()[0]
        .id
        .to_string();
    let (device, device_code, user_code) = requesting(&app, "SN-5001").await;
    sell(&app, "SN-5001", "C-100", false, None).await;

    let page = confirm(&mut acme.owner, &user_code).await;
    for shown in [
        "SN-5001",
        "TX-9000",
        &user_code,
        "127.0.0.1",
        "sold",
        "directly to Buyer C-100",
        "standing at this device",
        "Deny",
        "Approve",
    ] {
        assert!(
            page.contains(shown),
            "the confirmation shows {shown:?}: {}",
            page.body
        );
    }
    let page = approve(&app, &mut acme.owner, &user_code, &group).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.contains("Device SN-5001 joins your account"),
        "{}",
        page.body
    );

    let (outcome, tokens) = poll_result(&app, &device, &device_code).await;
    assert_eq!(outcome, "ok");
    let claims =
        crate::oauth::discovery::verify_with_jwks(&app, tokens["access_token"].as_str().unwrap())
            .await;
    assert_eq!(claims["tenant_id"], acme.tenant.get());
    let devices = acme.owner.get("/devices").await;
    assert!(
        devices.contains("SN-5001") && devices.contains("North site"),
        "{}",
        devices.body
    );
    let detail = acme.owner.get("/devices/SN-5001").await;
    assert!(
        detail.contains("the manufacturer sold it directly to the company")
            && !detail.contains("direct_sale"),
        "{}",
        detail.body
    );
    // Admins hear of it; the ERP's feed and the audit log have it.
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 10))
        .await
        .unwrap();
    assert!(
        mails
            .iter()
            .any(|m| m.recipient == "olivia@acme.example" && m.subject.contains("SN-5001"))
    );
    let events = app
        .ctx
        .store
        .read(|tx| pairgate::store::erp::events_after(tx, 0, 100))
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "pairing.approved"
            && e.serial.as_ref().is_some_and(|s| s == "SN-5001"))
    );
    assert!(matches!(
        app.ctx.store.verify_audit_chain().await.unwrap(),
        ChainCheck::Intact { .. }
    ));
}

async fn a_distributor_sale_pairs_provisionally_until_the_erp_decides(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", None).await;
    for serial in ["SN-5101", "SN-5102"] {
        sell(&app, serial, "D-900", true, None).await;
    }
    let (first, first_code, first_user) = requesting(&app, "SN-5101").await;
    let page = confirm(&mut acme.owner, &first_user).await;
    assert!(
        page.contains("through a distributor") && page.contains("provisionally"),
        "{}",
        page.body
    );
    let page = approve(&app, &mut acme.owner, &first_user, "").await;
    assert!(page.contains("provisionally"), "{}", page.body);
    let (outcome, tokens) = poll_result(&app, &first, &first_code).await;
    assert_eq!(outcome, "ok", "a provisional pairing works at once");
    assert!(
        acme.owner
            .get("/devices/SN-5101")
            .await
            .contains("provisionally")
    );

    let (second, second_code, second_user) = requesting(&app, "SN-5102").await;
    approve(&app, &mut acme.owner, &second_user, "").await;
    let (_, second_tokens) = poll_result(&app, &second, &second_code).await;

    // The ERP's verdicts.
    let erp = crate::erp::ErpClient::new(&app).await;
    let res = erp
        .post(
            "/api/erp/v1/pairings/SN-5101/confirm",
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        acme.owner
            .get("/devices/SN-5101")
            .await
            .contains("paired since")
    );
    let res = erp
        .post(
            "/api/erp/v1/pairings/SN-5101/confirm",
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        409,
        "only provisional pairings take a verdict"
    );
    let res = erp
        .post(
            "/api/erp/v1/pairings/SN-5102/reject",
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The rejected device's tokens are dead at once; the confirmed one's live on.
    assert!(!active(&app, &second_tokens).await);
    assert!(active(&app, &tokens).await);
    assert!(!acme.owner.get("/devices").await.contains("SN-5102"));
}

async fn a_named_end_customer_pairs_and_everyone_else_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let mut rival = company(&app, "rita@rival.example", Some("C-200")).await;
    sell(&app, "SN-5201", "D-900", true, Some("C-100")).await;
    let (device, device_code, user_code) = requesting(&app, "SN-5201").await;
    let page = approve(&app, &mut rival.owner, &user_code, "").await;
    assert_eq!(page.status, 409);
    assert!(page.contains("sold to another customer"), "{}", page.body);
    let page = approve(&app, &mut acme.owner, &user_code, "").await;
    assert!(page.contains("joins your account"), "{}", page.body);
    assert_eq!(poll_result(&app, &device, &device_code).await.0, "ok");
    let detail = acme.owner.get("/devices/SN-5201").await;
    assert!(
        detail.contains("a distributor sold it and named the company as the end customer"),
        "{}",
        detail.body
    );
}

async fn a_refusal_opens_one_dispute_and_changes_nothing_else(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let mut rival = company(&app, "rita@rival.example", Some("C-200")).await;
    // Not sold at all: refused.
    let (_, _, unsold_code) = requesting(&app, "SN-5301").await;
    let page = confirm(&mut acme.owner, &unsold_code).await;
    assert!(
        page.contains("no record of this device being sold") && page.contains("Ask for a review"),
        "{}",
        page.body
    );
    // Acme owns SN-5302; Rival tries to take it, twice.
    sell(&app, "SN-5302", "C-100", false, None).await;
    let owned = app.device("SN-5302").await;
    app.pair(&owned, acme.tenant).await;
    let started = app.start_pairing(&owned).await;
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let before = app
        .ctx
        .store
        .read(|tx| pairgate::store::registry::find_device(tx, &DeviceSerial::from("SN-5302")))
        .await
        .unwrap();
    for _ in 0..2 {
        let page = approve(&app, &mut rival.owner, &user_code, "").await;
        assert_eq!(page.status, 409);
        assert!(page.contains("belongs to another company"), "{}", page.body);
    }
    // Nothing changed for the device or its flow.
    let after = app
        .ctx
        .store
        .read(|tx| pairgate::store::registry::find_device(tx, &DeviceSerial::from("SN-5302")))
        .await
        .unwrap();
    assert_eq!(
        before.as_ref().map(|d| (d.tenant_id, d.token_generation)),
        after.as_ref().map(|d| (d.tenant_id, d.token_generation))
    );
    assert_eq!(
        poll_result(&app, &owned, &device_code).await.0,
        "authorization_pending"
    );
    // One dispute, the holder told once, and the attempt in the holder's audit log.
    let disputes = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::disputes_of(tx, &DeviceSerial::from("SN-5302")))
        .await
        .unwrap();
    assert_eq!(disputes.len(), 1);
    assert_eq!(disputes[0].holder_tenant_id, Some(acme.tenant));
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 50))
        .await
        .unwrap();
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.recipient == "olivia@acme.example" && m.subject.contains("tried to pair"))
            .count(),
        1
    );
    assert!(acme.owner.get("/audit").await.contains("pairing.refused"));
    // The rightful owner can still approve the same request.
    let page = approve(&app, &mut acme.owner, &user_code, "").await;
    assert!(page.contains("joins your account"), "{}", page.body);
}

async fn re_pairing_into_the_same_tenant_after_a_factory_reset(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    sell(&app, "SN-5401", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-5401").await;
    approve(&app, &mut acme.owner, &user_code, "").await;
    let (_, old_tokens) = poll_result(&app, &device, &device_code).await;
    // The device forgets everything and starts over.
    let started = app.start_pairing(&device).await;
    let page = confirm(&mut acme.owner, started["user_code"].as_str().unwrap()).await;
    assert!(page.contains("already in your account"), "{}", page.body);
    approve(
        &app,
        &mut acme.owner,
        started["user_code"].as_str().unwrap(),
        "",
    )
    .await;
    let (outcome, _) = poll_result(&app, &device, started["device_code"].as_str().unwrap()).await;
    assert_eq!(outcome, "ok");
    let history = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::history(tx, &DeviceSerial::from("SN-5401")))
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].end_reason.as_deref(), Some("repaired"));
    assert!(
        !active(&app, &old_tokens).await,
        "the old tokens ended with the new pairing"
    );
}

async fn the_code_link_only_fills_the_form_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    sell(&app, "SN-5501", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-5501").await;
    // Signed out: the link leads to sign-in and back to the same step.
    let mut fresh = crate::support::portal::Browser::new(&app);
    let page = fresh.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.unwrap(),
        format!("/login?next=%2Fdevice%3Fuser_code%3D{user_code}")
    );
    // Signed in: the field is filled, nothing more.
    let page = acme
        .owner
        .get(&format!("/device?user_code={user_code}"))
        .await;
    assert!(page.contains(&format!("value=\"{user_code}\"")));
    assert_eq!(
        poll_result(&app, &device, &device_code).await.0,
        "authorization_pending"
    );
}

async fn viewers_cannot_approve_and_wrong_codes_change_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let mut viewer =
        crate::portal::invited(&app, &mut acme.owner, "victor@acme.example", "viewer").await;
    sell(&app, "SN-5601", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-5601").await;
    assert_eq!(confirm(&mut viewer, &user_code).await.status, 403);
    // A wrong authentication code: the page asks again, and nothing happened.
    let proof = shown(&confirm(&mut acme.owner, &user_code).await);
    let page = acme
        .owner
        .post(
            "/device/decide",
            &[
                ("user_code", &user_code),
                ("shown", &proof),
                ("group", ""),
                ("totp", "000000"),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.contains("authentication code is not right"),
        "{}",
        page.body
    );
    assert_eq!(
        poll_result(&app, &device, &device_code).await.0,
        "authorization_pending"
    );
    // Deny needs no code, and the device hears access_denied.
    let page = acme
        .owner
        .post(
            "/device/decide",
            &[
                ("user_code", &user_code),
                ("shown", &shown(&page)),
                ("action", "deny"),
            ],
        )
        .await;
    assert!(page.contains("was not paired"), "{}", page.body);
    assert_eq!(
        poll_result(&app, &device, &device_code).await.0,
        "access_denied"
    );
}

async fn unpairing_needs_a_step_up_and_ends_every_token_at_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    sell(&app, "SN-5701", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-5701").await;
    approve(&app, &mut acme.owner, &user_code, "").await;
    let (_, tokens) = poll_result(&app, &device, &device_code).await;
    assert!(active(&app, &tokens).await);
    app.advance(301);
    let page = acme
        .owner
        .submit(
            "/devices/SN-5701",
            "/devices/SN-5701/unpair",
            &[("release", "no")],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(page.contains("Confirm with your code to unpair SN-5701"));
    assert!(
        active(&app, &tokens).await,
        "nothing happened without the step-up"
    );
    let code = acme.owner.code();
    let page = acme.owner.confirm_pending(&page, &code).await;
    assert!(page.contains("unpaired"), "{}", page.body);
    assert!(!active(&app, &tokens).await);
    // The refresh token died too.
    let now = app.now();
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_assertion_type", crate::support::JWT_BEARER),
                ("client_assertion", &device.assertion(now)),
            ],
            &[("DPoP", &device.dpop("POST", "/oauth/token", now))],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.ctx
            .store
            .read(|tx| pairgate::store::registry::find_device(tx, &DeviceSerial::from("SN-5701")))
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        None
    );
}

async fn a_cancelled_sale_ends_the_pairing_it_carried(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", None).await;
    let erp = crate::erp::ErpClient::new(&app).await;
    let res = erp
        .put(
            "/api/erp/v1/sales/S-1",
            &serde_json::json!({
                "serial": "SN-5801", "sold_at": "2026-11-01T10:00:00Z", "revision": 1,
                "sold_to": {
                    "customer_number": "D-900", "name": "Wholesale Ltd", "kind": "distributor"
                }
            }),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let (device, device_code, user_code) = requesting(&app, "SN-5801").await;
    approve(&app, &mut acme.owner, &user_code, "").await;
    let (_, tokens) = poll_result(&app, &device, &device_code).await;
    assert!(active(&app, &tokens).await);
    let res = erp.delete("/api/erp/v1/sales/S-1").await;
    assert!(res.status().is_success());
    assert!(
        !active(&app, &tokens).await,
        "the provisional pairing depended on the sale"
    );
    let history = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::history(tx, &DeviceSerial::from("SN-5801")))
        .await
        .unwrap();
    assert_eq!(history[0].end_reason.as_deref(), Some("sale_ended"));
}
