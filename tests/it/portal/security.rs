//! CSRF and Origin checks, session timeouts and ends, cookie attributes, step-up expiry, the
//! page security headers, and secrets at rest (database file mode, sealed mail).

use pairgate::ids::UserId;

use super::{PASSWORD, owner};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

backend_tests!(
    state_changes_need_a_csrf_token_and_the_portal_origin,
    sessions_end_when_idle_and_at_their_absolute_limit,
    sign_out_everywhere_ends_every_session,
    step_up_expires_and_sends_you_back_to_the_action,
    cookies_and_headers_are_strict,
    tenants_can_require_totp_for_everyone,
    next_parameters_stay_on_the_portal,
    changing_the_password_ends_the_other_sessions,
    the_outbox_keeps_no_usable_invitation_link,
);

async fn state_changes_need_a_csrf_token_and_the_portal_origin(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    b.get("/groups").await;
    let base = app.base.clone();
    // No token, a token from another session, a foreign origin, no origin at all: refused.
    for (csrf, origin) in [
        (None, Some(base.as_str())),
        (Some("forged-token"), Some(base.as_str())),
        (Some("real"), Some("https://evil.example")),
        (Some("real"), None),
    ] {
        let token = if csrf == Some("real") {
            Some(current_csrf(&mut b).await)
        } else {
            csrf.map(str::to_owned)
        };
        let page = b
            .post_raw("/groups", &[("name", "Site A")], token.as_deref(), origin)
            .await;
        assert_eq!(page.status, 403, "{csrf:?} {origin:?}");
    }
    // Nothing was created.
    assert!(b.get("/groups").await.contains("No groups yet"));
    // With both, it works.
    b.get("/groups").await;
    assert_eq!(b.post("/groups", &[("name", "Site A")]).await.status, 303);
    assert!(b.get("/groups").await.contains("Site A"));
    // A GET never changes state: there is no GET route for these actions.
    assert_eq!(b.get("/logout").await.status, 404);
}

async fn current_csrf(b: &mut Browser<'_>) -> String {
    let page = b.get("/groups").await;
    crate::support::portal::extract(&page.body, "name=\"csrf\" value=\"").unwrap()
}

async fn sessions_end_when_idle_and_at_their_absolute_limit(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    // Active use keeps it alive past the idle limit (30 min)...
    for _ in 0..3 {
        app.advance(20 * 60);
        assert_eq!(b.get("/").await.status, 200);
    }
    // ...30 idle minutes end it.
    app.advance(30 * 60);
    let page = b.get("/").await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/login"));
    // The absolute limit (12 h) ends even a busy session.
    let mut busy = owner(&app, "busy@example.com").await;
    for _ in 0..((12 * 60) / 20 - 1) {
        app.advance(20 * 60);
        assert_eq!(busy.get("/").await.status, 200);
    }
    app.advance(20 * 60);
    assert_eq!(busy.get("/").await.status, 303);
}

async fn sign_out_everywhere_ends_every_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut phone = owner(&app, "olivia@example.com").await;
    let mut laptop = Browser::new(&app);
    laptop.totp_secret = phone.totp_secret.clone();
    laptop.sign_in("olivia@example.com", PASSWORD).await;
    app.advance(30);
    let code = laptop.code();
    laptop
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &code), ("next", "/")],
        )
        .await;
    assert_eq!(laptop.get("/").await.status, 200);
    let page = phone
        .submit("/account", "/account/logout-everywhere", &[])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(phone.get("/").await.status, 303);
    assert_eq!(laptop.get("/").await.status, 303);
}

async fn step_up_expires_and_sends_you_back_to_the_action(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let mut viewer = super::invited(&app, &mut owner, "victor@example.com", "viewer").await;
    let _ = viewer.get("/").await;
    let id = member_id(&app, "victor@example.com").await;
    // Enrolment counted as a step-up; five minutes later it no longer does.
    app.advance(301);
    owner.get("/users").await;
    let page = owner
        .client
        .post(app.url(&format!("/users/{id}/role")))
        .header("Origin", &app.base)
        .header("Referer", app.url("/users"))
        .form(&[
            ("role", "operator"),
            ("csrf", &current_token(&mut owner, "/users").await),
        ])
        .send()
        .await
        .unwrap();
    // No redirect that would drop the form: the action waits on a page that names it.
    assert_eq!(page.status(), 401);
    let page = crate::support::portal::Page {
        status: 401,
        location: None,
        body: page.text().await.unwrap(),
    };
    assert!(
        page.contains("Confirm with your code to make Member viewer operator.")
            && page.contains("href=\"/users\">Cancel"),
        "{}",
        page.body
    );
    assert_eq!(
        role_of(&app, "victor@example.com").await,
        "viewer",
        "nothing changed"
    );
    let _ = current_token(&mut owner, "/users").await;
    // A wrong code: the same action waits, with the error beside the code field.
    let page = owner.confirm_pending(&page, "000000").await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.contains("Confirm with your code to make Member viewer operator.")
            && page.contains("role=\"alert\">that code is not right"),
        "{}",
        page.body
    );
    assert_eq!(role_of(&app, "victor@example.com").await, "viewer");
    let code = owner.code();
    let page = owner.confirm_pending(&page, &code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(role_of(&app, "victor@example.com").await, "operator");
}

async fn current_token(b: &mut Browser<'_>, path: &str) -> String {
    let page = b.get(path).await;
    crate::support::portal::extract(&page.body, "name=\"csrf\" value=\"").unwrap()
}

pub async fn member_id(app: &TestApp, email: &str) -> UserId {
    let email = email.to_owned();
    app.ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .id
}

