//! Sales as the ERP reports them: `PUT /api/erp/v1/sales/{sale_id}` records or updates one,
//! `DELETE` (or a PUT with status `cancelled`/`returned`) ends it.
//!
//! Deliveries may come twice or out of order and still end in one state, whatever the order:
//!
//! - the sale's data is that of the highest `revision` delivered (a lower one is stale and
//!   ignored; the same revision with other content is a conflict);
//! - an ended sale stays ended (a resale is a new sale id), and a cancellation that arrives before
//!   its sale leaves a record without data that the sale fills in later;
//! - why it ended is the status of the highest revision that ended it, and a bare DELETE (which
//!   has no revision) says `cancelled` only when no update said otherwise.
//!
//! A device has at most one active sale. When a sale with data is ended, [`on_sale_ended`] runs:
//! the hook through which a pairing that depended on the sale is revoked.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::{Conflict, ErpError};
use super::events::rfc3339;
use crate::events::{self, Action, Event, FeedEntry, FeedType, Subject};
use crate::ids::{DeviceSerial, TenantId};
use crate::store::erp::{self as stored, SaleRecord};
use crate::store::{StoreError, Tx, registry};

mod request;

pub use request::{BuyerKind, FIELDS, PARTY_FIELDS, SaleInput, SaleStatus, check_sale_id};
pub use request::{Party, SalePut};

/// What arrived for a sale.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    Put(&'a SaleInput),
    /// `DELETE`: the sale was cancelled (no revision).
    Cancel,
}

/// A sale as the API shows it: every member is present, `null` when it has no value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SaleView {
    pub sale_id: String,
    /// `null` only for a cancellation whose sale has not arrived.
    #[schema(required = true, value_type = Option<String>)]
    pub serial: Option<DeviceSerial>,
    #[schema(format = DateTime, required = true)]
    pub sold_at: Option<String>,
    #[schema(required = true)]
    pub sold_to: Option<PartyView>,
    #[schema(required = true)]
    pub end_customer_number: Option<String>,
    #[schema(required = true)]
    pub revision: Option<i64>,
    #[schema(value_type = SaleStatus)]
    pub status: String,
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
}

/// The buyer on record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartyView {
    pub customer_number: String,
    pub name: String,
    #[schema(value_type = BuyerKind)]
    pub kind: String,
}

impl From<&SaleRecord> for SaleView {
    fn from(r: &SaleRecord) -> Self {
        let sold_to = match (&r.sold_to_customer_number, &r.sold_to_name, &r.sold_to_kind) {
            (Some(number), Some(name), Some(kind)) => Some(PartyView {
                customer_number: number.clone(),
                name: name.clone(),
                kind: kind.as_str().to_owned(),
            }),
            _ => None,
        };
        Self {
            sale_id: r.sale_id.clone(),
            serial: r.serial.clone(),
            sold_at: r.sold_at.map(rfc3339),
            sold_to,
            end_customer_number: r.end_customer_number.clone(),
            revision: r.revision,
            status: r.status.as_str().to_owned(),
            ended_at: r.ended_at.map(rfc3339),
        }
    }
}

/// The answer to a PUT or DELETE.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SaleOutcome {
    pub sale: SaleView,
    /// The sale id was new.
    pub created: bool,
    /// This delivery changed the recorded state (false for a duplicate or a stale update).
    pub applied: bool,
    /// The device's tokens were revoked because the pairing depended on this sale.
    pub tokens_revoked: bool,
}

/// The state after a delivery, decided without writing anything.
struct Merged {
    record: SaleRecord,
    data_changed: bool,
    first_data: bool,
    end_changed: bool,
}

