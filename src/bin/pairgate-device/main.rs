//! `pairgate-device`: a device simulator that behaves as firmware would. It holds a factory key,
//! starts pairing, shows the user code and a QR of `verification_uri_complete`, polls with the
//! interval the server asks for (slowing down when told), keeps its tokens in a file, and in
//! `run` mode measures, refreshes before expiry and uploads telemetry, riding out server
//! restarts. `fleet` runs many devices at once and reports throughput and latency: the load
//! generator of `scripts/bench-telemetry.sh`.

mod device;
mod fleet;
mod qr;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pairgate::simulator::client::{DeviceClient, Poll, SimError, TokenSet};
use pairgate::simulator::firmware::{Backoff, load_tokens, save_tokens, write_private};
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
    Run(device::RunArgs),
    /// Simulate many devices at once and report uploads/s and latency percentiles.
    Fleet(fleet::FleetArgs),
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
        Command::Fleet(args) => args.threads(),
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
    if let Some(art) = complete.and_then(|link| qr::art(link, qr::paint_stdout())) {
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
        Command::Run(args) => device::run(args).await,
        Command::Fleet(args) => fleet::run(args).await,
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
