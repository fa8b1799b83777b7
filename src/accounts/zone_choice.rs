//! Choosing a time zone: the person's own, or (for owners) the company's default.

use serde_json::json;

use super::zone::Zone;
use super::{AccountError, Accounts, Role, Session};
use crate::events::{self, Action, Event, Subject};
use crate::store::StoreError;
use crate::store::device_page as stored;

/// An optional zone as a form sends it: empty clears it.
fn chosen(name: &str) -> Result<Option<Zone>, AccountError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    Zone::parse(name)
        .map(Some)
        .ok_or(AccountError::InvalidInput(
            "that is not a time zone; choose one from the list, such as Europe/Berlin",
        ))
}

impl Accounts {
    /// Sets the person's own time zone; an empty name follows the company's again.
    pub async fn set_time_zone(&self, session: &Session, name: &str) -> Result<(), AccountError> {
        let zone = chosen(name)?;
        let user = session.user.id;
        self.store
            .write(move |tx| stored::set_user_time_zone(tx, user, zone.map(|z| z.name())))
            .await?;
        Ok(())
    }

    /// Sets the company's default time zone (owners only, audited); empty means UTC.
    pub async fn set_company_time_zone(
        &self,
        session: &Session,
        name: &str,
    ) -> Result<(), AccountError> {
        if session.user.role != Role::Owner {
            return Err(AccountError::Forbidden);
        }
        let tenant = session.user.tenant_id.ok_or(AccountError::Forbidden)?;
        let zone = chosen(name)?.map(|z| z.name());
        let (now, actor) = (self.now_ms(), session.actor());
        self.store
            .write(move |tx| {
                stored::set_tenant_time_zone(tx, tenant, zone)?;
                events::record(
                    tx,
                    now,
                    Event::new(
                        Action::TenantSettingsChanged,
                        actor,
                        Subject::Tenant(tenant),
                    )
                    .tenant(Some(tenant))
                    .detail(json!({ "time_zone": zone.unwrap_or("UTC") })),
                )?;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_choice_clears_and_an_unknown_name_is_refused() {
        assert!(chosen("Nowhere").is_err());
        assert_eq!(chosen(" ").ok(), Some(None));
        assert_eq!(
            chosen(" Europe/Berlin ").ok().flatten().map(|z| z.name()),
            Some("Europe/Berlin")
        );
    }
}
