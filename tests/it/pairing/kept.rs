//! Nothing typed is lost to a step-up: a wrong code on the approval page keeps the chosen group,
//! an unpairing or release waits on a page that names it and completes once with the right code.

use super::{active, company, confirm, poll_result, requesting, sell, session_of, shown};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_wrong_code_on_the_approval_page_keeps_the_group_and_says_what_it_confirms,
    a_release_waits_for_its_code_and_happens_once,
);

async fn pairings_of(app: &TestApp, serial: &str) -> usize {
    let serial = pairgate::ids::DeviceSerial::from(serial);
    app.ctx
        .store
        .read(move |tx| pairgate::store::pairings::history(tx, &serial))
        .await
        .unwrap()
        .len()
}

async fn a_wrong_code_on_the_approval_page_keeps_the_group_and_says_what_it_confirms(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let session = session_of(&app, &acme.owner).await;
    let _other = app
        .ctx
        .accounts
        .create_group(&session, "Plant South")
        .await
        .unwrap();
    let north = app
        .ctx
        .accounts
        .create_group(&session, "Plant North")
        .await
        .unwrap();
    sell(&app, "SN-8101", "C-100", false, None).await;
    let (_, _, user_code) = requesting(&app, "SN-8101").await;
    let page = confirm(&mut acme.owner, &user_code).await;
    assert!(
        page.contains("Confirm with your code to approve pairing SN-8101."),
        "{}",
        page.body
    );
    let proof = shown(&page);
    let north = north.to_string();
    let page = acme
        .owner
        .post(
            "/device/decide",
            &[
                ("user_code", &user_code),
                ("shown", &proof),
                ("group", &north),
                ("totp", "000000"),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    for kept in [
        &format!("<option value=\"{north}\" selected>Plant North</option>"),
        "Confirm with your code to approve pairing SN-8101 into Plant North.",
        "That authentication code is not right",
        "aria-invalid=\"true\"",
        &format!("name=\"user_code\" value=\"{user_code}\""),
    ] {
        assert!(page.contains(kept), "{kept}: {}", page.body);
    }
    assert!(!page.contains("selected>Plant South"), "{}", page.body);
    assert_eq!(
        pairings_of(&app, "SN-8101").await,
        0,
        "nothing happened yet"
    );

    // The right code, from the page as it was shown again, completes the approval once.
    let proof = shown(&page);
    app.advance(30);
    let code = acme.owner.code();
    let page = acme
        .owner
        .post(
            "/device/decide",
            &[
                ("user_code", &user_code),
                ("shown", &proof),
                ("group", &north),
                ("totp", &code),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("joins your account"), "{}", page.body);
    assert_eq!(pairings_of(&app, "SN-8101").await, 1);
    let devices = app.ctx.accounts.visible_devices(&session).await.unwrap();
    let device = devices.iter().find(|d| d.serial == "SN-8101").unwrap();
    assert_eq!(device.group.as_deref(), Some("Plant North"));
}

async fn a_release_waits_for_its_code_and_happens_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    sell(&app, "SN-8102", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-8102").await;
    super::approve(&app, &mut acme.owner, &user_code, "").await;
    let (_, tokens) = poll_result(&app, &device, &device_code).await;
    assert!(active(&app, &tokens).await);

    // Five minutes on, the step-up from signing in is gone: the release waits on a page that
    // names it, without a redirect that would drop it.
    app.advance(301);
    let page = acme
        .owner
        .submit(
            "/devices/SN-8102",
            "/devices/SN-8102/unpair",
            &[("release", "yes")],
        )
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.location.is_none());
    let asked = "Confirm with your code to release SN-8102: it stops working for your company \
                 at once, and another customer may pair it.";
    assert!(page.contains(asked), "{}", page.body);
    assert!(active(&app, &tokens).await, "nothing happened yet");

    // A wrong code: the same page, the same action, the error beside the code field.
    let page = acme.owner.confirm_pending(&page, "000000").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.contains(asked), "{}", page.body);
    assert!(
        page.contains(
            "id=\"step-up-error\" class=\"error field-error\" role=\"alert\">that code is not right"
        ),
        "{}",
        page.body
    );
    assert!(active(&app, &tokens).await, "nothing happened yet");

    // The right code completes the release, once.
    let code = acme.owner.code();
    let wrong_page = page;
    let page = acme.owner.confirm_pending(&wrong_page, &code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("released"), "{}", page.body);
    assert!(!active(&app, &tokens).await);
    let released = app
        .query_i64("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'device.released'")
        .await;
    assert_eq!(released, 1);
    // The session stepped up under a new id: the sealed action opens no more.
    app.advance(30);
    let code = acme.owner.code();
    let again = acme.owner.confirm_pending(&wrong_page, &code).await;
    assert_eq!(again.status, 403, "{}", again.body);
    let released = app
        .query_i64("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'device.released'")
        .await;
    assert_eq!(released, 1, "used once");
}
