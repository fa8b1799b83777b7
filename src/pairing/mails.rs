//! The messages the pairing ceremony, staff decisions and the ERP send to a tenant's admins:
//! their texts live in `templates/mail/`, plain text (askama does not escape `.txt`).

use askama::Template;

use crate::store::StoreError;

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

/// Renders a message inside a transaction (a failure rolls it back).
pub(crate) fn text(message: &impl Template) -> Result<String, StoreError> {
    message
        .render()
        .map_err(|e| StoreError::Other(format!("rendering a mail: {e}")))
}
