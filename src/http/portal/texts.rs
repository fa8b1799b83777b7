//! The texts that handlers choose for a page: notices, form errors, the message pages, sale
//! records, waits and history lines. Their words live in `templates/texts/`, one file per kind,
//! each a `match` over the cases below, so that a writer or translator reads and changes every
//! sentence of a kind in one place without reading Rust. They render plain text (`.txt`, no
//! escaping); the page that shows one escapes it once, as it does any other value.

use askama::Template;

use crate::pairing::{SaleFacts, SaleView};
use crate::store::audit::AuditRecord;
use crate::store::pairings::PairingRecord;

/// The line at the top of a page that says something worked, or asks for something.
#[derive(Template)]
#[template(path = "texts/notices.txt")]
pub enum Notice<'a> {
    /// After a password change (the session moved to a new id).
    PasswordChanged,
    /// A tenant that requires TOTP, for a member who has none yet.
    TotpRequired,
    InvitationSent {
        email: &'a str,
    },
    RoleChanged,
}

/// A form's error, shown above the form.
#[derive(Template)]
#[template(path = "texts/form_errors.txt")]
pub enum FormError<'a> {
    ChooseRole,
    WrongCurrentPassword,
    /// The invitation limit; `reason` is the refusal's own sentence (with the wait).
    TooManyInvitations {
        reason: &'a str,
    },
}

/// A page that only says why a request was not answered: a title and a sentence.
pub enum Message {
    DatabaseUnavailable,
    HashingBusy,
    Internal,
    Forbidden,
    /// `reason`: the refusal's own sentence (a domain error's message, safe to show).
    NotFound {
        reason: String,
    },
    NotPossible {
        reason: String,
    },
    SlowDown {
        reason: String,
    },
    FormTooLarge,
    FormExpired,
}

/// One part of a [`Message`]: its title, or its sentence.
#[derive(Template)]
#[template(path = "texts/messages.txt")]
struct MessageText<'a> {
    message: &'a Message,
    title: bool,
}

impl Message {
    pub fn title(&self) -> String {
        MessageText {
            message: self,
            title: true,
        }
        .to_string()
    }

    pub fn sentence(&self) -> String {
        MessageText {
            message: self,
            title: false,
        }
        .to_string()
    }
}

/// A sale record in one sentence, with its `date` when known.
#[derive(Template)]
#[template(path = "texts/sales.txt")]
pub enum Sale<'a> {
    /// As the deciding tenant may see it (`pairing::gate::sale_view`).
    Seen {
        view: &'a SaleView,
        date: Option<String>,
    },
    /// In full, for staff.
    Record {
        facts: Option<&'a SaleFacts>,
        date: Option<String>,
    },
}

/// Short lines the pages list or fill in.
#[derive(Template)]
#[template(path = "texts/lines.txt")]
pub enum Line<'a> {
    /// A wait as people say it ("8 minutes", "40 seconds"), rounded up.
    Wait {
        secs: u64,
    },
    /// One pairing of a device's history, from `at`; `ended`: when and why it ended.
    Pairing {
        p: &'a PairingRecord,
        at: String,
        ended: Option<(String, &'a str)>,
    },
    /// One audit event of a trail, at `at`.
    Audit {
        e: &'a AuditRecord,
        at: String,
    },
    /// Who asks for a disputed device, and who holds it.
    Sides {
        claimant: &'a str,
        holder: Option<&'a str>,
    },
    /// A dispute's state.
    Settled {
        resolution: &'a str,
        by: &'a str,
    },
    Open,
}
