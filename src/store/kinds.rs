//! The closed sets of values that text columns hold: statuses, roles and kinds. Each enum has one
//! text mapping (`as_str`, `parse`), the same words the migrations' `CHECK` constraints list, and
//! is read and written through diesel's `ToSql`/`FromSql` on both backends, so rows carry the
//! enum and a stored word no enum knows is a deserialisation error, never a silent default.
//!
//! They live in the store because the store decodes the rows and may not import the domain; the
//! domain uses them as its own types and adds its rules to them in its modules (`Role`'s
//! permissions are in `accounts::roles`).

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Gives an enum with `as_str` and `parse` its text column mapping on every backend
/// (SQLite, PostgreSQL, and the `MultiConnection` over both, which delegates to them).
macro_rules! stored_as_text {
    ($($kind:ident),+ $(,)?) => {$(
        impl<DB> ToSql<Text, DB> for $kind
        where
            DB: Backend,
            str: ToSql<Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> FromSql<Text, DB> for $kind
        where
            DB: Backend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                Self::parse(&text).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($kind), " {:?}"), text).into()
                })
            }
        }

        /// The stored word.
        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

stored_as_text!(
    ActiveStatus,
    ClientKind,
    FlowStatus,
    FamilyStatus,
    Role,
    SaleStatus,
    BuyerKind,
    PairingStatus,
    DisputeStatus,
    DeviceAccess,
);

/// Whether a user or a client may act (`users.status`, `clients.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum ActiveStatus {
    Active,
    Disabled,
}

impl ActiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }
}

/// What an OAuth client is (`clients.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum ClientKind {
    Device,
    Service,
    /// A relying app that signs people in (OpenID Connect).
    App,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Service => "service",
            Self::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "device" => Self::Device,
            "service" => Self::Service,
            "app" => Self::App,
            _ => return None,
        })
    }
}

/// Where an RFC 8628 flow stands (`device_flows.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum FlowStatus {
    Pending,
    Approved,
    Denied,
    Consumed,
    Superseded,
}

impl FlowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
            Self::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "consumed" => Self::Consumed,
            "superseded" => Self::Superseded,
            _ => return None,
        })
    }
}

/// Whether a refresh-token family may still be used (`refresh_families.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum FamilyStatus {
    Active,
    Revoked,
}

impl FamilyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

/// A user's role (`users.role`, `invitations.role`). Tenant roles rank owner > admin > operator >
/// viewer; `staff` is the manufacturer's support role, outside every tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    Owner,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "owner" => Self::Owner,
            "admin" => Self::Admin,
            "operator" => Self::Operator,
            "viewer" => Self::Viewer,
            "staff" => Self::Staff,
            _ => return None,
        })
    }
}

/// The state a delivery gives the sale (stored in `erp_sales.status`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(description = "The state a delivery gives the sale.")]
#[diesel(sql_type = Text)]
pub enum SaleStatus {
    Active,
    Cancelled,
    Returned,
}

impl SaleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "cancelled" => Self::Cancelled,
            "returned" => Self::Returned,
            _ => return None,
        })
    }
}

/// Who bought the device (stored in `erp_sales.sold_to_kind`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[schema(description = "Who bought the device.")]
#[diesel(sql_type = Text)]
pub enum BuyerKind {
    EndCustomer,
    Distributor,
}

impl BuyerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndCustomer => "end_customer",
            Self::Distributor => "distributor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "end_customer" => Self::EndCustomer,
            "distributor" => Self::Distributor,
            _ => return None,
        })
    }
}

/// Where a pairing stands (`pairings.status`): in force, waiting for the ERP to confirm the
/// sale, or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum PairingStatus {
    Active,
    Provisional,
    Ended,
}

impl PairingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Provisional => "provisional",
            Self::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "provisional" => Self::Provisional,
            "ended" => Self::Ended,
            _ => return None,
        })
    }
}

/// Whether a dispute waits for staff (`disputes.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum DisputeStatus {
    Open,
    Resolved,
}

impl DisputeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// Which devices a member sees (`users.device_access`): all of the tenant's, or only the groups
/// and devices granted to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum DeviceAccess {
    All,
    Selected,
}

impl DeviceAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Selected => "selected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "all" => Self::All,
            "selected" => Self::Selected,
            _ => return None,
        })
    }
}