fn merge(
    existing: Option<&SaleRecord>,
    sale_id: &str,
    delivery: Delivery<'_>,
    now_ms: i64,
) -> Result<Merged, ErpError> {
    let mut rec = existing.cloned().unwrap_or_else(|| SaleRecord {
        sale_id: sale_id.to_owned(),
        serial: None,
        sold_at: None,
        sold_to_customer_number: None,
        sold_to_name: None,
        sold_to_kind: None,
        end_customer_number: None,
        revision: None,
        status: SaleStatus::Active,
        ended_revision: None,
        ended_at: None,
        created_at: now_ms,
        updated_at: now_ms,
    });
    let first_data = rec.serial.is_none();
    let (mut data_changed, mut end_changed) = (false, false);
    let mut end = |rec: &mut SaleRecord, status: SaleStatus, revision: Option<i64>| {
        let replaces = rec.status == SaleStatus::Active
            || (rec.ended_revision.is_none() && revision.is_some())
            || revision > rec.ended_revision;
        if replaces && (rec.status != status || rec.ended_revision != revision) {
            if rec.status == SaleStatus::Active {
                rec.ended_at = Some(now_ms);
            }
            end_changed |= rec.status != status;
            rec.status = status;
            rec.ended_revision = revision;
        }
    };
    match delivery {
        Delivery::Cancel => end(&mut rec, SaleStatus::Cancelled, None),
        Delivery::Put(input) => {
            let r = input.revision;
            let newer = match (first_data, rec.revision) {
                (true, _) | (false, None) => true,
                (false, Some(current)) if r > current => true,
                (false, Some(current)) if r == current => {
                    // What this revision said before must be what it says now.
                    let said = if rec.ended_revision == Some(r) {
                        rec.status
                    } else {
                        SaleStatus::Active
                    };
                    if !same_data(&rec, input) || said != input.status {
                        return Err(ErpError::Conflict(Conflict::RevisionReused { revision: r }));
                    }
                    false
                }
                (false, Some(_)) => false,
            };
            if newer {
                data_changed = !same_data(&rec, input);
                rec.serial = Some(input.serial.clone());
                rec.sold_at = Some(input.sold_at_ms);
                rec.sold_to_customer_number = Some(input.customer_number.clone());
                rec.sold_to_name = Some(input.customer_name.clone());
                rec.sold_to_kind = Some(input.kind);
                rec.end_customer_number = input.end_customer_number.clone();
                rec.revision = Some(r);
            }
            if input.status != SaleStatus::Active {
                end(&mut rec, input.status, Some(r));
            }
        }
    }
    Ok(Merged {
        record: rec,
        data_changed,
        first_data: first_data && data_changed,
        end_changed,
    })
}

fn same_data(rec: &SaleRecord, input: &SaleInput) -> bool {
    rec.serial.as_ref() == Some(&input.serial)
        && rec.sold_at == Some(input.sold_at_ms)
        && rec.sold_to_customer_number.as_deref() == Some(input.customer_number.as_str())
        && rec.sold_to_name.as_deref() == Some(input.customer_name.as_str())
        && rec.sold_to_kind == Some(input.kind)
        && rec.end_customer_number == input.end_customer_number
}

/// Applies one delivery inside the caller's transaction. Every refusal is decided before
/// anything is written.
pub fn apply(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    sale_id: &str,
    delivery: Delivery<'_>,
) -> Result<SaleOutcome, ErpError> {
    let existing = stored::find_sale(tx, sale_id)?;
    let merged = merge(existing.as_ref(), sale_id, delivery, now_ms)?;
    let mut rec = merged.record;
    if rec.status == SaleStatus::Active
        && let Some(serial) = &rec.serial
        && let Some(other) = stored::active_sale_of(tx, serial)?
        && other.sale_id != rec.sale_id
    {
        return Err(ErpError::Conflict(Conflict::DeviceAlreadySold {
            sale_id: other.sale_id,
        }));
    }
    let view = SaleView::from(&rec);
    let unchanged = existing.as_ref() == Some(&rec);
    if unchanged {
        return Ok(SaleOutcome {
            sale: view,
            created: false,
            applied: false,
            tokens_revoked: false,
        });
    }
    rec.updated_at = now_ms;
    match &existing {
        None => stored::insert_sale(tx, &rec)?,
        Some(_) => stored::update_sale(tx, &rec)?,
    }
    let was_settled_end = existing
        .as_ref()
        .is_some_and(|e| e.status != SaleStatus::Active && e.serial.is_some());
    let settled_end = rec.status != SaleStatus::Active && rec.serial.is_some();
    let effects = if settled_end && !was_settled_end {
        on_sale_ended(tx, now_ms, actor, &rec)?
    } else {
        SaleEndEffects::default()
    };
    let changes = Changes {
        data: merged.data_changed,
        first_data: merged.first_data,
        end: merged.end_changed,
    };
    record_changes(tx, now_ms, actor, &rec, &view, &changes, &effects)?;
    Ok(SaleOutcome {
        sale: view,
        created: existing.is_none(),
        applied: true,
        tokens_revoked: effects.tokens_revoked,
    })
}

