//! Why the ERP API refused a request. Messages are fixed and safe to show the ERP; store detail
//! stays in the logs.

use serde::Serialize;

use crate::store::{StoreError, StoreFailure};

/// Where in the request a field-level problem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// A JSON Pointer (RFC 6901) into the body, e.g. `/sold_to/kind`.
    Body(String),
    /// A path segment, e.g. `serial`.
    Path(&'static str),
    /// A query parameter, e.g. `after`.
    Query(&'static str),
}

/// One field-level problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub location: Location,
    pub detail: String,
}

impl FieldError {
    pub fn body(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            location: Location::Body(pointer.into()),
            detail: detail.into(),
        }
    }

    /// The place as people read it: `sold_to.kind`, `serial`, `after`.
    pub fn field(&self) -> String {
        match &self.location {
            Location::Body(p) => p.trim_start_matches('/').replace('/', "."),
            Location::Path(name) | Location::Query(name) => (*name).to_owned(),
        }
    }
}

/// A refusal because of what is already recorded (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The device is registered with another key and the request does not re-key it.
    KeyMismatch,
    /// The serial number belongs to a service client, not a device.
    NotADevice,
    /// The device has another active sale; cancel or return it first.
    DeviceAlreadySold { sale_id: String },
    /// The same revision was delivered before with different content.
    RevisionReused { revision: i64 },
    /// The ERP customer is linked to another tenant.
    CustomerLinkedElsewhere,
    /// The tenant stands for another ERP customer.
    TenantLinkedElsewhere,
}

impl Conflict {
    /// The last segment of the problem type.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::KeyMismatch => "key-mismatch",
            Self::NotADevice => "not-a-device",
            Self::DeviceAlreadySold { .. } => "device-already-sold",
            Self::RevisionReused { .. } => "revision-reused",
            Self::CustomerLinkedElsewhere => "customer-linked-elsewhere",
            Self::TenantLinkedElsewhere => "tenant-linked-elsewhere",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::KeyMismatch => "The device is registered with another key",
            Self::NotADevice => "The serial number belongs to a service client",
            Self::DeviceAlreadySold { .. } => "The device has another active sale",
            Self::RevisionReused { .. } => "This revision was delivered with other content",
            Self::CustomerLinkedElsewhere => "The customer is linked to another tenant",
            Self::TenantLinkedElsewhere => "The tenant stands for another customer",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::KeyMismatch => "send \"rekey\": true to replace the factory key; that revokes \
                                  every token of the device"
                .into(),
            Self::NotADevice => "choose another serial number".into(),
            Self::DeviceAlreadySold { sale_id } => {
                format!("sale {sale_id} of this device is active; cancel or return it first")
            }
            Self::RevisionReused { revision } => format!(
                "revision {revision} of this sale was recorded with other content; \
                 send changes with a higher revision"
            ),
            Self::CustomerLinkedElsewhere => {
                "this customer number is linked to a different tenant_id".into()
            }
            Self::TenantLinkedElsewhere => {
                "the tenant_id is linked to a different customer number".into()
            }
        }
    }
}

/// Why an ERP request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    #[error("invalid request: {0:?}")]
    Validation(Vec<FieldError>),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ErpError {
    pub fn invalid(error: FieldError) -> Self {
        Self::Validation(vec![error])
    }
}

impl StoreFailure for ErpError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}
