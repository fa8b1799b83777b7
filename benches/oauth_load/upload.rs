//! The telemetry upload scenario: paired devices that each upload a batch of readings under
//! their DPoP-bound access token, with a fresh proof, as soon as the last was acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pairgate::app::AppContext;
use pairgate::config::DatabaseUrl;
use serde_json::json;

use crate::measure::{CpuSince, Row, Tally};
use crate::refresh::{Paired, paired};
use crate::{Args, label, now, outcome};

/// Readings per upload, as the cost model counts an upload.
pub(super) const READINGS: usize = 10;

/// Uploads before the timed run.
const WARM_UP: Duration = Duration::from_secs(3);

/// PostgreSQL: gathers the planner's statistics of the readings' partitions. In service,
/// autovacuum analyzes a day's partition within about a minute of its first readings (after 50
/// rows, at its next round); a run of a few seconds on a fresh database would otherwise be
/// planned against no statistics at all, where PostgreSQL may look a reading's id up through
/// the `(serial, ts)` index and read every reading of the device that day.
fn analyze(ctx: &AppContext) {
    use diesel::{Connection, RunQueryDsl};
    if let DatabaseUrl::Postgres(url) = &ctx.settings.database.url {
        let mut conn = diesel::PgConnection::establish(url).unwrap();
        diesel::sql_query("ANALYZE telemetry_readings")
            .execute(&mut conn)
            .unwrap();
    }
}

/// `--concurrency` paired devices, each uploading back to back until the run's end.
pub(super) async fn uploads(
    args: &Args,
    ctx: &AppContext,
    http: &reqwest::Client,
    (base, target): (&str, &str),
) -> Row {
    let devices = paired(args.concurrency, ctx, http, base, "UPLD").await;
    // Not measured: readings in every device's day, then the statistics autovacuum would have
    // gathered by then (see `analyze`).
    let warm_until = Instant::now() + WARM_UP;
    let mut warming = Vec::new();
    for d in &devices {
        let (http, base, target) = (http.clone(), base.to_owned(), target.to_owned());
        warming.push(tokio::spawn(upload_until(
            http,
            (base, target),
            Arc::clone(d),
            warm_until,
        )));
    }
    Tally::gather(warming).await;
    analyze(ctx);
    let started = Instant::now();
    let cpu = CpuSince::start();
    let end = started + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    for d in devices {
        let (http, base, target) = (http.clone(), base.to_owned(), target.to_owned());
        tasks.push(tokio::spawn(upload_until(http, (base, target), d, end)));
    }
    let total = Tally::gather(tasks).await;
    total.report(
        &format!(
            "telemetry upload, {READINGS} readings (c={})",
            args.concurrency
        ),
        started.elapsed(),
        cpu,
    )
}

async fn upload_until(
    http: reqwest::Client,
    (base, target): (String, String),
    d: Arc<Paired>,
    end: Instant,
) -> Tally {
    let url = format!("{base}/api/v1/telemetry");
    let to = format!("{target}/api/v1/telemetry");
    let mut tally = Tally::default();
    let mut n = 0u64;
    while Instant::now() < end {
        let ms = now() * 1000;
        let readings: Vec<_> = (0..READINGS)
            .map(|k| {
                n += 1;
                json!({
                    "id": format!("r{n}"),
                    "ts": ms - 1000 + k as i64,
                    "metrics": { "flow_m3h": 41.5, "pressure_bar": 3.2, "temp_c": 18.25 },
                })
            })
            .collect();
        // The device signs on its own hardware: the clock starts when the request is sent.
        let proof = d
            .device
            .key
            .dpop_proof("POST", &url, now(), None, Some(&d.access_token))
            .unwrap();
        let t0 = Instant::now();
        let res = http
            .post(&to)
            .header("Authorization", format!("DPoP {}", d.access_token))
            .header("DPoP", proof)
            .json(&json!({ "readings": readings }))
            .send()
            .await
            .unwrap();
        let (status, body) = outcome(res).await;
        tally.count(t0.elapsed(), label(status, &body));
    }
    tally
}
