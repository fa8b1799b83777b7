//! Every path that takes a user code counts an attempt (look-up, approve, deny), and a decision
//! acts only on a request its own session was shown.

use futures_util::future::join_all;
use pairgate::ids::DeviceSerial;
use pairgate::pairing::{PairingError, Shown};

use super::{company, confirm, poll_result, requesting, sell, session_of, shown};
use crate::backend_tests;
use crate::support::portal::{Browser, Page, extract};
use crate::support::{Backend, TestApp};

backend_tests!(
    a_storm_of_denials_meets_the_code_attempt_limits,
    approvals_count_code_attempts_too,
    decisions_act_only_on_a_request_their_session_was_shown,
);

/// `n` codes in the right shape that no request holds (the random ones of an attacker).
fn wrong_codes(n: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    (0..n)
        .map(|i| {
            let mut x = i;
            let mut code = String::from("ZZ");
            for _ in 0..6 {
                code.push(char::from(ALPHABET[x % 20]));
                x /= 20;
            }
            code.insert(4, '-');
            code
        })
        .collect()
}

/// Posts a deny for `user_code` with this proof, as a form on the confirmation page would.
async fn deny(b: &mut Browser<'_>, user_code: &str, proof: &str) -> Page {
    b.post(
        "/device/decide",
        &[
            ("user_code", user_code),
            ("shown", proof),
            ("action", "deny"),
        ],
    )
    .await
}

async fn a_storm_of_denials_meets_the_code_attempt_limits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let form = acme.owner.get("/device").await;
    let csrf = extract(&form.body, "name=\"csrf\" value=\"").unwrap();
    // 40 denials of random codes at once, from one person in one session.
    let storm = wrong_codes(40).into_iter().map(|code| {
        let request = acme
            .owner
            .client
            .post(app.url("/device/decide"))
            .header("Origin", app.base.as_str())
            .form(&[
                ("csrf", csrf.as_str()),
                ("user_code", code.as_str()),
                ("shown", ""),
                ("action", "deny"),
            ]);
        async move {
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            let retry_after = res.headers().get("retry-after").cloned();
            (status, retry_after, res.text().await.unwrap())
        }
    });
    let answers = join_all(storm).await;
    let unknown = answers.iter().filter(|(s, ..)| *s == 422).count();
    let throttled: Vec<_> = answers.iter().filter(|(s, ..)| *s == 429).collect();
    assert_eq!(
        (unknown, throttled.len()),
        (20, 20),
        "20 attempts per person in ten minutes, counted before each is checked"
    );
    for (_, retry_after, body) in throttled {
        let wait: u64 = retry_after
            .as_ref()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=600).contains(&wait), "{wait}");
        assert!(body.contains("Too many codes have been tried"), "{body}");
    }
    // The look-up shares the budget: even the right code waits now.
    for serial in ["SN-9001", "SN-9002"] {
        sell(&app, serial, "C-100", false, None).await;
    }
    let (_, _, user_code) = requesting(&app, "SN-9001").await;
    assert_eq!(confirm(&mut acme.owner, &user_code).await.status, 429);
    // Counted under the first budget spent, the person's; the wider ones saw none of it.
    assert_eq!(app.throttled("user_code_person").await, Some(21.0));
    for wider in [
        "user_code_session",
        "user_code_address",
        "user_code_network",
    ] {
        assert_eq!(app.throttled(wider).await, Some(0.0), "{wider}");
    }
    app.advance(600);
    let (_, _, user_code) = requesting(&app, "SN-9002").await;
    assert_eq!(confirm(&mut acme.owner, &user_code).await.status, 200);
}

async fn approvals_count_code_attempts_too(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let olivia = session_of(&app, &acme.owner).await;
    let ceremony = &app.ctx.ceremony;
    // Approvals with a code that no request holds (the second factor is checked after the
    // attempt is counted, so its outcome does not matter here).
    for code in wrong_codes(20) {
        let shown = Shown {
            user_code: &code,
            proof: "",
        };
        let result = ceremony.approve(&olivia, shown, "000000", None, None).await;
        assert!(
            matches!(
                result,
                Err(PairingError::UnknownCode | PairingError::Account(_))
            ),
            "{result:?}"
        );
    }
    let result = ceremony.look_up(&olivia, "BCDF-GHJK", None).await;
    assert!(
        matches!(result, Err(PairingError::Throttled { .. })),
        "the twenty approvals spent the person's budget: {result:?}"
    );
}

async fn decisions_act_only_on_a_request_their_session_was_shown(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
    let mut admin =
        crate::portal::invited(&app, &mut acme.owner, "ada@acme.example", "admin").await;
    let mut rival = company(&app, "rita@rival.example", Some("C-200")).await;
    sell(&app, "SN-9101", "C-100", false, None).await;
    let (device, device_code, user_code) = requesting(&app, "SN-9101").await;
    let unknown_code = wrong_codes(1).remove(0);

    // Another tenant denies a code it never looked up: exactly the answer to an unknown code.
    rival.owner.get("/device").await;
    let unknown = deny(&mut rival.owner, &unknown_code, "").await;
    let guessed = deny(&mut rival.owner, &user_code, "").await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(guessed.status, unknown.status);
    assert_eq!(
        guessed.body.replace(&user_code, "CODE"),
        unknown.body.replace(&unknown_code, "CODE"),
        "the answer reveals nothing about the code"
    );
    assert!(!guessed.contains("SN-9101"), "{}", guessed.body);

    // The owner looks it up; her proof is worth nothing in any other session.
    let page = confirm(&mut acme.owner, &user_code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let proof = shown(&page);
    let stolen = deny(&mut rival.owner, &user_code, &proof).await;
    assert_eq!(stolen.status, 422);
    assert!(!stolen.contains("SN-9101"), "{}", stolen.body);
    admin.get("/device").await;
    assert_eq!(deny(&mut admin, &user_code, &proof).await.status, 422);
    app.advance(30);
    let totp = admin.code();
    let page = admin
        .post(
            "/device/decide",
            &[
                ("user_code", &user_code),
                ("shown", &proof),
                ("totp", &totp),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(!page.contains("SN-9101"), "{}", page.body);
    assert_eq!(
        poll_result(&app, &device, &device_code).await.0,
        "authorization_pending",
        "nobody who was not shown the request decided it"
    );
    assert!(
        app.ctx
            .store
            .read(|tx| pairgate::store::pairings::history(tx, &DeviceSerial::from("SN-9101")))
            .await
            .unwrap()
            .is_empty()
    );

    // With her own proof, the owner denies it.
    acme.owner.get("/device").await;
    let page = deny(&mut acme.owner, &user_code, &proof).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.contains("Device SN-9101 was not paired"),
        "{}",
        page.body
    );
    assert_eq!(
        poll_result(&app, &device, &device_code).await.0,
        "access_denied"
    );
}
