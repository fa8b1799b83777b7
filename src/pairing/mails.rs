//! The messages the pairing ceremony, staff decisions and the ERP send to a tenant's admins:
//! their texts live in `templates/mail/`, plain text (askama does not escape `.txt`).

use askama::Template;

/// A device joined the tenant's account.
#[derive(Template)]
#[template(path = "mail/device_joined.txt")]
pub(crate) struct DeviceJoined<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub serial: &'a str,
    pub model: &'a str,
    pub provisional: bool,
}

/// The ERP rejected a provisional pairing.
#[derive(Template)]
#[template(path = "mail/provisional_pairing_ended.txt")]
pub(crate) struct ProvisionalPairingEnded<'a> {
    pub serial: &'a str,
}

/// Another company tried to pair one of the tenant's devices.
#[derive(Template)]
#[template(path = "mail/pairing_attempted.txt")]
pub(crate) struct PairingAttempted<'a> {
    pub serial: &'a str,
}

/// Staff removed a device from the tenant after a dispute.
#[derive(Template)]
#[template(path = "mail/removed_after_dispute.txt")]
pub(crate) struct RemovedAfterDispute<'a> {
    pub serial: &'a str,
}

/// Staff let the tenant pair a device it claimed.
#[derive(Template)]
#[template(path = "mail/may_pair.txt")]
pub(crate) struct MayPair<'a> {
    pub serial: &'a str,
}

/// The sale of a device ended (cancelled or returned) in the ERP.
#[derive(Template)]
#[template(path = "mail/sale_ended.txt")]
pub(crate) struct SaleEnded<'a> {
    pub serial: &'a str,
    pub status: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::render as text;

    #[test]
    fn texts_end_with_one_newline_and_fill_in_their_fields() {
        let joined = text(&DeviceJoined {
            name: "Olivia",
            email: "olivia@acme.example",
            serial: "SN-1",
            model: "M-2",
            provisional: true,
        })
        .unwrap();
        assert_eq!(
            joined,
            "Olivia (olivia@acme.example) approved device SN-1 (M-2) into your account; the \
             pairing is provisional until the manufacturer confirms the sale.\n\nIf you did not \
             expect this, sign in and unpair it, and tell the manufacturer.\n"
        );
        let ended = text(&SaleEnded {
            serial: "SN-1",
            status: "cancelled",
        })
        .unwrap();
        assert_eq!(
            ended,
            "The manufacturer recorded that the sale of device SN-1 was cancelled, so the device \
             no longer works for your company. Contact the manufacturer if this is wrong.\n"
        );
        for body in [
            text(&ProvisionalPairingEnded { serial: "SN-1" }).unwrap(),
            text(&PairingAttempted { serial: "SN-1" }).unwrap(),
            text(&RemovedAfterDispute { serial: "SN-1" }).unwrap(),
            text(&MayPair { serial: "SN-1" }).unwrap(),
        ] {
            assert!(body.contains("device SN-1"), "{body}");
            assert!(body.ends_with(".\n") && !body.ends_with("\n\n"), "{body:?}");
        }
    }
}
