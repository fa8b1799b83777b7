//! The messages the accounts module sends: their texts live in `templates/mail/`, plain text
//! (askama does not escape `.txt`).

use askama::Template;

/// An invitation with its one-time link (queued sealed: the link is a credential).
#[derive(Template)]
#[template(path = "mail/invitation.txt")]
pub(super) struct Invitation<'a> {
    pub inviter: &'a str,
    pub tenant_name: &'a str,
    pub role: &'a str,
    pub days: i64,
    pub link: &'a str,
}

/// What an invited address that already has an account receives instead of a link.
#[derive(Template)]
#[template(path = "mail/invitation_account_exists.txt")]
pub(super) struct InvitationAccountExists<'a> {
    pub inviter: &'a str,
    pub tenant_name: &'a str,
}

/// The account's second-factor budget has run out.
#[derive(Template)]
#[template(path = "mail/second_factor_budget_spent.txt")]
pub(super) struct SecondFactorBudgetSpent<'a> {
    pub name: &'a str,
    pub failures: i32,
    pub address: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
pub(super) struct PasswordChanged<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

#[derive(Template)]
#[template(path = "mail/totp_reset.txt")]
pub(super) struct TotpReset<'a> {
    pub name: &'a str,
    pub admin: &'a str,
}
