//! Races with exactly one winner, refusals that change nothing, and the attempt limits.

use pairgate::pairing::{Approval, PairingError};

use super::{company, confirm, poll_result, requesting, sell, session_of};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    two_people_approving_one_code_have_one_winner,
    approve_racing_deny_and_expiry,
    code_attempts_are_limited,
);

async fn two_people_approving_one_code_have_one_winner(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let admin = crate::portal::invited(&app, &mut acme.owner, "ada@acme.example", "admin").await;
    sell(&app, "SN-7001", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-7001").await;
    app.advance(30);
    let (olivia, ada) = (
        session_of(&app, &acme.owner).await,
        session_of(&app, &admin).await,
    );
    let (code_o, code_a) = (acme.owner.code(), admin.code());
    let ceremony = &app.ctx.ceremony;
    let (a, b) = tokio::join!(
        ceremony.approve(&olivia, &user_code, &code_o, None, None),
        ceremony.approve(&ada, &user_code, &code_a, None, None),
    );
    let wins = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(Approval::Paired { .. })))
        .count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    assert!(
        [&a, &b]
            .iter()
            .any(|r| matches!(r, Err(PairingError::UnknownCode))),
        "{a:?} {b:?}"
    );
    let history = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::history(tx, "SN-7001"))
        .await
        .unwrap();
    assert_eq!(history.len(), 1, "one pairing");
    assert_eq!(poll_result(&app, &device, &device_code).await.0, "ok");
}

async fn approve_racing_deny_and_expiry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let admin = crate::portal::invited(&app, &mut acme.owner, "ada@acme.example", "admin").await;
    sell(&app, "SN-7101", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-7101").await;
    app.advance(30);
    let (olivia, ada) = (
        session_of(&app, &acme.owner).await,
        session_of(&app, &admin).await,
    );
    let code = acme.owner.code();
    let ceremony = &app.ctx.ceremony;
    let (approved, denied) = tokio::join!(
        ceremony.approve(&olivia, &user_code, &code, None, None),
        ceremony.deny(&ada, &user_code)
    );
    assert!(
        approved.is_ok() != denied.is_ok(),
        "{approved:?} {denied:?}"
    );
    let expected = if denied.is_ok() {
        "access_denied"
    } else {
        "ok"
    };
    assert_eq!(poll_result(&app, &device, &device_code).await.0, expected);

    // Too late: an expired request cannot be approved, and nothing is paired.
    sell(&app, "SN-7102", "C-100", false, None).await;
    let (_, _, late_code) = requesting(&app, "SN-7102").await;
    app.advance(601);
    let code = acme.owner.code();
    let result = ceremony
        .approve(&olivia, &late_code, &code, None, None)
        .await;
    assert!(
        matches!(result, Err(PairingError::UnknownCode)),
        "{result:?}"
    );
    assert!(
        app.ctx
            .store
            .read(|tx| pairgate::store::pairings::history(tx, "SN-7102"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn code_attempts_are_limited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let mut last = 0;
    for i in 0..21 {
        let page = confirm(&mut acme.owner, "BCDF-GHJK").await;
        last = page.status;
        if i < 20 {
            assert_eq!(page.status, 422, "attempt {i}: {}", page.body);
            assert!(page.contains("no pending pairing request has this code"));
        }
    }
    assert_eq!(last, 429, "the 21st code in ten minutes waits");
    // Other codes, even right ones, wait too; after the window they work again.
    let (_, _, user_code) = requesting(&app, "SN-7201").await;
    assert_eq!(confirm(&mut acme.owner, &user_code).await.status, 429);
    app.advance(600);
    let (_, _, next_code) = requesting(&app, "SN-7202").await;
    assert_eq!(confirm(&mut acme.owner, &next_code).await.status, 200);
}
