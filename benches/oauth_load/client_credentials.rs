//! The client_credentials scenario: a service client with a secret (no database write), then
//! one with private_key_jwt, each asking for tokens from `--concurrency` tasks at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pairgate::app::AppContext;
use pairgate::oauth::clients::{ClientCredential, create_service_client};
use pairgate::simulator::DeviceKey;

use crate::measure::{CpuSince, Row, Tally};
use crate::{Args, Device, JWT_BEARER, label, now, outcome};

/// How a service client authenticates.
#[derive(Clone)]
enum Credential {
    /// `client_secret_basic`.
    Secret { id: String, secret: String },
    /// `private_key_jwt`: a fresh client assertion for every request.
    Jwt(Arc<Device>),
}

/// Registers the two service clients, then runs the scenario with each in turn.
pub(super) async fn client_credentials(
    args: &Args,
    ctx: &AppContext,
    http: &reqwest::Client,
    (base, target): (&str, &str),
) -> Vec<Row> {
    let secret_client = create_service_client(
        &ctx.store,
        now() * 1000,
        "bench",
        "Bench ERP",
        "erp",
        ClientCredential::Secret,
    )
    .await
    .unwrap();
    let key = DeviceKey::generate_es256().unwrap();
    let jwt_client = create_service_client(
        &ctx.store,
        now() * 1000,
        "bench",
        "Bench app",
        "erp",
        ClientCredential::Jwks(serde_json::json!({ "keys": [key.public_jwk()] })),
    )
    .await
    .unwrap();
    let secret = Credential::Secret {
        id: secret_client.client_id,
        secret: secret_client.secret.unwrap(),
    };
    let jwt = Credential::Jwt(Arc::new(Device {
        serial: jwt_client.client_id,
        key,
    }));
    let mut rows = Vec::new();
    for (credential, name) in [
        (secret, "client_credentials, client_secret_basic"),
        (jwt, "client_credentials, private_key_jwt"),
    ] {
        let started = Instant::now();
        let cpu = CpuSince::start();
        let end = started + Duration::from_secs(args.secs);
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (http, base) = (http.clone(), (base.to_owned(), target.to_owned()));
            tasks.push(tokio::spawn(ask_until(http, base, credential.clone(), end)));
        }
        let total = Tally::gather(tasks).await;
        rows.push(total.report(
            &format!("{name} (c={})", args.concurrency),
            started.elapsed(),
            cpu,
        ));
    }
    rows
}

/// Asks for client_credentials tokens one after the other until `end`.
async fn ask_until(
    http: reqwest::Client,
    (base, target): (String, String),
    credential: Credential,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < end {
        let t0 = Instant::now();
        let request = http.post(format!("{target}/oauth/token"));
        let res = match &credential {
            Credential::Jwt(client) => {
                let assertion = client
                    .key
                    .client_assertion(&client.serial, &base, now())
                    .unwrap();
                request.form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ])
            }
            Credential::Secret { id, secret } => request
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")]),
        }
        .send()
        .await
        .unwrap();
        let (status, body) = outcome(res).await;
        tally.count(t0.elapsed(), label(status, &body));
    }
    tally
}
