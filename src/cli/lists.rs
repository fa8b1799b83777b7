//! The read commands: `tenant list`, `user list`, `device list|show`, `client list`, printed as
//! tables for people (times in RFC 3339, counts in words that agree with their number).

use crate::app::AppContext;
use crate::ids::{DeviceSerial, TenantId};
use crate::store::listing::{self, DeviceState};
use crate::store::registry::{self, DeviceRecord};

/// `1 user`, `3 users`.
pub(super) fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A Unix-millisecond time as RFC 3339 (UTC, whole seconds).
pub(super) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn failed(e: impl std::fmt::Display) -> String {
    format!("reading the database: {e}")
}

/// Fails with "no tenant with id N" unless the tenant exists.
pub(super) async fn require_tenant(ctx: &AppContext, id: i64) -> Result<(), String> {
    let tenant = TenantId::from(id);
    let found = ctx
        .store
        .read(move |tx| registry::find_tenant(tx, tenant))
        .await
        .map_err(failed)?;
    found.map(|_| ()).ok_or(format!("no tenant with id {id}"))
}

pub(super) async fn tenants(ctx: &AppContext) -> Result<(), String> {
    let tenants = ctx.store.read(listing::tenants).await.map_err(failed)?;
    if tenants.is_empty() {
        println!("no tenants");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tenants
        .into_iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name,
                t.erp_customer_number.unwrap_or_else(|| "-".to_owned()),
                rfc3339(t.created_at),
                count(t.users, "user", "users"),
            ]
        })
        .collect();
    let header = ["ID", "NAME", "ERP CUSTOMER", "CREATED", "USERS"];
    print!("{}", table(&header, &rows));
    Ok(())
}

pub(super) async fn users(ctx: &AppContext, tenant: Option<i64>) -> Result<(), String> {
    if let Some(id) = tenant {
        require_tenant(ctx, id).await?;
    }
    let tenant = tenant.map(TenantId::from);
    let users = ctx
        .store
        .read(move |tx| listing::users(tx, tenant))
        .await
        .map_err(failed)?;
    if users.is_empty() {
        println!("no users");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .into_iter()
        .map(|u| {
            vec![
                u.id.to_string(),
                u.email,
                u.name,
                u.role.as_str().to_owned(),
                u.status.as_str().to_owned(),
                if u.totp_enabled { "yes" } else { "no" }.to_owned(),
                u.tenant_id
                    .map_or("- (staff)".to_owned(), |t| t.to_string()),
            ]
        })
        .collect();
    let header = ["ID", "EMAIL", "NAME", "ROLE", "STATUS", "2FA", "TENANT"];
    print!("{}", table(&header, &rows));
    Ok(())
}

fn pairing_words(device: &DeviceRecord, state: &DeviceState) -> (String, String) {
    let tenant = device
        .tenant_id
        .map_or_else(|| "-".to_owned(), |t| t.to_string());
    let status = state
        .pairing
        .as_ref()
        .map_or("unpaired", |p| p.status.as_str());
    let status = if status == "unpaired" && device.tenant_id.is_some() {
        "paired"
    } else {
        status
    };
    (tenant, status.to_owned())
}

fn device_row(device: DeviceRecord, state: &DeviceState) -> Vec<String> {
    let (tenant, status) = pairing_words(&device, state);
    vec![
        device.serial.to_string(),
        device.model,
        tenant,
        status,
        state
            .last_reading
            .map_or_else(|| "never".to_owned(), rfc3339),
        count(state.readings, "reading", "readings"),
    ]
}

pub(super) async fn devices(ctx: &AppContext, tenant: Option<i64>) -> Result<(), String> {
    if let Some(id) = tenant {
        require_tenant(ctx, id).await?;
    }
    let tenant = tenant.map(TenantId::from);
    let found = ctx
        .store
        .read(move |tx| {
            let devices = listing::devices(tx, tenant)?;
            devices
                .into_iter()
                .map(|d| listing::device_state(tx, &d.serial).map(|s| (d, s)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(failed)?;
    if found.is_empty() {
        println!("no devices");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = found.into_iter().map(|(d, s)| device_row(d, &s)).collect();
    let header = [
        "SERIAL",
        "MODEL",
        "TENANT",
        "PAIRING",
        "LAST READING",
        "READINGS",
    ];
    print!("{}", table(&header, &rows));
    Ok(())
}

pub(super) async fn device(ctx: &AppContext, serial: &str) -> Result<(), String> {
    let key = DeviceSerial::from(serial);
    let found = ctx
        .store
        .read(move |tx| match registry::find_device(tx, &key)? {
            Some(d) => listing::device_state(tx, &key).map(|s| Some((d, s))),
            None => Ok(None),
        })
        .await
        .map_err(failed)?;
    let (device, state) = found.ok_or(format!("no device with serial {serial}"))?;
    let row = device_row(device, &state);
    let labels = [
        "serial",
        "model",
        "tenant",
        "pairing",
        "last reading",
        "readings",
    ];
    for (label, value) in labels.iter().zip(row) {
        println!("{:<14}{value}", format!("{label}:"));
    }
    Ok(())
}

pub(super) async fn clients(ctx: &AppContext) -> Result<(), String> {
    let clients = ctx
        .store
        .read(listing::service_clients)
        .await
        .map_err(failed)?;
    if clients.is_empty() {
        println!("no service clients or apps");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = clients
        .into_iter()
        .map(|c| {
            let auth = match (&c.jwks, &c.secret_hash) {
                (Some(_), _) => "private_key_jwt",
                (None, Some(_)) => "client_secret",
                (None, None) => "none",
            };
            vec![
                c.client_id,
                c.name,
                c.scope,
                auth.to_owned(),
                if c.active { "active" } else { "disabled" }.to_owned(),
                rfc3339(c.created_at),
                c.kind.to_string(),
            ]
        })
        .collect();
    let header = [
        "CLIENT_ID",
        "NAME",
        "SCOPE",
        "AUTH",
        "STATUS",
        "CREATED",
        "KIND",
    ];
    print!("{}", table(&header, &rows));
    Ok(())
}
