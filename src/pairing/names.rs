//! Who did what to a device, by name: the person behind a staff grant, and a device's pairing
//! history with the people who approved each pairing (names read once, for the whole history).

use super::{Ceremony, PairingError};
use crate::accounts::Session;
use crate::events::Party;
use crate::ids::{DeviceSerial, TenantId};
use crate::store::history::{self, Names, Wanted};
use crate::store::pairings::{self, PairingRecord};
use crate::store::{StoreError, Tx};

/// A device's pairings, newest first, and the names of the people they mention.
#[derive(Debug, Clone, Default)]
pub struct PairingHistory {
    pub pairings: Vec<PairingRecord>,
    pub names: Names,
}

/// The names of the people behind `actors` (`user:7`; other actors need none).
pub fn people(tx: &mut Tx<'_>, actors: &[&str]) -> Result<Names, StoreError> {
    let mut wanted = Wanted::default();
    for actor in actors {
        if let Party::User(id) = Party::parse(actor) {
            wanted.users.push(id);
        }
    }
    wanted.users.sort_unstable();
    wanted.users.dedup();
    history::names(tx, &wanted)
}

/// The name of whoever granted `tenant` the right to pair `serial`.
pub(super) fn granter(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    tenant: TenantId,
) -> Result<Option<String>, StoreError> {
    let Some(actor) = pairings::granted_by(tx, serial, tenant)? else {
        return Ok(None);
    };
    let names = people(tx, &[&actor])?;
    Ok(Some(
        match Party::parse(&actor) {
            Party::User(id) => names.users.get(&id).map(|p| p.name.clone()),
            _ => None,
        }
        .unwrap_or_else(|| "a member of the manufacturer's support team".to_owned()),
    ))
}

impl Ceremony {
    /// A device's pairing history with names, for a person who may see the device: their own
    /// company's pairings only.
    pub async fn named_history(
        &self,
        session: &Session,
        serial: &DeviceSerial,
    ) -> Result<PairingHistory, PairingError> {
        let pairings = self.history(session, serial).await?;
        Ok(self
            .store
            .read(move |tx| {
                let actors: Vec<&str> = pairings
                    .iter()
                    .flat_map(|p| [Some(p.approved_by.as_str()), p.granted_by.as_deref()])
                    .flatten()
                    .collect();
                let names = people(tx, &actors)?;
                Ok::<_, StoreError>(PairingHistory { pairings, names })
            })
            .await?)
    }
}
