//! Apps that sign people in (clients of kind `app`): the company they belong to, whether they
//! are first-party, their registered redirect URIs; the authorization codes issued to them, and
//! people's consents.

use diesel::prelude::*;

use super::registry::{ClientKind, NewClient, insert_client};
use super::schema::{authorization_codes, client_redirect_uris, clients, consents};
use super::{StoreError, Tx};
use crate::ids::{TenantId, UserId};

const SIGN_IN: &str = "sign_in";
const SIGN_OUT: &str = "sign_out";

/// What an app is, beyond its client row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub client_id: String,
    pub name: String,
    pub active: bool,
    /// `None`: the manufacturer's app, for people of every company.
    pub tenant_id: Option<TenantId>,
    pub first_party: bool,
    /// Neither a secret nor keys: a public client (RFC 6749 §2.1).
    pub public: bool,
    /// Registered with a JWK Set: it authenticates with `private_key_jwt`.
    pub keys: bool,
    pub scope: String,
    /// Exact redirect URIs for the authorization response.
    pub redirect_uris: Vec<String>,
    /// Exact URIs RP-initiated logout may send people back to.
    pub post_logout_redirect_uris: Vec<String>,
    pub created_at: i64,
}

/// An app to register: its client row plus what only apps have.
pub struct NewApp<'a> {
    pub client: &'a NewClient,
    pub tenant_id: Option<TenantId>,
    pub first_party: bool,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
}

pub fn insert_app(tx: &mut Tx<'_>, app: &NewApp<'_>) -> Result<(), StoreError> {
    insert_client(tx, app.client)?;
    diesel::update(clients::table.find(&app.client.client_id))
        .set((
            clients::tenant_id.eq(app.tenant_id),
            clients::first_party.eq(app.first_party),
        ))
        .execute(tx.conn)?;
    insert_uris(
        tx,
        &app.client.client_id,
        app.redirect_uris,
        app.post_logout_redirect_uris,
    )
}

fn insert_uris(
    tx: &mut Tx<'_>,
    client_id: &str,
    redirect_uris: &[String],
    post_logout_redirect_uris: &[String],
) -> Result<(), StoreError> {
    let uris = redirect_uris
        .iter()
        .map(|u| (SIGN_IN, u))
        .chain(post_logout_redirect_uris.iter().map(|u| (SIGN_OUT, u)));
    for (purpose, uri) in uris {
        diesel::insert_into(client_redirect_uris::table)
            .values((
                client_redirect_uris::client_id.eq(client_id),
                client_redirect_uris::purpose.eq(purpose),
                client_redirect_uris::uri.eq(uri),
            ))
            .execute(tx.conn)?;
    }
    Ok(())
}

/// Replaces an app's redirect URIs of both purposes.
pub fn replace_uris(
    tx: &mut Tx<'_>,
    client_id: &str,
    redirect_uris: &[String],
    post_logout_redirect_uris: &[String],
) -> Result<(), StoreError> {
    diesel::delete(
        client_redirect_uris::table.filter(client_redirect_uris::client_id.eq(client_id)),
    )
    .execute(tx.conn)?;
    insert_uris(tx, client_id, redirect_uris, post_logout_redirect_uris)
}

/// Gives an app a new secret (its hash): the old one stops working at once.
pub fn set_secret_hash(tx: &mut Tx<'_>, client_id: &str, hash: &str) -> Result<(), StoreError> {
    diesel::update(clients::table.find(client_id))
        .set(clients::secret_hash.eq(hash))
        .execute(tx.conn)?;
    Ok(())
}

type AppRow = (
    String,
    String,
    String,
    Option<TenantId>,
    bool,
    Option<String>,
    Option<String>,
    String,
    i64,
);

fn app_columns() -> (
    clients::client_id,
    clients::name,
    clients::status,
    clients::tenant_id,
    clients::first_party,
    clients::jwks,
    clients::secret_hash,
    clients::scope,
    clients::created_at,
) {
    (
        clients::client_id,
        clients::name,
        clients::status,
        clients::tenant_id,
        clients::first_party,
        clients::jwks,
        clients::secret_hash,
        clients::scope,
        clients::created_at,
    )
}

fn with_uris(tx: &mut Tx<'_>, row: AppRow) -> Result<AppRecord, StoreError> {
    let uris: Vec<(String, String)> = client_redirect_uris::table
        .filter(client_redirect_uris::client_id.eq(&row.0))
        .order((client_redirect_uris::purpose, client_redirect_uris::uri))
        .select((client_redirect_uris::purpose, client_redirect_uris::uri))
        .load(tx.conn)?;
    Ok(app_record(row, &uris))
}

/// An app from its client row and its (purpose, URI) pairs.
fn app_record(row: AppRow, uris: &[(String, String)]) -> AppRecord {
    let (client_id, name, status, tenant_id, first_party, jwks, secret, scope, created_at) = row;
    let of = |purpose: &str| {
        uris.iter()
            .filter(|(p, _)| p == purpose)
            .map(|(_, u)| u.clone())
            .collect()
    };
    AppRecord {
        redirect_uris: of(SIGN_IN),
        post_logout_redirect_uris: of(SIGN_OUT),
        client_id,
        name,
        active: status == "active",
        tenant_id,
        first_party,
        public: jwks.is_none() && secret.is_none(),
        keys: jwks.is_some(),
        scope,
        created_at,
    }
}

