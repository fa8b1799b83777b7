//! Several instances behind a real load balancer: HAProxy, configured as docs/operations.md
//! shows it ("Several instances"), in front of two `pairgate serve` processes sharing one fresh
//! PostgreSQL database and one master key. A device pairs, refreshes and uploads through it, and
//! a signing key added by `pairgate keys rotate` is published, signed with and accepted by both
//! instances. They reload their key rings only hourly here, so only PostgreSQL's
//! `LISTEN`/`NOTIFY` can have told them. Which instance answered each request is read from the
//! instances' own `/metrics`. PostgreSQL only: two servers on one SQLite file is refused.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::oauth::refresh::refreshed;
use crate::support::ceremony::{Running, ready};
use crate::support::{Backend, TestApp, postgres, test_epoch};
use crate::telemetry::{self, Paired};
use crate::trusted_proxies::{documented_block, free_port};

/// The load balancer and the two instances behind it, stopped when dropped (the balancer
/// first, the database last).
struct Cluster {
    _balancer: Running,
    _instances: Vec<Running>,
    /// Each instance's own address (`http://127.0.0.1:PORT`), for its `/metrics` and JWKS.
    direct: Vec<String>,
    app: TestApp,
    dir: tempfile::TempDir,
}

fn haproxy() -> Option<&'static str> {
    [
        "/usr/sbin/haproxy",
        "/usr/bin/haproxy",
        "/usr/local/sbin/haproxy",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
}

impl Cluster {
    /// A fresh database (through [`TestApp`], whose in-process context the test uses as the
    /// operator would the CLI), two server processes on it and HAProxy in front of them.
    async fn start(haproxy: &str, admin_url: String) -> Cluster {
        let balancer_port = free_port();
        let base = format!("http://127.0.0.1:{balancer_port}");
        let app = TestApp::builder(Backend::Postgres(admin_url))
            .behind(&base)
            .start()
            .await;
        let dir = tempfile::tempdir().unwrap();
        let ports = [free_port(), free_port()];
        let mut instances = Vec::new();
        let mut direct = Vec::new();
        for (n, port) in ports.iter().enumerate() {
            let log = std::fs::File::create(dir.path().join(format!("instance{n}.log"))).unwrap();
            let child = app
                .cli(dir.path())
                .arg("serve")
                .env("PAIRGATE_BIND", format!("127.0.0.1:{port}"))
                .env("PAIRGATE_PUBLIC_URL", &base)
                .env("PAIRGATE_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")
                .env("PAIRGATE_SERVER__WORKERS", "1")
                .env("PAIRGATE_SERVER__SHUTDOWN_TIMEOUT_SECS", "1")
                .env("PAIRGATE_KEYS__RING_RELOAD_SECS", "3600")
                .env("PAIRGATE_KEYS__PUBLISH_BEFORE_USE_SECS", "3600")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("pairgate serve starts");
            instances.push(Running(child));
            direct.push(format!("http://127.0.0.1:{port}"));
        }
        for instance in &direct {
            ready(instance).await;
        }
        let _balancer = start_haproxy(haproxy, dir.path(), balancer_port, &ports).await;
        ready(&base).await;
        Cluster {
            _balancer,
            _instances: instances,
            direct,
            app,
            dir,
        }
    }

