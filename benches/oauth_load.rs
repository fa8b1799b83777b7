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

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use pairgate::app::AppContext;
use pairgate::clock::{Clock, SystemClock};
use pairgate::config::{DatabaseUrl, PublicUrl, Secret, Settings};
use pairgate::oauth::client_auth::{self, AssertionPolicy, Claimed, ClientCredentials};
use pairgate::oauth::device_flow::Verdict;
use pairgate::simulator::DeviceKey;
use pairgate::store::registry::ClientRecord;
use pairgate::verifier::dpop::{DpopRequest, DpopVerifier};
use serde_json::Value;

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

/// Latencies and outcomes of one scenario.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    outcomes: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }

    fn report(mut self, name: &str, elapsed: Duration, cpu: CpuSince) {
        self.latencies.sort();
        let n = self.latencies.len();
        let (server, loadgen, writer) = cpu.per_request(n);
        let pct = |p: f64| {
            self.latencies
                .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        println!(
            "{name:<44} {n:>8} req  {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  \
             p99.9 {:>6.2} ms  CPU/req: server {server:.0} us (SQLite writer {writer:.0}), \
             load generator {loadgen:.0} us  {:?}",
            n as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            pct(0.999),
            self.outcomes
        );
    }
}

/// Prefix of the load generator's thread names; every other thread of the process is the server's.
const LOADGEN: &str = "loadgen";

/// CPU time (user + system) of this process's threads so far: (server, load generator, the
/// server's SQLite writer thread alone).
fn cpu_times() -> (Duration, Duration, Duration) {
    let tick = 100.0; // USER_HZ on Linux.
    let mut server = 0.0;
    let mut loadgen = 0.0;
    let mut writer = 0.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // Fields after the ")" that ends the command: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        if comm.starts_with(LOADGEN) {
            loadgen += ticks / tick;
        } else {
            server += ticks / tick;
            if comm.starts_with("sqlite-writer") {
                writer += ticks / tick;
            }
        }
    }
    (
        Duration::from_secs_f64(server),
        Duration::from_secs_f64(loadgen),
        Duration::from_secs_f64(writer),
    )
}

/// CPU time spent since a scenario started.
struct CpuSince((Duration, Duration, Duration));

impl CpuSince {
    fn start() -> Self {
        Self(cpu_times())
    }

