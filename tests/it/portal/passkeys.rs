//! Passkeys through the pages, as a browser's script sends them: added on the account page, the
//! second step of a sign-in, a step-up of a pending action, approval of a pairing, the owners'
//! "passkey only" approvals refusing codes, and removal with a step-up. A software passkey
//! answers the options each page carries (Chromium's own authenticator is `browser_passkeys.rs`).

use serde_json::Value;

use super::{PASSWORD, invited};
use crate::backend_tests;
use crate::pairing::{company, confirm, poll_result, requesting, sell, shown};
use crate::support::portal::{Browser, Page, extract};
use crate::support::soft_passkey::SoftPasskey;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_passkey_added_on_the_account_page_signs_in_and_steps_up,
    a_pairing_is_approved_with_a_passkey_and_the_policy_refuses_codes,
    removing_a_passkey_needs_a_step_up,
    a_passkey_signs_in_alone_once_its_owner_allows_it,
    a_second_factor_reset_removes_the_passkeys_too,
);

const EMAIL: &str = "olivia@acme.example";

/// Undoes askama's escaping of an attribute value.
fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// The ceremony a page offers: its handle and webauthn-rs's options.
fn offer(page: &Page) -> (String, Value) {
    let options = extract(&page.body, "data-passkey=\"")
        .unwrap_or_else(|| panic!("a passkey offer: {}", page.body));
    let handle = extract(&page.body, "passkey_handle\" value=\"").unwrap();
    (handle, serde_json::from_str(&unescape(&options)).unwrap())
}

/// Adds `key` as `name` from the account page; returns the answer to the finish.
async fn add_passkey(b: &mut Browser<'_>, key: &mut SoftPasskey, name: &str) -> Page {
    let page = b
        .submit("/account", "/account/passkeys", &[("name", name)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("Create the passkey"), "{}", page.body);
    let (handle, options) = offer(&page);
    let answer = key.register(&options).to_string();
    b.post(
        "/account/passkeys/finish",
        &[("passkey_handle", &handle), ("passkey_answer", &answer)],
    )
    .await
}

/// Answers a page's passkey offer, sending `fields` with the answer to `action`.
async fn answer(
    b: &mut Browser<'_>,
    key: &mut SoftPasskey,
    page: &Page,
    action: &str,
    fields: &[(&str, &str)],
) -> Page {
    let (handle, options) = offer(page);
    let answer = key.assert(&options).to_string();
    let prefix = if page.contains("name=\"step_up_passkey_handle\"") {
        "step_up_passkey"
    } else {
        "passkey"
    };
    let (handle_field, answer_field) = (format!("{prefix}_handle"), format!("{prefix}_answer"));
    let mut all = fields.to_vec();
    all.extend([(&*handle_field, &*handle), (&*answer_field, &*answer)]);
    b.post(action, &all).await
}

/// Answers a pending action's step-up page with the passkey.
async fn confirm_pending_with(b: &mut Browser<'_>, key: &mut SoftPasskey, page: &Page) -> Page {
    let action = extract(&page.body, "<form method=\"post\" id=\"step-up\" action=\"")
        .unwrap_or_else(|| panic!("a step-up page: {}", page.body));
    let pending = extract(&page.body, "name=\"pending\" value=\"").unwrap();
    answer(b, key, page, &action, &[("pending", &pending)]).await
}

async fn actions(app: &TestApp) -> Vec<(String, String)> {
    app.ctx
        .store
        .audit_page(None, None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.detail))
        .collect()
}