    /// Requests each instance has answered, health checks and `/metrics` left out.
    async fn served(&self) -> Vec<u64> {
        let mut counts = Vec::new();
        for instance in &self.direct {
            let text = reqwest::get(format!("{instance}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let count: f64 = text
                .lines()
                .filter(|l| l.starts_with("pairgate_http_requests_total{"))
                .filter(|l| !l.contains("route=\"/readyz\"") && !l.contains("route=\"/metrics\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            counts.push(count as u64);
        }
        counts
    }

    /// Which instance answered the one request sent since `before` was read.
    async fn answered(&self, before: &[u64]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = self.served().await;
            let grew: Vec<usize> = (0..now.len()).filter(|&i| now[i] > before[i]).collect();
            match grew.as_slice() {
                [one] if now[*one] == before[*one] + 1 => return *one,
                [] if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => panic!("one request, one instance: {before:?} -> {now:?}"),
            }
        }
    }

    /// Whether instance `n` publishes `kid` in its JWKS.
    async fn publishes(&self, n: usize, kid: &str) -> bool {
        let jwks: Value = reqwest::get(format!("{}/oauth/jwks", self.direct[n]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid)
    }

    /// `pairgate keys rotate` on the instances' database and master key, its key signing
    /// `after_secs` from now; returns the new kid.
    fn rotate(&self, after_secs: u32) -> String {
        let out = self
            .app
            .cli(self.dir.path())
            .args(["keys", "rotate"])
            .env(
                "PAIRGATE_KEYS__PUBLISH_BEFORE_USE_SECS",
                after_secs.to_string(),
            )
            .env("PAIRGATE_KEYS__RING_RELOAD_SECS", after_secs.to_string())
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{printed}");
        printed
            .strip_prefix("signing key ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("a kid in {printed:?}"))
            .to_owned()
    }
}

/// HAProxy in the foreground with docs/operations.md's configuration, on loopback ports and
/// plain HTTP.
async fn start_haproxy(binary: &str, dir: &Path, port: u16, instances: &[u16; 2]) -> Running {
    let config = documented_block(
        ("### HAProxy", "haproxy"),
        &[
            (
                "bind :443 ssl crt /etc/haproxy/id.example.com.pem",
                format!("bind 127.0.0.1:{port}"),
            ),
            (
                "server pairgate1 10.0.0.11:8080",
                format!("server pairgate1 127.0.0.1:{}", instances[0]),
            ),
            (
                "server pairgate2 10.0.0.12:8080",
                format!("server pairgate2 127.0.0.1:{}", instances[1]),
            ),
        ],
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let log = dir.join("haproxy.log");
    let child = std::process::Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("haproxy starts");
    let running = Running(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    panic!("HAProxy did not listen on port {port} within 5 s:\n{log}");
}

fn kid_of(token: &str) -> String {
    let header = URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap());
    let header: Value = serde_json::from_slice(&header.unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The test clock, which the device's assertions and proofs are dated by, set to the real time
/// the two servers keep.
fn sync_clock(app: &TestApp) {
    app.clock.set(test_epoch());
}

/// A refresh through the balancer: the instance that answered, and the new tokens.
async fn refresh(cluster: &Cluster, device: &mut Paired) -> usize {
    sync_clock(&cluster.app);
    let before = cluster.served().await;
    let tokens = refreshed(&cluster.app, &device.device, &device.refresh_token).await;
    device.access_token = tokens["access_token"].as_str().unwrap().to_owned();
    device.refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    cluster.answered(&before).await
}

/// An upload of one reading through the balancer, which must be accepted: the instance that
/// answered.
async fn upload(cluster: &Cluster, device: &Paired, id: &str) -> usize {
    sync_clock(&cluster.app);
    let before = cluster.served().await;
    let body = telemetry::readings(&cluster.app, id, 1);
    let res = telemetry::upload(&cluster.app, device, &body).await;
    assert_eq!(telemetry::accepted(res).await, (1, 0), "upload {id}");
    cluster.answered(&before).await
}

#[actix_web::test]
async fn two_instances_behind_haproxy_pair_refresh_upload_and_follow_a_key_rotation() {
    let Some(binary) = haproxy() else {
        assert!(
            std::env::var_os("PAIRGATE_TEST_PROXY_REQUIRED").is_none(),
            "PAIRGATE_TEST_PROXY_REQUIRED is set but HAProxy is not installed"
        );
        eprintln!("HAProxy not installed: skipping the scale-out test");
        return;
    };
    let Some(Backend::Postgres(admin_url)) = postgres() else {
        return;
    };
    let cluster = Cluster::start(binary, admin_url).await;
    let app = &cluster.app;

    // Pairing: device authorization and the poll, one after the other through the balancer
    // (round robin: one on each instance), the approval in between.
    sync_clock(app);
    let tenant = app.tenant("Acme Water").await;
    let before = cluster.served().await;
    let mut device = telemetry::pair_into(app, "SN-SCALE-1", tenant).await;
    let after = cluster.served().await;
    assert_eq!(
        (after[0] - before[0], after[1] - before[1]),
        (1, 1),
        "device authorization and poll, one on each instance"
    );
    let first_kid = kid_of(&device.access_token);
    refresh(&cluster, &mut device).await;
    assert_eq!(kid_of(&device.access_token), first_kid);
    upload(&cluster, &device, "before-rotation").await;

    // A rotation, its key signing a second later: both instances publish it at once.
    let kid = cluster.rotate(1);
    assert_ne!(kid, first_kid);
    let rotated = Instant::now();
    for n in 0..2 {
        while !cluster.publishes(n, &kid).await {
            assert!(
                rotated.elapsed() < Duration::from_secs(3),
                "instance {n} did not hear of key {kid}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(rotated.elapsed())).await;

    // Both instances sign with the new key, and both accept what either signed: one refresh
    // and two uploads a round, so that refreshes alternate between the instances.
    let (mut signed_on, mut accepted_on) = ([false; 2], [false; 2]);
    let mut rounds = 0;
    for round in 0..6 {
        rounds += 1;
        signed_on[refresh(&cluster, &mut device).await] = true;
        assert_eq!(kid_of(&device.access_token), kid, "round {round}");
        for n in 0..2 {
            accepted_on[upload(&cluster, &device, &format!("r{round}-{n}")).await] = true;
        }
        if signed_on == [true; 2] && accepted_on == [true; 2] {
            break;
        }
    }
    assert_eq!(
        signed_on, [true; 2],
        "both instances refreshed with the new key"
    );
    assert_eq!(accepted_on, [true; 2], "both instances accepted its tokens");
    let uploads = 1 + 2 * rounds;
    assert_eq!(telemetry::stored(app, "SN-SCALE-1").await, uploads);
}
