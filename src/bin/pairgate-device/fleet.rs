//! `pairgate-device fleet`: many simulated devices at once, kept between runs in a state
//! folder, bootstrapped when asked, then run and reported on (see `pairgate::simulator::fleet`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pairgate::ids::TenantId;
use pairgate::simulator::client::{Endpoints, http_client};
use pairgate::simulator::firmware::write_private;
use pairgate::simulator::fleet::{self, FleetDevice, FleetOptions};

use crate::Alg;

#[derive(Debug, clap::Args)]
pub(super) struct FleetArgs {
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

impl FleetArgs {
    /// Threads of the load generator's runtime.
    pub(super) fn threads(&self) -> usize {
        self.threads.max(1)
    }

    fn options(&self) -> FleetOptions {
        FleetOptions {
            rate: self.rate.max(0.0),
            tasks: self.tasks.max(1),
            duration: Duration::from_secs(self.duration_secs.max(1)),
            warmup: Duration::from_secs(self.warmup_secs),
            readings: self.readings.max(1),
            ack_log: self.ack_log.clone(),
            progress_every: Duration::from_secs(5),
        }
    }
}

/// `fleet`: bootstrap when asked, then run the fleet and print the report.
pub(super) async fn run(args: FleetArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.state)
        .map_err(|e| format!("cannot create {}: {e}", args.state.display()))?;
    let state_file = args.state.join("fleet.json");
    let mut devices = load_fleet(&state_file)?;
    let http = http_client().map_err(|e| e.to_string())?;
    let endpoints = Arc::new(
        Endpoints::discover(&http, &args.server)
            .await
            .map_err(|e| e.to_string())?,
    );
    if let Some(count) = args.bootstrap {
        devices.extend(bootstrap(&args, count, &http, &endpoints).await?);
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
    let options = args.options();
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

/// Registers and pairs `count` new devices as the operator would, in-process against the
/// server's database.
async fn bootstrap(
    args: &FleetArgs,
    count: usize,
    http: &reqwest::Client,
    endpoints: &Arc<Endpoints>,
) -> Result<Vec<FleetDevice>, String> {
    let settings =
        pairgate::config::Settings::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let ctx = pairgate::app::AppContext::start(settings, Arc::new(pairgate::clock::SystemClock))
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
        tenant: args.tenant.map(TenantId::from),
        key_alg: args.alg.key_alg(),
        parallel: 32,
    };
    let new = fleet::bootstrap(&ctx, http, Arc::clone(endpoints), &plan).await?;
    eprintln!(
        "bootstrapped {} devices ({prefix}-*) in {:.1} s",
        new.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(new)
}

/// The devices kept in `path`: none while it does not exist.
fn load_fleet(path: &Path) -> Result<Vec<FleetDevice>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn save_fleet(path: &Path, devices: &[FleetDevice]) -> Result<(), String> {
    let json = serde_json::to_string(devices).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &json)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}
