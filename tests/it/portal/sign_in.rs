//! Sign-up, sign-in, the second factor, recovery codes, throttling.

use super::{PASSWORD, owner};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

backend_tests!(
    sign_up_creates_a_tenant_and_its_owner_and_leads_to_totp,
    sign_in_asks_for_the_second_factor_and_rotates_the_session,
    wrong_email_and_wrong_password_look_the_same,
    a_totp_code_is_usable_once_and_neighbouring_steps_count,
    concurrent_submits_of_one_code_succeed_once,
    recovery_codes_work_once,
    failures_slow_down_but_never_lock_out_for_good,
    password_rules_follow_asvs,
    disabled_users_cannot_sign_in,
);

async fn sign_up_creates_a_tenant_and_its_owner_and_leads_to_totp(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = Browser::new(&app);
    let page = b
        .sign_up("Acme Water", "Olivia", "Olivia@Example.com", PASSWORD)
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/account/totp"));
    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        home.contains("Acme Water") && home.contains("owner"),
        "{}",
        home.body
    );
    assert!(home.contains("Set up two-factor authentication"));
    let codes = b.enrol_totp().await;
    assert_eq!(codes.len(), 10);
    assert!(
        !b.get("/")
            .await
            .contains("Set up two-factor authentication")
    );
    // The address is stored lower-cased: signing up again with it is refused.
    let mut other = Browser::new(&app);
    let page = other
        .sign_up("Other", "Eve", "olivia@example.COM", PASSWORD)
        .await;
    assert_eq!(page.status, 422);
    assert!(page.contains("already exists"));
}

async fn sign_in_asks_for_the_second_factor_and_rotates_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let first = owner(&app, "olivia@example.com").await;
    let mut b = Browser::new(&app);
    b.totp_secret = first.totp_secret.clone();
    let page = b.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/login/code"));
    let half = b.session_cookie().unwrap();
    // Half signed in: nothing but the code page.
    let page = b.get("/devices").await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/login"));
    app.advance(30);
    let code = b.code();
    let page = b
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &code), ("next", "/devices")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/devices"));
    let full = b.session_cookie().unwrap();
    assert_ne!(half, full, "the session id changes when privileges do");
    assert_eq!(b.get("/devices").await.status, 200);
    // The half session is gone.
    b.set_session_cookie(&half);
    assert_eq!(b.get("/devices").await.status, 303);
}

async fn wrong_email_and_wrong_password_look_the_same(backend: Backend) {
    let app = TestApp::start(backend).await;
    owner(&app, "olivia@example.com").await;
    let mut b = Browser::new(&app);
    let wrong_password = b
        .sign_in("olivia@example.com", "not the password at all")
        .await;
    let unknown = b
        .sign_in("nobody@example.com", "not the password at all")
        .await;
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown.status, 401);
    let message = |p: &crate::support::portal::Page| {
        p.body
            .split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(message(&wrong_password), message(&unknown));
    // The audit log never stores what was typed into the email field for unknown accounts.
    let events = app.ctx.store.audit_page(None, None, 50).await.unwrap();
    assert!(events.iter().all(|e| !e.subject.contains("nobody")));
    assert!(
        events
            .iter()
            .any(|e| e.action == "user.sign_in_failed" && e.subject == "account:unknown")
    );
}