/// Which kinds of change a delivery made.
#[derive(Debug, Clone, Copy)]
struct Changes {
    data: bool,
    first_data: bool,
    end: bool,
}

/// The audit and ERP events for a change.
fn record_changes(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    rec: &SaleRecord,
    view: &SaleView,
    changes: &Changes,
    effects: &SaleEndEffects,
) -> Result<(), StoreError> {
    let subject = Subject::Sale(rec.sale_id.clone());
    let mut data = serde_json::to_value(view).unwrap_or_else(|_| json!({}));
    if let Some(obj) = data.as_object_mut() {
        obj.insert("tokens_revoked".into(), json!(effects.tokens_revoked));
    }
    let entry = |event_type| FeedEntry {
        event_type,
        serial: rec.serial.clone(),
        sale_id: Some(rec.sale_id.clone()),
        customer_number: rec.sold_to_customer_number.clone(),
        tenant_id: effects.tenant_id,
        data: data.clone(),
    };
    if changes.data {
        let kind = if changes.first_data {
            FeedType::SaleRecorded
        } else {
            FeedType::SaleUpdated
        };
        let event = Event::new(Action::ErpSaleRecorded, actor, subject.clone())
            .detail(json!({
                "serial": rec.serial,
                "revision": rec.revision,
                "status": rec.status.as_str(),
            }))
            .erp_entry(entry(kind));
        events::record(tx, now_ms, event)?;
    }
    if changes.end {
        let kind = if rec.status == SaleStatus::Returned {
            FeedType::SaleReturned
        } else {
            FeedType::SaleCancelled
        };
        let event = Event::new(Action::ErpSaleEnded, actor, subject)
            .tenant(effects.tenant_id)
            .detail(json!({
                "serial": rec.serial,
                "status": rec.status.as_str(),
                "tokens_revoked": effects.tokens_revoked,
            }))
            .erp_entry(entry(kind));
        events::record(tx, now_ms, event)?;
    }
    Ok(())
}

/// What ending a sale did to the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaleEndEffects {
    /// The tenant the device is paired to, if any.
    pub tenant_id: Option<TenantId>,
    /// Whether the pairing depended on the sale, so the device's tokens were revoked.
    pub tokens_revoked: bool,
}

