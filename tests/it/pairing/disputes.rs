//! Disputes and the staff console; the review policy for distributor sales.

use super::{approve, company, poll_result, requesting, sell, staff};
use pairgate::ids::DeviceSerial;

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    staff_move_a_disputed_device_to_its_rightful_owner,
    the_review_policy_holds_distributor_sales_for_staff
);

async fn staff_move_a_disputed_device_to_its_rightful_owner(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let mut buyer = company(&app, "bob@buyer.example", Some("C-300")).await;
    // Acme paired a device that the ERP says went to another customer (an operator did it).
    let device = app.device("SN-6001").await;
    let old_tokens = app.pair(&device, acme.tenant).await;
    sell(&app, "SN-6001", "C-300", false, None).await;
    let started = app.start_pairing(&device).await;
    let page = approve(
        &app,
        &mut buyer.owner,
        started["user_code"].as_str().unwrap(),
        "",
    )
    .await;
    assert_eq!(page.status, 409, "{}", page.body);
    let dispute = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::disputes_of(tx, &DeviceSerial::from("SN-6001")))
        .await
        .unwrap()[0]
        .id;

    // Tenants cannot open the console.
    assert_eq!(acme.owner.get("/staff").await.status, 403);
    let mut sam = staff(&app).await;
    let home = sam.get("/staff").await;
    assert!(
        home.contains(&format!(
            "<a href=\"/staff/disputes/{dispute}\">Dispute #{dispute}</a>"
        )) && home.contains("<td data-label=\"Device\" class=\"nowrap\">SN-6001</td>")
            && home.contains("<td data-label=\"Why\">the device belongs to another company</td>")
            && !home.contains("paired_elsewhere"),
        "{}",
        home.body
    );
    let page = sam.get(&format!("/staff/disputes/{dispute}")).await;
    for shown in [
        "C-300",
        "Acme Water",
        "tried to pair the device SN-6001 and was refused: the device belongs to another company",
        "directly to Buyer C-300",
        "their confirmation page names you as the one who allowed it.",
    ] {
        assert!(page.contains(shown), "{shown}: {}", page.body);
    }
    let found = sam.get("/staff/devices?serial=SN-6001").await;
    assert!(
        found.contains("operator") && found.contains("Acme Water"),
        "{}",
        found.body
    );

    // Settling needs a fresh step-up (signing in gave one; five minutes later it is gone).
    app.advance(301);
    let page = sam
        .submit(
            &format!("/staff/disputes/{dispute}"),
            &format!("/staff/disputes/{dispute}/resolve"),
            &[
                ("resolution", "move"),
                ("note", "ERP confirms the sale to C-300"),
            ],
        )
        .await;
    // The decision and the note wait on a page that says them; a wrong code keeps them.
    let asked = format!(
        "Confirm with your code to settle dispute #{dispute}: move the device to the company \
         that asked for it, with the note “ERP confirms the sale to C-300”."
    );
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.contains(&asked), "{}", page.body);
    let page = sam.confirm_pending(&page, "000000").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.contains(&asked) && page.contains("that code is not right"),
        "{}",
        page.body
    );
    let still_open = app
        .query_i64("SELECT COUNT(*) AS n FROM disputes WHERE status = 'open'")
        .await;
    assert_eq!(still_open, 1, "nothing settled on a wrong code");
    let code = sam.code();
    let page = sam.confirm_pending(&page, &code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = sam.get(&page.location.unwrap()).await;
    assert!(page.contains("The dispute has been settled; the decision and your note are shown"));
    assert!(
        page.contains("by Sam Support (manufacturer&#39;s support): the device was moved to the")
            && page.contains("<dd>ERP confirms the sale to C-300</dd>"),
        "{}",
        page.body
    );
    let found = sam.get("/staff/devices?serial=SN-6001").await;
    assert!(found.contains("Staff note: ERP confirms the sale to C-300"));
    // The company that asked reads the decision, and the note, in its own log.
    let log = buyer.owner.get("/audit").await;
    assert!(
        log.contains(
            "the device was moved to the company that asked for it. Staff note: ERP \
             confirms the sale to C-300"
        ),
        "{}",
        log.body
    );

    // Acme lost the device and its tokens; the buyer pairs it with the staff grant.
    assert!(!super::active(&app, &old_tokens).await);
    assert!(!acme.owner.get("/devices").await.contains("SN-6001"));
    let again = app.start_pairing(&device).await;
    let page = approve(
        &app,
        &mut buyer.owner,
        again["user_code"].as_str().unwrap(),
        "",
    )
    .await;
    assert!(page.contains("joins your account"), "{}", page.body);
    let (outcome, tokens) =
        poll_result(&app, &device, again["device_code"].as_str().unwrap()).await;
    assert_eq!(outcome, "ok");
    assert_ne!(tokens["access_token"], old_tokens["access_token"]);
    // The device's pairing history and the company's log name who allowed the pairing.
    let page = buyer.owner.get("/devices/SN-6001").await;
    assert!(
        page.contains("Sam Support of the manufacturer&#39;s support team allowed it")
            && !page.contains("records match"),
        "{}",
        page.body
    );
    let log = buyer.owner.get("/audit").await;
    assert!(
        log.contains("paired the device SN-6001 (Sam Support of the manufacturer&#39;s support"),
        "{}",
        log.body
    );
}

async fn the_review_policy_holds_distributor_sales_for_staff(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[pairing]\ndistributor_sales = \"review\"")
        .start()
        .await;
    let mut acme = company(&app, "olivia@acme.example", None).await;
    sell(&app, "SN-6101", "D-900", true, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-6101").await;
    let page = approve(&app, &mut acme.owner, &user_code, "").await;
    assert!(page.contains("reviews the pairing"), "{}", page.body);
    assert_eq!(
        poll_result(&app, &device, &device_code).await.0,
        "authorization_pending",
        "held, not paired"
    );
    let dispute = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::disputes_of(tx, &DeviceSerial::from("SN-6101")))
        .await
        .unwrap()[0]
        .clone();
    assert_eq!(dispute.reason, "distributor_review");
    let mut sam = staff(&app).await;
    let page = sam
        .submit(
            &format!("/staff/disputes/{}", dispute.id),
            &format!("/staff/disputes/{}/resolve", dispute.id),
            &[("resolution", "grant")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    // The same pending request can now be approved, on the staff grant, which the page names.
    let page = super::confirm(&mut acme.owner, &user_code).await;
    assert!(
        page.contains("Sam Support of the manufacturer's support team allowed your company")
            && !page.contains("records match"),
        "{}",
        page.body
    );
    let page = approve(&app, &mut acme.owner, &user_code, "").await;
    assert!(page.contains("joins your account"), "{}", page.body);
    assert_eq!(poll_result(&app, &device, &device_code).await.0, "ok");
    // The staff console's device page says who granted it, too.
    let page = sam.get("/staff/devices?serial=SN-6101").await;
    assert!(
        page.contains("Sam Support of the manufacturer&#39;s support team allowed it"),
        "{}",
        page.body
    );
}
