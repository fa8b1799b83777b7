//! The device authorization scenario: registered devices that start pairing over and over
//! (`POST /oauth/device_authorization` with `private_key_jwt` and a DPoP proof), each new request
//! a new pending flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pairgate::app::AppContext;

use crate::measure::{CpuSince, Row, Tally};
use crate::{Args, Device, label, outcome, register, send_authorization, sign_authorization};

/// Devices one task starts pairing for, in turn.
const PER_TASK: usize = 4;

pub(super) async fn authorizations(
    args: &Args,
    ctx: &AppContext,
    http: &reqwest::Client,
    (base, target): (&str, &str),
) -> Row {
    let devices = register(ctx, args.concurrency * PER_TASK, "AUTH").await;
    let started = Instant::now();
    let cpu = CpuSince::start();
    let end = started + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    for mine in devices.chunks(PER_TASK) {
        let (http, base, target) = (http.clone(), base.to_owned(), target.to_owned());
        tasks.push(tokio::spawn(authorize_until(
            http,
            (base, target),
            mine.to_vec(),
            end,
        )));
    }
    let total = Tally::gather(tasks).await;
    total.report(
        &format!("device authorization (c={})", args.concurrency),
        started.elapsed(),
        cpu,
    )
}

async fn authorize_until(
    http: reqwest::Client,
    (base, target): (String, String),
    mine: Vec<Arc<Device>>,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    for d in mine.iter().cycle() {
        if Instant::now() >= end {
            break;
        }
        // The device signs on its own hardware: the clock starts when the request is sent.
        let signed = sign_authorization(d, &base);
        let t0 = Instant::now();
        let res = send_authorization(&http, &target, signed).await;
        let (status, body) = outcome(res).await;
        tally.count(t0.elapsed(), label(status, &body));
    }
    tally
}
