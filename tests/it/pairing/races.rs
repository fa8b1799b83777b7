//! Races with exactly one winner, refusals that change nothing, and the attempt limits.

use pairgate::accounts::Session;
use pairgate::ids::DeviceSerial;
use pairgate::pairing::{Approval, PairingError, Shown};

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
    let (proof_o, proof_a) = (
        proof(&app, &olivia, &user_code).await,
        proof(&app, &ada, &user_code).await,
    );
    let (a, b) = tokio::join!(
        ceremony.approve(&olivia, shown(&user_code, &proof_o), &code_o, None, None),
        ceremony.approve(&ada, shown(&user_code, &proof_a), &code_a, None, None),
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
        .read(|tx| pairgate::store::pairings::history(tx, &DeviceSerial::from("SN-7001")))
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
    let (proof_o, proof_a) = (
        proof(&app, &olivia, &user_code).await,
        proof(&app, &ada, &user_code).await,
    );
    let (approved, denied) = tokio::join!(
        ceremony.approve(&olivia, shown(&user_code, &proof_o), &code, None, None),
        ceremony.deny(&ada, shown(&user_code, &proof_a), None)
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
    let late_proof = proof(&app, &olivia, &late_code).await;
    app.advance(601);
    let code = acme.owner.code();
    let result = ceremony
        .approve(&olivia, shown(&late_code, &late_proof), &code, None, None)
        .await;
    assert!(
        matches!(result, Err(PairingError::UnknownCode)),
        "{result:?}"
    );
    assert!(
        app.ctx
            .store
            .read(|tx| pairgate::store::pairings::history(tx, &DeviceSerial::from("SN-7102")))
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

/// Looks the code up as `session` would on the page, and returns the confirmation's proof.
async fn proof(app: &TestApp, session: &Session, user_code: &str) -> String {
    app.ctx
        .ceremony
        .look_up(session, user_code, None)
        .await
        .unwrap()
        .proof
}

fn shown<'a>(user_code: &'a str, proof: &'a str) -> Shown<'a> {
    Shown { user_code, proof }
}
