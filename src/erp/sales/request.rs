//! The body of `PUT /api/erp/v1/sales/{sale_id}`: its members, and the checked [`SaleInput`]
//! with every problem reported at once.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::erp::error::{ErpError, FieldError, Location};
use crate::erp::input::{self, Fields};
use crate::ids::DeviceSerial;
pub use crate::store::kinds::{BuyerKind, SaleStatus};

/// The members a body may have.
pub const FIELDS: &[&str] = &[
    "serial",
    "sold_at",
    "sold_to",
    "end_customer_number",
    "revision",
    "status",
];
/// The members of `sold_to`.
pub const PARTY_FIELDS: &[&str] = &["customer_number", "name", "kind"];

/// The body of a PUT as the ERP sends it, for the API description: [`SaleInput::parse`] reads
/// the members one by one, so that one answer names every problem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "serial": "SN-0001",
    "sold_at": "2026-11-20T10:00:00Z",
    "sold_to": { "customer_number": "C-1001", "name": "Acme Water", "kind": "end_customer" },
    "revision": 1
})))]
pub struct SalePut {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub serial: String,
    #[schema(format = DateTime)]
    pub sold_at: String,
    pub sold_to: Party,
    /// The end customer, when the ERP knows it for a sale to a distributor.
    #[schema(min_length = 1, max_length = 64)]
    pub end_customer_number: Option<String>,
    /// The ERP's change counter or last-modified time (e.g. Unix ms) of this sale; higher wins.
    #[schema(minimum = 0)]
    pub revision: i64,
    /// `active` when absent; `cancelled` or `returned` ends the sale.
    pub status: Option<SaleStatus>,
}

/// The buyer on record, as the ERP sends it in `sold_to`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Party {
    #[schema(min_length = 1, max_length = 64)]
    pub customer_number: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    pub kind: BuyerKind,
}

/// A checked request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleInput {
    pub serial: DeviceSerial,
    pub sold_at_ms: i64,
    pub customer_number: String,
    pub customer_name: String,
    pub kind: BuyerKind,
    pub end_customer_number: Option<String>,
    pub revision: i64,
    pub status: SaleStatus,
}

/// Checks a sale id from the path.
pub fn check_sale_id(sale_id: &str) -> Result<(), ErpError> {
    input::identifier(sale_id).map_err(|detail| {
        ErpError::invalid(FieldError {
            location: Location::Path("sale_id"),
            detail: detail.into(),
        })
    })
}

impl SaleInput {
    /// Reads a body; every problem is reported.
    pub fn parse(sale_id: &str, body: &Value) -> Result<Self, ErpError> {
        let mut errors = match check_sale_id(sale_id) {
            Err(ErpError::Validation(e)) => e,
            _ => Vec::new(),
        };
        let parsed = Fields::of(body, "", FIELDS, &mut errors).and_then(|f| {
            let serial = f.text("serial", input::serial, &mut errors);
            let sold_at = f.timestamp("sold_at", &mut errors);
            let party = f.require("sold_to", &mut errors).and_then(|v| {
                let p = Fields::of(v, &f.pointer("sold_to"), PARTY_FIELDS, &mut errors)?;
                let number = p.text("customer_number", input::identifier, &mut errors);
                let name = p.text("name", input::name, &mut errors);
                let kind = p.text("kind", buyer_kind, &mut errors);
                Some((number?, name?, kind?))
            });
            let end_customer =
                f.optional_text("end_customer_number", input::identifier, &mut errors);
            let revision = f.count("revision", &mut errors);
            let status = match f.get("status") {
                None => Some(SaleStatus::Active),
                Some(_) => f
                    .text("status", sale_status, &mut errors)
                    .map(|s| parse_status(&s)),
            };
            let (number, name, kind) = party?;
            Some(Self {
                serial: DeviceSerial::from(serial?),
                sold_at_ms: sold_at?,
                customer_number: number,
                customer_name: name,
                kind: BuyerKind::parse(&kind).unwrap_or(BuyerKind::EndCustomer),
                end_customer_number: end_customer,
                revision: revision?,
                status: status?,
            })
        });
        match parsed {
            Some(input) if errors.is_empty() => Ok(input),
            _ => Err(ErpError::Validation(errors)),
        }
    }
}

fn buyer_kind(text: &str) -> Result<(), &'static str> {
    BuyerKind::parse(text)
        .map(drop)
        .ok_or("must be end_customer or distributor")
}

fn sale_status(text: &str) -> Result<(), &'static str> {
    SaleStatus::parse(text)
        .map(drop)
        .ok_or("must be active, cancelled or returned")
}

/// A status [`sale_status`] accepted.
fn parse_status(text: &str) -> SaleStatus {
    SaleStatus::parse(text).unwrap_or(SaleStatus::Active)
}
