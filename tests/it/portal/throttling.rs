//! Throttles that hold: the account's second-factor budget across addresses, attempts counted
//! before they are checked (under real concurrency), and the cap on password hashing.

use futures_util::future::join_all;

use super::{PASSWORD, owner};
use crate::backend_tests;
use crate::support::portal::{Browser, Page};
use crate::support::{Backend, TestApp};

backend_tests!(
    second_factor_guesses_are_limited_per_account_across_addresses,
    the_budget_covers_recovery_codes_step_up_and_the_current_password,
    concurrent_wrong_passwords_and_codes_are_counted_before_they_are_checked,
    password_hashing_is_capped_and_a_full_queue_answers_503,
    sign_up_is_throttled_before_the_password_is_hashed,
);

const BUDGET_MAIL: &str = "Wrong codes were entered for your pairgate account";

/// A six-digit code that is none of the codes accepted right now (this step and both neighbours).
fn wrong_code(b: &Browser<'_>) -> String {
    let accepted = [b.code_at(-1), b.code(), b.code_at(1)];
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !accepted.contains(c))
        .unwrap()
}

async fn mails_to(app: &TestApp, email: &str, subject: &str) -> usize {
    app.ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 500))
        .await
        .unwrap()
        .iter()
        .filter(|m| m.recipient == email && m.subject == subject)
        .count()
}