/// The hook that runs once when a sale (with its data) has ended, inside the transaction that
/// ended it: a pairing that depended on the sale (it was approved on this sale, or the device is
/// paired to the tenant of the sale's buyer or named end customer) ends, every token of the device
/// is revoked, and the tenant's admins are told.
pub fn on_sale_ended(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    sale: &SaleRecord,
) -> Result<SaleEndEffects, StoreError> {
    let Some(serial) = &sale.serial else {
        return Ok(SaleEndEffects::default());
    };
    let Some(tenant) = registry::find_device(tx, serial)?.and_then(|d| d.tenant_id) else {
        return Ok(SaleEndEffects::default());
    };
    let on_this_sale = crate::store::pairings::current(tx, serial)?
        .is_some_and(|p| p.sale_id.as_deref() == Some(sale.sale_id.as_str()));
    let customer = stored::customer_of_tenant(tx, tenant)?.flatten();
    let depends = on_this_sale
        || (customer.is_some()
            && (customer == sale.sold_to_customer_number || customer == sale.end_customer_number));
    if !depends {
        return Ok(SaleEndEffects {
            tenant_id: Some(tenant),
            tokens_revoked: false,
        });
    }
    crate::pairing::end_pairing(tx, serial, "sale_ended", now_ms)?;
    let detail = json!({
        "reason": "sale_ended",
        "sale_id": sale.sale_id,
        "status": sale.status.as_str(),
    });
    events::record(
        tx,
        now_ms,
        Event::new(
            Action::DeviceTokensRevoked,
            actor,
            Subject::Device(serial.to_owned()),
        )
        .tenant(Some(tenant))
        .detail(detail)
        .erp(FeedType::PairingEnded),
    )?;
    crate::pairing::notify_admins(
        tx,
        tenant,
        &format!("Device {serial} was removed from your account"),
        &crate::mail::render(&crate::pairing::mails::SaleEnded {
            serial: serial.as_str(),
            status: sale.status.as_str(),
        })?,
        now_ms,
    )?;
    Ok(SaleEndEffects {
        tenant_id: Some(tenant),
        tokens_revoked: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(revision: i64, name: &str, status: SaleStatus) -> SaleInput {
        SaleInput {
            serial: "SN-1".into(),
            sold_at_ms: 1_000,
            customer_number: "C-1".into(),
            customer_name: name.into(),
            kind: BuyerKind::EndCustomer,
            end_customer_number: None,
            revision,
            status,
        }
    }

    /// Applies deliveries in order with the pure merge; the final record (without times).
    fn run(deliveries: &[Delivery<'_>]) -> SaleRecord {
        let mut rec: Option<SaleRecord> = None;
        for d in deliveries {
            if let Ok(m) = merge(rec.as_ref(), "S-1", *d, 0) {
                rec = Some(m.record);
            }
        }
        let mut rec = rec.unwrap();
        rec.ended_at = None;
        rec
    }

    #[test]
    fn every_order_of_deliveries_ends_in_the_same_state() {
        let a = input(1, "Acme", SaleStatus::Active);
        let b = input(2, "Acme Water", SaleStatus::Active);
        let r = input(3, "Acme Water", SaleStatus::Returned);
        let all = [
            Delivery::Put(&a),
            Delivery::Put(&b),
            Delivery::Cancel,
            Delivery::Put(&r),
        ];
        let expected = run(&all);
        assert_eq!(expected.status, SaleStatus::Returned);
        assert_eq!(expected.revision, Some(3));
        // Every permutation, plus the first delivery repeated at the end.
        let mut orders: Vec<Vec<usize>> = vec![vec![]];
        for _ in 0..all.len() {
            let mut next = Vec::new();
            for o in &orders {
                for i in (0..all.len()).filter(|i| !o.contains(i)) {
                    let mut n = o.clone();
                    n.push(i);
                    next.push(n);
                }
            }
            orders = next;
        }
        assert_eq!(orders.len(), 24);
        for order in orders {
            let mut ds: Vec<Delivery<'_>> = order.iter().map(|i| all[*i]).collect();
            ds.push(all[order[0]]);
            assert_eq!(run(&ds), expected, "order {order:?}");
        }
    }

    #[test]
    fn a_revision_cannot_be_reused_with_other_content() {
        let a = input(1, "Acme", SaleStatus::Active);
        let other = input(1, "Other", SaleStatus::Active);
        let first = merge(None, "S-1", Delivery::Put(&a), 0).unwrap().record;
        assert!(matches!(
            merge(Some(&first), "S-1", Delivery::Put(&other), 0),
            Err(ErpError::Conflict(Conflict::RevisionReused { revision: 1 }))
        ));
        let ended = input(1, "Acme", SaleStatus::Cancelled);
        assert!(merge(Some(&first), "S-1", Delivery::Put(&ended), 0).is_err());
    }

    #[test]
    fn a_cancellation_before_its_sale_keeps_the_sale_ended() {
        let a = input(1, "Acme", SaleStatus::Active);
        let rec = run(&[Delivery::Cancel, Delivery::Put(&a)]);
        assert_eq!(rec.status, SaleStatus::Cancelled);
        assert_eq!(rec.serial.as_ref().map(|s| s.as_str()), Some("SN-1"));
    }
}
