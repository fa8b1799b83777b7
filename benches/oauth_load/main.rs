//! The per-operation cost benchmark: a real pairgate server started in this process (its own
//! actix workers) and a load generator, each operation in turn, closed loop:
//!
//! - `upload`: a telemetry upload of 10 readings by a paired device, under its DPoP-bound access
//!   token with a fresh proof, acknowledged once committed;
//! - `refresh`: a refresh (rotation, client assertion and DPoP checks, one write transaction);
//! - `poll`: a pending device-code poll (private_key_jwt + DPoP, replay memory, the poll's
//!   bookkeeping), each device no faster than its interval;
//! - `authorize`: a device authorization request (a new pending flow);
//! - `cc`: client_credentials, with a client secret and with private_key_jwt.
//!
//! Run: `cargo bench --bench oauth_load -- [--secs 10] [--concurrency 64] [--refreshers 200]
//! [--refresh-every-ms 0] [--only upload,refresh,poll,authorize,cc] [--presign] [--floors]
//! [--pin]`.
//! - `--pin` puts the server's threads (and every PostgreSQL process) on core 0 and the load
//!   generator's on core 1 (`taskset`), so each side's CPU time is its own.
//! - `--floors` runs every operation a second time against a bare actix server in this process
//!   that only runs pairgate's checks for it (client authentication, DPoP, the upload's token and
//!   batch) and stores nothing: what HTTP and the checks alone cost (`floor.rs`).
//! - `--presign` makes the pollers sign before the timed run and send pre-built requests on raw
//!   keep-alive connections (`RawConn`).
//! - With a period, each refreshing device starts a refresh that often (open loop) instead of as
//!   fast as it can.
//!
//! Each operation reports its throughput, p50/p99 and the CPU time per request of the server's
//! threads (from /proc/self/task), of PostgreSQL's processes (from /proc/PID/stat) and of the
//! load generator; the summary adds the all-in figure, the floor, and the device-day (1,440
//! uploads and 144 refreshes) with the devices a core carries.
//! On PostgreSQL: set `PAIRGATE_BENCH_POSTGRES_URL` to an admin URL; a scratch database is
//! created and dropped. Run nothing else on that PostgreSQL while measuring: every `postgres`
//! process's CPU is counted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly on purpose"
)]

mod authorize;
mod client_credentials;
mod floor;
mod measure;
mod pin;
mod poll;
mod refresh;
mod summary;
mod upload;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use pairgate::app::AppContext;
use pairgate::clock::{Clock, SystemClock};
use pairgate::config::{DatabaseUrl, PublicUrl, Secret, Settings};
use pairgate::ids::DeviceSerial;
use pairgate::simulator::DeviceKey;
use serde_json::Value;

use measure::LOADGEN;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

struct Args {
    secs: u64,
    concurrency: usize,
    refreshers: usize,
    /// Each refreshing device waits this long between the starts of its refreshes (0: refresh
    /// again as soon as the answer is in, i.e. a closed loop at saturation).
    refresh_every_ms: u64,
    /// Run only these scenarios (comma-separated: `upload`, `refresh`, `poll`, `authorize`,
    /// `cc`).
    only: Option<String>,
    presign: bool,
    /// Each scenario runs a second time against the verification-only server.
    floors: bool,
    /// Server (and PostgreSQL) on core 0, load generator on core 1.
    pin: bool,
}

impl Args {
    fn runs(&self, scenario: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|o| o == scenario))
    }
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: u64| {
        raw.iter()
            .position(|a| a == name)
            .and_then(|i| raw.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Args {
        secs: get("--secs", 10),
        concurrency: get("--concurrency", 64) as usize,
        refreshers: get("--refreshers", 200) as usize,
        refresh_every_ms: get("--refresh-every-ms", 0),
        only: raw
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| raw.get(i + 1))
            .cloned(),
        presign: raw.iter().any(|a| a == "--presign"),
        floors: raw.iter().any(|a| a == "--floors"),
        pin: raw.iter().any(|a| a == "--pin"),
    }
}

struct Device {
    serial: String,
    key: DeviceKey,
}

async fn outcome(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn label(status: u16, body: &Value) -> String {
    match body.get("error").and_then(Value::as_str) {
        Some(e) => format!("{status} {e}"),
        None => status.to_string(),
    }
}

fn now() -> i64 {
    SystemClock.now().timestamp()
}

/// With `PAIRGATE_BENCH_POSTGRES_URL` (an admin URL): a new scratch database, set as the
/// server's; returns the admin URL and the database's name, to drop it at the end.
fn scratch_database(settings: &mut Settings) -> Option<(String, String)> {
    std::env::var("PAIRGATE_BENCH_POSTGRES_URL")
        .ok()
        .map(|admin| {
            let name = format!("pairgate_bench_{}", std::process::id());
            let mut conn = PgConnection::establish(&admin).unwrap();
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .unwrap();
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&format!("/{name}"));
            settings.database.url = DatabaseUrl::try_from(url.to_string()).unwrap();
            (admin, name)
        })
}