async fn audited(app: &TestApp, action: &str) -> usize {
    app.ctx
        .store
        .audit_page(None, None, 500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

/// Signs in with the (stolen) password, then submits `code` on the code page.
async fn guess(b: &mut Browser<'_>, code: &str) -> Page {
    let page = b.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 303, "the password is right: {}", page.body);
    b.submit(
        "/login/code",
        "/login/code",
        &[("code", code), ("next", "/")],
    )
    .await
}

async fn second_factor_guesses_are_limited_per_account_across_addresses(backend: Backend) {
    let app = TestApp::start(backend).await;
    let olivia = owner(&app, "olivia@example.com").await;
    let wrong = wrong_code(&olivia);
    // Someone with the password guesses codes from three addresses, signing in again before
    // every guess (a right password starts each address's own count over).
    let mut attackers: Vec<Browser<'_>> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| Browser::from_address(&app, ip))
        .collect();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        for a in &mut attackers {
            statuses.push(guess(a, &wrong).await.status);
        }
    }
    // The account's budget (10) is shared by every address: the rest wait, unchecked.
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    // Each refusal is counted under the budget, not the per-address limits it also counts in.
    assert_eq!(app.throttled("second_factor_budget").await, Some(20.0));
    assert_eq!(app.throttled("sign_in_account").await, Some(0.0));
    assert_eq!(app.throttled("sign_in_address").await, Some(0.0));
    assert_eq!(
        audited(&app, "user.sign_in_failed").await,
        10,
        "only checked codes count"
    );
    // The owner is told, once.
    assert_eq!(mails_to(&app, "olivia@example.com", BUDGET_MAIL).await, 1);
    assert_eq!(audited(&app, "user.second_factor_throttled").await, 1);

    // The waits double: 1 s, then 2 s...
    app.advance(1);
    assert_eq!(guess(&mut attackers[0], &wrong).await.status, 401);
    assert_eq!(guess(&mut attackers[1], &wrong).await.status, 429);
    app.advance(1);
    assert_eq!(guess(&mut attackers[2], &wrong).await.status, 429);
    app.advance(1);
    assert_eq!(guess(&mut attackers[0], &wrong).await.status, 401);
    // ...and never pass 15 minutes, however long the attack goes on.
    for i in 0..12 {
        app.advance(901);
        assert_eq!(guess(&mut attackers[i % 3], &wrong).await.status, 401);
    }
    let page = guess(&mut attackers[1], &wrong).await;
    assert_eq!(page.status, 429);
    assert!(page.contains("try again in 900 seconds"), "{}", page.body);
    assert_eq!(
        mails_to(&app, "olivia@example.com", BUDGET_MAIL).await,
        1,
        "one mail per run of failures"
    );

    // After the wait the real user's right code gets in, and refills the budget.
    app.advance(900);
    let mut real = Browser::new(&app);
    real.totp_secret = olivia.totp_secret.clone();
    let code = real.code();
    let page = guess(&mut real, &code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(guess(&mut attackers[2], &wrong).await.status, 401);
}

async fn the_budget_covers_recovery_codes_step_up_and_the_current_password(backend: Backend) {
    // Only the account's budget counts here: the per-address allowance is out of the way.
    let app = TestApp::builder(backend)
        .config("[portal]\nlogin_free_failures = 100")
        .start()
        .await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let wrong = wrong_code(&olivia);
    for _ in 0..4 {
        let page = olivia
            .submit("/step-up", "/step-up", &[("code", &wrong), ("next", "/")])
            .await;
        assert_eq!(page.status, 401);
    }
    for _ in 0..3 {
        let page = olivia
            .submit(
                "/account",
                "/account/password",
                &[
                    ("current", "not my password"),
                    ("new", "a brand new passphrase"),
                ],
            )
            .await;
        assert_eq!(page.status, 422, "{}", page.body);
    }
    let mut other = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(guess(&mut other, "abcd-efgh-jkmn").await.status, 401);
    }
    assert_eq!(mails_to(&app, "olivia@example.com", BUDGET_MAIL).await, 1);
    // Spent: even right answers wait now, on every path. (The next step's code is accepted
    // and not used yet.)
    let code = olivia.code_at(1);
    for (form, action, fields) in [
        (
            "/step-up",
            "/step-up",
            vec![("code", code.as_str()), ("next", "/")],
        ),
        (
            "/account",
            "/account/password",
            vec![("current", PASSWORD), ("new", "a brand new passphrase")],
        ),
    ] {
        let page = olivia.submit(form, action, &fields).await;
        assert_eq!(page.status, 429, "{action}: {}", page.body);
    }
    let page = other
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &code), ("next", "/")],
        )
        .await;
    assert_eq!(page.status, 429);
    // A right password does not refill it; a right second factor does.
    app.advance(1);
    let page = olivia
        .submit(
            "/account",
            "/account/password",
            &[("current", PASSWORD), ("new", "a brand new passphrase")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = olivia
        .submit("/step-up", "/step-up", &[("code", &wrong), ("next", "/")])
        .await;
    assert_eq!(page.status, 429, "still spent after the right password");
    app.advance(2);
    let page = olivia
        .submit("/step-up", "/step-up", &[("code", &code), ("next", "/")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = olivia
        .submit("/step-up", "/step-up", &[("code", &wrong), ("next", "/")])
        .await;
    assert_eq!(page.status, 401, "refilled");
    assert_eq!(app.throttled("second_factor_budget").await, Some(4.0));
}

async fn concurrent_wrong_passwords_and_codes_are_counted_before_they_are_checked(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let olivia = owner(&app, "olivia@example.com").await;
    let failed_before = audited(&app, "user.sign_in_failed").await;

    // 40 wrong passwords for one account from one address, all at once: no more than the
    // allowance (5) are checked.
    let mut browsers: Vec<Browser<'_>> = (0..40).map(|_| Browser::new(&app)).collect();
    for b in &mut browsers {
        b.get("/login").await;
    }
    let fields = [
        ("email", "olivia@example.com"),
        ("password", "guess guess guess"),
        ("next", "/"),
    ];
    let statuses =
        status_codes(join_all(browsers.iter_mut().map(|b| b.post("/login", &fields))).await);
    assert_eq!(count(&statuses, 401), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 35, "{statuses:?}");
    assert_eq!(app.throttled("sign_in_account").await, Some(35.0));
    assert_eq!(app.throttled("sign_in_address").await, Some(0.0));
    assert_eq!(
        audited(&app, "user.sign_in_failed").await - failed_before,
        5
    );

    // 40 wrong passwords for 40 unknown accounts from another address: the address's
    // allowance (20) holds.
    let mut browsers: Vec<Browser<'_>> = (0..40)
        .map(|_| Browser::from_address(&app, "127.0.0.2"))
        .collect();
    for b in &mut browsers {
        b.get("/login").await;
    }
    let emails: Vec<String> = (0..40).map(|i| format!("nobody{i}@example.com")).collect();
    let forms: Vec<[(&str, &str); 3]> = emails
        .iter()
        .map(|email| {
            [
                ("email", email.as_str()),
                ("password", "guess guess guess"),
                ("next", "/"),
            ]
        })
        .collect();
    let statuses = status_codes(
        join_all(
            browsers
                .iter_mut()
                .zip(&forms)
                .map(|(b, form)| b.post("/login", form)),
        )
        .await,
    );
    assert_eq!(count(&statuses, 401), 20, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 20, "{statuses:?}");
    assert_eq!(app.throttled("sign_in_address").await, Some(20.0));
    assert_eq!(app.throttled("sign_in_account").await, Some(35.0));

    // 30 wrong codes from three addresses at once, each from a session past the password:
    // the account's budget (10) holds.
    let wrong = wrong_code(&olivia);
    let mut browsers: Vec<Browser<'_>> = (0..30)
        .map(|i| Browser::from_address(&app, &format!("127.0.0.{}", 3 + i % 3)))
        .collect();
    for b in &mut browsers {
        assert_eq!(b.sign_in("olivia@example.com", PASSWORD).await.status, 303);
        b.get("/login/code").await;
    }
    let fields = [("code", wrong.as_str()), ("next", "/")];
    let statuses =
        status_codes(join_all(browsers.iter_mut().map(|b| b.post("/login/code", &fields))).await);
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 20, "{statuses:?}");
    assert_eq!(mails_to(&app, "olivia@example.com", BUDGET_MAIL).await, 1);
}

fn status_codes(pages: Vec<Page>) -> Vec<u16> {
    pages.iter().map(|p| p.status).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn password_hashing_is_capped_and_a_full_queue_answers_503(backend: Backend) {
    let app = TestApp::builder(backend)
        .config(
            "[portal]\npassword_hash_concurrency = 1\npassword_hash_queue = 1\n\
             login_free_failures_per_ip = 1000",
        )
        .start()
        .await;
    let before = app.ctx.accounts.password_hashing();
    // 30 sign-ins at once, each for another (unknown) account: one hash runs, one waits, and
    // the rest are turned away at once instead of piling up 19 MiB each.
    let mut browsers: Vec<Browser<'_>> = (0..30).map(|_| Browser::new(&app)).collect();
    let mut tokens = Vec::new();
    for b in &mut browsers {
        let page = b.get("/login").await;
        tokens.push(crate::support::portal::extract(&page.body, "name=\"csrf\" value=\"").unwrap());
    }
    let app = &app;
    let answers = join_all(
        browsers
            .iter()
            .zip(&tokens)
            .enumerate()
            .map(|(i, (b, csrf))| {
                let email = format!("nobody{i}@example.com");
                async move {
                    b.client
                        .post(app.url("/login"))
                        .header("Origin", &app.base)
                        .form(&[
                            ("email", email.as_str()),
                            ("password", "guess guess guess"),
                            ("csrf", csrf.as_str()),
                        ])
                        .send()
                        .await
                        .unwrap()
                }
            }),
    )
    .await;
    let mut checked = 0u64;
    let mut busy = 0u32;
    for res in &answers {
        match res.status().as_u16() {
            401 => checked += 1,
            503 => {
                busy += 1;
                assert!(res.headers().contains_key("retry-after"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "a full queue turns requests away ({checked} checked)"
    );
    assert_eq!(
        app.throttled("password_hash_queue").await,
        Some(f64::from(busy))
    );
    let after = app.ctx.accounts.password_hashing();
    assert_eq!(after.peak_running, 1, "never more than the cap at once");
    assert_eq!(
        after.completed - before.completed,
        checked,
        "refused requests hashed nothing"
    );
    assert_eq!(
        audited(app, "user.sign_in_failed").await as u64,
        checked,
        "and were not counted as failures"
    );
}

async fn sign_up_is_throttled_before_the_password_is_hashed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let before = app.ctx.accounts.password_hashing().completed;
    // 15 sign-ups from one address at once; 10 an hour are allowed.
    let mut browsers: Vec<Browser<'_>> = (0..15).map(|_| Browser::new(&app)).collect();
    for b in &mut browsers {
        b.get("/signup").await;
    }
    let emails: Vec<String> = (0..15).map(|i| format!("owner{i}@example.com")).collect();
    let forms: Vec<[(&str, &str); 4]> = emails
        .iter()
        .map(|email| {
            [
                ("company", "Acme"),
                ("name", "Ann"),
                ("email", email.as_str()),
                ("password", PASSWORD),
            ]
        })
        .collect();
    let statuses = status_codes(
        join_all(
            browsers
                .iter_mut()
                .zip(&forms)
                .map(|(b, form)| b.post("/signup", form)),
        )
        .await,
    );
    assert_eq!(count(&statuses, 303), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 5, "{statuses:?}");
    assert_eq!(app.throttled("sign_up").await, Some(5.0));
    assert_eq!(
        app.ctx.accounts.password_hashing().completed - before,
        10,
        "the refused sign-ups hashed nothing"
    );
}
