//! The portal, through HTTP as a browser uses it: accounts, sign-in, TOTP, sessions, CSRF, roles,
//! invitations, groups and device access.

mod access;
mod account;
mod apps;
pub mod device_page;
pub mod devices;
mod history;
mod members;
mod outcomes;
mod passkeys;
mod returns;
pub mod security;
mod sign_in;
mod throttling;

use crate::support::TestApp;
use crate::support::portal::Browser;

pub const PASSWORD: &str = "correct horse battery staple";

/// Signs up a company; the owner is signed in with TOTP enrolled. Returns the browser.
pub async fn owner<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    let page = b
        .sign_up("Acme Water", "Olivia Owner", email, PASSWORD)
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/account/totp"));
    b.enrol_totp().await;
    b
}

/// Invites `email` as `role` from `inviter`, accepts the link in a new browser, enrols TOTP.
pub async fn invited<'a>(
    app: &'a TestApp,
    inviter: &mut Browser<'a>,
    email: &str,
    role: &str,
) -> Browser<'a> {
    let page = inviter
        .submit(
            "/users",
            "/users/invite",
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let link = latest_link(app, email).await;
    let mut b = Browser::new(app);
    let path = link.strip_prefix(&app.base).unwrap().to_owned();
    let page = b
        .submit(
            &path,
            &path,
            &[("name", &format!("Member {role}")), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    b.enrol_totp().await;
    b
}

/// The invitation link in the newest message to `email` in the outbox.
pub async fn latest_link(app: &TestApp, email: &str) -> String {
    let email = email.to_owned();
    let mails = app
        .ctx
        .store
        .read(|tx| pairgate::store::mail::recent(tx, 50))
        .await
        .unwrap();
    let mail = mails
        .into_iter()
        .find(|m| m.recipient == email)
        .expect("an invitation was queued");
    app.ctx
        .accounts
        .outbox()
        .body(&mail)
        .expect("the body opens")
        .split_whitespace()
        .find(|w| w.contains("/invite/"))
        .expect("the message has a link")
        .to_owned()
}

/// A user's stored role, by email.
pub async fn security_role(app: &TestApp, email: &str) -> String {
    security::role_of(app, email).await
}
