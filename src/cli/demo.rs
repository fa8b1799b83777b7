//! `pairgate demo`: the whole ceremony on one machine, from a fresh SQLite database. It sets up
//! what a manufacturer and its ERP would (a customer company and its owner, an ERP client, a
//! device model, a device with its factory key, the device's sale to that customer), prints what
//! to run and open, and serves. The sale is real: the approval goes through the ERP gate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use crate::accounts::{NewUser, Role};
use crate::app::AppContext;
use crate::clock::SystemClock;
use crate::config::{DatabaseUrl, Settings};
use crate::oauth::clients::{ClientCredential, create_service_client};
use crate::simulator::firmware::write_private;
use crate::simulator::{DeviceKey, KeyAlg, generate_pkcs8, pkcs8_pem};
use crate::store::inventory;

const ACTOR: &str = "cli";
const COMPANY: &str = "Demo Water";
const CUSTOMER: &str = "DEMO-100";
const OWNER: &str = "owner@demo.example";
const SERIAL: &str = "SN-DEMO-1";
const MODEL: &str = "TX-9000";

/// What the demo created, to print.
struct Demo {
    password: String,
    otpauth: String,
    erp_client: (String, String),
    key: PathBuf,
}

pub(super) async fn demo(settings: Settings) -> Result<(), String> {
    let DatabaseUrl::Sqlite(path) = &settings.database.url else {
        return Err("pairgate demo sets up a fresh SQLite database; \
                    unset PAIRGATE_DATABASE_URL or point it at a new sqlite:// file"
            .to_owned());
    };
    let database = absolute(path);
    let fresh = !path.exists();
    let ctx = AppContext::start(settings.clone(), Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let holds = ctx
        .store
        .read(inventory::holds_data)
        .await
        .map_err(|e| e.to_string())?;
    if holds {
        return Err(format!(
            "{} already holds tenants, people, devices or clients: pairgate demo only sets up a \
             fresh database. Run it in an empty folder, or with \
             PAIRGATE_DATABASE_URL=sqlite://demo/pairgate.db",
            database.display()
        ));
    }
    if fresh {
        println!("created the database {}", database.display());
    }
    let demo = set_up(&ctx, path).await?;
    drop(ctx);
    explain(&settings, &demo);
    super::serve(settings).await
}

/// The company, its owner, the ERP client, the model, the device and its sale.
async fn set_up(ctx: &AppContext, database: &Path) -> Result<Demo, String> {
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    let now = ctx.clock.now().timestamp_millis();
    let tenant = crate::accounts::create_tenant(&ctx.store, now, ACTOR, COMPANY)
        .await
        .map_err(|e| fail(&e))?;
    let erp = &ctx.erp;
    erp.put_customer(
        ACTOR,
        CUSTOMER,
        &json!({ "name": COMPANY, "tenant_id": tenant }),
    )
    .await
    .map_err(|e| fail(&e))?;
    let password = crate::crypto::tokens::new_id();
    let (_, otpauth) = ctx
        .accounts
        .create_user(
            ACTOR,
            NewUser {
                tenant_id: Some(tenant),
                email: OWNER.to_owned(),
                name: "Olivia Owner".to_owned(),
                role: Role::Owner,
                password: password.clone(),
                totp: true,
            },
        )
        .await
        .map_err(|e| fail(&e))?;
    let client = create_service_client(
        &ctx.store,
        now,
        ACTOR,
        "Demo ERP",
        "erp",
        ClientCredential::Secret,
    )
    .await
    .map_err(|e| fail(&e))?;
    erp.put_model(
        ACTOR,
        MODEL,
        &json!({ "metrics": [
        { "key": "temperature", "label": "Water temperature", "unit": "°C", "decimals": 1 },
        { "key": "humidity", "label": "Humidity", "unit": "%", "decimals": 0,
          "min": 0, "max": 100 },
        { "key": "pressure", "label": "Pressure", "unit": "hPa", "decimals": 1 },
    ] }),
    )
    .await
    .map_err(|e| fail(&e))?;
    let key = sold_device(ctx, database, now).await?;
    Ok(Demo {
        password,
        otpauth: otpauth.ok_or("the owner's second factor was not set up")?,
        erp_client: (client.client_id, client.secret.unwrap_or_default()),
        key: absolute(&key),
    })
}

/// The device's factory key (written beside the database), the device, and its sale to the
/// demo's company; the key's path.
async fn sold_device(ctx: &AppContext, database: &Path, now: i64) -> Result<PathBuf, String> {
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    let erp = &ctx.erp;
    let key = database.with_file_name(format!("{SERIAL}.pem"));
    let der = generate_pkcs8(KeyAlg::Es256).map_err(|e| fail(&e))?;
    write_private(&key, &pkcs8_pem(&der))?;
    let jwk = DeviceKey::from_pkcs8(&der)
        .map_err(|e| fail(&e))?
        .public_jwk();
    erp.put_device(
        ACTOR,
        &SERIAL.into(),
        &json!({ "model": MODEL, "public_jwk": jwk }),
    )
    .await
    .map_err(|e| fail(&e))?;
    erp.put_sale(
        ACTOR,
        "DEMO-SALE-1",
        &json!({
            "serial": SERIAL, "sold_at": chrono::DateTime::from_timestamp_millis(now)
                .map(|t| t.to_rfc3339()),
            "sold_to": { "customer_number": CUSTOMER, "name": COMPANY, "kind": "end_customer" },
            "revision": 1,
        }),
    )
    .await
    .map_err(|e| fail(&e))?;
    Ok(key)
}

/// What to run and open, printed before the server starts.
fn explain(settings: &Settings, demo: &Demo) {
    let url = settings.server.public_url.as_str().trim_end_matches('/');
    // The simulator's own default is the default public URL.
    let server = if url == "http://127.0.0.1:8080" {
        String::new()
    } else {
        format!(" --server {url}")
    };
    let (client_id, secret) = &demo.erp_client;
    println!(
        "\npairgate demo: {COMPANY} (ERP customer {CUSTOMER}) bought the device {SERIAL} \
         ({MODEL}).\n\n\
         1. Add the owner's second factor to an authenticator app (paste or open this link):\n   \
         {otpauth}\n\n\
         2. In another terminal, let the device ask to be paired:\n   \
         pairgate-device pair --serial {SERIAL} --key {key}{server}\n\n\
         3. Open {url}/device and sign in as {OWNER} with the password {password}\n   \
         and the app's code. Enter the code the device shows, check the device, approve.\n\n\
         4. Then let it upload readings, and watch {url}/devices/{SERIAL}:\n   \
         pairgate-device run --serial {SERIAL} --key {key}{server}\n\n\
         The ERP's client (scope erp), for docs/erp-integration.md: {client_id} / {secret}\n\
         Everything above is shown once. Stop the server with Ctrl-C.\n",
        otpauth = demo.otpauth,
        key = demo.key.display(),
        password = demo.password,
    );
}

/// `path`, absolute (from the current folder), for printing.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
