//! Load benchmark of the OAuth hot paths, against a real pairgate server started in this process
//! (its own actix workers) and a load generator sharing the machine:
//!
//! - a pending device-code poll (private_key_jwt + DPoP verification, replay-store writes, the
//!   poll bookkeeping), devices polling no faster than their interval;
//! - a refresh (rotation, two signature checks, one write transaction) by devices that each
//!   refresh in a loop, `--refreshers` of them at once; a refresh's latency runs from sending
//!   the signed request to the parsed answer (devices sign on their own hardware, so signing
//!   is not counted);
//! - client_credentials, with a client secret (no database write) and with private_key_jwt.
//!
//! Run: `cargo bench --bench oauth_load -- [--secs 10] [--concurrency 64] [--refreshers 200]
//! [--refresh-every-ms 0] [--only poll|refresh|cc] [--presign] [--floor]`; with a period, each
//! refreshing device starts a refresh that often (open loop, spread evenly) instead of as fast as
//! it can.
//! `--presign` makes the pollers sign their client assertions and DPoP proofs before the timed
//! run (as real devices do, on their own hardware), and build each poll's HTTP/1.1 request, which
//! they send on raw keep-alive connections (`RawConn`), so the two cores go to the server.
//! `--floor` sends the same polls to a bare actix server in this process instead, one that
//! only reads the form and runs pairgate's client-assertion and DPoP checks (no database, no
//! replay store, a fixed `authorization_pending`): what HTTP and the two signature checks alone
//! cost on this machine, the ceiling for any store behind them.
//! Each scenario also reports the CPU time the server's threads and the load generator's
//! threads spent per request (from /proc/self/task), which does not depend on saturation.
//! On PostgreSQL: set `PAIRGATE_BENCH_POSTGRES_URL` to an admin URL; a scratch database is
//! created and dropped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly on purpose"
)]

mod client_credentials;
mod floor;
mod measure;
mod poll;
mod refresh;

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
    /// Run only this scenario (`poll`, `refresh` or `cc`).
    only: Option<String>,
    presign: bool,
    /// Polls go to the verification-only server (see the module comment).
    floor: bool,
}

impl Args {
    fn runs(&self, scenario: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == scenario)
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
        floor: raw.iter().any(|a| a == "--floor"),
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

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    settings.server.public_url = PublicUrl::try_from(base.clone()).unwrap();
    settings.server.workers = 2;
    settings.keys.master_key = Secret::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    settings.oauth.poll_interval_secs = 1.try_into().unwrap();
    settings.oauth.device_authorization_per_ip_per_minute = 1_000_000.try_into().unwrap();
    let scratch = std::env::var("PAIRGATE_BENCH_POSTGRES_URL")
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
        });
    if scratch.is_none() {
        settings.database.url = DatabaseUrl::Sqlite(dir.path().join("bench.db"));
    }
    println!(
        "pairgate OAuth load benchmark: {} s per scenario, database {:?}, 2 server workers, \
         load generator on 2 threads",
        args.secs, settings.database.url
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

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOADGEN)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(args, ctx, base));
    drop(handle.stop(false));
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
    if args.runs("poll") {
        poll::polls(&args, &ctx, &http, &base).await;
    }
    if args.runs("refresh") {
        refresh::refreshes(&args, &ctx, &http, &base).await;
    }
    if args.runs("cc") {
        client_credentials::client_credentials(&args, &ctx, &http, &base).await;
    }
}

async fn register(ctx: &AppContext, n: usize, prefix: &str) -> Vec<Arc<Device>> {
    let mut devices = Vec::with_capacity(n);
    for i in 0..n {
        let key = DeviceKey::generate_es256().unwrap();
        let serial = format!("{prefix}-{i:06}");
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
    let t = now();
    let url = format!("{base}/oauth/device_authorization");
    let assertion = d.key.client_assertion(&d.serial, base, t).unwrap();
    let proof = d.key.dpop_proof("POST", &url, t, None, None).unwrap();
    let res = http
        .post(&url)
        .header("DPoP", proof)
        .form(&[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
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
