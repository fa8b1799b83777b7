//! `/devices`: the tenant's devices as a table (cards on a phone), searched, filtered, sorted and
//! paged by the query string, and moved to a group several at a time (`POST /devices/group`).
//! Every link keeps the other parameters; the database does the work (`store::device_list`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::{Member, MemberForm, Page, PortalError, redirect, render};
use crate::accounts::device_list::{
    DeviceFilter, DeviceOrder, DeviceRow, GroupFilter, ONLINE_WINDOW_MS, PairingState, SeenFilter,
    SortKey, StatusFilter,
};
use crate::accounts::{AccountError, GroupView};
use crate::app::AppContext;
use crate::http::get;
use crate::ids::{DeviceSerial, GroupId};

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;

/// What a path segment keeps as it is.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices", get().to(list_get))
        .route("/devices/group", web::post().to(move_post));
}

/// A device page's path.
pub fn device_path(serial: &str) -> String {
    format!("/devices/{}", utf8_percent_encode(serial, SEGMENT))
}

/// The words of the list: a device's pairing state and its last reading.
#[derive(Template)]
#[template(path = "texts/devices.txt")]
pub enum DeviceText {
    Pairing {
        state: PairingState,
        disputed: bool,
    },
    /// `minutes` since the last reading; `online` within the online window.
    LastReading {
        minutes: i64,
        online: bool,
    },
    NoReading,
    /// One of the newest pairings, by the pairing's status.
    Recent {
        status: String,
    },
    Moved {
        count: usize,
    },
}

/// How long ago a reading was, in words ("2 min ago", "silent for 3 h").
pub fn last_reading_text(last: Option<i64>, now: i64) -> String {
    match last {
        None => DeviceText::NoReading.to_string(),
        Some(at) => DeviceText::LastReading {
            minutes: (now - at).max(0) / 60_000,
            online: at >= now - ONLINE_WINDOW_MS,
        }
        .to_string(),
    }
}

/// The query string, as read (every part optional; unknown values mean the default).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    group: Option<String>,
    status: Option<String>,
    seen: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    moved: Option<usize>,
}

/// The list's state in canonical form: what the form shows and the links carry.
#[derive(Debug, Clone, Default)]
pub struct ListState {
    pub q: String,
    pub group: String,
    pub status: String,
    pub seen: String,
    pub sort: String,
    pub dir: String,
    pub page: i64,
}

impl ListState {
    fn from_params(p: &ListParams) -> Self {
        let pick = |v: &Option<String>, allowed: &[&str]| {
            v.as_deref()
                .filter(|v| allowed.contains(v))
                .unwrap_or("")
                .to_owned()
        };
        let group = match p.group.as_deref() {
            Some("none") => "none".to_owned(),
            Some(g) if g.parse::<i64>().is_ok() => g.to_owned(),
            _ => String::new(),
        };
        Self {
            q: p.q
                .as_deref()
                .unwrap_or("")
                .trim()
                .chars()
                .take(100)
                .collect(),
            group,
            status: pick(&p.status, &["active", "provisional", "disputed"]),
            seen: pick(&p.seen, &["online", "silent", "never"]),
            sort: pick(&p.sort, &["model", "group", "status", "last"]),
            dir: pick(&p.dir, &["desc"]),
            page: p
                .page
                .as_deref()
                .and_then(|p| p.parse::<i64>().ok())
                .unwrap_or(1)
                .clamp(1, 1_000_000),
        }
    }

    fn filter(&self) -> DeviceFilter {
        DeviceFilter {
            search: (!self.q.is_empty()).then(|| self.q.clone()),
            group: match self.group.as_str() {
                "" => GroupFilter::Any,
                "none" => GroupFilter::Ungrouped,
                g => g.parse().map_or(GroupFilter::Any, GroupFilter::Group),
            },
            status: match self.status.as_str() {
                "active" => Some(StatusFilter::Active),
                "provisional" => Some(StatusFilter::Provisional),
                "disputed" => Some(StatusFilter::Disputed),
                _ => None,
            },
            seen: match self.seen.as_str() {
                "online" => Some(SeenFilter::Online),
                "silent" => Some(SeenFilter::Silent),
                "never" => Some(SeenFilter::Never),
                _ => None,
            },
        }
    }

    fn order(&self) -> DeviceOrder {
        DeviceOrder {
            sort: match self.sort.as_str() {
                "model" => SortKey::Model,
                "group" => SortKey::Group,
                "status" => SortKey::Status,
                "last" => SortKey::LastReading,
                _ => SortKey::Serial,
            },
            descending: self.dir == "desc",
            offset: (self.page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        }
    }

    /// `/devices` with this state's parameters (the defaults left out).
    pub fn href(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", self.q.as_str()),
            ("group", &self.group),
            ("status", &self.status),
            ("seen", &self.seen),
            ("sort", &self.sort),
            ("dir", &self.dir),
        ] {
            if !v.is_empty() {
                query.append_pair(k, v);
            }
        }
        if self.page > 1 {
            query.append_pair("page", &self.page.to_string());
        }
        match query.finish() {
            q if q.is_empty() => "/devices".to_owned(),
            q => format!("/devices?{q}"),
        }
    }

