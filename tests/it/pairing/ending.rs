//! Ending a pairing ends everything: unpairing, an ERP rejection and a staff move or release
//! also withdraw an approval the device has not collected yet, so its next poll hears
//! `access_denied` instead of getting tokens for the tenant it just left. Wherever a device's
//! token is accepted (a poll's approval, the refresh grant, introspection), the device's current
//! tenant, token generation and status are checked too, so a token the device has moved past
//! works nowhere.

use pairgate::ids::DeviceSerial;
use pairgate::oauth::device_flow::Verdict;
use pairgate::pairing::Removal;
use serde_json::json;

use super::{active, approve, company, poll_result, requesting, sell, session_of, staff};
use crate::backend_tests;
use crate::oauth::error_of;
use crate::oauth::refresh::{refresh, refreshed};
use crate::support::device::TestDevice;
use crate::support::{Backend, TestApp};

backend_tests!(
    unpairing_withdraws_an_approval_not_yet_collected,
    a_poll_racing_the_unpairing_keeps_no_tokens,
    an_erp_rejection_withdraws_an_approval_not_yet_collected,
    a_staff_move_or_release_withdraws_an_approval_not_yet_collected,
    a_poll_gets_no_tokens_for_a_tenant_the_device_has_left,
    a_refresh_family_the_device_moved_past_is_refused_and_inactive,
);