async fn a_totp_code_is_usable_once_and_neighbouring_steps_count(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    // The enrolment used the current step; the same code cannot step up.
    let page = b
        .submit(
            "/step-up",
            "/step-up",
            &[("code", &b.code()), ("next", "/")],
        )
        .await;
    assert_eq!(page.status, 401);
    // The next step's code is accepted now (clock skew ±1 step)...
    let next = b.code_at(1);
    let page = b
        .submit("/step-up", "/step-up", &[("code", &next), ("next", "/")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    // ...but not again, and an older step's code not after a newer one.
    app.advance(30);
    assert_eq!(
        b.submit("/step-up", "/step-up", &[("code", &next), ("next", "/")])
            .await
            .status,
        401
    );
    assert_eq!(
        b.submit(
            "/step-up",
            "/step-up",
            &[("code", &b.code_at(-1)), ("next", "/")]
        )
        .await
        .status,
        401
    );
    // Two steps away is outside the window.
    app.advance(60);
    assert_eq!(
        b.submit(
            "/step-up",
            "/step-up",
            &[("code", &b.code_at(-2)), ("next", "/")]
        )
        .await
        .status,
        401
    );
    // Only ASCII digits.
    app.advance(30);
    let code = b.code();
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    assert_eq!(
        b.submit("/step-up", "/step-up", &[("code", &spaced), ("next", "/")])
            .await
            .status,
        401
    );
    // Five failures in a row: the next try must wait a second (throttling), then the code works.
    assert_eq!(
        b.submit("/step-up", "/step-up", &[("code", &code), ("next", "/")])
            .await
            .status,
        429
    );
    app.advance(1);
    assert_eq!(
        b.submit("/step-up", "/step-up", &[("code", &code), ("next", "/")])
            .await
            .status,
        303
    );
}

async fn concurrent_submits_of_one_code_succeed_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let owner = owner(&app, "olivia@example.com").await;
    app.advance(30);
    // Two sessions of the same person submit the same fresh code at the same moment.
    let mut one = Browser::new(&app);
    let mut two = Browser::new(&app);
    one.totp_secret = owner.totp_secret.clone();
    two.totp_secret = owner.totp_secret.clone();
    one.sign_in("olivia@example.com", PASSWORD).await;
    two.sign_in("olivia@example.com", PASSWORD).await;
    one.get("/login/code").await;
    two.get("/login/code").await;
    let code = one.code();
    let fields = [("code", code.as_str()), ("next", "/")];
    let (a, b) = tokio::join!(
        one.post("/login/code", &fields),
        two.post("/login/code", &fields)
    );
    let ok = [a.status, b.status].iter().filter(|s| **s == 303).count();
    assert_eq!(ok, 1, "{} {}", a.status, b.status);
}

async fn recovery_codes_work_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let codes = {
        let mut b = Browser::new(&app);
        b.sign_up("Acme", "Olivia", "olivia@example.com", PASSWORD)
            .await;
        b.enrol_totp().await
    };
    let mut b = Browser::new(&app);
    b.sign_in("olivia@example.com", PASSWORD).await;
    let page = b
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &codes[3].to_uppercase()), ("next", "/")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mut again = Browser::new(&app);
    again.sign_in("olivia@example.com", PASSWORD).await;
    let page = again
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &codes[3]), ("next", "/")],
        )
        .await;
    assert_eq!(page.status, 401);
    let events = app.ctx.store.audit_page(None, None, 50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "user.recovery_code_used" && e.detail.contains("\"left\":9"))
    );
}

async fn failures_slow_down_but_never_lock_out_for_good(backend: Backend) {
    let app = TestApp::start(backend).await;
    owner(&app, "olivia@example.com").await;
    let mut attacker = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(
            attacker
                .sign_in("olivia@example.com", "guess guess guess")
                .await
                .status,
            401
        );
    }
    // The sixth try waits, even with the right password...
    let page = attacker.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 429);
    assert!(page.contains("try again in"));
    // ...and the waits double, up to 15 minutes.
    let mut failures = 5;
    while failures < 20 {
        app.advance(901);
        assert_eq!(
            attacker
                .sign_in("olivia@example.com", "guess guess guess")
                .await
                .status,
            401
        );
        failures += 1;
    }
    assert_eq!(
        attacker
            .sign_in("olivia@example.com", PASSWORD)
            .await
            .status,
        429
    );
    app.advance(899);
    assert_eq!(
        attacker
            .sign_in("olivia@example.com", PASSWORD)
            .await
            .status,
        429
    );
    // Never longer than 15 minutes: the real user gets in.
    app.advance(2);
    let page = attacker.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

async fn password_rules_follow_asvs(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = Browser::new(&app);
    let cases = [
        ("short", false),
        ("password123", false),
        ("ann@example.com", false),
        ("eight ch", true),
    ];
    for (i, (password, ok)) in cases.iter().enumerate() {
        let email = if *password == "ann@example.com" {
            "ann@example.com".to_owned()
        } else {
            format!("user{i}@example.com")
        };
        let page = b.sign_up("Acme", "Ann", &email, password).await;
        assert_eq!(page.status == 303, *ok, "{password}: {}", page.status);
        b = Browser::new(&app);
    }
    let long = "ü".repeat(64);
    assert_eq!(
        b.sign_up("Acme", "Ann", "long@example.com", &long)
            .await
            .status,
        303,
        "64 characters are allowed"
    );
    let mut b = Browser::new(&app);
    let too_long = "x".repeat(129);
    assert_eq!(
        b.sign_up("Acme", "Ann", "toolong@example.com", &too_long)
            .await
            .status,
        422
    );
}

async fn disabled_users_cannot_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    assert_eq!(b.get("/").await.status, 200);
    app.ctx
        .accounts
        .disable_user("test", "olivia@example.com")
        .await
        .unwrap();
    // The live session ended with the account...
    assert_eq!(b.get("/").await.status, 303);
    // ...and signing in fails like a wrong password.
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("olivia@example.com", PASSWORD).await.status,
        401
    );
}