    /// Microseconds of CPU per request: (server, load generator, server's SQLite writer).
    /// Threads that ended during the scenario are not counted, which only the blocking pool's
    /// idle threads do.
    fn per_request(&self, requests: usize) -> (f64, f64, f64) {
        let (server, loadgen, writer) = cpu_times();
        let n = requests.max(1) as f64;
        let us = |now: Duration, then: Duration| now.saturating_sub(then).as_secs_f64() * 1e6 / n;
        (
            us(server, self.0.0),
            us(loadgen, self.0.1),
            us(writer, self.0.2),
        )
    }
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

async fn register(ctx: &AppContext, n: usize, prefix: &str) -> Vec<Arc<Device>> {
    let mut devices = Vec::with_capacity(n);
    for i in 0..n {
        let key = DeviceKey::generate_es256().unwrap();
        let serial = format!("{prefix}-{i:06}");
        pairgate::devices::register(
            &ctx.store,
            now() * 1000,
            "bench",
            &serial,
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

async fn run(args: Args, ctx: AppContext, base: String) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let deadline = || Instant::now() + Duration::from_secs(args.secs);

    if args.runs("poll") {
        polls(&args, &ctx, &http, &base).await;
    }
    if args.runs("refresh") {
        // --- refresh: pair devices, then each refreshes in a loop.
        let tenant =
            pairgate::accounts::create_tenant(&ctx.store, now() * 1000, "bench", "Bench Co")
                .await
                .unwrap();
        let refreshers = register(&ctx, args.refreshers, "REFR").await;
        let mut refresh_tokens = Vec::new();
        for d in &refreshers {
            let started = start_pairing(&http, &base, d).await;
            ctx.oauth
                .decide(
                    started["user_code"].as_str().unwrap(),
                    Verdict::Approve { tenant_id: tenant },
                    "bench",
                )
                .await
                .unwrap();
            let res = token(
                &http,
                &base,
                d,
                &[
                    ("grant_type", DEVICE_CODE),
                    ("device_code", started["device_code"].as_str().unwrap()),
                ],
            )
            .await;
            let (status, body) = outcome(res).await;
            assert_eq!(status, 200, "{body}");
            refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
        }
        let started = Instant::now();
        let cpu = CpuSince::start();
        let end = deadline();
        let mut tasks = Vec::new();
        let every = Duration::from_millis(args.refresh_every_ms);
        let devices = refreshers.len().max(1) as u32;
        for (i, (d, mut rt)) in refreshers.iter().cloned().zip(refresh_tokens).enumerate() {
            let http = http.clone();
            let base = base.clone();
            // Paced devices start spread over one period, so the load is even.
            let mut due = started + every * i as u32 / devices;
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < end {
                    if !every.is_zero() {
                        tokio::time::sleep_until(due.into()).await;
                        due += every;
                    }
                    // The device signs on its own hardware: the clock starts when the signed
                    // request is sent.
                    let signed = sign_token_request(&d, &base);
                    let t0 = Instant::now();
                    let res = token_signed(
                        &http,
                        &base,
                        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                        signed,
                    )
                    .await;
                    let (status, body) = outcome(res).await;
                    tally.latencies.push(t0.elapsed());
                    *tally.outcomes.entry(label(status, &body)).or_default() += 1;
                    match body["refresh_token"].as_str() {
                        Some(next) => rt = next.to_owned(),
                        None => break,
                    }
                }
                tally
            }));
        }
        let mut total = Tally::default();
        for t in tasks {
            total.merge(t.await.unwrap());
        }
        let paced = if every.is_zero() {
            String::new()
        } else {
            format!(", each every {} ms", args.refresh_every_ms)
        };
        total.report(
            &format!("refresh (c={}{paced})", args.refreshers),
            started.elapsed(),
            cpu,
        );
    }
    if args.runs("cc") {
        // --- client_credentials, secret and private_key_jwt.
        let secret_client = pairgate::oauth::clients::create_service_client(
            &ctx.store,
            now() * 1000,
            "bench",
            "Bench ERP",
            "erp",
            pairgate::oauth::clients::ClientCredential::Secret,
        )
        .await
        .unwrap();
        let key = DeviceKey::generate_es256().unwrap();
        let jwt_client = pairgate::oauth::clients::create_service_client(
            &ctx.store,
            now() * 1000,
            "bench",
            "Bench app",
            "erp",
            pairgate::oauth::clients::ClientCredential::Jwks(
                serde_json::json!({ "keys": [key.public_jwk()] }),
            ),
        )
        .await
        .unwrap();
        let jwt_device = Arc::new(Device {
            serial: jwt_client.client_id,
            key,
        });
        for with_jwt in [false, true] {
            let started = Instant::now();
            let cpu = CpuSince::start();
            let end = deadline();
            let mut tasks = Vec::new();
            for _ in 0..args.concurrency {
                let http = http.clone();
                let base = base.clone();
                let id = secret_client.client_id.clone();
                let secret = secret_client.secret.clone().unwrap();
                let jwt_device = jwt_device.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tally = Tally::default();
                    while Instant::now() < end {
                        let t0 = Instant::now();
                        let res = if with_jwt {
                            let t = now();
                            let assertion = jwt_device
                                .key
                                .client_assertion(&jwt_device.serial, &base, t)
                                .unwrap();
                            http.post(format!("{base}/oauth/token"))
                                .form(&[
                                    ("grant_type", "client_credentials"),
                                    ("client_assertion_type", JWT_BEARER),
                                    ("client_assertion", &assertion),
                                ])
                                .send()
                                .await
                                .unwrap()
                        } else {
                            http.post(format!("{base}/oauth/token"))
                                .basic_auth(&id, Some(&secret))
                                .form(&[("grant_type", "client_credentials")])
                                .send()
                                .await
                                .unwrap()
                        };
                        let (status, body) = outcome(res).await;
                        tally.latencies.push(t0.elapsed());
                        *tally.outcomes.entry(label(status, &body)).or_default() += 1;
                    }
                    tally
                }));
            }
            let mut total = Tally::default();
            for t in tasks {
                total.merge(t.await.unwrap());
            }
            let name = if with_jwt {
                "client_credentials, private_key_jwt"
            } else {
                "client_credentials, client_secret_basic"
            };
            total.report(
                &format!("{name} (c={})", args.concurrency),
                started.elapsed(),
                cpu,
            );
        }
    }
}

