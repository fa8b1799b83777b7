//! Who did something and what it was about, read back from a log row's `kind:id` strings
//! (`user:7`, `device:SN-1`, `client:erp`, `cli`), so that pages can name them.

use crate::ids::{DeviceSerial, GroupId, TenantId, UserId};

/// An actor or a subject of a logged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    User(UserId),
    Tenant(TenantId),
    Group(GroupId),
    Client(String),
    Device(DeviceSerial),
    Sale(String),
    Model(String),
    Email(String),
    Key(String),
    Endpoint(String),
    /// A sign-in for an address that matches no account.
    UnknownAccount,
    /// An operator at pairgate's command line.
    Cli,
    /// Nobody signed in (a failed sign-in).
    Anonymous,
    /// Anything else, kept as written.
    Other(String),
}

impl Party {
    /// Reads an actor or subject as the log writes it.
    pub fn parse(text: &str) -> Self {
        let number = |id: &str| id.parse::<i64>().ok();
        match text.split_once(':') {
            Some(("user", id)) => {
                number(id).map_or_else(|| Self::Other(text.into()), |n| Self::User(UserId(n)))
            }
            Some(("tenant", id)) => {
                number(id).map_or_else(|| Self::Other(text.into()), |n| Self::Tenant(TenantId(n)))
            }
            Some(("group", id)) => {
                number(id).map_or_else(|| Self::Other(text.into()), |n| Self::Group(GroupId(n)))
            }
            Some(("client", id)) => Self::Client(id.into()),
            Some(("device", serial)) => Self::Device(serial.into()),
            Some(("sale", id)) => Self::Sale(id.into()),
            Some(("model", name)) => Self::Model(name.into()),
            Some(("email", address)) => Self::Email(address.into()),
            Some(("key", kid)) => Self::Key(kid.into()),
            Some(("endpoint", path)) => Self::Endpoint(path.into()),
            Some(("account", "unknown")) => Self::UnknownAccount,
            None if text == "cli" => Self::Cli,
            None if text == "anonymous" => Self::Anonymous,
            _ => Self::Other(text.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Subject;

    #[test]
    fn subjects_and_actors_read_back() {
        for (subject, party) in [
            (Subject::User(UserId(7)), Party::User(UserId(7))),
            (Subject::Tenant(TenantId(2)), Party::Tenant(TenantId(2))),
            (Subject::Group(GroupId(3)), Party::Group(GroupId(3))),
            (Subject::Client("erp".into()), Party::Client("erp".into())),
            (Subject::Device("SN:1".into()), Party::Device("SN:1".into())),
            (Subject::Sale("S-1".into()), Party::Sale("S-1".into())),
            (Subject::Model("M 1".into()), Party::Model("M 1".into())),
            (Subject::Email("a@b".into()), Party::Email("a@b".into())),
            (Subject::Key("k1".into()), Party::Key("k1".into())),
            (Subject::Endpoint("/t".into()), Party::Endpoint("/t".into())),
            (Subject::UnknownAccount, Party::UnknownAccount),
        ] {
            assert_eq!(Party::parse(&subject.to_string()), party);
        }
        assert_eq!(Party::parse("cli"), Party::Cli);
        assert_eq!(Party::parse("anonymous"), Party::Anonymous);
        assert_eq!(Party::parse("user:x"), Party::Other("user:x".into()));
    }
}
