//! What a refused tenant sees: that the device went to another customer and the case number of
//! the review, never who that customer is.

use super::{approve, company, confirm, requesting, sell};
use pairgate::ids::DeviceSerial;

use crate::backend_tests;
use crate::support::portal::Page;
use crate::support::{Backend, TestApp};

backend_tests!(a_refused_tenant_never_sees_the_other_customer);

/// Asserts that no text of another customer appears on the page.
fn names_nobody(page: &Page, others: &[&str]) {
    for other in others {
        assert!(!page.contains(other), "{other:?} shown: {}", page.body);
    }
}

async fn a_refused_tenant_never_sees_the_other_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let rival = company(&app, "rita@rival.example", Some("C-200")).await;
    // Sold directly to C-900; sold through distributor D-800, which named C-900; sold to C-200
    // (Rival) and paired there.
    sell(&app, "SN-9201", "C-900", false, None).await;
    sell(&app, "SN-9202", "D-800", true, Some("C-900")).await;
    sell(&app, "SN-9203", "C-200", false, None).await;
    let held = app.device("SN-9203").await;
    app.pair(&held, rival.tenant).await;
    let others = [
        "C-900",
        "Buyer C-900",
        "D-800",
        "Buyer D-800",
        "C-200",
        "Buyer C-200",
    ];

    for serial in ["SN-9201", "SN-9202"] {
        let (_, _, user_code) = requesting(&app, serial).await;
        let page = confirm(&mut acme.owner, &user_code).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.contains("sold to another customer"), "{}", page.body);
        names_nobody(&page, &others);

        // Asking for a review: refused, with the case number, still naming nobody.
        let page = approve(&app, &mut acme.owner, &user_code, "").await;
        assert_eq!(page.status, 409, "{}", page.body);
        let serial = serial.to_owned();
        let dispute = app
            .ctx
            .store
            .read(move |tx| {
                pairgate::store::pairings::disputes_of(tx, &DeviceSerial::from(&serial))
            })
            .await
            .unwrap()[0]
            .id;
        assert!(page.contains("sold to another customer"), "{}", page.body);
        assert!(
            page.contains(&format!("case #{dispute}")),
            "the case number: {}",
            page.body
        );
        names_nobody(&page, &others);
    }

    // Paired to another tenant: the confirmation says so, without its sale.
    let started = app.start_pairing(&held).await;
    let page = confirm(&mut acme.owner, started["user_code"].as_str().unwrap()).await;
    assert!(page.contains("another company"), "{}", page.body);
    names_nobody(&page, &others);

    // A company's own purchase is shown in full, so its people can check it.
    sell(&app, "SN-9204", "C-100", false, None).await;
    let (_, _, user_code) = requesting(&app, "SN-9204").await;
    let page = confirm(&mut acme.owner, &user_code).await;
    assert!(
        page.contains("directly to Buyer C-100 (C-100), your company"),
        "{}",
        page.body
    );
}
