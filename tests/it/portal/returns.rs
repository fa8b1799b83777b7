//! Nothing typed is lost: an expired session keeps the page to return to and the code being
//! approved, says why it asks again, and lands back there after signing in; return targets stay
//! on the portal; refused invitation and group forms keep what was typed.

use super::{PASSWORD, owner};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

backend_tests!(
    an_expired_session_says_why_and_comes_back_to_the_code,
    a_form_sent_after_the_session_expired_comes_back_to_its_code,
    return_targets_stay_on_the_portal,
    refused_invitation_and_group_forms_keep_what_was_typed,
);

/// Signs in with password and code, asking to come back to `next`; the final redirect.
async fn sign_in_to(b: &mut Browser<'_>, login: &str, next: &str) -> String {
    let page = b
        .submit(
            login,
            "/login",
            &[
                ("email", "olivia@example.com"),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let code_page = page.location.unwrap();
    assert!(code_page.starts_with("/login/code?next="), "{code_page}");
    b.app.advance(30);
    let code = b.code();
    let page = b
        .submit(
            &code_page,
            "/login/code",
            &[("code", &code), ("next", next)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location.unwrap()
}

async fn an_expired_session_says_why_and_comes_back_to_the_code(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    // Idle for longer than the 30-minute limit, the owner opens a device's QR link.
    app.advance(1801);
    let page = b.get("/device?user_code=ABCD-EFGH").await;
    assert_eq!(page.status, 303);
    let login = page.location.unwrap();
    assert_eq!(
        login,
        "/login?next=%2Fdevice%3Fuser_code%3DABCD-EFGH&expired=1"
    );
    assert!(b.session_cookie().is_none(), "the stale cookie is gone");
    let page = b.get(&login).await;
    assert_eq!(page.status, 200);
    assert!(
        page.contains("Your session expired; sign in again to continue approving ABCD-EFGH."),
        "{}",
        page.body
    );
    assert!(page.contains("name=\"next\" value=\"/device?user_code=ABCD-EFGH\""));
    // A mistyped password keeps the reason, the code and the page to return to.
    assert!(
        page.contains("name=\"expired\" value=\"1\""),
        "{}",
        page.body
    );
    let page = b
        .post(
            "/login",
            &[
                ("email", "olivia@example.com"),
                ("password", "not the password"),
                ("next", "/device?user_code=ABCD-EFGH"),
                ("expired", "1"),
            ],
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(
        page.contains("Your session expired; sign in again to continue approving ABCD-EFGH.")
            && page.contains("name=\"expired\" value=\"1\"")
            && page.contains("name=\"next\" value=\"/device?user_code=ABCD-EFGH\"")
            && page.contains("value=\"olivia@example.com\""),
        "{}",
        page.body
    );
    let back = sign_in_to(&mut b, &login, "/device?user_code=ABCD-EFGH").await;
    assert_eq!(back, "/device?user_code=ABCD-EFGH");
    let page = b.get(&back).await;
    assert!(page.contains("value=\"ABCD-EFGH\""), "{}", page.body);

    // Someone who never signed in is not told that a session expired.
    let mut stranger = Browser::new(&app);
    let page = stranger.get("/device?user_code=ABCD-EFGH").await;
    let login = page.location.unwrap();
    assert!(!login.contains("expired"), "{login}");
    assert!(!stranger.get(&login).await.contains("session expired"));
}

async fn a_form_sent_after_the_session_expired_comes_back_to_its_code(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    let page = b.get("/device?user_code=WXYZ-2345").await;
    assert_eq!(page.status, 200);
    app.advance(1801);
    // The confirmation form, sent after the session expired: back to the code, not to the POST.
    let page = b.post("/device", &[("user_code", "WXYZ-2345")]).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/login?next=%2Fdevice%3Fuser_code%3DWXYZ-2345&expired=1")
    );
    let page = b.get(page.location.as_deref().unwrap()).await;
    assert!(
        page.contains("to continue approving WXYZ-2345."),
        "{}",
        page.body
    );
}

async fn return_targets_stay_on_the_portal(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    app.advance(1801);
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "evil.example",
    ] {
        let login = format!("/login?next={}", urlencode(evil));
        let page = b.get(&login).await;
        assert!(
            page.contains("name=\"next\" value=\"/\""),
            "{evil}: {}",
            page.body
        );
        let mut fresh = Browser::new(&app);
        fresh.totp_secret.clone_from(&b.totp_secret);
        let back = sign_in_to(&mut fresh, &login, evil).await;
        assert_eq!(back, "/", "{evil}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn refused_invitation_and_group_forms_keep_what_was_typed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    let page = b
        .submit(
            "/users",
            "/users/invite",
            &[("email", "victor at example"), ("role", "admin")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.contains("value=\"victor at example\""),
        "{}",
        page.body
    );
    assert!(
        page.contains("<option value=\"admin\" selected>"),
        "{}",
        page.body
    );
    // Without a role, the address stays too.
    let page = b
        .submit(
            "/users",
            "/users/invite",
            &[("email", "victor@example.com")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.contains("value=\"victor@example.com\""),
        "{}",
        page.body
    );

    let page = b
        .submit("/groups", "/groups", &[("name", "Plant North")])
        .await;
    assert_eq!(page.status, 303);
    let page = b
        .submit("/groups", "/groups", &[("name", "Plant North")])
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.contains("value=\"Plant North\""), "{}", page.body);
}
