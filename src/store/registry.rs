//! Tenants, OAuth clients and devices. A device is a client of kind `device` whose client_id is
//! its serial number, plus a `devices` row for what only devices have.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::batch::{Bind, Prepared, fixed_sql};
pub use super::kinds::{ActiveStatus, ClientKind};
use super::schema::{clients, devices, tenants};
use super::tokens::DeviceTokenState;
use super::{StoreError, Tx};
use crate::ids::{DeviceSerial, TenantId};

#[derive(Queryable, Selectable)]
#[diesel(table_name = clients)]
struct ClientRow {
    client_id: String,
    kind: ClientKind,
    name: String,
    status: ActiveStatus,
    jwks: Option<String>,
    secret_hash: Option<String>,
    scope: String,
    created_at: i64,
}

/// A registered OAuth client.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client_id: String,
    pub kind: ClientKind,
    pub name: String,
    pub active: bool,
    /// JWK Set JSON, for private_key_jwt.
    pub jwks: Option<String>,
    /// Hex SHA-256 of the client secret.
    pub secret_hash: Option<String>,
    pub scope: String,
    pub created_at: i64,
}

impl From<ClientRow> for ClientRecord {
    fn from(row: ClientRow) -> Self {
        Self {
            kind: row.kind,
            active: row.status == ActiveStatus::Active,
            client_id: row.client_id,
            name: row.name,
            jwks: row.jwks,
            secret_hash: row.secret_hash,
            scope: row.scope,
            created_at: row.created_at,
        }
    }
}

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub kind: ClientKind,
    pub name: String,
    pub jwks: Option<String>,
    pub secret_hash: Option<String>,
    pub scope: String,
    pub created_at: i64,
}

/// A registered device.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = devices)]
pub struct DeviceRecord {
    pub serial: DeviceSerial,
    pub model: String,
    pub tenant_id: Option<TenantId>,
    pub paired_at: Option<i64>,
    pub token_generation: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub created_at: i64,
    pub require_totp: bool,
    /// The company's default time zone (an IANA name), if an owner set one.
    pub time_zone: Option<String>,
    /// Approving a pairing needs a passkey; a TOTP code is refused.
    pub require_passkey_approval: bool,
}

pub fn find_client(tx: &mut Tx<'_>, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
    Ok(clients::table
        .find(client_id)
        .select(ClientRow::as_select())
        .first(tx.conn)
        .optional()?
        .map(ClientRecord::from))
}

/// True when the client is still active with exactly these registered keys: a write transaction
/// checks this when the keys that authenticated the request came from a cache, so that a client
/// disabled or re-keyed meanwhile is refused as if it had been read afresh.
pub fn client_unchanged(tx: &mut Tx<'_>, client_id: &str, jwks: &str) -> Result<bool, StoreError> {
    // Every token request from a cached client runs this: a statement prepared once.
    fixed_sql!(
        ClientUnchanged,
        "SELECT COUNT(*) FROM clients WHERE client_id = ",
        " AND status = 'active' AND jwks = ",
        "",
    );
    let n: i64 =
        Prepared::<ClientUnchanged, BigInt>::new(&[Bind::Text(client_id), Bind::Text(jwks)])
            .get_result(tx.conn)?;
    Ok(n == 1)
}

/// Inserts a client; `Conflict` when the client_id exists.
pub fn insert_client(tx: &mut Tx<'_>, client: &NewClient) -> Result<(), StoreError> {
    diesel::insert_into(clients::table)
        .values((
            clients::client_id.eq(&client.client_id),
            clients::kind.eq(client.kind),
            clients::name.eq(&client.name),
            clients::status.eq(ActiveStatus::Active),
            clients::jwks.eq(&client.jwks),
            clients::secret_hash.eq(&client.secret_hash),
            clients::scope.eq(&client.scope),
            clients::created_at.eq(client.created_at),
        ))
        .execute(tx.conn)?;
    Ok(())
}

