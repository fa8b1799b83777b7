//! The portal's device list with 10,000 devices in one tenant: how long a page takes.
//!
//! For each engine (SQLite in a scratch folder; PostgreSQL in a scratch database on the server
//! `PAIRGATE_TEST_POSTGRES_URL` names, skipped with a message when it is unset) it starts a
//! release pairgate on loopback, signs up a company, seeds 10,000 paired devices behind the
//! server's back (10 groups; 5 % awaiting the ERP; 70 % sent a reading in the last hour, 20 %
//! went silent hours ago, 10 % never sent one; 20 readings per device that sent any: 180,000
//! readings), then asks for each page `BENCH_REQUESTS` times (default 200, after 10 unmeasured)
//! on one keep-alive connection and prints the median and the 95th percentile.
//!
//! The time is the client's, from sending the request to the end of the body, on loopback: the
//! server's time to authenticate the session, query, render and send the page, plus loopback.
//! Beside it, the CPU each request cost: the server's (every thread of this process but the
//! main one, where the client runs; from `/proc/self`) and PostgreSQL's (every `postgres`
//! process, from `/proc`), as µs per request over the measured requests. CPU time, unlike the
//! wall time, does not grow when other work shares the cores.
//!
//! `cargo bench --bench portal_devices` (release).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly on purpose"
)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use pairgate::app::AppContext;
use pairgate::clock::SystemClock;
use pairgate::config::{DatabaseUrl, PublicUrl, Settings};
use pairgate::store::ConnectionSpec;

const DEVICES: usize = 10_000;
const GROUPS: usize = 10;
const READINGS_PER_DEVICE: usize = 20;

/// The pages measured: (name, path).
const PAGES: [(&str, &str); 6] = [
    ("first page", "/devices"),
    ("search (substring)", "/devices?q=0042"),
    ("filter: silent", "/devices?seen=silent"),
    ("sort: last reading", "/devices?sort=last&dir=desc"),
    ("late page (150 of 200)", "/devices?page=150"),
    ("dashboard (home)", "/"),
];

fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    actix_web::rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        run(
            "SQLite",
            DatabaseUrl::Sqlite(dir.path().join("bench.db")),
            requests,
        )
        .await;
        match std::env::var("PAIRGATE_TEST_POSTGRES_URL") {
            Ok(admin) => {
                let name = format!("pairgate_bench_{}", std::process::id());
                let url = scratch_postgres(&admin, &name, true);
                run("PostgreSQL", url, requests).await;
                scratch_postgres(&admin, &name, false);
            }
            Err(_) => eprintln!("PAIRGATE_TEST_POSTGRES_URL is unset: skipping PostgreSQL"),
        }
    });
}

/// Creates (or drops) a scratch database on the server `admin` points at.
fn scratch_postgres(admin: &str, name: &str, create: bool) -> DatabaseUrl {
    use diesel::Connection;
    let mut conn = diesel::PgConnection::establish(admin).expect("connect to PostgreSQL");
    let sql = if create {
        format!("CREATE DATABASE \"{name}\"")
    } else {
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
    };
    diesel::sql_query(&sql)
        .execute(&mut conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut url = url::Url::parse(admin).expect("postgres url");
    url.set_path(&format!("/{name}"));
    DatabaseUrl::try_from(url.to_string()).expect("db url")
}

async fn run(engine: &str, db: DatabaseUrl, requests: usize) {
    let mut settings = Settings::defaults_with("").expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    settings.server.public_url = PublicUrl::try_from(base.clone()).expect("public url");
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 1;
    settings.database.url = db;
    settings.keys.master_key = pairgate::config::Secret::new(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rand::random::<[u8; 32]>(),
    ));
    let spec = ConnectionSpec::new(&settings.database);
    let ctx = AppContext::start(settings, Arc::new(SystemClock))
        .await
        .expect("start");
    let server = pairgate::http::server(ctx.clone(), listener, pairgate::http::Signals::Ignore)
        .expect("server");
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    sign_up(&client, &base).await;
    let started = Instant::now();
    let tenant = tokio::task::spawn_blocking(move || seed(&spec))
        .await
        .expect("seed task");
    eprintln!(
        "{engine}: seeded {DEVICES} devices in tenant {tenant} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("\n{engine}: {requests} requests per page, after 10 unmeasured");
    println!("| page | median | p95 | server CPU | PostgreSQL CPU | rows |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, path) in PAGES {
        let url = format!("{base}{path}");
        let mut times = Vec::with_capacity(requests);
        let mut body = String::new();
        let mut cpu_before = (0, 0);
        for i in 0..requests + 10 {
            if i == 10 {
                cpu_before = (server_cpu_ticks(), postgres_cpu_ticks());
            }
            let t = Instant::now();
            let res = client.get(&url).send().await.expect("request");
            assert_eq!(res.status(), 200, "{path}");
            body = res.text().await.expect("body");
            if i >= 10 {
                times.push(t.elapsed());
            }
        }
        let per_request = |ticks: u64| -> String {
            format!(
                "{:.0} µs",
                ticks as f64 * 1e6 / TICKS_PER_SEC / requests as f64
            )
        };
        let server = per_request(server_cpu_ticks() - cpu_before.0);
        let postgres = if engine == "SQLite" {
            "–".to_owned()
        } else {
            per_request(postgres_cpu_ticks() - cpu_before.1)
        };
        times.sort();
        let rows = body.matches("<th scope=\"row\"").count();
        println!(
            "| {name} | {} | {} | {server} | {postgres} | {rows} |",
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 95).div_ceil(100) - 1])
        );
    }
    handle.stop(true).await;
}

