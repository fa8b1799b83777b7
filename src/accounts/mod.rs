//! Customer accounts. For now: tenants (the customer companies devices are paired into).

use serde_json::json;

use crate::audit::{self, Action};
use crate::store::{Store, StoreError, registry};

/// Creates a tenant; returns its id.
pub async fn create_tenant(
    store: &Store,
    now_ms: i64,
    actor: &str,
    name: &str,
) -> Result<i64, StoreError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::Conflict(
            "a tenant name must be 1–200 printable characters".into(),
        ));
    }
    let actor = actor.to_owned();
    store
        .write(move |tx| {
            let id = registry::insert_tenant(tx, &name, now_ms)?;
            crate::store::audit::append(
                tx,
                &audit::event(
                    now_ms,
                    Action::TenantCreated,
                    actor,
                    format!("tenant:{id}"),
                    Some(id),
                    json!({ "name": name }),
                ),
            )?;
            Ok(id)
        })
        .await
}
