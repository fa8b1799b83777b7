//! Setting a fleet up as an operator would: each device's key registered and its pairing
//! approved through pairgate's own domain code, the pairing itself over HTTP like any device's.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::FleetDevice;
use crate::app::AppContext;
use crate::clock::SystemClock;
use crate::ids::{DeviceSerial, TenantId};
use crate::oauth::device_flow::{DecisionError, Verdict};
use crate::simulator::DeviceKey;
use crate::simulator::client::{DeviceClient, Endpoints, Poll, SimError};
use crate::simulator::{KeyAlg, generate_pkcs8, pkcs8_pem};

/// Which devices [`bootstrap`] creates.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub count: usize,
    /// Serials are `{prefix}-{n:06}`.
    pub prefix: String,
    /// The tenant they join; a new one when `None`.
    pub tenant: Option<TenantId>,
    /// The devices' factory keys.
    pub key_alg: KeyAlg,
    /// Devices set up at once.
    pub parallel: usize,
}

/// Registers `count` new devices (`{prefix}-{n}`) with fresh factory keys and pairs each into
/// `tenant` (a new tenant when `None`): registration and approval in-process through pairgate's
/// domain, as the CLI does; device authorization and the token poll over HTTP, as a device does.
/// The server must allow that many device authorizations from this address per minute
/// (`oauth.device_authorization_per_ip_per_minute`).
pub async fn bootstrap(
    ctx: &AppContext,
    http: &reqwest::Client,
    endpoints: Arc<Endpoints>,
    plan: &Bootstrap,
) -> Result<Vec<FleetDevice>, String> {
    let Bootstrap {
        count,
        ref prefix,
        tenant,
        key_alg,
        parallel,
    } = *plan;
    let now_ms = || ctx.clock.now().timestamp_millis();
    let tenant = match tenant {
        Some(t) => t,
        None => crate::accounts::create_tenant(
            &ctx.store,
            now_ms(),
            "fleet-bootstrap",
            &format!("Fleet {prefix}"),
        )
        .await
        .map_err(|e| e.to_string())?,
    };
    let mut devices = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    for n in 0..count {
        while tasks.len() >= parallel.max(1) {
            if let Some(done) = tasks.join_next().await {
                devices.push(done.map_err(|e| e.to_string())??);
            }
        }
        let (ctx, http, endpoints) = (ctx.clone(), http.clone(), Arc::clone(&endpoints));
        let serial = format!("{prefix}-{n:06}");
        tasks.spawn(async move { pair_one(ctx, http, endpoints, serial, tenant, key_alg).await });
    }
    while let Some(done) = tasks.join_next().await {
        devices.push(done.map_err(|e| e.to_string())??);
    }
    devices.sort_by(|a, b| a.serial.cmp(&b.serial));
    Ok(devices)
}

async fn pair_one(
    ctx: AppContext,
    http: reqwest::Client,
    endpoints: Arc<Endpoints>,
    serial: String,
    tenant: TenantId,
    key_alg: KeyAlg,
) -> Result<FleetDevice, String> {
    let der = generate_pkcs8(key_alg).map_err(|e| e.to_string())?;
    let key = DeviceKey::from_pkcs8(&der).map_err(|e| e.to_string())?;
    let jwk = key.public_jwk();
    let device_serial = DeviceSerial::from(&serial);
    retry_while_busy(
        || {
            crate::devices::register(
                &ctx.store,
                ctx.clock.now().timestamp_millis(),
                "fleet-bootstrap",
                &device_serial,
                "SIM-1",
                &jwk,
            )
        },
        |e| matches!(e, crate::devices::RegisterError::Store(s) if s.is_unavailable()),
    )
    .await
    .map_err(|e| format!("registering {serial}: {e}"))?;
    let client = DeviceClient::new(http, endpoints, &serial, key, Arc::new(SystemClock));
    let auth = retry_while_busy(|| client.start_pairing(), server_busy)
        .await
        .map_err(|e| format!("{serial}: {e}"))?;
    retry_while_busy(
        || {
            ctx.oauth.decide(
                &auth.user_code,
                Verdict::Approve { tenant_id: tenant },
                "fleet-bootstrap",
            )
        },
        |e| matches!(e, DecisionError::Store(s) if s.is_unavailable()),
    )
    .await
    .map_err(|e| format!("approving {serial}: {e}"))?;
    match retry_while_busy(|| client.poll(&auth.device_code), server_busy)
        .await
        .map_err(|e| format!("{serial}: {e}"))?
    {
        Poll::Tokens(tokens) => Ok(FleetDevice {
            serial,
            key_pem: pkcs8_pem(&der),
            tokens,
        }),
        other => Err(format!("{serial}: pairing did not complete: {other:?}")),
    }
}

fn server_busy(e: &SimError) -> bool {
    matches!(e, SimError::Refused { status: 503, .. })
}

/// Retries a set-up step that lost a race for the database to the server. On SQLite the two are
/// separate processes writing one file, and SQLite refuses a transaction that read before the
/// other process wrote (SQLITE_BUSY at once, not after the busy timeout); a failed step
/// committed nothing, so it is safe to run again.
async fn retry_while_busy<T, E, F, Fut>(mut step: F, busy: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        match step().await {
            Err(e) if busy(&e) && attempt < 100 => {
                attempt += 1;
                let jitter = rand::random::<u64>() % 20;
                tokio::time::sleep(Duration::from_millis(
                    5 * u64::from(attempt.min(20)) + jitter,
                ))
                .await;
            }
            other => return other,
        }
    }
}
