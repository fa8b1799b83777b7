//! What the device page needs besides readings: the ERP's per-model metric metadata
//! (`model_metrics`) and the time zones people and companies chose (`users.time_zone`,
//! `tenants.time_zone`).

use diesel::prelude::*;

use super::schema::{model_metrics, tenants, users};
use super::{StoreError, Tx};
use crate::ids::{TenantId, UserId};

/// What the ERP says of one metric of a model.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = model_metrics)]
pub struct ModelMetric {
    pub model: String,
    pub metric: String,
    pub label: String,
    pub unit: Option<String>,
    pub decimals: Option<i32>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    pub updated_at: i64,
}

impl ModelMetric {
    /// The same metadata, whenever it was written.
    pub fn same_as(&self, other: &Self) -> bool {
        Self {
            updated_at: other.updated_at,
            ..self.clone()
        } == *other
    }
}

/// The metadata of every metric of `model`, by metric key.
pub fn model_metrics(tx: &mut Tx<'_>, model: &str) -> Result<Vec<ModelMetric>, StoreError> {
    Ok(model_metrics::table
        .filter(model_metrics::model.eq(model))
        .order(model_metrics::metric)
        .select(ModelMetric::as_select())
        .load(tx.conn)?)
}

/// Replaces the metadata of `model` with `metrics` (all of the same model).
pub fn replace_model_metrics(
    tx: &mut Tx<'_>,
    model: &str,
    metrics: &[ModelMetric],
) -> Result<(), StoreError> {
    diesel::delete(model_metrics::table.filter(model_metrics::model.eq(model))).execute(tx.conn)?;
    // One row at a time: a model has a handful of metrics.
    for metric in metrics {
        diesel::insert_into(model_metrics::table)
            .values(metric)
            .execute(tx.conn)?;
    }
    Ok(())
}

/// Sets (or clears) a user's time zone.
pub fn set_user_time_zone(
    tx: &mut Tx<'_>,
    user: UserId,
    zone: Option<&str>,
) -> Result<(), StoreError> {
    diesel::update(users::table.find(user))
        .set(users::time_zone.eq(zone))
        .execute(tx.conn)?;
    Ok(())
}

/// Sets (or clears) a company's time zone.
pub fn set_tenant_time_zone(
    tx: &mut Tx<'_>,
    tenant: TenantId,
    zone: Option<&str>,
) -> Result<(), StoreError> {
    diesel::update(tenants::table.find(tenant))
        .set(tenants::time_zone.eq(zone))
        .execute(tx.conn)?;
    Ok(())
}
