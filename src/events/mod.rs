//! What happened, recorded once. Every security-relevant change appends a row to the
//! hash-chained audit log and, when the ERP should hear of it, an entry to the ERP's feed, both
//! inside the transaction of the change (DESIGN.md §4), so none exists without the others.
//! Domain modules build an [`Event`] and call [`record`]; nothing else writes either log.
//!
//! Lock order: the audit row is appended before the feed entry, in every transaction, so two
//! transactions that record both never wait on each other's row locks in opposite orders.

mod action;
mod feed;
mod party;

use std::fmt;

use serde_json::{Value, json};

use crate::ids::{DeviceSerial, GroupId, TenantId, UserId};
use crate::store::audit::{self, NewAuditRecord};
use crate::store::{StoreError, Tx};

pub use action::Action;
pub use feed::{FeedEntry, FeedType};
pub use party::Party;

/// What an event is about, shown in the log as `kind:id` (`device:SN-1`, `user:7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Device(DeviceSerial),
    User(UserId),
    Tenant(TenantId),
    Client(String),
    Group(GroupId),
    Sale(String),
    /// A device model, by its name.
    Model(String),
    /// A person invited by address, or an address that failed to sign in.
    Email(String),
    /// A signing key, by its `kid`.
    Key(String),
    /// An OAuth endpoint, for refusals.
    Endpoint(String),
    /// A sign-in for an address that matches no account: the typed address is never logged.
    UnknownAccount,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(serial) => write!(f, "device:{serial}"),
            Self::User(id) => write!(f, "user:{id}"),
            Self::Tenant(id) => write!(f, "tenant:{id}"),
            Self::Client(id) => write!(f, "client:{id}"),
            Self::Group(id) => write!(f, "group:{id}"),
            Self::Sale(id) => write!(f, "sale:{id}"),
            Self::Model(name) => write!(f, "model:{name}"),
            Self::Email(address) => write!(f, "email:{address}"),
            Self::Key(kid) => write!(f, "key:{kid}"),
            Self::Endpoint(path) => write!(f, "endpoint:{path}"),
            Self::UnknownAccount => f.write_str("account:unknown"),
        }
    }
}

/// One event: its audit row and, if the ERP hears of it, its feed entry.
#[derive(Debug, Clone)]
pub struct Event {
    action: Action,
    actor: String,
    subject: Subject,
    tenant_id: Option<TenantId>,
    detail: Value,
    erp: Option<Erp>,
}

/// What the ERP hears of an event.
#[derive(Debug, Clone)]
enum Erp {
    /// An entry about the subject device, with the event's tenant and detail.
    Mirror(FeedType),
    /// An entry about the subject device, with the event's tenant; the detail stays in the log.
    Bare(FeedType),
    Entry(FeedEntry),
}

impl Event {
    /// An event by `actor`, in `kind:id` form (`user:7`, `client:erp`, `device:SN-1`) or a
    /// name (`cli`, `anonymous`), with no tenant and an empty detail.
    pub fn new(action: Action, actor: impl Into<String>, subject: Subject) -> Self {
        Self {
            action,
            actor: actor.into(),
            subject,
            tenant_id: None,
            detail: json!({}),
            erp: None,
        }
    }

    /// Of `tenant_id`: the tenant's audit trail shows it.
    pub fn tenant(mut self, tenant_id: Option<TenantId>) -> Self {
        self.tenant_id = tenant_id;
        self
    }

    /// With `detail`: a JSON object, never a secret or a token.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// The ERP hears of it as `kind` about the subject device, with the same tenant and detail.
    pub fn erp(mut self, kind: FeedType) -> Self {
        self.erp = Some(Erp::Mirror(kind));
        self
    }

    /// The ERP hears of it as `kind` about the subject device, with the same tenant and empty
    /// data.
    pub fn erp_without_detail(mut self, kind: FeedType) -> Self {
        self.erp = Some(Erp::Bare(kind));
        self
    }

    /// The ERP hears of it as `entry`.
    pub fn erp_entry(mut self, entry: FeedEntry) -> Self {
        self.erp = Some(Erp::Entry(entry));
        self
    }

    /// The feed entry, if the ERP hears of this event.
    fn feed_entry(&self) -> Option<FeedEntry> {
        let about_device = |kind| {
            let serial = match &self.subject {
                Subject::Device(serial) => Some(serial.clone()),
                _ => None,
            };
            FeedEntry {
                serial,
                tenant_id: self.tenant_id,
                ..FeedEntry::new(kind)
            }
        };
        Some(match self.erp.as_ref()? {
            Erp::Mirror(kind) => about_device(*kind).with_data(self.detail.clone()),
            Erp::Bare(kind) => about_device(*kind),
            Erp::Entry(entry) => entry.clone(),
        })
    }
}

/// Records `event` inside the caller's transaction: its audit row, then its feed entry.
pub fn record(tx: &mut Tx<'_>, now_ms: i64, event: Event) -> Result<(), StoreError> {
    let entry = event.feed_entry();
    audit::append(
        tx,
        &NewAuditRecord {
            occurred_at: now_ms,
            tenant_id: event.tenant_id,
            actor: event.actor,
            action: event.action.as_str().to_owned(),
            subject: event.subject.to_string(),
            detail: event.detail.to_string(),
        },
    )?;
    if let Some(entry) = entry {
        feed::record(tx, now_ms, entry)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_tells_the_erp_what_it_was_asked_to() {
        let event = || {
            Event::new(
                Action::PairingApproved,
                "user:7",
                Subject::Device("SN-1".into()),
            )
            .tenant(Some(TenantId(3)))
            .detail(json!({ "flow": 9 }))
        };
        assert!(event().feed_entry().is_none());
        let mirror = event().erp(FeedType::PairingApproved).feed_entry().unwrap();
        assert_eq!(mirror.serial.as_ref().map(|s| s.as_str()), Some("SN-1"));
        assert_eq!(mirror.tenant_id, Some(TenantId(3)));
        assert_eq!(mirror.data, json!({ "flow": 9 }));
        let bare = event()
            .erp_without_detail(FeedType::PairingApproved)
            .feed_entry()
            .unwrap();
        assert_eq!((bare.tenant_id, bare.data), (Some(TenantId(3)), json!({})));
        assert_eq!(Subject::Email("a@b".into()).to_string(), "email:a@b");
    }
}