    fn at_page(&self, page: i64) -> String {
        Self {
            page,
            ..self.clone()
        }
        .href()
    }

    /// The link of a column header: sorts by it (the other way round if it already does), from
    /// the first page.
    fn sorted_by(&self, key: &str) -> String {
        let current = if self.sort.is_empty() {
            "serial"
        } else {
            &self.sort
        };
        let dir = if current == key && self.dir.is_empty() {
            "desc"
        } else {
            ""
        };
        Self {
            sort: if key == "serial" {
                String::new()
            } else {
                key.to_owned()
            },
            dir: dir.to_owned(),
            page: 1,
            ..self.clone()
        }
        .href()
    }
}

struct RowView {
    serial: String,
    href: String,
    model: String,
    group: String,
    status: String,
    last: String,
    silent: bool,
}

struct Column {
    label: &'static str,
    href: String,
    /// `ascending`, `descending` or `none`.
    sorted: &'static str,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    page: Page,
    state: ListState,
    rows: Vec<RowView>,
    total: i64,
    pages: i64,
    first_row: i64,
    last_row: i64,
    prev: Option<String>,
    next: Option<String>,
    columns: Vec<Column>,
    groups: Vec<GroupView>,
    manages: bool,
    back: String,
}

fn row_view(d: DeviceRow, now: i64) -> RowView {
    RowView {
        href: device_path(d.serial.as_str()),
        status: DeviceText::Pairing {
            state: d.pairing,
            disputed: d.disputed,
        }
        .to_string(),
        last: last_reading_text(d.last_reading, now),
        silent: d.last_reading.is_none_or(|at| at < now - ONLINE_WINDOW_MS),
        serial: d.serial.into(),
        model: d.model,
        group: d.group.unwrap_or_default(),
    }
}

fn columns(state: &ListState) -> Vec<Column> {
    let current = if state.sort.is_empty() {
        "serial"
    } else {
        state.sort.as_str()
    };
    [
        ("Serial", "serial"),
        ("Model", "model"),
        ("Group", "group"),
        ("Status", "status"),
        ("Last reading", "last"),
    ]
    .into_iter()
    .map(|(label, key)| Column {
        label,
        href: state.sorted_by(key),
        sorted: match (current == key, state.dir.is_empty()) {
            (false, _) => "none",
            (true, true) => "ascending",
            (true, false) => "descending",
        },
    })
    .collect()
}

async fn list_get(
    ctx: web::Data<AppContext>,
    params: web::Query<ListParams>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    if s.user.tenant_id.is_none() {
        return Err(AccountError::Forbidden.into());
    }
    let state = ListState::from_params(&params);
    let list = ctx
        .accounts
        .device_list(&s, state.filter(), state.order())
        .await?;
    let groups = ctx.accounts.groups(&s).await?;
    let pages = ((list.total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let first_row = (state.page - 1) * PAGE_SIZE;
    let shown = list.rows.len() as i64;
    let mut page = v.page(&ctx, "Devices");
    page.notice = params
        .moved
        .map(|count| DeviceText::Moved { count }.to_string());
    let template = DevicesPage {
        page,
        prev: (state.page > 1).then(|| state.at_page((state.page - 1).min(pages))),
        next: (state.page < pages).then(|| state.at_page(state.page + 1)),
        columns: columns(&state),
        back: state.href(),
        rows: list
            .rows
            .into_iter()
            .map(|d| row_view(d, list.now))
            .collect(),
        total: list.total,
        pages,
        first_row: if shown > 0 { first_row + 1 } else { 0 },
        last_row: first_row + shown,
        groups,
        manages: s.user.role.manages_users(),
        state,
    };
    Ok(render(&v, StatusCode::OK, &template))
}

async fn move_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let group = match form.get("group") {
        Some("") | None => None,
        Some(g) => Some(g.parse::<GroupId>().map_err(|_| AccountError::NotFound)?),
    };
    let count = ctx
        .accounts
        .move_devices(
            &s,
            form.all("serial")
                .into_iter()
                .map(DeviceSerial::from)
                .collect(),
            group,
        )
        .await?;
    let back = form
        .get("back")
        .filter(|b| {
            (*b == "/devices" || b.starts_with("/devices?")) && !b.chars().any(char::is_control)
        })
        .unwrap_or("/devices");
    let sep = if back.contains('?') { '&' } else { '?' };
    Ok(redirect(&format!("{back}{sep}moved={count}")))
}
