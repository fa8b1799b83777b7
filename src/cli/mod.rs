//! The command line: `pairgate [--config FILE] [serve | migrate]`.

mod admin;
mod demo;
mod lists;
mod new_files;
mod prompt;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::AppContext;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::ids::TenantId;
use crate::store::Store;

/// pairgate pairs a manufacturer's IoT devices with the right customer's tenant, using the OAuth
/// 2.0 device authorization grant (RFC 8628) and DPoP-bound tokens.
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
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Set up a demo on a fresh SQLite database (a company and its owner, an ERP client, a sold
    /// device with its key), print what to run and open, and serve.
    Demo,
    /// Customer tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Portal users.
    #[command(subcommand)]
    User(UserCommand),
    /// The mail outbox (every message pairgate sent or will send).
    #[command(subcommand)]
    Mail(MailCommand),
    /// Service clients (ERP, relying apps) of the OAuth server.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Devices: register them, and decide pairing requests from a terminal.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// The access-token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The ERP integration.
    #[command(subcommand)]
    Erp(ErpCommand),
}

#[derive(Debug, Default, clap::Args)]
struct ServeArgs {
    /// The address to listen on, e.g. 0.0.0.0:8080. The same as the environment variable
    /// PAIRGATE_BIND (server.bind), which it overrides.
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// The URL people and devices reach pairgate at (the issuer), e.g. https://id.example.com.
    /// The same as the environment variable PAIRGATE_PUBLIC_URL (server.public_url), which it
    /// overrides.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
}

impl ServeArgs {
    /// The settings these flags set, as (key, value).
    fn settings(&self) -> Vec<(&'static str, String)> {
        let bind = self.bind.clone().map(|v| ("server.bind", v));
        let url = self.public_url.clone().map(|v| ("server.public_url", v));
        bind.into_iter().chain(url).collect()
    }
}

