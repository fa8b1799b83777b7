//! The account page (name, second-factor state, sessions and "sign out the others"), enrolment on
//! a phone (the `otpauth://` link, the grouped key), recovery codes (letters accepted, how many
//! are left, new ones after a step-up), setting up a new phone, second-factor resets by role,
//! and staff who must enrol.

use pairgate::accounts::{NewUser, Role};
use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};

use super::security::member_id;
use super::{PASSWORD, invited, owner};
use crate::backend_tests;
use crate::support::portal::{Browser, Page, extract};
use crate::support::{Backend, TestApp};

backend_tests!(
    enrolment_offers_a_link_and_a_grouped_key,
    the_account_page_shows_and_saves_the_name,
    sessions_are_listed_and_the_others_signed_out,
    recovery_codes_count_down_and_are_replaced_after_a_step_up,
    second_factor_resets_follow_the_roles,
    staff_without_totp_are_sent_to_enrolment_first,
    a_new_phone_is_set_up_after_a_step_up,
);

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// A browser that says it is Firefox on Linux.
fn firefox(app: &TestApp) -> Browser<'_> {
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(FIREFOX));
    Browser::with_headers(app, headers)
}

/// Signs `b` in as `email` with a code from `secret` (a fresh step, so it was not used).
async fn sign_in_with_code(app: &TestApp, b: &mut Browser<'_>, email: &str) -> Page {
    let page = b.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    app.advance(30);
    let code = b.code();
    b.submit(
        "/login/code",
        "/login/code",
        &[("code", &code), ("next", "/")],
    )
    .await
}

/// Signs `b` in as `email` with a recovery code.
async fn sign_in_with_recovery(b: &mut Browser<'_>, email: &str, code: &str) -> Page {
    b.sign_in(email, PASSWORD).await;
    b.submit(
        "/login/code",
        "/login/code",
        &[("code", code), ("next", "/")],
    )
    .await
}

async fn events(app: &TestApp) -> Vec<(String, String, String)> {
    app.ctx
        .store
        .audit_page(None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.subject, e.detail))
        .collect()
}

async fn enrolment_offers_a_link_and_a_grouped_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = Browser::new(&app);
    b.sign_up("Acme Water", "Olivia Owner", "olivia@example.com", PASSWORD)
        .await;
    let page = b.get("/account/totp").await;
    assert_eq!(page.status, 200);
    let key = extract(&page.body, "<p class=\"secret\" id=\"secret\">").unwrap();
    // Eight groups of four: the 160-bit key in base32.
    let groups: Vec<&str> = key.split(' ').collect();
    assert_eq!(groups.len(), 8, "{key}");
    assert!(groups.iter().all(|g| g.len() == 4), "{key}");
    let link = extract(&page.body, "id=\"otpauth\" href=\"").unwrap();
    let link = link.replace("&amp;", "&").replace("&#x2f;", "/");
    assert!(link.starts_with("otpauth://totp/"), "{link}");
    assert!(
        link.contains(&format!("secret={}", key.replace(' ', ""))),
        "the link holds the key shown: {link}"
    );
    // The same key is the one the codes come from.
    b.enrol_totp().await;
    assert!(
        b.get("/account")
            .await
            .contains("10 of 10 recovery codes left")
    );
}

