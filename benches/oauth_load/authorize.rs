//! The device authorization scenario: registered devices that start pairing over and over
//! (`POST /oauth/device_authorization` with `private_key_jwt` and a DPoP proof), each new request
//! a new pending flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pairgate::app::AppContext;

use crate::measure::{CpuSince, Row, Tally};
use crate::{Args, Device, JWT_BEARER, label, now, outcome, register};

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
    let url = format!("{base}/oauth/device_authorization");
    let to = format!("{target}/oauth/device_authorization");
    let mut tally = Tally::default();
    for d in mine.iter().cycle() {
        if Instant::now() >= end {
            break;
        }
        let t = now();
        let assertion = d.key.client_assertion(&d.serial, &base, t).unwrap();
        let proof = d.key.dpop_proof("POST", &url, t, None, None).unwrap();
        let t0 = Instant::now();
        let res = http
            .post(&to)
            .header("DPoP", proof)
            .form(&[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = outcome(res).await;
        tally.count(t0.elapsed(), label(status, &body));
    }
    tally
}