async fn unpairing_withdraws_an_approval_not_yet_collected(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    sell(&app, "SN-8001", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-8001").await;
    let page = approve(&app, &mut acme.owner, &user_code, "").await;
    assert!(page.contains("joins your account"), "{}", page.body);

    // Before the device polls, the owner unpairs it (signing in gave a fresh step-up).
    let page = acme
        .owner
        .submit(
            "/devices/SN-8001",
            "/devices/SN-8001/unpair",
            &[("release", "no")],
        )
        .await;
    assert!(page.contains("unpaired"), "{}", page.body);
    assert_denied(&app, &device, &device_code).await;
    assert_no_family(&app, "SN-8001").await;
}

/// The device polls at the moment its owner unpairs it: one of the two gets the approval. If the
/// poll did, the unpairing ends the tokens it got; if the unpairing did, the poll hears
/// `access_denied`. Either way the device holds nothing that works, and neither request fails.
async fn a_poll_racing_the_unpairing_keeps_no_tokens(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    for serial in ["SN-8011", "SN-8012", "SN-8013", "SN-8014"] {
        sell(&app, serial, "C-100", false, None).await;
        let (device, device_code, user_code) = requesting(&app, serial).await;
        let page = approve(&app, &mut acme.owner, &user_code, "").await;
        assert!(page.contains("joins your account"), "{}", page.body);
        let olivia = session_of(&app, &acme.owner).await;
        let device_serial = DeviceSerial::from(serial);
        let (unpaired, polled) = tokio::join!(
            app.ctx
                .ceremony
                .unpair(&olivia, &device_serial, Removal::Unpair),
            app.poll(&device, &device_code),
        );
        unpaired.unwrap();
        let status = polled.status();
        let body: serde_json::Value = polled.json().await.unwrap();
        match status.as_u16() {
            200 => {
                assert!(!active(&app, &body).await, "{serial}: the tokens ended");
                let res = refresh(&app, &device, body["refresh_token"].as_str().unwrap()).await;
                assert_eq!(error_of(res, 400).await["error"], "invalid_grant");
            }
            400 => assert_eq!(body["error"], "access_denied", "{serial}"),
            other => panic!("{serial}: the poll answered {other}: {body}"),
        }
        assert_no_family(&app, serial).await;
    }
}

async fn an_erp_rejection_withdraws_an_approval_not_yet_collected(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", None).await;
    sell(&app, "SN-8002", "D-900", true, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-8002").await;
    let page = approve(&app, &mut acme.owner, &user_code, "").await;
    assert!(page.contains("provisionally"), "{}", page.body);

    let erp = crate::erp::ErpClient::new(&app).await;
    let res = erp
        .post("/api/erp/v1/pairings/SN-8002/reject", &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert_denied(&app, &device, &device_code).await;
    assert_no_family(&app, "SN-8002").await;
}

async fn a_staff_move_or_release_withdraws_an_approval_not_yet_collected(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let rival = company(&app, "rita@rival.example", Some("C-200")).await;
    let mut sam = staff(&app).await;
    for (serial, resolution) in [("SN-8003", "move"), ("SN-8004", "release")] {
        sell(&app, serial, "C-100", false, None).await;
        let (device, device_code, user_code) = requesting(&app, serial).await;
        let page = approve(&app, &mut acme.owner, &user_code, "").await;
        assert!(page.contains("joins your account"), "{}", page.body);
        // Meanwhile the rival's claim on the device reached staff, who settle it.
        let (serial_owned, claimant, holder, at) = (
            serial.to_owned(),
            rival.tenant,
            acme.tenant,
            app.now() * 1000,
        );
        let (dispute, _) = app
            .ctx
            .store
            .write(move |tx| {
                pairgate::store::pairings::open_dispute(
                    tx,
                    &DeviceSerial::from(&serial_owned),
                    claimant,
                    Some(holder),
                    "paired_elsewhere",
                    "user:rival",
                    at,
                )
            })
            .await
            .unwrap();
        let page = sam
            .submit(
                &format!("/staff/disputes/{dispute}"),
                &format!("/staff/disputes/{dispute}/resolve"),
                &[("resolution", resolution)],
            )
            .await;
        assert_eq!(page.status, 303, "{resolution}: {}", page.body);

        assert_denied(&app, &device, &device_code).await;
        assert_no_family(&app, serial).await;
    }
}

/// Should anything end a pairing without withdrawing its approval, the device's poll still gets
/// no tokens for a tenant it no longer belongs to.
async fn a_poll_gets_no_tokens_for_a_tenant_the_device_has_left(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-8005").await;
    let started = app.start_pairing(&device).await;
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    let at = app.now() * 1000;
    app.ctx
        .store
        .write(move |tx| {
            pairgate::store::pairings::end_current(tx, &DeviceSerial::from("SN-8005"), "test", at)
        })
        .await
        .unwrap();
    assert_denied(&app, &device, started["device_code"].as_str().unwrap()).await;
    assert_no_family(&app, "SN-8005").await;
}

/// A family is refused, and its access tokens are inactive, once the device belongs to another
/// tenant or another token generation, even if nothing revoked the family itself; a disabled
/// device is refused without losing its family.
async fn a_refresh_family_the_device_moved_past_is_refused_and_inactive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let other = app.tenant("Someone Else").await;

    // Moved to another tenant behind the tokens' back (the generation stays).
    let moved = app.device("SN-8006").await;
    let tokens = app.pair(&moved, tenant).await;
    assert!(active(&app, &tokens).await);
    let at = app.now() * 1000;
    app.ctx
        .store
        .write(move |tx| crate::telemetry::move_device(tx, "SN-8006", other, at))
        .await
        .unwrap();
    assert!(
        !active(&app, &tokens).await,
        "introspection follows the tenant"
    );
    let body = error_of(
        refresh(&app, &moved, tokens["refresh_token"].as_str().unwrap()).await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "the refresh token was revoked");

    // A generation moved on without the family being revoked.
    let bumped = app.device("SN-8007").await;
    let tokens = app.pair(&bumped, tenant).await;
    app.raw_sql(
        "UPDATE devices SET token_generation = token_generation + 1 WHERE serial = 'SN-8007'",
    )
    .await;
    assert!(!active(&app, &tokens).await);
    let body = error_of(
        refresh(&app, &bumped, tokens["refresh_token"].as_str().unwrap()).await,
        400,
    )
    .await;
    assert_eq!(body["error_description"], "the refresh token was revoked");
    let revoked = "SELECT COUNT(*) AS n FROM refresh_families \
                   WHERE client_id IN ('SN-8006', 'SN-8007') AND status = 'revoked'";
    assert_eq!(app.query_i64(revoked).await, 2);

    // Disabled, then enabled again: refused meanwhile, and the family carries on.
    let paused = app.device("SN-8008").await;
    let tokens = app.pair(&paused, tenant).await;
    app.raw_sql("UPDATE clients SET status = 'disabled' WHERE client_id = 'SN-8008'")
        .await;
    assert!(!active(&app, &tokens).await);
    let body = error_of(
        refresh(&app, &paused, tokens["refresh_token"].as_str().unwrap()).await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
    app.raw_sql("UPDATE clients SET status = 'active' WHERE client_id = 'SN-8008'")
        .await;
    assert!(active(&app, &tokens).await);
    refreshed(&app, &paused, tokens["refresh_token"].as_str().unwrap()).await;
}

/// The device's polls hear `access_denied`, and go on hearing it (RFC 8628 §3.5: a final
/// answer): the approval was withdrawn, not spent.
async fn assert_denied(app: &TestApp, device: &TestDevice, device_code: &str) {
    for poll in ["first", "second"] {
        let (outcome, body) = poll_result(app, device, device_code).await;
        assert_eq!(outcome, "access_denied", "{poll} poll: {body}");
    }
}

/// The device holds no live refresh-token family.
async fn assert_no_family(app: &TestApp, serial: &str) {
    let live = format!(
        "SELECT COUNT(*) AS n FROM refresh_families WHERE client_id = '{serial}' \
         AND status = 'active'"
    );
    assert_eq!(app.query_i64(&live).await, 0, "{serial}");
}