async fn the_account_page_shows_and_saves_the_name(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    let page = b.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.contains("value=\"Olivia Owner\""), "{}", page.body);
    assert!(page.contains("olivia@example.com"));
    assert!(page.contains("10 of 10 recovery codes left"));
    assert!(
        !page.contains("class=\"warning\""),
        "no warning with 10 codes"
    );
    let page = b
        .post("/account/name", &[("name", "  Olivia O. Owner ")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/account?done=name"));
    let page = b.get("/account?done=name").await;
    assert!(page.contains("Your name has been saved."), "{}", page.body);
    assert!(page.contains("value=\"Olivia O. Owner\""));
    assert!(b.get("/").await.contains("Signed in as Olivia O. Owner"));
    // An empty name is refused and said so; the name stays.
    let page = b.post("/account/name", &[("name", "   ")]).await;
    assert_eq!(page.status, 422);
    assert!(page.contains("the name must be 1–100 characters"));
    assert!(page.contains("value=\"Olivia O. Owner\""));
    let id = member_id(&app, "olivia@example.com").await;
    assert!(
        events(&app)
            .await
            .iter()
            .any(|(a, s, d)| a == "user.renamed"
                && *s == format!("user:{id}")
                && d.contains("Olivia O. Owner"))
    );
}

async fn sessions_are_listed_and_the_others_signed_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut desk = owner(&app, "olivia@example.com").await;
    let mut laptop = firefox(&app);
    laptop.totp_secret = desk.totp_secret.clone();
    let page = sign_in_with_code(&app, &mut laptop, "olivia@example.com").await;
    assert_eq!(page.status, 303, "{}", page.body);
    // The laptop's browser is kept through the rotation at its second factor.
    let page = laptop.get("/account").await;
    assert!(page.contains("Firefox on Linux"), "{}", page.body);
    let page = desk.get("/account").await;
    let listed = page.body.matches("Last seen").count();
    assert_eq!(listed, 2, "{}", page.body);
    assert_eq!(page.body.matches("this session").count(), 1);
    assert!(page.contains("Firefox on Linux"));
    assert!(page.contains("Sign out the others"));
    let page = desk.post("/account/sign-out-others", &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let back = page.location.unwrap();
    assert_eq!(back, "/account?done=others&count=1");
    let page = desk.get(&back).await;
    assert!(
        page.contains("Signed out 1 other session."),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("Last seen").count(), 1);
    assert!(!page.contains("Firefox on Linux"));
    assert!(!page.contains("Sign out the others"));
    assert!(page.contains("You are signed in nowhere else."));
    // The laptop is signed out; the desk is not.
    let page = laptop.get("/devices").await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/login"));
    assert_eq!(desk.get("/devices").await.status, 200);
    assert!(
        events(&app)
            .await
            .iter()
            .any(|(a, _, d)| a == "user.signed_out"
                && d.contains("\"others\":true")
                && d.contains("\"sessions\":1"))
    );
    let page = desk.get("/audit").await;
    assert!(
        page.contains("Olivia Owner signed out their other sessions (1)"),
        "{}",
        page.body
    );
}

async fn recovery_codes_count_down_and_are_replaced_after_a_step_up(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (codes, secret) = {
        let mut b = Browser::new(&app);
        b.sign_up("Acme", "Olivia", "olivia@example.com", PASSWORD)
            .await;
        (b.enrol_totp().await, b.totp_secret.clone())
    };
    let email = "olivia@example.com";
    // The code page takes letters: no numeric keyboard, no capitals forced.
    let mut b = Browser::new(&app);
    b.sign_in(email, PASSWORD).await;
    let page = b.get("/login/code").await;
    let field = &page.body[page.body.find("<input id=\"code\"").unwrap()..];
    let field = &field[..field.find('>').unwrap()];
    assert!(!field.contains("inputmode=\"numeric\""), "{field}");
    assert!(field.contains("autocapitalize=\"off\""), "{field}");
    // Seven codes spent: three left, and the page warns.
    for code in &codes[..7] {
        let mut b = Browser::new(&app);
        let page = sign_in_with_recovery(&mut b, email, code).await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
    let mut b = Browser::new(&app);
    let page = sign_in_with_recovery(&mut b, email, &codes[7].to_uppercase()).await;
    assert_eq!(page.status, 303, "capitals work too: {}", page.body);
    let page = b.get("/account").await;
    assert!(
        page.contains("2 of 10 recovery codes left"),
        "{}",
        page.body
    );
    assert!(
        page.contains("Only 2 recovery codes are left."),
        "{}",
        page.body
    );
    // Without a fresh step-up, new codes are refused and the old ones still work.
    app.advance(301);
    let asked = b.post("/account/recovery-codes", &[]).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert!(
        asked.contains("Confirm with your code to make new recovery codes"),
        "{}",
        asked.body
    );
    let page = b.get("/account").await;
    assert!(
        page.contains("2 of 10 recovery codes left"),
        "{}",
        page.body
    );
    // Confirmed with a fresh code: new codes, shown once.
    b.totp_secret = secret;
    let code = b.code();
    let page = b.confirm_pending(&asked, &code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("Your old recovery codes no longer work."));
    let fresh: Vec<String> = page
        .body
        .split("<code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next().map(str::to_owned))
        .collect();
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    assert!(
        b.get("/account")
            .await
            .contains("10 of 10 recovery codes left")
    );
    // An old, unused code no longer works; a new one does.
    let mut old = Browser::new(&app);
    assert_eq!(
        sign_in_with_recovery(&mut old, email, &codes[9])
            .await
            .status,
        401
    );
    let mut new = Browser::new(&app);
    assert_eq!(
        sign_in_with_recovery(&mut new, email, &fresh[0])
            .await
            .status,
        303
    );
    assert!(
        events(&app)
            .await
            .iter()
            .any(|(a, _, _)| a == "user.recovery_codes_regenerated")
    );
}

async fn second_factor_resets_follow_the_roles(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let mut oscar = invited(&app, &mut olivia, "oscar@example.com", "owner").await;
    let mut alice = invited(&app, &mut olivia, "alice@example.com", "admin").await;
    invited(&app, &mut olivia, "victor@example.com", "viewer").await;
    let (oscar_id, alice_id, victor_id) = (
        member_id(&app, "oscar@example.com").await,
        member_id(&app, "alice@example.com").await,
        member_id(&app, "victor@example.com").await,
    );
    // Alice (an admin, stepped up at enrolment) is offered a reset for the viewer only.
    let page = alice.get("/users").await;
    assert!(page.contains(&format!("/users/{victor_id}/totp-reset")));
    assert!(
        !page.contains(&format!("/users/{oscar_id}/totp-reset")),
        "not an owner's"
    );
    assert!(
        !page.contains(&format!("/users/{alice_id}/totp-reset")),
        "not her own"
    );
    assert!(page.contains("For a lost phone"));
    // Posting anyway is refused: an owner's, or her own.
    for id in [oscar_id, alice_id] {
        let page = alice.post(&format!("/users/{id}/totp-reset"), &[]).await;
        assert_eq!(page.status, 403, "{id}: {}", page.body);
        alice.get("/users").await;
    }
    assert!(enrolled(&app, "oscar@example.com").await);
    assert!(enrolled(&app, "alice@example.com").await);
    // Olivia (an owner) resets Oscar's; he is signed out, and it is in the log.
    let page = olivia.get("/users").await;
    assert!(page.contains(&format!("/users/{oscar_id}/totp-reset")));
    let page = olivia
        .post(&format!("/users/{oscar_id}/totp-reset"), &[])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.contains("Two-factor authentication has been reset"));
    assert!(!enrolled(&app, "oscar@example.com").await);
    assert_eq!(oscar.get("/devices").await.status, 303);
    assert!(
        events(&app)
            .await
            .iter()
            .any(|(a, s, _)| a == "user.totp_reset" && *s == format!("user:{oscar_id}"))
    );
}

async fn enrolled(app: &TestApp, email: &str) -> bool {
    let email = email.to_owned();
    app.ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .totp_enabled
}

async fn staff_without_totp_are_sent_to_enrolment_first(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.ctx
        .accounts
        .create_user(
            "test",
            NewUser {
                tenant_id: None,
                email: "support@maker.example".into(),
                name: "Sam Support".into(),
                role: Role::Staff,
                password: PASSWORD.into(),
                totp: false,
            },
        )
        .await
        .unwrap();
    let mut sam = Browser::new(&app);
    let page = sam.sign_in("support@maker.example", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    // Every staff page and the account pages send Sam to enrolment first.
    for path in [
        "/staff",
        "/staff/tenants",
        "/staff/devices?serial=SN-1",
        "/audit",
        "/account",
    ] {
        let page = sam.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(page.location.as_deref(), Some("/account/totp"), "{path}");
    }
    // So does every staff action, before it is read.
    let page = sam.get("/account/totp").await;
    assert_eq!(page.status, 200);
    assert!(
        page.contains(
            "Manufacturer staff must set up two-factor authentication before the staff console \
             does anything."
        ),
        "{}",
        page.body
    );
    for action in ["/staff/disputes/1/resolve", "/staff/tenants/1/customer"] {
        let page = sam.post(action, &[("customer_number", "C-1")]).await;
        assert_eq!(page.status, 303, "{action}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/account/totp"), "{action}");
    }
    // Enrolled, the console opens.
    sam.enrol_totp().await;
    let page = sam.get("/staff").await;
    assert_eq!(page.status, 200, "{}", page.body);
}

async fn a_new_phone_is_set_up_after_a_step_up(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let old_secret = olivia.totp_secret.clone();
    let page = olivia.get("/account").await;
    assert!(page.contains("Set up on a new phone"));
    // Without a fresh step-up: refused, nothing forgotten.
    app.advance(301);
    let asked = olivia.post("/account/totp/restart", &[]).await;
    assert_eq!(asked.status, 401, "{}", asked.body);
    assert!(
        asked.contains("Confirm with your code to set up your second factor on a new phone"),
        "{}",
        asked.body
    );
    assert!(enrolled(&app, "olivia@example.com").await);
    // Confirmed: the old key goes, and enrolment says why it is shown.
    let code = olivia.code();
    let page = olivia.confirm_pending(&asked, &code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/account/totp?done=restarted")
    );
    assert!(!enrolled(&app, "olivia@example.com").await);
    let page = olivia.get("/account/totp?done=restarted").await;
    assert!(
        page.contains("Your old authenticator app and recovery codes no longer work"),
        "{}",
        page.body
    );
    app.advance(30);
    let codes = olivia.enrol_totp().await;
    assert_eq!(codes.len(), 10);
    assert_ne!(olivia.totp_secret, old_secret, "a new key");
    assert!(
        olivia
            .get("/account")
            .await
            .contains("10 of 10 recovery codes left")
    );
    let id = member_id(&app, "olivia@example.com").await;
    assert!(
        events(&app)
            .await
            .iter()
            .any(|(a, s, d)| a == "user.totp_reset"
                && *s == format!("user:{id}")
                && d.contains("\"own\":true"))
    );
    let page = olivia.get("/audit").await;
    assert!(
        page.contains("Olivia Owner reset their own two-factor authentication to set it up again"),
        "{}",
        page.body
    );
}
