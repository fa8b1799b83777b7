//! The command line: `pairgate [--config FILE] [serve | migrate]`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::AppContext;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::store::Store;

/// pairgate pairs a manufacturer's IoT devices with the right customer's tenant, using the OAuth 2.0
/// device authorization grant (RFC 8628) and DPoP-bound tokens.
#[derive(Debug, Parser)]
#[command(name = "pairgate", version, propagate_version = true)]
#[command(
    after_help = "Without a command, pairgate serves (the same as `pairgate serve`).\n\
Settings come from config/default.toml, then --config FILE, then PAIRGATE_* environment variables\n\
(PAIRGATE_BIND, PAIRGATE_PUBLIC_URL, PAIRGATE_DATABASE_URL, PAIRGATE_<SECTION>__<KEY>)."
)]
pub struct Cli {
    /// A TOML file whose keys override the built-in defaults.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server: OAuth endpoints, portal, APIs (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Runs the command line; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("pairgate: {err}");
            return ExitCode::FAILURE;
        }
    };
    crate::logging::init(&settings.log);
    let outcome = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Migrate => migrate(settings).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pairgate: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let bind = settings.server.bind;
    let public_url = settings.server.public_url.clone();
    let database = settings.database.url.redacted();
    let ctx = AppContext::start(settings, Arc::new(SystemClock))
        .await
        .map_err(|e| format!("cannot open the database {database}: {e}"))?;
    let listener = TcpListener::bind(bind)
        .map_err(|e| format!("cannot listen on {bind} (server.bind): {e}"))?;
    tracing::info!(%bind, %public_url, %database, "pairgate listening");
    crate::http::server(ctx, listener, crate::http::Signals::Handle)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))?;
    tracing::info!("pairgate stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> Result<(), String> {
    let database = settings.database.url.redacted();
    let store = Store::open(&settings.database)
        .await
        .map_err(|e| format!("cannot open the database {database}: {e}"))?;
    let applied = store
        .migrate()
        .await
        .map_err(|e| format!("migrating {database}: {e}"))?;
    if applied.is_empty() {
        println!("{database}: up to date");
    } else {
        for version in applied {
            println!("{database}: applied {version}");
        }
    }
    Ok(())
}
