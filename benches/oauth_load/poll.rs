//! The pending device-code poll scenario: devices that started pairing and poll, each no
//! faster than its interval, for an answer no one gives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::measure::{CpuSince, Row, Tally};
use crate::{
    Args, DEVICE_CODE, Device, JWT_BEARER, Signed, label, outcome, register, sign_token_request,
    start_pairing, token_signed,
};
use pairgate::app::AppContext;

/// Devices one task polls for, in turn: enough to poll each no faster than once a second.
const PER_TASK: usize = 24;

/// A polling device, its device code, and its pre-signed polls as HTTP/1.1 requests (none
/// unless `--presign`).
struct Poller {
    device: Arc<Device>,
    code: String,
    presigned: Vec<Vec<u8>>,
}

/// Pending device-code polls: each task owns enough devices to poll each no faster than 1 s.
pub(super) async fn polls(
    args: &Args,
    ctx: &AppContext,
    http: &reqwest::Client,
    (base, target): (&str, &str),
) -> Row {
    let pollers = register(ctx, args.concurrency * PER_TASK, "POLL").await;
    let mut codes = Vec::new();
    for d in &pollers {
        codes.push(
            start_pairing(http, base, d).await["device_code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let signed = presign(args, &pollers, base);
    // Pre-signed polls go out as pre-built HTTP/1.1 requests (see `RawConn`).
    let host = target.strip_prefix("http://").unwrap().to_owned();
    let pollers: Vec<Poller> = pollers
        .into_iter()
        .zip(codes)
        .zip(signed)
        .map(|((device, code), signed)| Poller {
            presigned: signed.iter().map(|s| raw_poll(&host, &code, s)).collect(),
            device,
            code,
        })
        .collect();
    let started = Instant::now();
    let cpu = CpuSince::start();
    let end = started + Duration::from_secs(args.secs);
    let mut tasks = Vec::new();
    let mut pollers = pollers.into_iter();
    for _ in 0..args.concurrency {
        let mine: Vec<Poller> = pollers.by_ref().take(PER_TASK).collect();
        let (http, host) = (http.clone(), host.clone());
        let urls = (base.to_owned(), target.to_owned());
        tasks.push(tokio::spawn(poll_in_turn(mine, http, urls, host, end)));
    }
    let total = Tally::gather(tasks).await;
    let presigned = if args.presign { ", pre-signed" } else { "" };
    total.report(
        &format!(
            "pending device_code poll (c={}{presigned})",
            args.concurrency
        ),
        started.elapsed(),
        cpu,
    )
}

/// With `--presign`: for every device, enough signed requests for every poll it can make in
/// the run, signed now. Without: none.
fn presign(args: &Args, pollers: &[Arc<Device>], base: &str) -> Vec<Vec<Signed>> {
    let per_device = if args.presign {
        usize::try_from(args.secs).unwrap() + 2
    } else {
        0
    };
    pollers
        .iter()
        .map(|d| {
            (0..per_device)
                .map(|_| sign_token_request(d, base))
                .collect()
        })
        .collect()
}

/// One task: polls for its devices in turn until `end`, each at most every 1.05 s; pre-signed
/// polls go over one raw keep-alive connection, the others through reqwest.
async fn poll_in_turn(
    mut mine: Vec<Poller>,
    http: reqwest::Client,
    (base, target): (String, String),
    host: String,
    end: Instant,
) -> Tally {
    let mut conn = if mine.iter().any(|p| !p.presigned.is_empty()) {
        Some(RawConn::connect(&host).await)
    } else {
        None
    };
    let mut tally = Tally::default();
    let mut last = vec![Instant::now() - Duration::from_secs(2); mine.len()];
    let mut i = 0;
    while Instant::now() < end {
        let wait = Duration::from_millis(1050).saturating_sub(last[i].elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let poller = &mut mine[i];
        let t0 = Instant::now();
        last[i] = t0;
        let outcome = match (poller.presigned.pop(), conn.as_mut()) {
            (Some(request), Some(conn)) => conn.exchange(&request).await,
            _ => {
                let code = poller.code.as_str();
                let form = [("grant_type", DEVICE_CODE), ("device_code", code)];
                let signed = sign_token_request(&poller.device, &base);
                let res = token_signed(&http, &target, &form, signed).await;
                let (status, body) = outcome(res).await;
                label(status, &body)
            }
        };
        tally.count(t0.elapsed(), outcome);
        i = (i + 1) % mine.len();
    }
    tally
}

/// A pre-signed poll as the bytes of its HTTP/1.1 request.
fn raw_poll(host: &str, code: &str, (assertion, proof): &Signed) -> Vec<u8> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", DEVICE_CODE)
        .append_pair("device_code", code)
        .append_pair("client_assertion_type", JWT_BEARER)
        .append_pair("client_assertion", assertion)
        .finish();
    format!(
        "POST /oauth/token HTTP/1.1\r\nhost: {host}\r\n\
         content-type: application/x-www-form-urlencoded\r\ndpop: {proof}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection that sends pre-built requests and reads just enough of each
/// answer to label it: the status line, `content-length`, and the body's `error` member. It does
/// a fraction of reqwest's work per request (no request building, no header map, no JSON tree),
/// so more of the two cores the load generator shares with the server go to the server.
struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    async fn connect(host: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends one request and returns its label (as `label` makes it from a parsed answer).
    async fn exchange(&mut self, request: &[u8]) -> String {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(request).await.unwrap();
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.read_more().await;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).unwrap();
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("answers carry a content-length");
        while self.buf.len() < head_end + length {
            self.read_more().await;
        }
        let body = std::str::from_utf8(&self.buf[head_end..head_end + length]).unwrap();
        let error = body
            .split_once("\"error\":\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(code, _)| code);
        match error {
            Some(e) => format!("{status} {e}"),
            None => status.to_string(),
        }
    }

    async fn read_more(&mut self) {
        use tokio::io::AsyncReadExt;
        self.buf.reserve(4096);
        let n = self.stream.read_buf(&mut self.buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
    }
}
