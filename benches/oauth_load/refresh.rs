//! The refresh scenario: paired devices that each spend their refresh token in a loop, as fast
//! as the answers come or paced (`--refresh-every-ms`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use pairgate::app::AppContext;
use pairgate::oauth::device_flow::Verdict;

use crate::measure::{CpuSince, Row, Tally};
use crate::{
    Args, DEVICE_CODE, Device, label, now, outcome, register, sign_token_request, start_pairing,
    token, token_signed,
};

/// Pairs `--refreshers` devices, then each refreshes in a loop until the run's end.
pub(super) async fn refreshes(
    args: &Args,
    ctx: &AppContext,
    http: &reqwest::Client,
    (base, target): (&str, &str),
) -> Row {
    let refreshers = paired(args.refreshers, ctx, http, base, "REFR").await;
    let started = Instant::now();
    let cpu = CpuSince::start();
    let end = started + Duration::from_secs(args.secs);
    let every = Duration::from_millis(args.refresh_every_ms);
    let devices = refreshers.len().max(1) as u32;
    let mut tasks = Vec::new();
    for (i, d) in refreshers.into_iter().enumerate() {
        let refresher = Refresher {
            http: http.clone(),
            base: base.to_owned(),
            target: target.to_owned(),
            // Paced devices start spread over one period, so the load is even.
            first: started + every * i as u32 / devices,
            every,
            end,
        };
        let rt = d.refresh_token.clone();
        tasks.push(tokio::spawn(refresher.refresh_in_a_loop(d, rt)));
    }
    let total = Tally::gather(tasks).await;
    let paced = if every.is_zero() {
        String::new()
    } else {
        format!(", each every {} ms", args.refresh_every_ms)
    };
    total.report(
        &format!("refresh (c={}{paced})", args.refreshers),
        started.elapsed(),
        cpu,
    )
}

/// A device paired for the benchmark, with the tokens of its pairing.
pub(super) struct Paired {
    pub device: Arc<Device>,
    pub access_token: String,
    pub refresh_token: String,
}

/// `n` new devices (serials starting with `prefix`), registered and paired into a new tenant,
/// each with its first tokens.
pub(super) async fn paired(
    n: usize,
    ctx: &AppContext,
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
) -> Vec<Arc<Paired>> {
    let tenant = pairgate::accounts::create_tenant(&ctx.store, now() * 1000, "bench", "Bench Co")
        .await
        .unwrap();
    let mut paired = Vec::with_capacity(n);
    for d in register(ctx, n, prefix).await {
        let started = start_pairing(http, base, &d).await;
        ctx.oauth
            .decide(
                started["user_code"].as_str().unwrap(),
                Verdict::Approve { tenant_id: tenant },
                "bench",
            )
            .await
            .unwrap();
        let res = token(
            http,
            base,
            &d,
            &[
                ("grant_type", DEVICE_CODE),
                ("device_code", started["device_code"].as_str().unwrap()),
            ],
        )
        .await;
        let (status, body) = outcome(res).await;
        assert_eq!(status, 200, "{body}");
        paired.push(Arc::new(Paired {
            device: d,
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }));
    }
    paired
}

/// How one device refreshes: from `first` on, once every `every` (or back to back when it is
/// zero), until `end`.
struct Refresher {
    http: reqwest::Client,
    base: String,
    /// Where the requests go: pairgate, or the verification-only floor.
    target: String,
    first: Instant,
    every: Duration,
    end: Instant,
}

impl Refresher {
    /// Spends the device's refresh token, then the one each answer brings, until the end or
    /// until an answer brings none.
    async fn refresh_in_a_loop(self, d: Arc<Paired>, mut rt: String) -> Tally {
        let (http, base) = (&self.http, self.base.as_str());
        let mut due = self.first;
        let mut tally = Tally::default();
        while Instant::now() < self.end {
            if !self.every.is_zero() {
                tokio::time::sleep_until(due.into()).await;
                due += self.every;
            }
            // The device signs on its own hardware: the clock starts when the signed request is
            // sent.
            let signed = sign_token_request(&d.device, base);
            let t0 = Instant::now();
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
            ];
            let res = token_signed(http, &self.target, &form, signed).await;
            let (status, body) = outcome(res).await;
            tally.count(t0.elapsed(), label(status, &body));
            match body["refresh_token"].as_str() {
                Some(next) => rt = next.to_owned(),
                None => break,
            }
        }
        tally
    }
}