async fn a_passkey_added_on_the_account_page_signs_in_and_steps_up(backend: Backend) {
    let app = TestApp::builder(backend).on_localhost().start().await;
    let mut b = super::owner(&app, EMAIL).await;
    let page = b.get("/account").await;
    assert!(
        page.contains("You have no passkeys yet") && !page.contains("<script>"),
        "a page that offers no ceremony carries no script: {}",
        page.body
    );
    let mut key = SoftPasskey::new(&app.base);
    let page = add_passkey(&mut b, &mut key, "Work phone").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = b.get("/account?done=passkey-added").await;
    for shown in ["Work phone", "Not used yet", "Your passkey has been added"] {
        assert!(page.contains(shown), "{shown:?}: {}", page.body);
    }

    // Signing in again: the password, then the passkey instead of a code.
    b.post("/logout", &[]).await;
    let page = b.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/login/code?next=%2F"));
    let page = b.get("/login/code?next=%2F").await;
    assert!(
        page.contains("Use a passkey") && page.contains("<script>") && page.contains("id=\"code\""),
        "the passkey first, the code as the alternative: {}",
        page.body
    );
    let page = answer(&mut b, &mut key, &page, "/login/code", &[("next", "/")]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/"));
    assert_eq!(b.get("/").await.status, 200);
    assert!(b.get("/account").await.contains("Last used"));

    // A sensitive action after the step-up expired waits for the passkey, then goes ahead.
    app.advance(600);
    b.get("/account").await;
    let page = b.post("/account/recovery-codes", &[]).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.contains("Confirm with a passkey") && page.contains("make new recovery codes"),
        "{}",
        page.body
    );
    let page = confirm_pending_with(&mut b, &mut key, &page).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("recovery codes"), "{}", page.body);

    // A replayed answer (its ceremony is spent) is refused beside the form.
    app.advance(600);
    b.get("/account").await;
    let pending = b.post("/account/recovery-codes", &[]).await;
    let (handle, options) = offer(&pending);
    let replayed = key.assert(&options).to_string();
    let first = confirm_pending_with(&mut b, &mut key, &pending).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = b
        .post(
            "/account/recovery-codes",
            &[
                ("step_up_passkey_handle", &handle),
                ("step_up_passkey_answer", &replayed),
            ],
        )
        .await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.contains("expired"), "{}", again.body);

    let log = actions(&app).await;
    let count = |a: &str| log.iter().filter(|(x, _)| x == a).count();
    assert_eq!(count("user.passkey_registered"), 1, "{log:?}");
    assert_eq!(count("user.passkey_used"), 3, "{log:?}");
    assert!(
        log.iter()
            .any(|(a, d)| a == "user.signed_in" && d.contains("\"second_factor\":\"passkey\"")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|(a, d)| a == "user.stepped_up" && d.contains("passkey")),
        "{log:?}"
    );
}