#[derive(Debug, Subcommand)]
enum ErpCommand {
    /// Import devices and sales (the installed base) from CSV or JSON lines; every row is checked
    /// first, bad rows are reported with their line numbers, the rest is imported in batches.
    /// Running the same file again changes nothing. Exits 1 if any row was not imported.
    Import {
        /// A .csv file (with a header row) or a .jsonl/.ndjson file.
        file: PathBuf,
        /// csv or jsonl; by default from the file name.
        #[arg(long)]
        format: Option<String>,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id.
    Create {
        /// The customer company's name.
        #[arg(long)]
        name: String,
    },
    /// Every tenant: id, name, ERP customer number, creation time and number of users.
    List,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line), never from the
    /// command line, where other users of the machine could see it.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The tenant id (omit with --role staff).
        #[arg(long)]
        tenant: Option<i64>,
        /// owner, admin, operator, viewer, or staff (manufacturer support).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Enrol TOTP now and print the otpauth URI to hand over (or scan).
        #[arg(long)]
        totp: bool,
    },
    /// Disable a user: every session ends at once.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Every user (or a tenant's): id, email, name, role, status, second factor, tenant.
    List {
        /// Only this tenant's users.
        #[arg(long, value_name = "ID")]
        tenant: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum MailCommand {
    /// Show the newest messages, with their text and delivery state.
    List {
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a service client, or an app that signs people in (OpenID Connect); prints its
    /// client_id (and secret, once).
    Create(ClientCreate),
    /// Every service client and app: client_id, name, scopes, authentication, status.
    List,
    /// Disable a service client: it authenticates no more (audited).
    Disable {
        /// The client_id, as `client list` shows it.
        client_id: String,
    },
}

#[derive(Debug, clap::Args)]
struct ClientCreate {
    /// A name for people (the client_id is derived from it).
    #[arg(long)]
    name: String,
    /// `service` (client_credentials, e.g. the ERP), or an app: `confidential` (a server that
    /// keeps a secret or a key) or `public` (a browser or native app: PKCE alone).
    #[arg(long, value_enum, default_value = "service")]
    kind: ClientKindArg,
    /// Service clients: space-separated scopes it may be granted, e.g. "erp".
    #[arg(long, required_if_eq("kind", "service"))]
    scope: Option<String>,
    /// A JWK Set file with its public keys, for private_key_jwt.
    #[arg(long, value_name = "FILE", conflicts_with = "secret")]
    jwks_file: Option<PathBuf>,
    /// Generate a client secret instead (printed once, stored hashed).
    #[arg(long)]
    secret: bool,
    /// Apps: where people may be sent back after signing in (exact; repeat for more).
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Apps: where people may be sent back after signing out (exact; repeat for more).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// Apps: the company (tenant id) whose people it signs in; default every company.
    #[arg(long, value_name = "TENANT_ID")]
    tenant: Option<i64>,
    /// Apps: the manufacturer's own app, which asks people for no consent.
    #[arg(long)]
    first_party: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClientKindArg {
    Service,
    Confidential,
    Public,
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Register a manufactured device and its factory public key.
    Register {
        /// Serial number; also the device's OAuth client_id.
        #[arg(long)]
        serial: String,
        #[arg(long)]
        model: String,
        /// The factory public key as a JWK (EC P-256 or OKP Ed25519).
        #[arg(long, value_name = "FILE")]
        jwk_file: PathBuf,
    },
    /// Approve a pending pairing request into a tenant.
    Approve {
        /// The code the device shows, e.g. BCDF-GHJK.
        #[arg(long)]
        user_code: String,
        /// The tenant id the device joins.
        #[arg(long)]
        tenant: i64,
    },
    /// Deny a pending pairing request.
    Deny {
        #[arg(long)]
        user_code: String,
    },
    /// Every device (or those paired to a tenant): pairing, last reading, readings.
    List {
        /// Only the devices paired to this tenant.
        #[arg(long, value_name = "ID")]
        tenant: Option<i64>,
    },
    /// One device: its model, tenant, pairing, last reading and number of readings.
    Show { serial: String },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a signing key: published now, used after keys.publish_before_use_secs.
    Rotate,
}

/// Runs the command line; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    let flags = match &command {
        Command::Serve(args) => args.settings(),
        _ => Vec::new(),
    };
    let settings = match Settings::load_with(cli.config.as_deref(), &flags) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("pairgate: {err}");
            return ExitCode::FAILURE;
        }
    };
    crate::logging::init(&settings.log);
    let outcome = actix_web::rt::System::new().block_on(async move {
        match command {
            Command::Serve(_) => serve(settings).await,
            Command::Migrate => migrate(settings).await,
            Command::Demo => demo::demo(settings).await,
            Command::Tenant(cmd) => admin(settings, Admin::Tenant(cmd)).await,
            Command::User(cmd) => admin(settings, Admin::User(cmd)).await,
            Command::Mail(cmd) => admin(settings, Admin::Mail(cmd)).await,
            Command::Client(cmd) => admin(settings, Admin::Client(cmd)).await,
            Command::Device(cmd) => admin(settings, Admin::Device(cmd)).await,
            Command::Keys(cmd) => admin(settings, Admin::Keys(cmd)).await,
            Command::Erp(cmd) => admin(settings, Admin::Erp(cmd)).await,
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

/// The application context, naming a database or master key file it created.
async fn start(settings: Settings) -> Result<AppContext, String> {
    let new_files = new_files::NewFiles::before(&settings);
    let ctx = AppContext::start(settings, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    new_files.report();
    Ok(ctx)
}

async fn serve(settings: Settings) -> Result<(), String> {
    let bind = settings.server.bind;
    let public_url = settings.server.public_url.clone();
    let database = settings.database.url.redacted();
    let ctx = start(settings).await?;
    // SQLite: this server alone decides which jti values are new (store/replay.rs).
    ctx.store
        .claim_sqlite_writer()
        .await
        .map_err(|e| format!("cannot serve {database}: {e}"))?;
    let listener = TcpListener::bind(bind)
        .map_err(|e| format!("cannot listen on {bind} (server.bind): {e}"))?;
    tracing::info!(%bind, %public_url, %database, "pairgate listening");
    match crate::mail::Delivery::from_settings(&ctx.settings.mail, ctx.accounts.outbox().clone())
        .map_err(|e| e.to_string())?
    {
        Some(delivery) => {
            let (store, clock) = (ctx.store.clone(), ctx.clock.clone());
            actix_web::rt::spawn(async move {
                let mut ticker = tokio::time::interval(std::time::Duration::from_secs(10));
                loop {
                    ticker.tick().await;
                    if let Err(e) = delivery.deliver_pending(&store, &clock).await {
                        tracing::warn!(error = %e, "mail delivery pass failed");
                    }
                }
            });
        }
        None => tracing::info!(
            "no SMTP server configured (mail.smtp_url): messages stay in the outbox; \
             see `pairgate mail list`"
        ),
    }
    actix_web::rt::spawn(crate::maintenance::run(
        ctx.store.clone(),
        ctx.oauth.clone(),
        ctx.clock.clone(),
        i64::from(ctx.settings.portal.session_idle_secs.get()) * 1000,
        std::time::Duration::from_secs(60),
    ));
    if let Err(e) = ctx.erp.publish_webhook_setting().await {
        if !e.is_unavailable() {
            return Err(format!("recording the webhook setting: {e}"));
        }
        // The database takes no writes yet (read-only, full): serve anyway, not ready, and
        // record the setting once it does; nothing is recorded for the ERP meanwhile.
        tracing::warn!(error = %e, "cannot record the webhook setting yet; will retry");
        let erp = Arc::clone(&ctx.erp);
        let every =
            std::time::Duration::from_secs(u64::from(ctx.settings.server.retry_after_secs.max(1)));
        actix_web::rt::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if erp.publish_webhook_setting().await.is_ok() {
                    tracing::info!("webhook setting recorded");
                    return;
                }
            }
        });
    }
    if let Some(webhooks) = ctx.erp.webhooks() {
        actix_web::rt::spawn(crate::erp::webhooks::run(
            webhooks,
            ctx.store.clone(),
            ctx.clock.clone(),
            std::time::Duration::from_millis(u64::from(
                ctx.settings.erp.webhook_poll_interval_ms.get(),
            )),
        ));
    }
    crate::http::server(ctx, listener, crate::http::Signals::Handle)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))?;
    tracing::info!("pairgate stopped");
    Ok(())
}

