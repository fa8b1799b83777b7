//! The application context: settings, clock and store, assembled once at start-up and shared by
//! every surface. Domain services hang off it as they are added (the telemetry writer task is
//! started here, on the runtime that starts the context).

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::master_key::{MasterKey, MasterKeyError};
use crate::erp::{Erp, StartError as ErpStartError};
use crate::maintenance;
use crate::meters::Registry;
use crate::oauth::{OAuth, StartError as OAuthStartError};
use crate::pairing::Ceremony;
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub store: Store,
    pub oauth: Arc<OAuth>,
    pub accounts: Arc<Accounts>,
    pub telemetry: Arc<Telemetry>,
    pub erp: Arc<Erp>,
    pub ceremony: Arc<Ceremony>,
    /// This context's measurements, rendered at `/metrics`.
    pub metrics: Arc<Registry>,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {database}: {source}")]
    Database {
        database: String,
        source: StoreError,
    },
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(transparent)]
    OAuth(#[from] OAuthStartError),
    #[error(transparent)]
    Erp(#[from] ErpStartError),
}

impl AppContext {
    /// Opens the database (applying migrations when configured) and assembles the context.
    pub async fn start(settings: Settings, clock: SharedClock) -> Result<Self, StartError> {
        let database = |source| StartError::Database {
            database: settings.database.url.redacted(),
            source,
        };
        let metrics = Registry::start();
        let store = Store::open_measured(&settings.database, metrics.meters().clone())
            .await
            .map_err(database)?;
        if settings.database.migrate_on_start {
            let applied = store.migrate().await.map_err(database)?;
            if !applied.is_empty() {
                tracing::info!(?applied, "applied database migrations");
            }
        }
        // Best effort: a database that takes no writes yet still lets the server start (not
        // ready), and housekeeping tries again each minute.
        let now_ms = clock.now().timestamp_millis();
        if let Err(e) = maintenance::prepare_telemetry(&store, &settings.telemetry, now_ms).await {
            tracing::warn!(error = %e, "cannot prepare telemetry storage yet; will retry");
        }
        let settings = Arc::new(settings);
        let master = MasterKey::load(&settings.keys)?;
        let oauth = OAuth::open(store.clone(), clock.clone(), settings.clone(), &master).await?;
        let accounts = Accounts::new(store.clone(), clock.clone(), settings.clone(), &master);
        let outbox = accounts.outbox().clone();
        let erp = Erp::open(store.clone(), clock.clone(), &settings, outbox).await?;
        let accounts = Arc::new(accounts);
        let telemetry = Telemetry::start(
            store.clone(),
            clock.clone(),
            &settings,
            oauth.key_ring(),
            oauth.audience(),
            &master,
            Arc::clone(&accounts),
        );
        let ceremony = Ceremony::new(
            store.clone(),
            clock.clone(),
            settings.clone(),
            Arc::clone(&accounts),
            &master,
        );
        Ok(Self {
            settings,
            clock,
            store,
            oauth: Arc::new(oauth),
            accounts,
            telemetry: Arc::new(telemetry),
            erp: Arc::new(erp),
            ceremony: Arc::new(ceremony),
            metrics,
        })
    }
}