/// The signed parts of one token request: client assertion and DPoP proof.
type Signed = (String, String);

/// Pending device-code polls: each task owns enough devices to poll each no faster than 1 s.
async fn polls(args: &Args, ctx: &AppContext, http: &reqwest::Client, base: &str) {
    let per_task = 24;
    let pollers = register(ctx, args.concurrency * per_task, "POLL").await;
    let mut codes = Vec::new();
    for d in &pollers {
        codes.push(
            start_pairing(http, base, d).await["device_code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Pre-signed: enough requests for every poll a device can make in the run, signed now.
    let per_device = if args.presign {
        usize::try_from(args.secs).unwrap() + 2
    } else {
        0
    };
    let signed: Vec<Vec<Signed>> = pollers
        .iter()
        .map(|d| {
            (0..per_device)
                .map(|_| sign_token_request(d, base))
                .collect()
        })
        .collect();
    let target = if args.floor {
        floor_server(ctx, &pollers, base).await
    } else {
        base.to_owned()
    };
    // Pre-signed polls go out as pre-built HTTP/1.1 requests (see `RawConn`).
    let host = target.strip_prefix("http://").unwrap().to_owned();
    let raw: Vec<Vec<Vec<u8>>> = pollers
        .iter()
        .zip(&codes)
        .zip(&signed)
        .map(|((_, code), signed)| signed.iter().map(|s| raw_poll(&host, code, s)).collect())
        .collect();
    drop(signed);
    let started = Instant::now();
    let cpu = CpuSince::start();
    let end = started + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    let mut raw = raw.into_iter();
    for chunk in 0..args.concurrency {
        let http = http.clone();
        let base = target.clone();
        let host = host.clone();
        let mine: Vec<(Arc<Device>, String, Vec<Vec<u8>>)> = (chunk * per_task
            ..(chunk + 1) * per_task)
            .map(|i| {
                (
                    pollers[i].clone(),
                    codes[i].clone(),
                    raw.next().unwrap_or_default(),
                )
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut mine = mine;
            let mut conn = if mine.iter().any(|(_, _, requests)| !requests.is_empty()) {
                Some(RawConn::connect(&host).await)
            } else {
                None
            };
            let mut tally = Tally::default();
            let mut last = vec![Instant::now() - Duration::from_secs(2); mine.len()];
            let mut i = 0;
            while Instant::now() < end {
                let wait = Duration::from_millis(1050).saturating_sub(last[i].elapsed());
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                let (d, code, presigned) = &mut mine[i];
                let t0 = Instant::now();
                last[i] = t0;
                let outcome = match (presigned.pop(), conn.as_mut()) {
                    (Some(request), Some(conn)) => conn.exchange(&request).await,
                    _ => {
                        let form = [("grant_type", DEVICE_CODE), ("device_code", code.as_str())];
                        let (status, body) = outcome(token(&http, &base, d, &form).await).await;
                        label(status, &body)
                    }
                };
                tally.latencies.push(t0.elapsed());
                *tally.outcomes.entry(outcome).or_default() += 1;
                i = (i + 1) % mine.len();
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for t in tasks {
        total.merge(t.await.unwrap());
    }
    let presigned = if args.presign { ", pre-signed" } else { "" };
    let floor = if args.floor {
        ", verification-only server"
    } else {
        ""
    };
    total.report(
        &format!(
            "pending device_code poll (c={}{presigned}{floor})",
            args.concurrency
        ),
        started.elapsed(),
        cpu,
    );
}

/// What the verification-only server knows: the pollers' client records, and the checks that
/// pairgate's token endpoint would configure.
struct Floor {
    clients: std::collections::HashMap<String, ClientRecord>,
    policy: AssertionPolicy,
    dpop: DpopVerifier,
    /// The token endpoint URL the proofs were signed for (pairgate's, not this server's).
    token_url: String,
}

/// Starts the verification-only server (`--floor`) on its own two actix workers; returns its base
/// URL. It reads the form, claims the client from the assertion, checks the assertion and the DPoP
/// proof with pairgate's own functions against the client record loaded beforehand, and answers
/// `authorization_pending` as a pending poll would.
async fn floor_server(ctx: &AppContext, pollers: &[Arc<Device>], base: &str) -> String {
    let mut clients = std::collections::HashMap::new();
    for d in pollers {
        let serial = d.serial.clone();
        let record = ctx
            .store
            .read(move |tx| pairgate::store::registry::find_client(tx, &serial))
            .await
            .unwrap()
            .unwrap();
        clients.insert(d.serial.clone(), record);
    }
    let o = &ctx.settings.oauth;
    let floor = Arc::new(Floor {
        clients,
        policy: AssertionPolicy {
            audiences: vec![base.to_owned(), format!("{base}/oauth/token")],
            max_lifetime_ms: i64::from(o.client_assertion_max_lifetime_secs.get()) * 1000,
            skew_ms: i64::from(o.clock_skew_secs) * 1000,
        },
        dpop: DpopVerifier::new(pairgate::oauth::dpop::policy(o), [7; 32]),
        token_url: format!("{base}/oauth/token"),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let floor = actix_web::web::Data::from(floor);
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(floor.clone())
                    .route("/oauth/token", actix_web::web::post().to(floor_token))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    url
}

async fn floor_token(
    req: actix_web::HttpRequest,
    form: actix_web::web::Form<Vec<(String, String)>>,
    floor: actix_web::web::Data<Floor>,
) -> actix_web::HttpResponse {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let credentials = ClientCredentials {
        assertion_type: field("client_assertion_type"),
        assertion: field("client_assertion"),
        ..ClientCredentials::default()
    };
    let now_ms = SystemClock.now().timestamp_millis();
    let refused = |e: pairgate::oauth::OAuthError| {
        actix_web::HttpResponse::BadRequest().json(serde_json::json!({ "error": e.code() }))
    };
    let claimed = match credentials.claimed() {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let (Claimed::Assertion { client_id, .. } | Claimed::Secret { client_id, .. }) = &claimed;
    let record = floor.clients.get(client_id).cloned();
    if let Err(e) = client_auth::verify(claimed, record, &floor.policy, now_ms) {
        return refused(e);
    }
    let proofs: Vec<String> = req
        .headers()
        .get_all("DPoP")
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let request = DpopRequest {
        proofs: &proofs,
        method: "POST",
        url: &floor.token_url,
        access_token: None,
    };
    match floor.dpop.check(&request, now_ms) {
        Ok(Some(_)) => actix_web::HttpResponse::BadRequest()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "error": "authorization_pending" })),
        Ok(None) => actix_web::HttpResponse::BadRequest()
            .json(serde_json::json!({ "error": "invalid_dpop_proof" })),
        Err(e) => refused(e.into()),
    }
}

/// A pre-signed poll as the bytes of its HTTP/1.1 request.
fn raw_poll(host: &str, code: &str, (assertion, proof): &Signed) -> Vec<u8> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", DEVICE_CODE)
        .append_pair("device_code", code)
        .append_pair("client_assertion_type", JWT_BEARER)
        .append_pair("client_assertion", assertion)
        .finish();
    format!(
        "POST /oauth/token HTTP/1.1\r\nhost: {host}\r\n\
         content-type: application/x-www-form-urlencoded\r\ndpop: {proof}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection that sends pre-built requests and reads just enough of each
/// answer to label it: the status line, `content-length`, and the body's `error` member. It does
/// a fraction of reqwest's work per request (no request building, no header map, no JSON tree),
/// so more of the two cores the load generator shares with the server go to the server.
struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    async fn connect(host: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends one request and returns its label (as `label` makes it from a parsed answer).
    async fn exchange(&mut self, request: &[u8]) -> String {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(request).await.unwrap();
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).unwrap();
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("answers carry a content-length");
        while self.buf.len() < head_end + length {
            self.read_more().await;
        }
        let body = std::str::from_utf8(&self.buf[head_end..head_end + length]).unwrap();
        let error = body
            .split_once("\"error\":\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(code, _)| code);
        match error {
            Some(e) => format!("{status} {e}"),
            None => status.to_string(),
        }
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        self.buf.reserve(4096);
        let n = self.stream.read_buf(&mut self.buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
    }
}

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
