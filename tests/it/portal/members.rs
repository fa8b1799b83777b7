//! Invitations (no enumeration, a limit per tenant), roles and who may change them, disabling
//! users, second-factor resets, and the step-up those changes need.

use pairgate::accounts::{ActiveStatus, DeviceAccess};

use super::security::{member_id, role_of};
use super::{PASSWORD, invited, latest_link, owner};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

backend_tests!(
    invitations_are_one_time_and_expire,
    roles_gate_what_members_may_do,
    admins_cannot_touch_owners_and_the_last_owner_stays,
    disabling_a_member_ends_their_sessions,
    invitations_do_not_tell_which_addresses_have_accounts,
    invitations_are_limited_per_tenant,
    member_changes_need_a_fresh_step_up,
);

async fn invitations_are_one_time_and_expire(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let page = owner
        .submit(
            "/users",
            "/users/invite",
            &[("email", "Ivan@Example.com"), ("role", "operator")],
        )
        .await;
    assert!(
        page.contains("Invitation to Ivan@Example.com queued") && !page.contains("sent to"),
        "{}",
        page.body
    );
    assert!(
        owner
            .get("/users")
            .await
            .contains("ivan@example.com (operator)")
    );
    let link = latest_link(&app, "ivan@example.com").await;
    let path = link.strip_prefix(&app.base).unwrap().to_owned();
    // The link shows what it offers; accepting creates the account with that role.
    let mut ivan = Browser::new(&app);
    let page = ivan.get(&path).await;
    assert!(page.contains("Acme Water") && page.contains("operator"));
    let page = ivan
        .post(&path, &[("name", "Ivan"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(role_of(&app, "ivan@example.com").await, "operator");
    // Used once: a second use finds nothing.
    let mut again = Browser::new(&app);
    assert_eq!(again.get(&path).await.status, 404);
    // Expired links are refused.
    owner
        .submit(
            "/users",
            "/users/invite",
            &[("email", "late@example.com"), ("role", "viewer")],
        )
        .await;
    let late = latest_link(&app, "late@example.com").await;
    app.advance(7 * 24 * 3600 + 1);
    let mut b = Browser::new(&app);
    assert_eq!(
        b.get(late.strip_prefix(&app.base).unwrap()).await.status,
        404
    );
    // The message is kept in the outbox (no SMTP configured) and the log never had its link.
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 10))
        .await
        .unwrap();
    assert!(mails.iter().all(|m| m.sent_at.is_none()));
}

async fn roles_gate_what_members_may_do(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let mut viewer = invited(&app, &mut owner, "victor@example.com", "viewer").await;
    let mut operator = invited(&app, &mut owner, "otto@example.com", "operator").await;
    for b in [&mut viewer, &mut operator] {
        assert_eq!(b.get("/users").await.status, 403);
        assert_eq!(b.get("/groups").await.status, 403);
        assert_eq!(b.get("/audit").await.status, 403);
        assert_eq!(b.get("/devices").await.status, 200);
        let home = b.get("/").await;
        assert!(
            !home.contains("href=\"/users\""),
            "no link to what they cannot open"
        );
    }
    // A viewer's forged form is refused by the domain, not just hidden by the page.
    let token = crate::support::portal::extract(
        &viewer.get("/devices").await.body,
        "name=\"csrf\" value=\"",
    )
    .unwrap();
    let page = viewer
        .post_raw(
            "/users/invite",
            &[("email", "x@example.com"), ("role", "owner")],
            Some(&token),
            Some(&app.base),
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(owner.get("/audit").await.status, 200);
}

async fn admins_cannot_touch_owners_and_the_last_owner_stays(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let mut admin = invited(&app, &mut owner, "ada@example.com", "admin").await;
    let owner_id = member_id(&app, "olivia@example.com").await;
    // Admins are offered no owner role and cannot take one from an owner.
    let page = admin.get("/users").await;
    assert!(!page.contains("value=\"owner\""));
    let page = admin
        .submit(
            "/users",
            &format!("/users/{owner_id}/role"),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = admin
        .submit(
            "/users",
            "/users/invite",
            &[("email", "o2@example.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(page.status, 403);
    // The only owner cannot demote themself out of the tenant... (the page offers no control
    // for oneself; the domain refuses anyway.)
    let page = owner
        .submit(
            "/users",
            &format!("/users/{owner_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert_eq!(role_of(&app, "olivia@example.com").await, "owner");
}

async fn disabling_a_member_ends_their_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let mut otto = invited(&app, &mut owner, "otto@example.com", "operator").await;
    assert_eq!(otto.get("/devices").await.status, 200);
    let id = member_id(&app, "otto@example.com").await;
    let page = owner
        .submit(
            "/users",
            &format!("/users/{id}/active"),
            &[("active", "no")],
        )
        .await;
    assert_eq!(page.status, 303);
    // The page says what happened, signing out included.
    let location = page.location.unwrap();
    assert_eq!(location, "/users?done=disabled");
    assert!(
        owner
            .get(&location)
            .await
            .contains("The account has been disabled, and its sessions have been signed out.")
    );
    assert_eq!(otto.get("/devices").await.status, 303);
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("otto@example.com", PASSWORD).await.status,
        401
    );
    let page = owner
        .submit(
            "/users",
            &format!("/users/{id}/active"),
            &[("active", "yes")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        again.sign_in("otto@example.com", PASSWORD).await.status,
        303
    );
}

/// The notice or error a page shows, with `email` written as `EMAIL`.
fn message_about(page: &crate::support::portal::Page, email: &str) -> String {
    let start = page.body.find("role=\"").expect("a message");
    let rest = &page.body[start..];
    rest[..rest.find("</").unwrap()].replace(email, "EMAIL")
}

async fn invitations_do_not_tell_which_addresses_have_accounts(backend: Backend) {
    let app = TestApp::start(backend).await;
    owner(&app, "bob@other.example").await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let mut invite = async |email: &str| {
        olivia
            .submit(
                "/users",
                "/users/invite",
                &[("email", email), ("role", "viewer")],
            )
            .await
    };
    let fresh = invite("new@example.com").await;
    let taken = invite("bob@other.example").await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(taken.status, fresh.status, "{}", taken.body);
    assert_eq!(
        message_about(&taken, "bob@other.example"),
        message_about(&fresh, "new@example.com")
    );
    assert!(
        taken.contains("bob@other.example (viewer)"),
        "listed as waiting"
    );
    // The address's owner hears of it, without a link to anything.
    let mail = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 50))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.recipient == "bob@other.example")
        .unwrap();
    let body = app.ctx.accounts.outbox().body(&mail).unwrap();
    assert!(body.contains("already has a pairgate account"), "{body}");
    assert!(!body.contains("/invite/"), "{body}");
    // Someone already in this tenant is reported: the inviter sees the members anyway.
    invited(&app, &mut olivia, "ivan@example.com", "viewer").await;
    let page = olivia
        .submit(
            "/users",
            "/users/invite",
            &[("email", "ivan@example.com"), ("role", "admin")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.contains("already exists"));
}

async fn invitations_are_limited_per_tenant(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[portal]\ninvitations_per_tenant_per_hour = 3")
        .start()
        .await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let mut other = owner(&app, "otto@other.example").await;
    let invite = async |b: &mut Browser<'_>, email: &str| {
        b.submit(
            "/users",
            "/users/invite",
            &[("email", email), ("role", "viewer")],
        )
        .await
    };
    for i in 0..3 {
        assert_eq!(
            invite(&mut olivia, &format!("a{i}@example.com"))
                .await
                .status,
            200
        );
    }
    let page = invite(&mut olivia, "a3@example.com").await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(page.contains("Too many invitations"));
    assert_eq!(app.throttled("invitations").await, Some(1.0));
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 50))
        .await
        .unwrap();
    assert!(
        mails.iter().all(|m| m.recipient != "a3@example.com"),
        "no mail went out"
    );
    // Other tenants are not affected, and the next hour starts afresh.
    assert_eq!(invite(&mut other, "b0@example.com").await.status, 200);
    for _ in 0..3 {
        app.advance(20 * 60);
        assert_eq!(
            olivia.get("/").await.status,
            200,
            "(keeping the session alive)"
        );
    }
    assert_eq!(invite(&mut olivia, "a3@example.com").await.status, 200);
}

type Submission<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

async fn member_changes_need_a_fresh_step_up(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let mut victor = invited(&app, &mut olivia, "victor@example.com", "viewer").await;
    let id = member_id(&app, "victor@example.com").await;
    let victor_now = async || {
        app.ctx
            .store
            .read(|tx| pairgate::store::users::find_by_email(tx, "victor@example.com"))
            .await
            .unwrap()
            .unwrap()
    };
    let access = format!("/users/{id}/access");
    let reset = format!("/users/{id}/totp-reset");
    let active = format!("/users/{id}/active");
    // (form page, action, fields)
    let actions: [(Submission<'_>, &str); 3] = [
        (
            (&access, &access, &[("scope", "selected")]),
            "change which devices Member viewer sees.",
        ),
        (
            ("/users", &reset, &[]),
            "reset the second factor of Member viewer: they set it up again",
        ),
        (
            ("/users", &active, &[("active", "no")]),
            "disable Member viewer: every session of theirs ends at once.",
        ),
    ];
    // The step-up of the owner's enrolment is five minutes old: every action waits for a code,
    // on a page that says which action it is.
    app.advance(301);
    for ((form, action, fields), asked) in actions {
        let page = olivia.submit(form, action, fields).await;
        assert_eq!(page.status, 401, "{action}");
        assert!(
            page.contains(&format!("Confirm with your code to {asked}")),
            "{action}: {}",
            page.body
        );
    }
    let v = victor_now().await;
    assert_eq!(
        (v.device_access.as_str(), v.totp_enabled, v.status.as_str()),
        ("all", true, "active"),
        "nothing changed"
    );
    assert_eq!(victor.get("/devices").await.status, 200);
    // Stepped up, each works.
    assert_eq!(olivia.step_up().await.status, 303);
    let page = olivia
        .submit(&access, &access, &[("scope", "selected")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(victor_now().await.device_access, DeviceAccess::Selected);
    // A second-factor reset ends Victor's sessions and tells him; he enrols again after
    // signing in with his password alone.
    let page = olivia.submit("/users", &reset, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!victor_now().await.totp_enabled);
    assert_eq!(victor.get("/devices").await.status, 303);
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 50))
        .await
        .unwrap();
    assert!(mails.iter().any(|m| m.recipient == "victor@example.com"
        && m.subject == "Your pairgate two-factor authentication was reset"));
    let events = app.ctx.store.audit_page(None, None, 50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "user.totp_reset" && e.subject == format!("user:{id}"))
    );
    let mut again = Browser::new(&app);
    let page = again.sign_in("victor@example.com", PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/"), "no code asked");
    again.enrol_totp().await;
    let page = olivia.submit("/users", &active, &[("active", "no")]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(victor_now().await.status, ActiveStatus::Disabled);
}