async fn a_pairing_is_approved_with_a_passkey_and_the_policy_refuses_codes(backend: Backend) {
    let app = TestApp::builder(backend).on_localhost().start().await;
    let mut acme = company(&app, EMAIL, Some("C-100")).await;
    let mut ada = invited(&app, &mut acme.owner, "ada@acme.example", "admin").await;
    let mut key = SoftPasskey::new(&app.base);
    assert_eq!(
        add_passkey(&mut acme.owner, &mut key, "Laptop")
            .await
            .status,
        303
    );
    let (device, device_code, user_code) = requesting(&app, "SN-7001").await;
    sell(&app, "SN-7001", "C-100", false, None).await;

    let page = confirm(&mut acme.owner, &user_code).await;
    assert!(
        page.contains("Approve with a passkey") && page.contains("id=\"totp\""),
        "the passkey first, the code as the alternative: {}",
        page.body
    );

    // The owner turns on "passkey only" (still stepped up from setting up the passkey).
    acme.owner.get("/account").await;
    let page = acme
        .owner
        .post("/account/require-passkey-approval", &[("required", "yes")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        acme.owner
            .get("/account")
            .await
            .contains("checked> Approve devices")
    );

    // A member without a passkey is told why, and where to add one; a code is refused.
    let page = confirm(&mut ada, &user_code).await;
    assert!(
        page.contains("approves devices with a passkey only")
            && page.contains("href=\"/account#passkeys\"")
            && !page.contains("id=\"totp\""),
        "{}",
        page.body
    );
    let proof = shown(&page);
    app.advance(30);
    let code = ada.code();
    let page = ada
        .post(
            "/device/decide",
            &[
                ("user_code", &user_code),
                ("shown", &proof),
                ("totp", &code),
                ("action", "approve"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.contains("a passkey cannot"), "{}", page.body);

    // The owner approves with the passkey.
    let page = confirm(&mut acme.owner, &user_code).await;
    assert!(!page.contains("id=\"totp\""), "{}", page.body);
    let proof = shown(&page);
    let fields = [("user_code", &*user_code), ("shown", &*proof)];
    let page = answer(&mut acme.owner, &mut key, &page, "/device/decide", &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.contains("Device SN-7001 joins your account"),
        "{}",
        page.body
    );
    let (outcome, _) = poll_result(&app, &device, &device_code).await;
    assert_eq!(outcome, "ok");
}

async fn removing_a_passkey_needs_a_step_up(backend: Backend) {
    let app = TestApp::builder(backend).on_localhost().start().await;
    let mut b = super::owner(&app, EMAIL).await;
    let mut key = SoftPasskey::new(&app.base);
    assert_eq!(add_passkey(&mut b, &mut key, "Old key").await.status, 303);
    let page = b.get("/account").await;
    let action = extract(
        &page.body,
        "<form method=\"post\" action=\"/account/passkeys/",
    )
    .map(|rest| format!("/account/passkeys/{rest}"))
    .unwrap();
    assert!(action.ends_with("/remove"), "{action}");

    app.advance(600);
    b.get("/account").await;
    let page = b.post(&action, &[]).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.contains("remove a passkey"), "{}", page.body);
    app.advance(30);
    let code = b.code();
    let page = b.confirm_pending(&page, &code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = b.get("/account?done=passkey-removed").await;
    assert!(
        page.contains("You have no passkeys yet") && page.contains("has been removed"),
        "{}",
        page.body
    );

    // The next sign-in offers no passkey, only the code.
    b.post("/logout", &[]).await;
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/login/code?next=%2F").await;
    assert!(!page.contains("data-passkey=\""), "{}", page.body);
    let log = actions(&app).await;
    assert!(
        log.iter().any(|(a, _)| a == "user.passkey_removed"),
        "{log:?}"
    );
}

/// Starts a sign-in with a passkey alone from the sign-in page and answers it.
async fn sign_in_alone(b: &mut Browser<'_>, key: &mut SoftPasskey) -> Page {
    let login = b.get("/login").await;
    assert!(
        login.contains("action=\"/login/passkey\" data-passkey-available hidden"),
        "offered to browsers with WebAuthn, through the script: {}",
        login.body
    );
    let page = b.post("/login/passkey", &[("next", "/devices")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    answer(b, key, &page, "/login/passkey", &[("next", "/devices")]).await
}

async fn a_passkey_signs_in_alone_once_its_owner_allows_it(backend: Backend) {
    let app = TestApp::builder(backend).on_localhost().start().await;
    let mut b = super::owner(&app, EMAIL).await;
    let mut key = SoftPasskey::new(&app.base);
    assert_eq!(add_passkey(&mut b, &mut key, "Phone").await.status, 303);
    b.post("/logout", &[]).await;

    // Not allowed yet: refused, with what to do instead.
    let page = sign_in_alone(&mut b, &mut key).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.contains("do not sign you in on their own"),
        "{}",
        page.body
    );
    assert!(b.session_cookie().is_none(), "no session");

    // The owner allows it (the password and the passkey, then the setting).
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/login/code?next=%2F").await;
    answer(&mut b, &mut key, &page, "/login/code", &[("next", "/")]).await;
    let page = b
        .submit(
            "/account",
            "/account/passkey-sign-in",
            &[("allowed", "yes")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        b.get("/account")
            .await
            .contains("checked> Sign me in with a passkey alone")
    );
    b.post("/logout", &[]).await;

    let page = sign_in_alone(&mut b, &mut key).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/devices"));
    let page = b.get("/devices").await;
    assert_eq!(page.status, 200, "signed in: {}", page.body);

    // A passkey nobody registered signs nobody in.
    b.post("/logout", &[]).await;
    let mut stranger = SoftPasskey::new(&app.base);
    let page = sign_in_alone(&mut b, &mut stranger).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.contains("could not be verified"), "{}", page.body);
    let log = actions(&app).await;
    assert!(
        log.iter()
            .any(|(a, d)| a == "user.passkey_refused" && d.contains("not_allowed_alone")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|(a, d)| a == "user.passkey_sign_in_changed" && d.contains("true")),
        "{log:?}"
    );
}

async fn a_second_factor_reset_removes_the_passkeys_too(backend: Backend) {
    let app = TestApp::builder(backend).on_localhost().start().await;
    let mut owner = super::owner(&app, EMAIL).await;
    let mut ada = invited(&app, &mut owner, "ada@acme.example", "admin").await;
    let mut key = SoftPasskey::new(&app.base);
    assert_eq!(
        add_passkey(&mut ada, &mut key, "Ada's phone").await.status,
        303
    );
    let ada_id = super::security::member_id(&app, "ada@acme.example").await;
    let count = |app: &TestApp| {
        let store = app.ctx.store.clone();
        async move {
            store
                .read(move |tx| pairgate::store::passkeys::count_for_user(tx, ada_id))
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&app).await, 1);

    // With a passkey and no TOTP, she still has a second factor to reset.
    app.raw_sql("UPDATE users SET totp_enabled = FALSE WHERE email = 'ada@acme.example'")
        .await;
    let users = owner.get("/users").await;
    assert!(
        users.contains(&format!("/users/{ada_id}/totp-reset")) && !users.contains("no 2FA"),
        "{}",
        users.body
    );
    let page = owner
        .post(&format!("/users/{ada_id}/totp-reset"), &[])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(count(&app).await, 0, "her passkeys went with her codes");
    assert_eq!(ada.get("/devices").await.status, 303, "and her sessions");
    let log = actions(&app).await;
    assert!(
        log.iter()
            .any(|(a, d)| a == "user.totp_reset" && d.contains("\"passkeys\":1")),
        "{log:?}"
    );
}