/// `/proc` counts CPU time in clock ticks of 1/100 s (`CLK_TCK` on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system ticks from a `/proc/…/stat` line (fields 14 and 15, after the `(comm)`).
fn stat_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, user + system))
}

/// This process's CPU ticks but the main thread's (the client's): the server's workers, its
/// store threads and blocking pool, including threads that have ended.
fn server_cpu_ticks() -> u64 {
    let read = |path: String| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| stat_ticks(&s))
            .map_or(0, |(_, t)| t)
    };
    let pid = std::process::id();
    read("/proc/self/stat".into()) - read(format!("/proc/self/task/{pid}/stat"))
}

/// CPU ticks of every `postgres` process now running (the backends serving the bench).
fn postgres_cpu_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| stat_ticks(&s))
        .filter(|(comm, _)| comm == "postgres")
        .map(|(_, t)| t)
        .sum()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn sign_up(client: &reqwest::Client, base: &str) {
    let page = client
        .get(format!("{base}/signup"))
        .send()
        .await
        .expect("signup page")
        .text()
        .await
        .expect("body");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf token")
        .to_owned();
    let res = client
        .post(format!("{base}/signup"))
        .header("Origin", base)
        .form(&[
            ("company", "Bench Water"),
            ("name", "Olivia Owner"),
            ("email", "olivia@example.com"),
            ("password", "correct horse battery staple"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .expect("sign up");
    assert_eq!(res.status(), 303, "sign up");
}

/// Seeds the fleet in the (only) tenant with plain SQL; returns the tenant id.
fn seed(spec: &ConnectionSpec) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let mut conn = spec.establish().expect("connection");
    let ids: Vec<Id> = diesel::sql_query("SELECT id FROM tenants")
        .load(&mut conn)
        .expect("tenants");
    assert_eq!(ids.len(), 1, "one tenant");
    let tenant_id = ids[0].id;
    let mut exec = |sql: String| {
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(200)]));
    };
    let now = pairgate::clock::Clock::now(&SystemClock).timestamp_millis();
    exec("BEGIN".into());
    let groups: Vec<String> = (0..GROUPS)
        .map(|g| format!("({tenant_id}, 'Site {g}', {now})"))
        .collect();
    exec(format!(
        "INSERT INTO device_groups (tenant_id, name, created_at) VALUES {}",
        groups.join(", ")
    ));
    for chunk in (0..DEVICES).collect::<Vec<_>>().chunks(500) {
        let serial = |i: &usize| format!("BW-{i:06}");
        let rows =
            |f: &dyn Fn(&usize) -> String| chunk.iter().map(f).collect::<Vec<_>>().join(", ");
        exec(format!(
            "INSERT INTO clients (client_id, kind, name, status, scope, created_at) VALUES {}",
            rows(&|i| format!(
                "('{}', 'device', 'Meter', 'active', 'telemetry', {now})",
                serial(i)
            ))
        ));
        exec(format!(
            "INSERT INTO devices (serial, model, tenant_id, paired_at, created_at) VALUES {}",
            rows(&|i| {
                let model = ["Meter M1", "Valve V2", "Pump P3"][i % 3];
                format!("('{}', '{model}', {tenant_id}, {now}, {now})", serial(i))
            })
        ));
        exec(format!(
            "INSERT INTO pairings (serial, tenant_id, status, basis, approved_by, created_at) \
             VALUES {}",
            rows(&|i| {
                let status = if i % 20 == 7 { "provisional" } else { "active" };
                format!(
                    "('{}', {tenant_id}, '{status}', 'operator', 'user:1', {now})",
                    serial(i)
                )
            })
        ));
        exec(format!(
            "INSERT INTO device_group_members (serial, group_id) \
             SELECT d.serial, g.id FROM devices d JOIN device_groups g \
             ON g.name = 'Site ' || CAST(CAST(SUBSTR(d.serial, 4) AS INTEGER) % {GROUPS} AS TEXT) \
             WHERE d.serial IN ({})",
            rows(&|i| format!("'{}'", serial(i)))
        ));
        let readings = readings(chunk, tenant_id, now);
        for part in readings.chunks(1000) {
            exec(format!(
                "INSERT INTO telemetry_readings (serial, reading_id, tenant_id, ts, received_at, \
                 metrics) VALUES {}",
                part.join(", ")
            ));
        }
    }
    exec("COMMIT".into());
    // The statistics a running database gathers by itself (autovacuum; SQLite's optimize).
    exec("ANALYZE".into());
    tenant_id
}

/// The readings of some devices, as SQL rows: 70 % online (the newest minutes ago), 20 % silent
/// (hours ago), 10 % never sent one.
fn readings(devices: &[usize], tenant_id: i64, now: i64) -> Vec<String> {
    let mut rows = Vec::new();
    for i in devices {
        let newest = match i % 10 {
            0..=6 => now - (*i as i64 % 50 + 1) * 60_000,
            7 | 8 => now - (*i as i64 % 40 + 2) * 3_600_000,
            _ => continue,
        };
        for r in 0..READINGS_PER_DEVICE {
            let ts = newest - r as i64 * 300_000;
            rows.push(format!(
                "('BW-{i:06}', 'r{r}', {tenant_id}, {ts}, {ts}, '{{\"temperature\":21.5}}')"
            ));
        }
    }
    rows
}
