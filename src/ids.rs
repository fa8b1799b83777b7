//! Identifiers that would otherwise travel as bare integers or strings: a tenant's id cannot be
//! passed where a user's is expected, nor a device's serial where a client id is. They know
//! nothing of the database; the store gives them their column mapping (`store::ids`). On the wire
//! (serde) and in text (`Display`) they are the bare number or text.

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

integer_id!(
    /// A tenant's device group, a site (`device_groups.id`, and every `group_id` column).
    GroupId
);

/// A device's serial number (`devices.serial`, and every `serial` column). It is the text as the
/// device, the ERP or a person gave it: this type neither validates nor normalises it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceSerial(pub String);

impl DeviceSerial {
    /// Wraps a serial as given.
    pub fn new(serial: impl Into<String>) -> Self {
        Self(serial.into())
    }

    /// The bare text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bare text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DeviceSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for DeviceSerial {
    fn from(serial: String) -> Self {
        Self(serial)
    }
}

impl From<&str> for DeviceSerial {
    fn from(serial: &str) -> Self {
        Self(serial.to_owned())
    }
}

impl From<&String> for DeviceSerial {
    fn from(serial: &String) -> Self {
        Self(serial.clone())
    }
}

impl From<DeviceSerial> for String {
    fn from(serial: DeviceSerial) -> Self {
        serial.0
    }
}

impl AsRef<str> for DeviceSerial {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for DeviceSerial {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for DeviceSerial {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for DeviceSerial {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::{DeviceSerial, TenantId};

    #[test]
    fn an_id_is_its_bare_number_on_the_wire_and_in_text() {
        let id = TenantId(42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert_eq!(serde_json::from_str::<TenantId>("42").unwrap(), id);
        assert_eq!(id.to_string(), "42");
    }

    #[test]
    fn a_serial_is_its_bare_text_on_the_wire_and_in_text() {
        let serial = DeviceSerial::from(" SN:1 ");
        assert_eq!(serde_json::to_string(&serial).unwrap(), "\" SN:1 \"");
        assert_eq!(
            serde_json::from_str::<DeviceSerial>("\" SN:1 \"").unwrap(),
            serial
        );
        assert_eq!(serial.to_string(), " SN:1 ");
        assert_eq!(serial.as_str(), " SN:1 ");
    }
}
