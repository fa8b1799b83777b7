//! A device that boots with its clock in 1970 (no battery-backed clock, no NTP yet) recovers
//! without a person: pairgate answers its first proof with `use_dpop_nonce`, a `DPoP-Nonce` and
//! its own time in `Date`; the device sets its clock from that `Date`, so its client assertions
//! are valid again (RFC 7523 `exp` cannot be excused by a nonce), asks again with the nonce, and
//! pairs, uploads and refreshes. Readings it took before it knew the time move with its clock.
//! Both through the simulator's library, on the test's clock, and through the `pairgate-device`
//! binary with its hidden `--clock-offset-secs`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pairgate::clock::{Clock, SystemClock};
use pairgate::ids::DeviceSerial;
use pairgate::oauth::device_flow::Verdict;
use pairgate::simulator::client::{DeviceClient, Poll};
use pairgate::simulator::firmware::{Firmware, FirmwareOptions, load_tokens};
use pairgate::simulator::{DeviceKey, KeyAlg, generate_pkcs8, pkcs8_pem};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_device_that_boots_in_1970_pairs_uploads_and_refreshes,
    the_device_binary_recovers_from_a_1970_clock,
);

/// Where the device's clock starts: two minutes into 1970.
const BOOT: i64 = 120;

/// The device `serial` booting with its factory key, its clock at [`BOOT`] and running on from
/// there with the test's clock.
async fn boot(app: &TestApp, serial: &str, pkcs8: &[u8]) -> DeviceClient {
    let client = DeviceClient::discover(&app.base, serial, DeviceKey::from_pkcs8(pkcs8).unwrap())
        .await
        .unwrap()
        .with_clock(app.clock.clone())
        .with_clock_offset(BOOT - app.now());
    assert_eq!(client.now(), BOOT);
    client
}

async fn register(app: &TestApp, serial: &str) -> Vec<u8> {
    let pkcs8 = generate_pkcs8(KeyAlg::Es256).unwrap();
    let key = DeviceKey::from_pkcs8(&pkcs8).unwrap();
    pairgate::devices::register(
        &app.ctx.store,
        app.now() * 1000,
        "test",
        &DeviceSerial::from(serial),
        "SIM-1",
        &key.public_jwk(),
    )
    .await
    .unwrap();
    pkcs8
}

/// The earliest and latest reading time stored for `serial`, in Unix ms.
async fn stored_times(app: &TestApp, serial: &str) -> (i64, i64) {
    let min = app
        .query_i64(&format!(
            "SELECT MIN(ts) AS n FROM telemetry_readings WHERE serial = '{serial}'"
        ))
        .await;
    let max = app
        .query_i64(&format!(
            "SELECT MAX(ts) AS n FROM telemetry_readings WHERE serial = '{serial}'"
        ))
        .await;
    (min, max)
}

async fn a_device_that_boots_in_1970_pairs_uploads_and_refreshes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let serial = "SIM-1970";
    let pkcs8 = register(&app, serial).await;

    // First boot: pairing. The device authorization request is answered use_dpop_nonce; the
    // device sets its clock from Date and asks again.
    let client = boot(&app, serial, &pkcs8).await;
    let auth = client.start_pairing().await.unwrap();
    assert_eq!(client.now(), app.now(), "the device took pairgate's time");
    assert!(matches!(
        client.poll(&auth.device_code).await.unwrap(),
        Poll::Pending
    ));
    app.ctx
        .oauth
        .decide(
            &auth.user_code,
            Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    app.advance(5);
    let Poll::Tokens(tokens) = client.poll(&auth.device_code).await.unwrap() else {
        panic!("no tokens after approval");
    };

    // Second boot, in 1970 again, with the tokens it kept: it measures before it has talked to
    // anyone (its readings say 1970), then uploads. The upload gets use_dpop_nonce, the device
    // sets its clock, and its readings move with it.
    let client = boot(&app, serial, &pkcs8).await;
    let mut firmware = Firmware::new(client, Some(tokens), None, FirmwareOptions::default());
    let measured_at = app.now();
    firmware.measure();
    app.advance(60);
    firmware.measure();
    let done = firmware.sync().await.unwrap();
    assert_eq!((done.uploads, done.accepted, done.dropped), (1, 2, 0));
    assert!(!done.refreshed);
    assert_eq!(
        stored_times(&app, serial).await,
        (measured_at * 1000, (measured_at + 60) * 1000),
        "stored at the times they were taken, in pairgate's time"
    );

    // Third boot, eleven minutes on: the access token has expired meanwhile, which a clock in
    // 1970 cannot tell. The upload is refused for the token, the refresh gets use_dpop_nonce at
    // the token endpoint, the device sets its clock, refreshes, and uploads.
    app.advance(660);
    let tokens = firmware.tokens().unwrap().clone();
    let client = boot(&app, serial, &pkcs8).await;
    let mut firmware = Firmware::new(client, Some(tokens), None, FirmwareOptions::default());
    firmware.measure();
    let done = firmware.sync().await.unwrap();
    assert!(done.refreshed, "refreshed");
    assert_eq!((done.accepted, done.dropped), (1, 0));
    assert_eq!(firmware.client().now(), app.now());
    assert_eq!(stored_times(&app, serial).await.1, app.now() * 1000);
}

