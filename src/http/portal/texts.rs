//! The texts that handlers choose for a page: notices, form errors, the message pages, sale
//! records, waits and history lines. Their words live in `templates/texts/`, one file per kind,
//! each a `match` over the cases below, so that a writer or translator reads and changes every
//! sentence of a kind in one place without reading Rust. They render plain text (`.txt`, no
//! escaping); the page that shows one escapes it once, as it does any other value.

use askama::Template;

use crate::events::Action;
use crate::pairing::{SaleFacts, SaleView};

/// The line at the top of a page that says something worked, or asks for something.
#[derive(Template)]
#[template(path = "texts/notices.txt")]
pub enum Notice<'a> {
    /// After a password change (the session moved to a new id).
    PasswordChanged,
    /// A tenant that requires TOTP, for a member who has none yet.
    TotpRequired,
    /// An invitation in the outbox: it is "sent" only once the mail server took it.
    InvitationQueued {
        email: &'a str,
    },
    RoleChanged,
    /// Disabling ends the member's sessions.
    MemberDisabled,
    MemberEnabled,
    /// A second-factor reset ends the member's sessions.
    TotpReset,
    AccessChanged,
    GroupCreated,
    DisputeSettled,
    CustomerNumberSaved,
    AppDisabled,
    AppUrisSaved,
    AppSecretReplaced,
    /// On the sign-in page after a session ended, with the code being approved, if any.
    SessionExpired {
        code: Option<&'a str>,
    },
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
    /// An address no page has.
    NoSuchPage,
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
    /// One pairing of a device's history, from `at`, `by` a person, to a `company` (staff see
    /// it); `basis`: why it was allowed, in words; `ended`: when and why (in words) it ended.
    Pairing {
        at: String,
        company: Option<&'a str>,
        by: &'a str,
        basis: String,
        /// Who of the manufacturer's staff allowed it (a staff grant), by name.
        granter: Option<String>,
        provisional: bool,
        ended: Option<(String, String)>,
    },
    /// Who asks for a disputed device, and who holds it.
    Sides {
        claimant: &'a str,
        holder: Option<&'a str>,
    },
    /// A dispute's state: settled `at`, `by` a person, its `resolution` in words.
    Settled {
        resolution: String,
        by: &'a str,
        at: String,
    },
    Open,
    /// A chart with no readings: "No readings of Flow in the last 24 hours".
    NoReadings {
        name: &'a str,
        during: &'a str,
    },
    /// A chart in words (its description): a metric's range over a time window.
    Chart {
        name: &'a str,
        window: &'a str,
        low: &'a str,
        high: &'a str,
        latest: &'a str,
    },
}

/// One audit event as a sentence (`templates/texts/history.txt`): `who` did it, `whom` it was
/// about, by name.
#[derive(Template)]
#[template(path = "texts/history.txt")]
pub struct Said<'a> {
    pub action: Action,
    pub who: &'a str,
    pub whom: &'a str,
    /// The actor is the subject ("Ann signed out", not "Ann signed Ann out").
    pub same: bool,
    pub f: &'a Facts,
}

/// What a sentence of the audit log needs besides its two names, from the event's detail; codes
/// already in words ([`Code`]).
#[derive(Debug, Default)]
pub struct Facts {
    /// A role, in words ("an admin").
    pub role: String,
    /// A value before and after (roles in words, models, an ERP customer number).
    pub from: String,
    pub to: String,
    /// A group, by name.
    pub group: Option<String>,
    /// What a person may see, in words ("the group Plant North and the device SN-1").
    pub access: String,
    pub ip: Option<String>,
    pub count: Option<i64>,
    /// A yes/no of the detail (required, everywhere, revoked, other sessions ended).
    pub flag: bool,
    /// The change is about the ERP customer number.
    pub erp: bool,
    /// The change is about approving with passkeys only (`flag`: required).
    pub passkeys: bool,
    /// A code of the detail in words: a refusal's reason, a resolution, a sale's status.
    pub words: String,
    /// An ERP customer number.
    pub name: String,
    /// The device of a sale.
    pub serial: String,
    pub dispute: Option<i64>,
    /// The other company of a refused pairing.
    pub other: Option<String>,
    /// The staff note of a settled dispute.
    pub note: Option<String>,
    /// Someone signed out their other sessions (kept this one).
    pub others: bool,
}

