//! The application context: settings, clock and store, assembled once at start-up and shared by
//! every surface. Domain services hang off it as they are added.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::store::{Store, StoreError};

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub store: Store,
}

impl AppContext {
    /// Opens the database (applying migrations when configured) and assembles the context.
    pub async fn start(settings: Settings, clock: SharedClock) -> Result<Self, StoreError> {
        let store = Store::open(&settings.database).await?;
        if settings.database.migrate_on_start {
            let applied = store.migrate().await?;
            if !applied.is_empty() {
                tracing::info!(?applied, "applied database migrations");
            }
        }
        Ok(Self {
            settings: Arc::new(settings),
            clock,
            store,
        })
    }
}
