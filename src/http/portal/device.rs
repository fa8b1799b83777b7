//! A device's own page, `/devices/{serial}`: its facts, a chart per metric over a chosen range
//! (1 hour to 30 days, or dates), labelled and in units from the ERP's description of the
//! model, times in the viewer's zone, the pairing history in sentences, unpair and release; and
//! `/devices/{serial}/readings.csv`, the readings of a range as CSV, under the same access rules.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone};
use serde::Deserialize;

use super::chart::{self, Chart, Span, VIEW_BOX};
use super::zone::when_for;
use super::{Member, Page, PortalError, render};
use crate::accounts::{AccountError, Session, Zone};
use crate::app::AppContext;
use crate::http::get;
use crate::ids::DeviceSerial;
use crate::pairing::PairingStatus;
use crate::telemetry::{MAX_EXPORT_READINGS, MetricsOfModel, TelemetryError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices/{serial}/readings.csv", get().to(csv_get))
        .route("/devices/{serial}", get().to(detail_get));
}

/// The ranges the page offers, as (query value, label, milliseconds, buckets).
const PRESETS: [(&str, &str, i64, usize); 4] = [
    ("1h", "hour", 3_600_000, 60),
    ("24h", "24 hours", 86_400_000, 96),
    ("7d", "7 days", 7 * 86_400_000, 84),
    ("30d", "30 days", 30 * 86_400_000, 120),
];
/// Buckets of a range chosen by dates.
const DATE_BUCKETS: usize = 120;
/// The longest range one may ask for.
const MAX_RANGE_MS: i64 = 366 * 86_400_000;

/// A range as the query string says it: `range=24h` (or the older `window=`), or `from` and
/// `to` as dates of the viewer's zone (both days included) or RFC 3339 times.
#[derive(Debug, Deserialize)]
struct RangeQuery {
    range: Option<String>,
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A range chosen, in time and in words.
#[derive(Debug)]
struct Range {
    from: i64,
    to: i64,
    /// The preset's query value, if one was chosen.
    preset: Option<&'static str>,
    /// "in the last 24 hours", "from 2026-12-01 to 2026-12-03".
    during: String,
    over: String,
    buckets: usize,
    /// The form's dates (the range's first and last day in the viewer's zone).
    from_date: String,
    to_date: String,
}

/// The start of a day of `zone`, or an RFC 3339 time; `end`: the day after, for a `to` date.
fn instant(text: &str, zone: Zone, end: bool) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    zone.day_start(if end { day.succ_opt()? } else { day })
}

fn date_of(ms: i64, zone: Zone) -> String {
    zone.tz()
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

impl Range {
    fn read(q: &RangeQuery, zone: Zone, now: i64) -> Result<Range, &'static str> {
        fn text(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|t| !t.is_empty())
        }
        if let (Some(from), Some(to)) = (text(&q.from), text(&q.to)) {
            let bad = "Enter the dates as YYYY-MM-DD, the first before or on the last.";
            let from_ms = instant(from, zone, false).ok_or(bad)?;
            let to_ms = instant(to, zone, !to.contains('T')).ok_or(bad)?;
            if from_ms >= to_ms {
                return Err(bad);
            }
            if to_ms - from_ms > MAX_RANGE_MS {
                return Err("Choose a range of at most 366 days.");
            }
            let words = format!(
                "from {} to {}",
                when_for(zone, from_ms),
                when_for(zone, to_ms)
            );
            return Ok(Range {
                from: from_ms,
                to: to_ms,
                preset: None,
                during: words.clone(),
                over: words,
                buckets: DATE_BUCKETS,
                from_date: date_of(from_ms, zone),
                to_date: date_of(to_ms - 1, zone),
            });
        }
        Ok(Range::preset(text(&q.range).or(text(&q.window)), zone, now))
    }

    /// A preset range ending now; the last 24 hours unless `name` is another preset.
    fn preset(name: Option<&str>, zone: Zone, now: i64) -> Range {
        let (value, label, ms, buckets) = PRESETS
            .into_iter()
            .find(|p| Some(p.0) == name)
            .unwrap_or(PRESETS[1]);
        let from = now - ms;
        Range {
            from,
            to: now,
            preset: Some(value),
            during: format!("in the last {label}"),
            over: format!("over the last {label}"),
            buckets,
            from_date: date_of(from, zone),
            to_date: date_of(now, zone),
        }
    }

    /// Whether this is the preset `value`.
    fn is(&self, value: &str) -> bool {
        self.preset == Some(value)
    }

    /// The same range as RFC 3339 times (for the CSV link: the readings the page shows).
    fn query(&self) -> String {
        let rfc = |ms: i64| {
            DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        format!("from={}&to={}", rfc(self.from), rfc(self.to))
    }
}

#[derive(Template)]
#[template(path = "device_detail.html")]
struct DetailPage {
    page: Page,
    serial: String,
    model: String,
    status: Pairing,
    group: Option<String>,
    history: Vec<String>,
    can_unpair: bool,
    range: Range,
    presets: Vec<(&'static str, &'static str)>,
    /// `None` when the readings could not be read just now (the rest of the page still shows).
    charts: Option<Vec<Chart>>,
    last_reading: Option<String>,
    truncated: bool,
    view_box: &'static str,
    csv_href: String,
    export_limit: String,
    zone: &'static str,
}

/// A device's current pairing, as its page says it.
enum Pairing {
    Provisional,
    /// Active, since this time.
    Since(String),
    None,
}

