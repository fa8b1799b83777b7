//! `pairgate-device`: a device simulator that behaves as firmware would. It holds a factory key,
//! starts pairing, shows the user code and a QR of `verification_uri_complete`, polls with the
//! interval the server asks for (slowing down when told), keeps its tokens in a file, and in
//! `run` mode measures, refreshes before expiry and uploads telemetry, riding out server
//! restarts. `fleet` runs many devices at once and reports throughput and latency: the load
//! generator of `scripts/bench-telemetry.sh`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pairgate::simulator::client::{DeviceClient, Endpoints, Poll, SimError, TokenSet, http_client};
use pairgate::simulator::firmware::{
    Backoff, Firmware, FirmwareOptions, SyncError, load_tokens, save_tokens, write_private,
};
use pairgate::simulator::fleet::{self, FleetDevice, FleetOptions};
use pairgate::simulator::{DeviceKey, KeyAlg, generate_pkcs8, pkcs8_from_pem, pkcs8_pem};

/// A simulated pairgate device.
#[derive(Debug, Parser)]
#[command(name = "pairgate-device", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Alg {
    Es256,
    Eddsa,
}

impl Alg {
    fn key_alg(self) -> KeyAlg {
        match self {
            Self::Es256 => KeyAlg::Es256,
            Self::Eddsa => KeyAlg::Ed25519,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a factory key (PKCS#8 PEM, mode 0600) and print its public JWK for registration.
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[arg(long, value_enum, default_value = "es256")]
        alg: Alg,
    },
    /// Print the public JWK of a key file.
    Jwk {
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Pair with pairgate: show the code, poll until a person decides, store the tokens.
    Pair(DeviceArgs),
    /// Spend the stored refresh token for a new token set.
    Refresh(DeviceArgs),
    /// Run as a paired device: measure every interval, upload in batches, refresh tokens before
    /// they expire, keep readings and retry with backoff while the server is unreachable.
    Run(RunArgs),
    /// Simulate many devices at once and report uploads/s and latency percentiles.
    Fleet(FleetArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    device: DeviceArgs,
    /// Seconds between measurements.
    #[arg(long, default_value_t = 10)]
    interval_secs: u64,
    /// Readings per upload at most (the server accepts telemetry.max_batch_readings).
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Upload once this many readings are waiting (1: after every measurement).
    #[arg(long, default_value_t = 1)]
    upload_every: usize,
    /// Pair (showing the code) when there are no tokens or they were revoked, instead of exiting.
    #[arg(long)]
    pair_if_needed: bool,
    /// Stop after this many measurements (default: run until interrupted).
    #[arg(long)]
    measurements: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct FleetArgs {
    /// pairgate's public URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Folder keeping the fleet's keys and tokens (fleet.json, mode 0600) between runs.
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// Register and pair this many new devices first, acting as the operator in-process against
    /// the server's database (the same domain code as `pairgate device register` and `pairgate
    /// device approve`; settings from --config and PAIRGATE_*, as for `pairgate`). The server
    /// must allow that many device authorizations per minute from this address.
    #[arg(long, value_name = "N")]
    bootstrap: Option<usize>,
    /// Stop after --bootstrap (set-up only, nothing measured).
    #[arg(long, requires = "bootstrap")]
    bootstrap_only: bool,
    /// pairgate's settings file, for --bootstrap.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The tenant bootstrapped devices join (default: a new tenant).
    #[arg(long)]
    tenant: Option<i64>,
    /// Serial prefix of bootstrapped devices.
    #[arg(long, default_value = "FLEET")]
    prefix: String,
    /// Factory key type of bootstrapped devices.
    #[arg(long, value_enum, default_value = "es256")]
    alg: Alg,
    /// Uploads per second over the whole fleet (open loop); 0: closed loop, --tasks in flight.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Schedulers (open loop; keep it above rate × worst latency) or uploads in flight (closed).
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Not counted in the results.
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Readings per upload.
    #[arg(long, default_value_t = 10)]
    readings: usize,
    /// Append "serial reading_id" for every acknowledged reading to this file.
    #[arg(long, value_name = "FILE")]
    ack_log: Option<PathBuf>,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct DeviceArgs {
    /// This device's serial number (its OAuth client_id).
    #[arg(long)]
    serial: String,
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// pairgate's public URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Where tokens are kept (default: <serial>.tokens.json).
    #[allow(
        rustdoc::invalid_html_tags,
        reason = "this text is the --help line; <serial> is a placeholder, not HTML (and only \
                  rustdoc runs this lint, so an #[expect] would go unfulfilled elsewhere)"
    )]
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// For tests: start with the clock off by this many seconds (minus the current Unix time
    /// is a device that booted in 1970). The device sets its clock from the server's answer.
    #[arg(long, hide = true, default_value_t = 0, allow_negative_numbers = true)]
    clock_offset_secs: i64,
}

impl DeviceArgs {
    fn tokens_path(&self) -> PathBuf {
        self.tokens
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.tokens.json", self.serial)))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Fleet(args) => args.threads.max(1),
        _ => 1,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pairgate-device: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pairgate-device: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_key(path: &Path) -> Result<DeviceKey, String> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let der = pkcs8_from_pem(&pem).ok_or_else(|| format!("{} is not a PEM key", path.display()))?;
    DeviceKey::from_pkcs8(&der)
        .map_err(|_| format!("{} is not a P-256 or Ed25519 PKCS#8 key", path.display()))
}

fn show_code(user_code: &str, uri: &str, complete: Option<&str>) {
    println!();
    println!("  To pair this device, open {uri}");
    println!("  and enter the code:  {user_code}");
    if let Some(link) = complete
        && let Ok(qr) = qrcode::QrCode::new(link.as_bytes())
    {
        let art = qr
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        println!("\n  or scan:\n{art}");
    }
    println!("  Only approve if this code is shown on the device in front of you.\n");
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen { key, alg } => {
            let der = generate_pkcs8(alg.key_alg()).map_err(|e| e.to_string())?;
            if key.exists() {
                return Err(format!(
                    "{} exists; refusing to overwrite a device key",
                    key.display()
                ));
            }
            write_private(&key, &pkcs8_pem(&der))?;
            let device = DeviceKey::from_pkcs8(&der).map_err(|e| e.to_string())?;
            println!("{}", device.public_jwk());
            Ok(())
        }
        Command::Jwk { key } => {
            println!("{}", load_key(&key)?.public_jwk());
            Ok(())
        }
        Command::Pair(args) => {
            let client = DeviceClient::discover(&args.server, &args.serial, load_key(&args.key)?)
                .await
                .map_err(|e| e.to_string())?
                .with_clock_offset(args.clock_offset_secs);
            let tokens = pair(&client).await?;
            let path = args.tokens_path();
            save_tokens(&path, &tokens)?;
            println!("paired: tokens stored in {}", path.display());
            Ok(())
        }
        Command::Refresh(args) => {
            let path = args.tokens_path();
            let tokens = load_tokens(&path)?
                .ok_or_else(|| format!("{} does not exist: pair first", path.display()))?;
            let refresh = tokens.refresh_token.ok_or("no refresh token stored")?;
            let client = DeviceClient::discover(&args.server, &args.serial, load_key(&args.key)?)
                .await
                .map_err(|e| e.to_string())?
                .with_clock_offset(args.clock_offset_secs);
            let fresh = refresh_retrying(&client, &refresh).await?;
            save_tokens(&path, &fresh)?;
            println!(
                "refreshed: new tokens stored in {} (valid until {})",
                path.display(),
                fresh.expires_at
            );
            Ok(())
        }
        Command::Run(args) => run_device(args).await,
        Command::Fleet(args) => run_fleet(args).await,
    }
}

/// Starts pairing, shows the code, and polls until a person decides.
async fn pair(client: &DeviceClient) -> Result<TokenSet, String> {
    let auth = client.start_pairing().await.map_err(|e| e.to_string())?;
    show_code(
        &auth.user_code,
        &auth.verification_uri,
        auth.verification_uri_complete.as_deref(),
    );
    let mut interval = auth.interval.unwrap_or(5).max(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(auth.expires_in);
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if tokio::time::Instant::now() >= deadline {
            return Err("the code expired before anyone approved it".into());
        }
        match client.poll(&auth.device_code).await {
            Ok(Poll::Pending) => {}
            Ok(Poll::SlowDown) => interval += 5,
            Ok(Poll::Tokens(tokens)) => return Ok(tokens),
            Ok(Poll::Failed(reason)) => return Err(format!("pairing refused: {reason}")),
            // Network trouble: keep the code, back off, try again.
            Err(e) => {
                eprintln!("pairgate-device: {e}; retrying");
                interval = (interval * 2).min(60);
            }
        }
    }
}

/// Spends a refresh token. When no answer comes back, the server may have rotated the tokens
/// all the same: the same token goes again, with the same key, a few times within seconds,
/// which pairgate answers with the same new tokens while its retry grace lasts (30 s by
/// default). A refusal is final.
async fn refresh_retrying(client: &DeviceClient, refresh_token: &str) -> Result<TokenSet, String> {
    let mut backoff = Backoff::new(REFRESH_RETRY_CAP);
    let mut attempt = 1;
    loop {
        match client.refresh(refresh_token).await {
            Ok(tokens) => return Ok(tokens),
            Err(SimError::Refused { status, body, .. }) if (400..500).contains(&status) => {
                return Err(format!("refresh refused: {body}"));
            }
            Err(e) if attempt < REFRESH_ATTEMPTS => {
                let wait = backoff.next(None);
                eprintln!(
                    "pairgate-device: {e}; retrying the same refresh token in {} ms",
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Tries of one refresh, and the longest wait between two: 0.5–1, 1–2, 2–4, 4–5 s, all well
/// inside pairgate's default retry grace.
const REFRESH_ATTEMPTS: u32 = 5;
const REFRESH_RETRY_CAP: Duration = Duration::from_secs(5);

/// Discovery, retried with backoff: a device that boots while the server is down waits for it.
async fn discover(http: &reqwest::Client, server: &str) -> Endpoints {
    let mut backoff = Backoff::new(Duration::from_secs(60));
    loop {
        match Endpoints::discover(http, server).await {
            Ok(endpoints) => return endpoints,
            Err(e) => {
                let wait = backoff.next(None);
                eprintln!("pairgate-device: {e}; retrying in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `run`: the firmware loop.
async fn run_device(args: RunArgs) -> Result<(), String> {
    let d = &args.device;
    let http = http_client().map_err(|e| e.to_string())?;
    let endpoints = Arc::new(discover(&http, &d.server).await);
    let client = DeviceClient::new(
        http,
        endpoints,
        &d.serial,
        load_key(&d.key)?,
        Arc::new(pairgate::clock::SystemClock),
    )
    .with_clock_offset(d.clock_offset_secs);
    let path = d.tokens_path();
    let tokens = load_tokens(&path)?;
    let mut firmware = Firmware::new(
        client,
        tokens,
        Some(path.clone()),
        FirmwareOptions {
            batch: args.batch.max(1),
            ..FirmwareOptions::default()
        },
    );
    let interval = Duration::from_secs(args.interval_secs.max(1));
    let mut backoff = Backoff::new(Duration::from_secs(60));
    let mut next_measure = tokio::time::Instant::now();
    let mut next_sync = next_measure;
    let mut measured = 0u64;
    println!(
        "{} running: a measurement every {} s, tokens in {}",
        d.serial,
        interval.as_secs(),
        path.display()
    );
    loop {
        if firmware.tokens().is_none() {
            if !args.pair_if_needed {
                return Err(format!(
                    "no usable tokens in {}: pair first (or pass --pair-if-needed)",
                    path.display()
                ));
            }
            let tokens = pair(firmware.client()).await?;
            firmware.set_tokens(tokens).map_err(|e| e.to_string())?;
            println!("paired: tokens stored in {}", path.display());
        }
        let now = tokio::time::Instant::now();
        if now >= next_measure {
            if args.measurements.is_some_and(|m| measured >= m) && firmware.buffered() == 0 {
                return Ok(());
            }
            if args.measurements.is_none_or(|m| measured < m) {
                firmware.measure();
                measured += 1;
            }
            next_measure += interval;
        }
        if now >= next_sync && firmware.buffered() >= args.upload_every.max(1) {
            match firmware.sync().await {
                Ok(done) => {
                    backoff.reset();
                    if done.uploads > 0 || done.refreshed {
                        println!(
                            "uploaded {} readings in {} batches ({} new, {} duplicates{}{})",
                            done.acknowledged.len(),
                            done.uploads,
                            done.accepted,
                            done.duplicates,
                            if done.refreshed {
                                "; tokens refreshed"
                            } else {
                                ""
                            },
                            if done.dropped > 0 {
                                "; a batch was refused and dropped"
                            } else {
                                ""
                            },
                        );
                    }
                }
                Err(SyncError::Transient {
                    reason,
                    retry_after,
                    ..
                }) => {
                    let mut wait = backoff.next(retry_after);
                    if firmware.refresh_in_doubt() {
                        // Back soon, while the server still answers the lost refresh again.
                        wait = wait.min(REFRESH_RETRY_CAP);
                    }
                    eprintln!(
                        "pairgate-device: {reason}; {} readings kept, retrying in {:.1} s",
                        firmware.buffered(),
                        wait.as_secs_f64()
                    );
                    next_sync = tokio::time::Instant::now() + wait;
                }
                Err(SyncError::NeedsPairing(reason)) => {
                    eprintln!("pairgate-device: {reason}");
                    if !args.pair_if_needed {
                        return Err(format!("{reason}: pair again"));
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        let wake = if firmware.buffered() >= args.upload_every.max(1) {
            next_measure.min(next_sync.max(tokio::time::Instant::now()))
        } else {
            next_measure
        };
        tokio::time::sleep_until(wake).await;
    }
}

/// `fleet`: bootstrap when asked, then run the fleet and print the report.
async fn run_fleet(args: FleetArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.state)
        .map_err(|e| format!("cannot create {}: {e}", args.state.display()))?;
    let state_file = args.state.join("fleet.json");
    let mut devices: Vec<FleetDevice> = match std::fs::read_to_string(&state_file) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", state_file.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", state_file.display())),
    };
    let http = http_client().map_err(|e| e.to_string())?;
    let endpoints = Arc::new(
        Endpoints::discover(&http, &args.server)
            .await
            .map_err(|e| e.to_string())?,
    );
    if let Some(count) = args.bootstrap {
        let settings =
            pairgate::config::Settings::load(args.config.as_deref()).map_err(|e| e.to_string())?;
        let ctx =
            pairgate::app::AppContext::start(settings, Arc::new(pairgate::clock::SystemClock))
                .await
                .map_err(|e| e.to_string())?;
        let prefix = format!(
            "{}-{}",
            args.prefix,
            pairgate::crypto::tokens::new_id()[..6].to_owned()
        );
        let started = std::time::Instant::now();
        let plan = fleet::Bootstrap {
            count,
            prefix: prefix.clone(),
            tenant: args.tenant,
            key_alg: args.alg.key_alg(),
            parallel: 32,
        };
        let new = fleet::bootstrap(&ctx, &http, Arc::clone(&endpoints), &plan).await?;
        eprintln!(
            "bootstrapped {} devices ({prefix}-*) in {:.1} s",
            new.len(),
            started.elapsed().as_secs_f64()
        );
        devices.extend(new);
        save_fleet(&state_file, &devices)?;
        if args.bootstrap_only {
            return Ok(());
        }
    }
    if devices.is_empty() {
        return Err(format!(
            "{} holds no devices: pass --bootstrap N",
            state_file.display()
        ));
    }
    let options = FleetOptions {
        rate: args.rate.max(0.0),
        tasks: args.tasks.max(1),
        duration: Duration::from_secs(args.duration_secs.max(1)),
        warmup: Duration::from_secs(args.warmup_secs),
        readings: args.readings.max(1),
        ack_log: args.ack_log.clone(),
        progress_every: Duration::from_secs(5),
    };
    eprintln!(
        "fleet: {} devices, {} readings per upload, {}, {} s after {} s warm-up",
        devices.len(),
        options.readings,
        if options.rate > 0.0 {
            format!(
                "target {} uploads/s open loop over {} schedulers",
                options.rate, options.tasks
            )
        } else {
            format!("closed loop, {} in flight", options.tasks)
        },
        args.duration_secs,
        args.warmup_secs,
    );
    let (report, devices) = fleet::run(&http, endpoints, devices, &options).await?;
    save_fleet(&state_file, &devices)?;
    println!("{}", report.summary());
    Ok(())
}

fn save_fleet(path: &Path, devices: &[FleetDevice]) -> Result<(), String> {
    let json = serde_json::to_string(devices).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &json)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}
