//! The ERP's side of an event: an entry of the append-only, ordered feed the ERP reads (and its
//! webhooks deliver). Ids are handed out under one row lock and so become visible in commit
//! order: a reader resuming after id N never misses an entry that commits later with a smaller id.

use serde_json::{Value, json};

use crate::ids::{DeviceSerial, TenantId};
use crate::store::erp::{self as stored, EventRecord};
use crate::store::{StoreError, Tx};

/// Every kind of event the ERP can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedType {
    DeviceRegistered,
    DeviceRekeyed,
    DeviceUpdated,
    SaleRecorded,
    SaleUpdated,
    SaleCancelled,
    SaleReturned,
    CustomerLinked,
    CustomerUpdated,
    PairingRequested,
    PairingApproved,
    PairingDenied,
    /// The device redeemed its approval: it holds tokens for its tenant now.
    PairingCompleted,
    /// Approved on a distributor sale: the device works; the ERP should confirm or reject.
    PairingProvisional,
    /// The ownership gate refused an approval (a dispute is open for staff).
    PairingRefused,
    /// Held for staff review (distributor sale under the review policy).
    PairingHeld,
    /// The ERP confirmed a provisional pairing.
    PairingConfirmed,
    /// The ERP rejected a provisional pairing; the device was unpaired.
    PairingRejected,
    /// Unpaired or released by the tenant, or ended by staff or a sale cancellation.
    PairingEnded,
    /// Staff settled a dispute.
    DisputeResolved,
}

impl FeedType {
    /// Every kind, as the feed documents them.
    pub const ALL: [Self; 20] = [
        Self::DeviceRegistered,
        Self::DeviceRekeyed,
        Self::DeviceUpdated,
        Self::SaleRecorded,
        Self::SaleUpdated,
        Self::SaleCancelled,
        Self::SaleReturned,
        Self::CustomerLinked,
        Self::CustomerUpdated,
        Self::PairingRequested,
        Self::PairingApproved,
        Self::PairingDenied,
        Self::PairingCompleted,
        Self::PairingProvisional,
        Self::PairingRefused,
        Self::PairingHeld,
        Self::PairingConfirmed,
        Self::PairingRejected,
        Self::PairingEnded,
        Self::DisputeResolved,
    ];

    /// The `type` the feed and the webhooks show.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceRegistered => "device.registered",
            Self::DeviceRekeyed => "device.rekeyed",
            Self::DeviceUpdated => "device.updated",
            Self::SaleRecorded => "sale.recorded",
            Self::SaleUpdated => "sale.updated",
            Self::SaleCancelled => "sale.cancelled",
            Self::SaleReturned => "sale.returned",
            Self::CustomerLinked => "customer.linked",
            Self::CustomerUpdated => "customer.updated",
            Self::PairingRequested => "pairing.requested",
            Self::PairingApproved => "pairing.approved",
            Self::PairingDenied => "pairing.denied",
            Self::PairingCompleted => "pairing.completed",
            Self::PairingProvisional => "pairing.provisional",
            Self::PairingRefused => "pairing.refused",
            Self::PairingHeld => "pairing.held_for_review",
            Self::PairingConfirmed => "pairing.confirmed",
            Self::PairingRejected => "pairing.rejected",
            Self::PairingEnded => "pairing.ended",
            Self::DisputeResolved => "dispute.resolved",
        }
    }
}

/// In the API description, the `type` of an event: one of the strings of [`FeedType::ALL`].
impl utoipa::PartialSchema for FeedType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some("What happened"))
            .enum_values(Some(Self::ALL.iter().map(|t| t.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for FeedType {}

/// An entry of the ERP's feed, about a device, a sale or a customer.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub event_type: FeedType,
    pub serial: Option<DeviceSerial>,
    pub sale_id: Option<String>,
    /// When `None` and `tenant_id` is set, the tenant's ERP customer number is filled in.
    pub customer_number: Option<String>,
    pub tenant_id: Option<TenantId>,
    /// A JSON object; never a secret or a token.
    pub data: Value,
}

impl FeedEntry {
    /// An entry with no device, sale, customer or tenant, and empty data.
    pub fn new(event_type: FeedType) -> Self {
        Self {
            event_type,
            serial: None,
            sale_id: None,
            customer_number: None,
            tenant_id: None,
            data: json!({}),
        }
    }

    /// An event about a device.
    pub fn device(event_type: FeedType, serial: &DeviceSerial) -> Self {
        Self {
            serial: Some(serial.to_owned()),
            ..Self::new(event_type)
        }
    }

    /// With `data`: a JSON object, never a secret or a token.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }

    /// About `tenant_id`'s device or customer.
    pub fn with_tenant(mut self, tenant_id: Option<TenantId>) -> Self {
        self.tenant_id = tenant_id;
        self
    }

    /// Webhooks for one key are delivered in order: a device's events by serial, others by the
    /// customer or sale they concern.
    fn ordering_key(&self) -> String {
        match (&self.serial, &self.customer_number, &self.sale_id) {
            (Some(serial), _, _) => format!("device:{serial}"),
            (None, Some(customer), _) => format!("customer:{customer}"),
            (None, None, Some(sale)) => format!("sale:{sale}"),
            (None, None, None) => "global".to_owned(),
        }
    }
}

/// Appends an entry inside the caller's transaction (and queues it for webhook delivery when
/// webhooks are enabled); returns its id.
pub(super) fn record(tx: &mut Tx<'_>, now_ms: i64, event: FeedEntry) -> Result<i64, StoreError> {
    let (id, webhooks) = stored::next_event_id(tx)?;
    let mut event = event;
    if event.customer_number.is_none()
        && let Some(tenant) = event.tenant_id
    {
        event.customer_number = stored::customer_of_tenant(tx, tenant)?.flatten();
    }
    let key = event.ordering_key();
    stored::insert_event(
        tx,
        &EventRecord {
            id,
            occurred_at: now_ms,
            event_type: event.event_type.as_str().to_owned(),
            serial: event.serial,
            sale_id: event.sale_id,
            customer_number: event.customer_number,
            tenant_id: event.tenant_id,
            data: event.data.to_string(),
        },
    )?;
    if webhooks {
        stored::enqueue_delivery(tx, id, &key, now_ms)?;
    }
    Ok(id)
}