/// Enables or disables a client.
pub fn set_client_status(
    tx: &mut Tx<'_>,
    client_id: &str,
    status: ActiveStatus,
) -> Result<bool, StoreError> {
    let n = diesel::update(clients::table.find(client_id))
        .set(clients::status.eq(status))
        .execute(tx.conn)?;
    Ok(n == 1)
}

pub fn insert_device(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
    model: &str,
    created_at: i64,
) -> Result<(), StoreError> {
    diesel::insert_into(devices::table)
        .values((
            devices::serial.eq(serial),
            devices::model.eq(model),
            devices::token_generation.eq(0),
            devices::created_at.eq(created_at),
        ))
        .execute(tx.conn)?;
    Ok(())
}

pub fn find_device(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
) -> Result<Option<DeviceRecord>, StoreError> {
    // Every refresh runs this: a fixed statement. The columns are DeviceRecord's, in order.
    fixed_sql!(
        DeviceBySerial,
        "SELECT serial, model, tenant_id, paired_at, token_generation, created_at \
         FROM devices WHERE serial = ",
        "",
    );
    Ok(
        Prepared::<DeviceBySerial, devices::SqlType>::new(&[Bind::Text(serial.as_str())])
            .get_result::<DeviceRecord>(tx.conn)
            .optional()?,
    )
}

/// The token state of one device, if it exists.
pub fn device_token_state(
    tx: &mut Tx<'_>,
    serial: &DeviceSerial,
) -> Result<Option<DeviceTokenState>, StoreError> {
    // Every refresh runs this: a fixed statement.
    fixed_sql!(
        DeviceTokenStateBySerial,
        "SELECT d.tenant_id, d.token_generation, c.status FROM devices d \
         JOIN clients c ON c.client_id = d.serial WHERE d.serial = ",
        "",
    );
    Ok(
        Prepared::<DeviceTokenStateBySerial, (Nullable<BigInt>, BigInt, Text)>::new(&[Bind::Text(
            serial.as_str(),
        )])
        .get_result::<(Option<TenantId>, i64, ActiveStatus)>(tx.conn)
        .optional()?
        .map(|(tenant_id, token_generation, status)| DeviceTokenState {
            tenant_id,
            token_generation,
            active: status == ActiveStatus::Active,
        }),
    )
}

/// Ends every token of a device at once: the token generation moves on (so access tokens of
/// earlier generations stop being active) and every refresh-token family is revoked. Returns the
/// number of families revoked.
pub fn revoke_device_tokens(tx: &mut Tx<'_>, serial: &DeviceSerial) -> Result<usize, StoreError> {
    diesel::update(devices::table.find(serial))
        .set(devices::token_generation.eq(devices::token_generation + 1))
        .execute(tx.conn)?;
    super::tokens::revoke_client_families(tx, serial.as_str())
}

pub fn insert_tenant(tx: &mut Tx<'_>, name: &str, created_at: i64) -> Result<TenantId, StoreError> {
    Ok(diesel::insert_into(tenants::table)
        .values((tenants::name.eq(name), tenants::created_at.eq(created_at)))
        .returning(tenants::id)
        .get_result(tx.conn)?)
}

pub fn find_tenant(tx: &mut Tx<'_>, id: TenantId) -> Result<Option<TenantRecord>, StoreError> {
    Ok(tenants::table
        .find(id)
        .select(TenantRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Whether a tenant's members must sign in with a TOTP code (`tenants.require_totp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRequirement {
    Required,
    Optional,
}

/// Whether approving a pairing needs a passkey (`tenants.require_passkey_approval`).
pub fn set_tenant_requires_passkey_approval(
    tx: &mut Tx<'_>,
    id: TenantId,
    required: bool,
) -> Result<(), StoreError> {
    diesel::update(tenants::table.find(id))
        .set(tenants::require_passkey_approval.eq(required))
        .execute(tx.conn)?;
    Ok(())
}

pub fn set_tenant_requires_totp(
    tx: &mut Tx<'_>,
    id: TenantId,
    requirement: TotpRequirement,
) -> Result<(), StoreError> {
    diesel::update(tenants::table.find(id))
        .set(tenants::require_totp.eq(requirement == TotpRequirement::Required))
        .execute(tx.conn)?;
    Ok(())
}