pub async fn role_of(app: &TestApp, email: &str) -> String {
    let email = email.to_owned();
    app.ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .role
        .to_string()
}

async fn cookies_and_headers_are_strict(backend: Backend) {
    let app = TestApp::start(backend).await;
    let b = Browser::new(&app);
    let res = b.client.get(app.url("/signup")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Lax")
            && set_cookie.contains("Path=/"),
        "{set_cookie}"
    );
    // Plain-http development URL: no Secure, no __Host- prefix (they would not work).
    assert!(
        !set_cookie.contains("Secure") && set_cookie.starts_with("pairgate_csrf="),
        "{set_cookie}"
    );
    let csrf =
        crate::support::portal::extract(&res.text().await.unwrap(), "name=\"csrf\" value=\"")
            .unwrap();
    let res = b
        .client
        .post(app.url("/signup"))
        .header("Origin", &app.base)
        .form(&[
            ("csrf", csrf.as_str()),
            ("company", "Acme"),
            ("name", "Ann"),
            ("email", "ann@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let session = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        session.starts_with("pairgate_session=")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax"),
        "{session}"
    );
}

async fn tenants_can_require_totp_for_everyone(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let page = owner
        .submit("/account", "/account/require-totp", &[("required", "yes")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    // An invited member must enrol before anything else.
    owner
        .submit(
            "/users",
            "/users/invite",
            &[("email", "nina@example.com"), ("role", "viewer")],
        )
        .await;
    let link = super::latest_link(&app, "nina@example.com").await;
    let path = link.strip_prefix(&app.base).unwrap().to_owned();
    let mut nina = Browser::new(&app);
    nina.submit(&path, &path, &[("name", "Nina"), ("password", PASSWORD)])
        .await;
    let page = nina.get("/devices").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/account/totp"));
    nina.enrol_totp().await;
    assert_eq!(nina.get("/devices").await.status, 200);
}

async fn next_parameters_stay_on_the_portal(backend: Backend) {
    let app = TestApp::start(backend).await;
    owner(&app, "olivia@example.com").await;
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let mut b = Browser::new(&app);
        b.get("/login").await;
        let page = b
            .post(
                "/login",
                &[
                    ("email", "olivia@example.com"),
                    ("password", PASSWORD),
                    ("next", evil),
                ],
            )
            .await;
        let location = page.location.unwrap();
        assert!(
            location.starts_with("/login/code?next=%2F") && !location.contains("evil"),
            "{evil} → {location}"
        );
    }
}

async fn changing_the_password_ends_the_other_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut phone = owner(&app, "olivia@example.com").await;
    let mut laptop = Browser::new(&app);
    laptop.totp_secret = phone.totp_secret.clone();
    laptop.sign_in("olivia@example.com", PASSWORD).await;
    let code = laptop.code_at(1);
    laptop
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &code), ("next", "/")],
        )
        .await;
    assert_eq!(laptop.get("/").await.status, 200);
    let before = phone.session_cookie().unwrap();
    let new = "another long passphrase";
    let page = phone
        .submit(
            "/account",
            "/account/password",
            &[("current", PASSWORD), ("new", new)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/account?done=password"));
    // This session goes on, under a new id; every other one has ended.
    let page = phone.get("/account?done=password").await;
    assert_eq!(page.status, 200);
    assert!(page.contains("other sessions have been signed out"));
    assert_ne!(phone.session_cookie().unwrap(), before);
    assert_eq!(laptop.get("/").await.status, 303);
    let mut stolen = Browser::new(&app);
    stolen.set_session_cookie(&before);
    assert_eq!(stolen.get("/").await.status, 303, "the old id is gone too");
    // The new password is the one that works, and the owner is told by mail.
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("olivia@example.com", PASSWORD).await.status, 401);
    assert_eq!(b.sign_in("olivia@example.com", new).await.status, 303);
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 50))
        .await
        .unwrap();
    assert!(mails.iter().any(|m| m.recipient == "olivia@example.com"
        && m.subject == "Your pairgate password was changed"));
}

async fn the_outbox_keeps_no_usable_invitation_link(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    olivia
        .submit(
            "/users",
            "/users/invite",
            &[("email", "ivan@example.com"), ("role", "viewer")],
        )
        .await;
    // The ERP's invitation of a customer's first owner, too.
    app.ctx
        .erp
        .put_customer(
            "test",
            "C-1",
            &serde_json::json!({ "name": "Acme", "admin_email": "it@acme.example" }),
        )
        .await
        .unwrap();
    // Whoever reads the table (or a backup) finds no link...
    assert_eq!(
        app.query_i64(
            "SELECT COUNT(*) AS n FROM mail_outbox WHERE body LIKE '%/invite/%' \
             OR body NOT LIKE 'sealed:%'"
        )
        .await,
        0
    );
    // ...while delivery opens each body with the master key, and the link works.
    for email in ["ivan@example.com", "it@acme.example"] {
        let link = super::latest_link(&app, email).await;
        let mut b = Browser::new(&app);
        assert_eq!(
            b.get(link.strip_prefix(&app.base).unwrap()).await.status,
            200
        );
    }
}

#[actix_web::test]
async fn the_sqlite_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::start(Backend::Sqlite).await;
    owner(&app, "olivia@example.com").await;
    let spec = pairgate::store::ConnectionSpec::new(&app.ctx.settings.database);
    let db = spec.sqlite_path().unwrap().to_owned();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    // A file from before, readable by others, is narrowed when pairgate opens it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    tokio::task::spawn_blocking(move || spec.establish().map(drop))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mode(&db), 0o600);
}