/// The app with this client id (`None` for other kinds of client).
pub fn find_app(tx: &mut Tx<'_>, client_id: &str) -> Result<Option<AppRecord>, StoreError> {
    let row: Option<AppRow> = clients::table
        .find(client_id)
        .filter(clients::kind.eq(ClientKind::App))
        .select(app_columns())
        .first(tx.conn)
        .optional()?;
    row.map(|r| with_uris(tx, r)).transpose()
}

/// The apps of one company (`Some`), or every app (`None`), newest first, with their URIs.
pub fn list_apps(tx: &mut Tx<'_>, tenant: Option<TenantId>) -> Result<Vec<AppRecord>, StoreError> {
    let mut query = clients::table
        .filter(clients::kind.eq(ClientKind::App))
        .select(app_columns())
        .order((clients::created_at.desc(), clients::client_id))
        .into_boxed();
    if let Some(tenant) = tenant {
        query = query.filter(clients::tenant_id.eq(tenant));
    }
    let rows: Vec<AppRow> = query.load(tx.conn)?;
    let ids: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    let uris: Vec<(String, String, String)> = client_redirect_uris::table
        .filter(client_redirect_uris::client_id.eq_any(ids))
        .order((client_redirect_uris::purpose, client_redirect_uris::uri))
        .select((
            client_redirect_uris::client_id,
            client_redirect_uris::purpose,
            client_redirect_uris::uri,
        ))
        .load(tx.conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mine: Vec<(String, String)> = uris
                .iter()
                .filter(|(c, _, _)| *c == row.0)
                .map(|(_, p, u)| (p.clone(), u.clone()))
                .collect();
            app_record(row, &mine)
        })
        .collect())
}

/// An authorization code as issued.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRecord {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub dpop_jkt: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub family_id: Option<String>,
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
}

pub fn insert_code(tx: &mut Tx<'_>, code: &CodeRecord) -> Result<(), StoreError> {
    diesel::insert_into(authorization_codes::table)
        .values(code)
        .execute(tx.conn)?;
    Ok(())
}

pub fn find_code(tx: &mut Tx<'_>, code_hash: &str) -> Result<Option<CodeRecord>, StoreError> {
    Ok(authorization_codes::table
        .find(code_hash)
        .select(CodeRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// What redeeming a code issued.
pub struct Issued<'a> {
    pub family_id: &'a str,
    pub access_jti: &'a str,
    pub access_expires_at: i64,
}

/// Marks a code redeemed, with what it issued; false when another request redeemed it first
/// (of two concurrent redemptions exactly one wins).
pub fn redeem_code(
    tx: &mut Tx<'_>,
    code_hash: &str,
    issued: &Issued<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set((
        authorization_codes::used_at.eq(now),
        authorization_codes::family_id.eq(issued.family_id),
        authorization_codes::access_jti.eq(issued.access_jti),
        authorization_codes::access_expires_at.eq(issued.access_expires_at),
    ))
    .execute(tx.conn)?;
    Ok(n == 1)
}

/// Forgets codes that expired before `before`.
pub fn delete_expired_codes(tx: &mut Tx<'_>, before: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        authorization_codes::table.filter(authorization_codes::expires_at.lt(before)),
    )
    .execute(tx.conn)?)
}

/// The scopes a person consented to for an app, if any.
pub fn consent(
    tx: &mut Tx<'_>,
    user_id: UserId,
    client_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(consents::table
        .find((user_id, client_id))
        .select(consents::scope)
        .first(tx.conn)
        .optional()?)
}

/// Records (or widens) a person's consent to an app.
pub fn grant_consent(
    tx: &mut Tx<'_>,
    user_id: UserId,
    client_id: &str,
    scope: &str,
    now: i64,
) -> Result<(), StoreError> {
    diesel::delete(consents::table.find((user_id, client_id))).execute(tx.conn)?;
    diesel::insert_into(consents::table)
        .values((
            consents::user_id.eq(user_id),
            consents::client_id.eq(client_id),
            consents::scope.eq(scope),
            consents::granted_at.eq(now),
        ))
        .execute(tx.conn)?;
    Ok(())
}

/// A consent as the account page lists it.
#[derive(Debug, Clone)]
pub struct ConsentRecord {
    pub client_id: String,
    pub app_name: String,
    pub scope: String,
    pub granted_at: i64,
}

pub fn consents_of(tx: &mut Tx<'_>, user_id: UserId) -> Result<Vec<ConsentRecord>, StoreError> {
    let rows: Vec<(String, String, String, i64)> = consents::table
        .inner_join(clients::table)
        .filter(consents::user_id.eq(user_id))
        .order(consents::granted_at.desc())
        .select((
            consents::client_id,
            clients::name,
            consents::scope,
            consents::granted_at,
        ))
        .load(tx.conn)?;
    Ok(rows
        .into_iter()
        .map(|(client_id, app_name, scope, granted_at)| ConsentRecord {
            client_id,
            app_name,
            scope,
            granted_at,
        })
        .collect())
}

/// Withdraws a consent; returns whether there was one.
pub fn revoke_consent(
    tx: &mut Tx<'_>,
    user_id: UserId,
    client_id: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::delete(consents::table.find((user_id, client_id))).execute(tx.conn)? == 1)
}