/// The charts of the range: one per metric the model describes or the device reported, by label.
fn charts_of(
    overview: &crate::telemetry::DeviceOverview,
    metas: &MetricsOfModel,
    span: &Span<'_>,
) -> Vec<Chart> {
    let keys: BTreeSet<&str> = metas
        .described()
        .chain(overview.metrics.iter().map(|m| m.name.as_str()))
        .collect();
    let mut metas: Vec<_> = keys.into_iter().map(|k| metas.get(k)).collect();
    metas.sort_by_key(|m| m.label.to_lowercase());
    metas
        .iter()
        .enumerate()
        .map(|(i, meta)| {
            let m = overview.metrics.iter().find(|m| m.name == meta.key);
            chart::chart(i, meta, m, span)
        })
        .collect()
}

async fn detail_get(
    ctx: web::Data<AppContext>,
    serial: web::Path<DeviceSerial>,
    query: web::Query<RangeQuery>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let devices = ctx.accounts.visible_devices(&s).await?;
    let Some(device) = devices.into_iter().find(|d| d.serial == *serial) else {
        return Err(AccountError::NotFound.into());
    };
    let zone = s.zone();
    let now = ctx.clock.now().timestamp_millis();
    let mut page = v.page(&ctx, device.serial.as_str());
    let range = Range::read(&query, zone, now).unwrap_or_else(|reason| {
        page.error = Some(reason.to_owned());
        Range::preset(None, zone, now)
    });
    let named = ctx.ceremony.named_history(&s, &serial).await?;
    let history = &named.pairings;
    let status = match history.first() {
        Some(p) if p.status == PairingStatus::Provisional => Pairing::Provisional,
        Some(p) if p.status == PairingStatus::Active => {
            Pairing::Since(when_for(zone, p.created_at))
        }
        _ => Pairing::None,
    };
    let lines = history
        .iter()
        .map(|p| super::history::pairing_line(p, &named.names, None, zone))
        .collect();
    let (charts, last_reading, truncated) = telemetry(&ctx, &s, &device, &range, zone).await;
    let status_code = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let csv_href = format!("/devices/{}/readings.csv?{}", device.serial, range.query());
    Ok(render(
        &v,
        status_code,
        &DetailPage {
            page,
            serial: device.serial.into(),
            model: device.model,
            status,
            group: device.group,
            history: lines,
            can_unpair: s.user.role.pairs_devices(),
            range,
            presets: PRESETS.iter().map(|p| (p.0, p.1)).collect(),
            charts,
            last_reading,
            truncated,
            view_box: VIEW_BOX,
            csv_href,
            export_limit: "100,000".to_owned(),
            zone: zone.name(),
        },
    ))
}

/// The charts, the newest reading's time and whether the range was cut; `None` charts when
/// telemetry cannot be read just now.
async fn telemetry(
    ctx: &AppContext,
    s: &Session,
    device: &crate::accounts::DeviceView,
    range: &Range,
    zone: Zone,
) -> (Option<Vec<Chart>>, Option<String>, bool) {
    let metas = ctx.telemetry.metrics_of_model(&device.model).await;
    let overview = ctx
        .telemetry
        .range_overview(s, &device.serial, (range.from, range.to), range.buckets)
        .await;
    match (metas, overview) {
        (Ok(metas), Ok(o)) => {
            let span = Span {
                from: range.from,
                to: range.to,
                during: &range.during,
                over: &range.over,
                zone,
            };
            let last = o
                .metrics
                .iter()
                .map(|m| m.latest.0)
                .max()
                .map(|t| when_for(zone, t));
            (Some(charts_of(&o, &metas, &span)), last, o.truncated)
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, serial = %device.serial, "device page without telemetry");
            (None, None, false)
        }
    }
}

/// A telemetry refusal as the portal answers it.
fn refusal(e: TelemetryError) -> PortalError {
    match e {
        TelemetryError::SignInRequired => PortalError::SignIn,
        TelemetryError::Forbidden => AccountError::Forbidden.into(),
        TelemetryError::NotFound => AccountError::NotFound.into(),
        TelemetryError::Store(e) => AccountError::Store(e).into(),
        _ => AccountError::Internal("telemetry export failed").into(),
    }
}

async fn csv_get(
    ctx: web::Data<AppContext>,
    serial: web::Path<DeviceSerial>,
    query: web::Query<RangeQuery>,
    Member(_, s): Member,
) -> Result<HttpResponse, PortalError> {
    let devices = ctx.accounts.visible_devices(&s).await?;
    let Some(device) = devices.into_iter().find(|d| d.serial == *serial) else {
        return Err(AccountError::NotFound.into());
    };
    let zone = s.zone();
    let now = ctx.clock.now().timestamp_millis();
    let range = Range::read(&query, zone, now).map_err(AccountError::InvalidInput)?;
    let metas = ctx
        .telemetry
        .metrics_of_model(&device.model)
        .await
        .map_err(refusal)?;
    let export = ctx
        .telemetry
        .export(&s, &device.serial, (range.from, range.to))
        .await
        .map_err(refusal)?;
    let body = super::csv_export::write(&export, &metas)
        .map_err(|_| AccountError::Internal("CSV writing failed"))?;
    let stamp = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y%m%dT%H%MZ").to_string())
            .unwrap_or_default()
    };
    let name = format!(
        "{}_{}_{}.csv",
        device.serial,
        stamp(range.from),
        stamp(range.to)
    );
    let mut res = HttpResponse::Ok();
    res.content_type("text/csv; charset=utf-8")
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ));
    if export.truncated {
        res.insert_header(("X-Export-Truncated", MAX_EXPORT_READINGS.to_string()));
    }
    Ok(res.body(body))
}