/// Moves the test's clock along with the machine's while the binary runs (it sleeps for real),
/// so polling intervals pass for pairgate too.
fn follow_the_wall_clock(app: &TestApp) -> actix_web::rt::task::JoinHandle<()> {
    let clock = app.clock.clone();
    let (start, wall) = (clock.now(), SystemClock.now());
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            clock.set(start + (SystemClock.now() - wall));
        }
    })
}

/// `pairgate-device` with a clock in 1970.
fn device(dir: &std::path::Path, app: &TestApp, command: &str, extra: &[&str]) -> Command {
    let offset = BOOT - SystemClock.now().timestamp();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pairgate-device"));
    cmd.current_dir(dir)
        .args([
            command,
            "--serial",
            "SIM-BIN-1970",
            "--key",
            "device.pem",
            "--server",
            &app.base,
            "--tokens",
            "tokens.json",
        ])
        .arg(format!("--clock-offset-secs={offset}"))
        .args(extra);
    cmd
}

async fn finish(mut cmd: Command) -> (bool, String) {
    let out = actix_web::rt::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn the_device_binary_recovers_from_a_1970_clock(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[oauth]\npoll_interval_secs = 1")
        .start()
        .await;
    let ticker = follow_the_wall_clock(&app);
    let tenant = app.tenant("Acme Water").await;
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = generate_pkcs8(KeyAlg::Es256).unwrap();
    std::fs::write(dir.path().join("device.pem"), pkcs8_pem(&pkcs8)).unwrap();
    pairgate::devices::register(
        &app.ctx.store,
        app.now() * 1000,
        "test",
        &DeviceSerial::from("SIM-BIN-1970"),
        "SIM-1",
        &DeviceKey::from_pkcs8(&pkcs8).unwrap().public_jwk(),
    )
    .await
    .unwrap();

    // pair: read the code it shows, approve it as a person would.
    let mut child = device(dir.path(), &app, "pair", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads all it prints (so it never writes into a closed pipe), passing the code on.
    let reader = std::thread::spawn(move || {
        let mut shown = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, code)) = line.split_once("enter the code:") {
                let _ = tx.send(code.trim().to_owned());
            }
            shown.push_str(&line);
            shown.push('\n');
        }
        shown
    });
    let code =
        actix_web::rt::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap()
            .expect("the device shows a code");
    app.ctx
        .oauth
        .decide(&code, Verdict::Approve { tenant_id: tenant }, "user:test")
        .await
        .unwrap();
    let out = actix_web::rt::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let shown = reader.join().unwrap();
    assert!(
        out.status.success(),
        "pair: {shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paired = load_tokens(&dir.path().join("tokens.json"))
        .unwrap()
        .unwrap();

    // refresh, from 1970 again.
    let (ok, text) = finish(device(dir.path(), &app, "refresh", &[])).await;
    assert!(ok, "refresh: {text}");
    let refreshed = load_tokens(&dir.path().join("tokens.json"))
        .unwrap()
        .unwrap();
    assert_ne!(refreshed.refresh_token, paired.refresh_token);
    assert!(
        (refreshed.expires_at - app.now() - 600).abs() < 30,
        "the token's expiry is in pairgate's time: {}",
        refreshed.expires_at
    );

    // run: two measurements a second apart, taken in 1970, uploaded once the device knows the
    // time.
    let before = app.now();
    let (ok, text) = finish(device(
        dir.path(),
        &app,
        "run",
        &[
            "--measurements",
            "2",
            "--interval-secs",
            "1",
            "--upload-every",
            "2",
        ],
    ))
    .await;
    assert!(ok, "run: {text}");
    assert!(text.contains("uploaded 2 readings"), "{text}");
    ticker.abort();
    let (first, last) = stored_times(&app, "SIM-BIN-1970").await;
    assert!(
        first >= (before - 5) * 1000 && last <= (app.now() + 5) * 1000,
        "readings at pairgate's time ({before}…{}), not in 1970: {first}…{last}",
        app.now()
    );
}
