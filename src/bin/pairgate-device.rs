//! `pairgate-device`: a device simulator that behaves as firmware would. It holds a factory key,
//! starts pairing, shows the user code and a QR of `verification_uri_complete`, polls with the
//! interval the server asks for (slowing down when told), and keeps its tokens in a file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pairgate::simulator::client::{DeviceClient, Poll, TokenSet};
use pairgate::simulator::{DeviceKey, generate_pkcs8, pkcs8_from_pem, pkcs8_pem};

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
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
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
    let runtime = match tokio::runtime::Builder::new_current_thread()
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

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn save_tokens(path: &Path, tokens: &TokenSet) -> Result<(), String> {
    let json = serde_json::to_string_pretty(tokens).map_err(|e| e.to_string())?;
    // Write then rename, so a crash never leaves half a token file.
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &json)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

fn show_code(user_code: &str, uri: &str, complete: Option<&str>) {
    println!();
    println!("  To pair this device, open {uri}");
    println!("  and enter the code:  {user_code}");
    if let Some(link) = complete {
        if let Ok(qr) = qrcode::QrCode::new(link.as_bytes()) {
            let art = qr
                .render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build();
            println!("\n  or scan:\n{art}");
        }
    }
    println!("  Only approve if this code is shown on the device in front of you.\n");
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Keygen { key, alg } => {
            let der = generate_pkcs8(matches!(alg, Alg::Eddsa)).map_err(|e| e.to_string())?;
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
                .map_err(|e| e.to_string())?;
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
                    Ok(Poll::Tokens(tokens)) => {
                        let path = args.tokens_path();
                        save_tokens(&path, &tokens)?;
                        println!("paired: tokens stored in {}", path.display());
                        return Ok(());
                    }
                    Ok(Poll::Failed(reason)) => return Err(format!("pairing refused: {reason}")),
                    // Network trouble: keep the code, back off, try again.
                    Err(e) => {
                        eprintln!("pairgate-device: {e}; retrying");
                        interval = (interval * 2).min(60);
                    }
                }
            }
        }
        Command::Refresh(args) => {
            let path = args.tokens_path();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let tokens: TokenSet =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let refresh = tokens.refresh_token.ok_or("no refresh token stored")?;
            let client = DeviceClient::discover(&args.server, &args.serial, load_key(&args.key)?)
                .await
                .map_err(|e| e.to_string())?;
            let fresh = client.refresh(&refresh).await.map_err(|e| e.to_string())?;
            save_tokens(&path, &fresh)?;
            println!(
                "refreshed: new tokens stored in {} (valid until {})",
                path.display(),
                fresh.expires_at
            );
            Ok(())
        }
    }
}
