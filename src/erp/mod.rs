//! The ERP integration: how the manufacturer's ERP reports devices, sales and customers, and how
//! it learns what happens to them (an ordered event feed and signed webhooks). Knows neither
//! actix nor diesel: bodies arrive as JSON values, and each change runs in one `Store::write`
//! transaction with its audit and ERP events.

pub mod command;
pub mod customers;
pub mod devices;
mod error;
pub mod events;
pub mod import;
pub mod input;
pub mod models;
pub mod sales;
pub mod webhooks;

use std::sync::Arc;

use serde_json::Value;

pub use error::{Conflict, ErpError, FieldError, Location};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::ids::DeviceSerial;
use crate::store::erp::{self as stored, WebhookDelivery};
use crate::store::{Store, StoreError};
use customers::{CustomerInput, CustomerOutcome, InvitationSettings};
use devices::{DeviceInput, DeviceOutcome};
use events::FeedPage;
use models::{ModelInput, ModelOutcome};
use sales::{Delivery, SaleInput, SaleOutcome};
use webhooks::{DeliveryReport, WebhookConfigError, Webhooks};

/// The scope a service client needs for the ERP API.
pub const SCOPE: &str = "erp";
/// Events per feed page unless the ERP asks for another number, and the most it may ask for.
pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 1000;

/// Why the ERP integration could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Webhooks(#[from] WebhookConfigError),
    #[error("cannot record the webhook setting: {0}")]
    Store(#[from] StoreError),
}

/// The ERP service, shared by the API handlers and the CLI.
pub struct Erp {
    store: Store,
    clock: SharedClock,
    invitations: InvitationSettings,
    webhooks: Option<Arc<Webhooks>>,
}

impl Erp {
    /// Reads the webhook settings. With a webhook URL configured, new events go to the outbox
    /// from now on (see [`Erp::publish_webhook_setting`] for turning that off).
    pub async fn open(
        store: Store,
        clock: SharedClock,
        settings: &Settings,
        outbox: crate::mail::Outbox,
    ) -> Result<Self, StartError> {
        let webhooks = Webhooks::from_settings(&settings.erp)?.map(Arc::new);
        if webhooks.is_some() {
            store
                .write(|tx| stored::set_webhook_delivery(tx, WebhookDelivery::Enabled))
                .await?;
        }
        Ok(Self {
            store,
            clock,
            invitations: InvitationSettings {
                public_url: settings.server.public_url.as_str().to_owned(),
                lifetime_ms: i64::from(settings.portal.invitation_lifetime_secs.get()) * 1000,
                outbox,
            },
            webhooks,
        })
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `PUT /devices/{serial}`.
    pub async fn put_device(
        &self,
        actor: &str,
        serial: &DeviceSerial,
        body: &Value,
    ) -> Result<DeviceOutcome, ErpError> {
        let input = DeviceInput::parse(serial.as_str(), body)?;
        let (now, actor, serial) = (self.now_ms(), actor.to_owned(), serial.to_owned());
        self.store
            .write(move |tx| devices::apply(tx, now, &actor, &serial, &input))
            .await
    }

    /// `PUT /sales/{sale_id}`.
    pub async fn put_sale(
        &self,
        actor: &str,
        sale_id: &str,
        body: &Value,
    ) -> Result<SaleOutcome, ErpError> {
        let input = SaleInput::parse(sale_id, body)?;
        let (now, actor, sale_id) = (self.now_ms(), actor.to_owned(), sale_id.to_owned());
        self.store
            .write(move |tx| sales::apply(tx, now, &actor, &sale_id, Delivery::Put(&input)))
            .await
    }

    /// `DELETE /sales/{sale_id}`: the sale was cancelled.
    pub async fn cancel_sale(&self, actor: &str, sale_id: &str) -> Result<SaleOutcome, ErpError> {
        sales::check_sale_id(sale_id)?;
        let (now, actor, sale_id) = (self.now_ms(), actor.to_owned(), sale_id.to_owned());
        self.store
            .write(move |tx| sales::apply(tx, now, &actor, &sale_id, Delivery::Cancel))
            .await
    }

    /// `PUT /customers/{customer_number}`.
    pub async fn put_customer(
        &self,
        actor: &str,
        customer_number: &str,
        body: &Value,
    ) -> Result<CustomerOutcome, ErpError> {
        let input = CustomerInput::parse(customer_number, body)?;
        let (now, actor, number) = (self.now_ms(), actor.to_owned(), customer_number.to_owned());
        let invitations = self.invitations.clone();
        self.store
            .write(move |tx| customers::apply(tx, now, &actor, &number, &input, &invitations))
            .await
    }

    /// `PUT /models/{model}`: the metadata of the model's metrics.
    pub async fn put_model(
        &self,
        actor: &str,
        model: &str,
        body: &Value,
    ) -> Result<ModelOutcome, ErpError> {
        let input = ModelInput::parse(model, body)?;
        let (now, actor, model) = (self.now_ms(), actor.to_owned(), model.to_owned());
        self.store
            .write(move |tx| models::apply(tx, now, &actor, &model, &input))
            .await
    }

    /// `GET /events?after=&limit=`: the cursor is the id of the last event seen (0, or absent,
    /// to start from the beginning).
    pub async fn events(
        &self,
        after: Option<&str>,
        limit: Option<&str>,
    ) -> Result<FeedPage, ErpError> {
        let mut errors = Vec::new();
        let after = match after {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .unwrap_or_else(|| {
                    errors.push(FieldError {
                        location: Location::Query("after"),
                        detail: "must be a cursor from an earlier page (next_cursor)".into(),
                    });
                    0
                }),
        };
        let limit = match limit {
            None | Some("") => DEFAULT_PAGE,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .unwrap_or_else(|| {
                    errors.push(FieldError {
                        location: Location::Query("limit"),
                        detail: format!("must be an integer from 1 to {MAX_PAGE}"),
                    });
                    DEFAULT_PAGE
                }),
        };
        if !errors.is_empty() {
            return Err(ErpError::Validation(errors));
        }
        Ok(self
            .store
            .read(move |tx| events::page(tx, after, limit))
            .await?)
    }

    /// Records in the database whether webhooks are configured, so that every instance queues
    /// new events for delivery or stops doing so. `serve` calls it; admin commands do not, so a
    /// command run with another configuration never turns webhooks off.
    pub async fn publish_webhook_setting(&self) -> Result<(), StoreError> {
        let delivery = if self.webhooks.is_some() {
            WebhookDelivery::Enabled
        } else {
            WebhookDelivery::Disabled
        };
        self.store
            .write(move |tx| stored::set_webhook_delivery(tx, delivery))
            .await
    }

    /// The webhook sender, when webhooks are configured.
    pub fn webhooks(&self) -> Option<Arc<Webhooks>> {
        self.webhooks.clone()
    }

    /// One delivery pass (tests and operators trigger it directly; `serve` runs it in a loop).
    pub async fn deliver_webhooks(&self) -> Result<DeliveryReport, StoreError> {
        match &self.webhooks {
            Some(w) => w.deliver_due(&self.store, &self.clock).await,
            None => Ok(DeliveryReport::default()),
        }
    }
}
