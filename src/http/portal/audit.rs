//! `/audit`: the tenant's events (staff see everyone's) as sentences, filtered by person,
//! action, device and dates, and paged in SQL; every choice lives in the query string, so a
//! filtered page can be bookmarked and paged without scripts.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::history::{name_of, sentences};
use super::texts::ActionName;
use super::{Member, Page, PortalError, render, urlencode};
use crate::accounts::Zone;
use crate::app::AppContext;
use crate::events::{Action, Party};
use crate::http::get;
use crate::ids::{DeviceSerial, UserId};
use crate::store::history::AuditFilter;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", get().to(audit_get));
}

/// Events per page.
const PAGE: i64 = 50;

/// The query string; empty fields (from the filter form) mean "any".
#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    person: Option<String>,
    action: Option<String>,
    device: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
}

fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The start of a `YYYY-MM-DD` day in the viewer's zone, in Unix ms; `end`: the day after (the
/// `to` date counts whole).
fn day_start(date: &str, zone: Zone, end: bool) -> Option<i64> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    zone.day_start(if end { day.succ_opt()? } else { day })
}

impl AuditQuery {
    fn filter(&self, zone: Zone) -> AuditFilter {
        AuditFilter {
            user_id: given(&self.person).and_then(|p| p.parse().ok()),
            action: given(&self.action)
                .and_then(Action::parse)
                .map(|a| a.as_str().to_owned()),
            serial: given(&self.device).map(DeviceSerial::from),
            from_ms: given(&self.from).and_then(|d| day_start(d, zone, false)),
            until_ms: given(&self.to).and_then(|d| day_start(d, zone, true)),
            before_id: self.before,
            ..AuditFilter::default()
        }
    }

    /// This query's filters (not its page) as a query string, `&`-terminated.
    fn filters(&self) -> String {
        [
            ("person", &self.person),
            ("action", &self.action),
            ("device", &self.device),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some(format!("{key}={}&", urlencode(given(value)?))))
        .collect()
    }
}

/// A choice of a `<select>`: (value, label, selected).
type Choice = (String, String, bool);

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    page: Page,
    /// (time, sentence)
    events: Vec<(String, String)>,
    people: Vec<Choice>,
    actions: Vec<Choice>,
    device: String,
    from: String,
    to: String,
    /// Links to the next (older) page and back to the newest.
    older: Option<String>,
    newest: Option<String>,
    filtered: bool,
}

/// An event's time to the second, in the viewer's zone.
fn at(zone: Zone, ms: i64) -> String {
    use chrono::TimeZone;
    (zone.tz().timestamp_millis_opt(ms).single())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_default()
}

async fn audit_get(
    ctx: web::Data<AppContext>,
    q: web::Query<AuditQuery>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let zone = s.zone();
    let filter = q.filter(zone);
    let history = ctx
        .accounts
        .audit_history(&s, filter.clone(), PAGE + 1)
        .await?;
    let mut people: Vec<(UserId, String)> = match s.user.tenant_id {
        Some(_) => (ctx.accounts.members(&s).await?.0)
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect(),
        // Staff: the people this page names.
        None => (history.names.users.keys())
            .map(|id| (*id, name_of(&history.names, &Party::User(*id))))
            .collect(),
    };
    people.sort_by(|a, b| a.1.cmp(&b.1));
    let mut events = sentences(&history, |t| at(zone, t));
    let more = events.len() as i64 > PAGE;
    events.truncate(PAGE as usize);
    let older = (history.entries.get(PAGE as usize - 1))
        .filter(|_| more)
        .map(|e| format!("/audit?{}before={}", q.filters(), e.id));
    let newest = filter.before_id.map(|_| {
        format!("/audit?{}", q.filters())
            .trim_end_matches(['&', '?'])
            .to_owned()
    });
    let page = AuditPage {
        page: v.page(&ctx, "Audit log"),
        events,
        people: people
            .into_iter()
            .map(|(id, name)| (id.to_string(), name, filter.user_id == Some(id)))
            .collect(),
        actions: Action::ALL
            .into_iter()
            .map(|action| {
                let selected = filter.action.as_deref() == Some(action.as_str());
                let label = ActionName { action }.to_string();
                (action.as_str().to_owned(), label, selected)
            })
            .collect(),
        device: given(&q.device).unwrap_or_default().to_owned(),
        from: given(&q.from).unwrap_or_default().to_owned(),
        to: given(&q.to).unwrap_or_default().to_owned(),
        filtered: !q.filters().is_empty(),
        older,
        newest,
    };
    Ok(render(&v, StatusCode::OK, &page))
}