fn main() {
    let args = args();
    if args.pin {
        // Before any thread starts: the server's threads inherit core 0 from this one.
        pin::pin(std::process::id(), pin::SERVER_CORE);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    settings.server.public_url = PublicUrl::try_from(base.clone()).unwrap();
    settings.server.workers = 2;
    settings.keys.master_key = Secret::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    settings.oauth.poll_interval_secs = 1.try_into().unwrap();
    settings.oauth.device_authorization_per_ip_per_minute = 1_000_000.try_into().unwrap();
    settings.oauth.device_authorization_per_device_per_hour = 1_000_000.try_into().unwrap();
    let scratch = scratch_database(&mut settings);
    if scratch.is_none() {
        settings.database.url = DatabaseUrl::Sqlite(dir.path().join("bench.db"));
    } else {
        measure::POSTGRES.store(true, std::sync::atomic::Ordering::Relaxed);
        if args.pin {
            pin::pin_postgres(pin::SERVER_CORE);
        }
    }
    println!(
        "pairgate per-operation benchmark: {} s per scenario, database {:?}, 2 server workers, \
         load generator on 2 threads, {}",
        args.secs,
        settings.database.url,
        if args.pin {
            "server and PostgreSQL on core 0, load generator on core 1"
        } else {
            "not pinned"
        }
    );

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let ctx = AppContext::start(settings, Arc::new(SystemClock))
                .await
                .unwrap();
            let server =
                pairgate::http::server(ctx.clone(), listener, pairgate::http::Signals::Ignore)
                    .unwrap();
            tx.send((ctx, server.handle())).unwrap();
            server.await.unwrap();
        });
    });
    let (ctx, handle) = rx.recv().unwrap();

    let pinned = args.pin;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOADGEN)
        .on_thread_start(move || {
            if pinned {
                pin::pin(pin::this_thread(), pin::LOADGEN_CORE);
            }
        })
        .enable_all()
        .build()
        .unwrap();
    let args_pin_postgres = args.pin && scratch.is_some();
    rt.block_on(run(args, ctx, base));
    drop(handle.stop(false));
    if args_pin_postgres {
        pin::pin_postgres(&pin::all_cores());
    }
    if let Some((admin, name)) = scratch {
        std::thread::sleep(Duration::from_millis(500));
        let mut conn = PgConnection::establish(&admin).unwrap();
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn);
    }
}

async fn run(args: Args, ctx: AppContext, base: String) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let floor = args.floors.then(|| floor::start(&ctx, &base));
    let mut rows = Vec::new();
    for op in summary::OPERATIONS {
        if !args.runs(op) {
            continue;
        }
        for target in std::iter::once(&base).chain(floor.as_ref()) {
            let at = (base.as_str(), target.as_str());
            let measured = match op {
                "upload" => vec![upload::uploads(&args, &ctx, &http, at).await],
                "refresh" => vec![refresh::refreshes(&args, &ctx, &http, at).await],
                "poll" => vec![poll::polls(&args, &ctx, &http, at).await],
                "authorize" => vec![authorize::authorizations(&args, &ctx, &http, at).await],
                _ => client_credentials::client_credentials(&args, &ctx, &http, at).await,
            };
            let is_floor = *target != base;
            rows.extend(measured.into_iter().map(|row| (op, is_floor, row)));
        }
    }
    summary::print(&rows);
}

async fn register(ctx: &AppContext, n: usize, prefix: &str) -> Vec<Arc<Device>> {
    // A scenario runs twice with --floors: each round registers devices of its own.
    static ROUNDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let round = ROUNDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut devices = Vec::with_capacity(n);
    for i in 0..n {
        let key = DeviceKey::generate_es256().unwrap();
        let serial = format!("{prefix}-{round}-{i:06}");
        pairgate::devices::register(
            &ctx.store,
            now() * 1000,
            "bench",
            &DeviceSerial::from(&serial),
            "BENCH-1",
            &key.public_jwk(),
        )
        .await
        .unwrap();
        devices.push(Arc::new(Device { serial, key }));
    }
    devices
}

async fn start_pairing(http: &reqwest::Client, base: &str, d: &Device) -> Value {
    let res = send_authorization(http, base, sign_authorization(d, base)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A client assertion and a DPoP proof for pairgate's device authorization endpoint, signed now.
fn sign_authorization(d: &Device, base: &str) -> Signed {
    let t = now();
    let url = format!("{base}/oauth/device_authorization");
    (
        d.key.client_assertion(&d.serial, base, t).unwrap(),
        d.key.dpop_proof("POST", &url, t, None, None).unwrap(),
    )
}

/// A device authorization request, signed beforehand, sent to `target` (pairgate or the floor).
async fn send_authorization(
    http: &reqwest::Client,
    target: &str,
    (assertion, proof): Signed,
) -> reqwest::Response {
    http.post(format!("{target}/oauth/device_authorization"))
        .header("DPoP", proof)
        .form(&[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap()
}

/// A client assertion and a DPoP proof for the token endpoint, signed now.
fn sign_token_request(d: &Device, base: &str) -> Signed {
    let t = now();
    let url = format!("{base}/oauth/token");
    (
        d.key.client_assertion(&d.serial, base, t).unwrap(),
        d.key.dpop_proof("POST", &url, t, None, None).unwrap(),
    )
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    d: &Device,
    form: &[(&str, &str)],
) -> reqwest::Response {
    token_signed(http, base, form, sign_token_request(d, base)).await
}

/// The signed parts of one token request: client assertion and DPoP proof.
type Signed = (String, String);

/// A token request with an assertion and proof signed beforehand.
async fn token_signed(
    http: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
    (assertion, proof): Signed,
) -> reqwest::Response {
    let mut all: Vec<(&str, &str)> = form.to_vec();
    all.push(("client_assertion_type", JWT_BEARER));
    all.push(("client_assertion", &assertion));
    http.post(format!("{base}/oauth/token"))
        .header("DPoP", proof)
        .form(&all)
        .send()
        .await
        .unwrap()
}