/// A stored code in words (`templates/texts/words.txt`); never the code itself.
#[derive(Template)]
#[template(path = "texts/words.txt")]
pub enum Code<'a> {
    /// Why a pairing was refused (or a dispute opened).
    Refusal(&'a str),
    /// How staff settled a dispute.
    Resolution(&'a str),
    /// Why a pairing was allowed.
    Basis(&'a str),
    /// Why a pairing ended.
    Ended(&'a str),
    /// Which answer was wrong at a sign-in.
    Factor(&'a str),
    /// Which second factor a sign-in used.
    SignedInWith(&'a str),
    Role(&'a str),
    SaleStatus(&'a str),
    /// How a company came to be.
    Via(&'a str),
}

/// The name of a kind of event (`templates/texts/actions.txt`).
#[derive(Template)]
#[template(path = "texts/actions.txt")]
pub struct ActionName {
    pub action: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_and_form_errors() {
        // Plain text: the page escapes the address.
        let email = "a<b>@example.com";
        let reason = "try again in 5 seconds";
        for (text, expected) in [
            (
                Notice::PasswordChanged.to_string(),
                "Your password has been changed, and your other sessions have been signed out.",
            ),
            (
                Notice::TotpRequired.to_string(),
                "Your company requires two-factor authentication.",
            ),
            (
                Notice::InvitationQueued { email }.to_string(),
                "Invitation to a<b>@example.com queued: pairgate sends it as soon as the mail \
                 server accepts it.",
            ),
            (
                Notice::MemberDisabled.to_string(),
                "The account has been disabled, and its sessions have been signed out.",
            ),
            (
                Notice::TotpReset.to_string(),
                "Two-factor authentication has been reset, and the person has been signed out; \
                 they set it up again at their next sign-in.",
            ),
            (
                Notice::RoleChanged.to_string(),
                "The role has been changed.",
            ),
            (FormError::ChooseRole.to_string(), "Choose a role."),
            (
                FormError::WrongCurrentPassword.to_string(),
                "The current password is not right.",
            ),
            (
                FormError::TooManyInvitations { reason }.to_string(),
                "Too many invitations this hour: try again in 5 seconds.",
            ),
        ] {
            assert_eq!(text, expected);
        }
    }

    #[test]
    fn message_pages() {
        let reason = || "no such thing".to_owned();
        for (message, title, sentence) in [
            (
                Message::DatabaseUnavailable,
                "Try again shortly",
                "pairgate cannot reach its database right now.",
            ),
            (
                Message::HashingBusy,
                "Try again shortly",
                "pairgate is busy checking other passwords right now.",
            ),
            (
                Message::Internal,
                "Something went wrong",
                "The error has been logged.",
            ),
            (
                Message::Forbidden,
                "Not allowed",
                "Your role does not allow this.",
            ),
            (
                Message::NotFound { reason: reason() },
                "Not found",
                "no such thing",
            ),
            (
                Message::NoSuchPage,
                "Page not found",
                "There is no page at this address. Check the link, or start again from the home \
                 page.",
            ),
            (
                Message::NotPossible { reason: reason() },
                "Not possible",
                "no such thing",
            ),
            (
                Message::SlowDown { reason: reason() },
                "Slow down",
                "no such thing",
            ),
            (
                Message::FormTooLarge,
                "Too large",
                "The form was too large.",
            ),
            (
                Message::FormExpired,
                "Form expired",
                "This form expired or did not come from pairgate. Go back, reload the page and \
                 try again.",
            ),
        ] {
            assert_eq!(message.title(), title);
            assert_eq!(message.sentence(), sentence);
        }
    }

    #[test]
    fn waits_are_rounded_up() {
        let wait = |secs| Line::Wait { secs }.to_string();
        assert_eq!(wait(0), "a second");
        assert_eq!(wait(1), "a second");
        assert_eq!(wait(2), "2 seconds");
        assert_eq!(wait(59), "59 seconds");
        assert_eq!(wait(60), "a minute");
        assert_eq!(wait(119), "a minute");
        assert_eq!(wait(120), "2 minutes");
        assert_eq!(wait(121), "3 minutes");
        assert_eq!(wait(600), "10 minutes");
    }

    #[test]
    fn sales_as_the_claimant_sees_them() {
        let date = || Some("2026-01-02 03:04 UTC".to_owned());
        let seen = |view: &SaleView, date| Sale::Seen { view, date }.to_string();
        let claimant = |name: Option<&str>, distributor: Option<&str>| SaleView::ToClaimant {
            customer_number: "C-1".to_owned(),
            name: name.map(str::to_owned),
            distributor: distributor.map(str::to_owned),
            sold_at: None,
        };
        assert_eq!(seen(&SaleView::NotRecorded, None), "no sale recorded");
        assert_eq!(
            seen(&claimant(Some("Acme"), Some("Dist")), date()),
            "sold on 2026-01-02 03:04 UTC via the distributor Dist to your company (C-1)"
        );
        assert_eq!(
            seen(&claimant(Some("Acme"), None), None),
            "sold directly to Acme (C-1), your company"
        );
        assert_eq!(
            seen(&claimant(None, None), date()),
            "sold on 2026-01-02 03:04 UTC directly to your company (C-1)"
        );
        let to_distributor = SaleView::ToDistributor {
            distributor: "Dist".to_owned(),
            sold_at: None,
        };
        assert_eq!(
            seen(&to_distributor, None),
            "sold to the distributor Dist; end customer not known yet"
        );
        assert_eq!(
            seen(&SaleView::ToAnotherCustomer, None),
            "sold to another customer"
        );
    }

    #[test]
    fn sale_records_for_staff() {
        let record = |facts: Option<&SaleFacts>, date| Sale::Record { facts, date }.to_string();
        let facts = |distributor: bool, end: Option<&str>| SaleFacts {
            sale_id: "S-1".to_owned(),
            sold_to_customer_number: "C-1".to_owned(),
            sold_to_name: "Acme".to_owned(),
            sold_to_distributor: distributor,
            end_customer_number: end.map(str::to_owned),
            sold_at: None,
        };
        let date = || Some("2026-01-02 03:04 UTC".to_owned());
        assert_eq!(record(None, None), "no sale recorded");
        assert_eq!(
            record(Some(&facts(false, None)), date()),
            "sold on 2026-01-02 03:04 UTC directly to Acme (C-1)"
        );
        assert_eq!(
            record(Some(&facts(true, Some("C-2"))), None),
            "sold via the distributor Acme (C-1) to customer C-2"
        );
        assert_eq!(
            record(Some(&facts(true, None)), date()),
            "sold on 2026-01-02 03:04 UTC to the distributor Acme (C-1); end customer not known yet"
        );
    }

    #[test]
    fn history_and_dispute_lines() {
        let at = || "2026-01-02 03:04 UTC".to_owned();
        let pairing = |company, provisional, ended| {
            Line::Pairing {
                at: at(),
                company,
                by: "Olivia Owner",
                basis: Code::Basis("direct_sale").to_string(),
                granter: None,
                provisional,
                ended,
            }
            .to_string()
        };
        assert_eq!(
            pairing(
                None,
                false,
                Some((
                    "2026-02-03 04:05 UTC".to_owned(),
                    Code::Ended("unpaired").to_string()
                ))
            ),
            "Paired on 2026-01-02 03:04 UTC by Olivia Owner: the manufacturer sold it directly \
             to the company. Ended on 2026-02-03 04:05 UTC: unpaired"
        );
        assert_eq!(
            pairing(Some("Acme"), true, None),
            "Paired to Acme on 2026-01-02 03:04 UTC by Olivia Owner, provisionally until the \
             manufacturer confirms the sale: the manufacturer sold it directly to the company"
        );
        let sides = |holder| {
            Line::Sides {
                claimant: "Acme",
                holder,
            }
            .to_string()
        };
        assert_eq!(sides(Some("Rival")), "Acme asks for it; Rival holds it");
        assert_eq!(sides(None), "Acme asks for it");
        let settled = Line::Settled {
            resolution: Code::Resolution("granted").to_string(),
            by: "Sam Staff",
            at: at(),
        };
        assert_eq!(
            settled.to_string(),
            "Settled on 2026-01-02 03:04 UTC by Sam Staff: the company that asked for it may now \
             pair it"
        );
        assert_eq!(Line::Open.to_string(), "Open: waiting for a decision");
        let chart = Line::Chart {
            name: "temperature",
            window: "over the last 24 hours",
            low: "-1.5",
            high: "21",
            latest: "20.25",
        };
        assert_eq!(
            chart.to_string(),
            "temperature over the last 24 hours: between -1.5 and 21, latest 20.25"
        );
    }
}