async fn migrate(settings: Settings) -> Result<(), String> {
    let database = settings.database.url.redacted();
    let new_files = new_files::NewFiles::before(&settings);
    let store = Store::open(&settings.database)
        .await
        .map_err(|e| format!("cannot open the database {database}: {e}"))?;
    new_files.report();
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

enum Admin {
    Tenant(TenantCommand),
    User(UserCommand),
    Mail(MailCommand),
    Client(ClientCommand),
    Device(DeviceCommand),
    Keys(KeysCommand),
    Erp(ErpCommand),
}

fn read_json(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// A decision's refusal in words that name the code.
fn decision_error(code: &str, e: crate::oauth::device_flow::DecisionError) -> String {
    use crate::oauth::device_flow::DecisionError;
    match e {
        DecisionError::UnknownCode => format!("no pending pairing request with code {code}"),
        other => other.to_string(),
    }
}

/// Operator commands: they run against the configured database, and every change is audited
/// with the actor `cli`.
async fn admin(settings: Settings, command: Admin) -> Result<(), String> {
    use crate::oauth::device_flow::Verdict;

    let ctx = start(settings).await?;
    let now = ctx.clock.now().timestamp_millis();
    match command {
        Admin::Tenant(command) => admin::tenant(&ctx, now, command).await?,
        Admin::User(command) => admin::user(&ctx, command).await?,
        Admin::Mail(command) => admin::mail(&ctx, command).await?,
        Admin::Client(command) => admin::client(&ctx, now, command).await?,
        Admin::Device(DeviceCommand::Register {
            serial,
            model,
            jwk_file,
        }) => admin::register_device(&ctx, now, &serial, &model, &jwk_file).await?,
        Admin::Device(DeviceCommand::List { tenant }) => lists::devices(&ctx, tenant).await?,
        Admin::Device(DeviceCommand::Show { serial }) => lists::device(&ctx, &serial).await?,
        Admin::Device(DeviceCommand::Approve { user_code, tenant }) => {
            lists::require_tenant(&ctx, tenant).await?;
            let request = ctx
                .oauth
                .decide(
                    &user_code,
                    Verdict::Approve {
                        tenant_id: TenantId::from(tenant),
                    },
                    "cli",
                )
                .await
                .map_err(|e| decision_error(&user_code, e))?;
            println!(
                "approved: device {} ({}) joins tenant {tenant}; \
                 it receives its tokens at its next poll",
                request.serial, request.model
            );
        }
        Admin::Device(DeviceCommand::Deny { user_code }) => {
            let request = ctx
                .oauth
                .decide(&user_code, Verdict::Deny, "cli")
                .await
                .map_err(|e| decision_error(&user_code, e))?;
            println!("denied: device {} ({})", request.serial, request.model);
        }
        Admin::Keys(command) => admin::keys(&ctx, command).await?,
        Admin::Erp(command) => return admin::erp(&ctx, command).await,
    }
    Ok(())
}
