//! Invitations, roles and who may change them, disabling users.

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
    assert!(page.contains("Invitation sent"), "{}", page.body);
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
