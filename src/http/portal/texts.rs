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
    /// A chart in words (its `aria-label`): a metric's range over a time window.
    Chart {
        name: &'a str,
        window: &'a str,
        low: &'a str,
        high: &'a str,
        latest: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;
    use crate::store::pairings::PairingStatus;

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
                Notice::InvitationSent { email }.to_string(),
                "Invitation sent to a<b>@example.com.",
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
        let p = PairingRecord {
            id: 1,
            serial: "SN-1".to_owned(),
            tenant_id: TenantId(2),
            status: PairingStatus::Ended,
            basis: "sale".to_owned(),
            sale_id: None,
            flow_id: None,
            approved_by: "olivia@example.com".to_owned(),
            created_at: 0,
            confirmed_at: None,
            ended_at: None,
            end_reason: None,
        };
        let at = || "2026-01-02 03:04 UTC".to_owned();
        assert_eq!(
            Line::Pairing {
                p: &p,
                at: at(),
                ended: Some(("2026-02-03 04:05 UTC".to_owned(), "unpaired")),
            }
            .to_string(),
            "2026-01-02 03:04 UTC: ended by olivia@example.com (sale), ended 2026-02-03 04:05 UTC \
             (unpaired)"
        );
        assert_eq!(
            Line::Pairing {
                p: &p,
                at: at(),
                ended: None
            }
            .to_string(),
            "2026-01-02 03:04 UTC: ended by olivia@example.com (sale)"
        );
        let e = AuditRecord {
            id: 1,
            occurred_at: 0,
            tenant_id: None,
            actor: "staff:sam".to_owned(),
            action: "pairing.approved".to_owned(),
            subject: "device:SN-1".to_owned(),
            detail: "{\"a\":1}".to_owned(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        assert_eq!(
            Line::Audit { e: &e, at: at() }.to_string(),
            "2026-01-02 03:04 UTC pairing.approved by staff:sam {\"a\":1}"
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
            resolution: "release",
            by: "sam",
        };
        assert_eq!(settled.to_string(), "settled: release by sam");
        assert_eq!(Line::Open.to_string(), "open");
        let chart = Line::Chart {
            name: "temperature",
            window: "24 hours",
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
