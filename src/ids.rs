//! Identifiers that would otherwise travel as bare integers: a tenant's id cannot be passed where
//! a user's is expected. They know nothing of the database; the store gives them their column
//! mapping (`store::ids`). On the wire (serde) and in text (`Display`) they are the bare number.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a transparent `i64` identifier.
macro_rules! integer_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The bare number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }
    };
}

integer_id!(
    /// A customer tenant (`tenants.id`, and every `tenant_id` column).
    TenantId
);

integer_id!(
    /// A portal user (`users.id`, and every `user_id` column).
    UserId
);

#[cfg(test)]
mod tests {
    use super::TenantId;

    #[test]
    fn an_id_is_its_bare_number_on_the_wire_and_in_text() {
        let id = TenantId(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<TenantId>("42").unwrap(), id);
        assert_eq!(id.to_string(), "42");
    }
}
