//! The home page's dashboard for a tenant's member: the figures of the devices they may see, each
//! linking to the device list filtered the same way, the newest pairings, and (for those who read
//! the audit log) the newest events.

use super::PortalError;
use super::device_list::{DeviceText, ListState, device_path};
use super::history::sentences;
use super::zone::when_for;
use crate::accounts::Session;
use crate::accounts::device_list::{Dashboard, DeviceFilter, Figure, SeenFilter, StatusFilter};
use crate::app::AppContext;
use crate::store::history::AuditFilter;

/// One figure: its number, what it counts, and the list behind it.
pub struct FigureView {
    pub count: i64,
    pub label: &'static str,
    pub href: String,
    /// Draws the eye when not zero (silent devices, waits, disputes).
    pub attention: bool,
}

/// One of the newest pairings.
pub struct PairingLine {
    pub serial: String,
    pub href: String,
    pub status: String,
    pub at: String,
}

pub struct DashboardView {
    pub figures: Vec<FigureView>,
    pub pairings: Vec<PairingLine>,
    /// The newest events as (time, sentence); `None` for those who do not read the audit log.
    pub events: Option<Vec<(String, String)>>,
    pub pairs: bool,
}

/// The list's link for a filter (as the list itself would write it).
fn list_href(filter: &DeviceFilter) -> String {
    ListState {
        status: match filter.status {
            Some(StatusFilter::Active) => "active",
            Some(StatusFilter::Provisional) => "provisional",
            Some(StatusFilter::Disputed) => "disputed",
            None => "",
        }
        .to_owned(),
        seen: match filter.seen {
            Some(SeenFilter::Online) => "online",
            Some(SeenFilter::Silent) => "silent",
            Some(SeenFilter::Never) => "never",
            None => "",
        }
        .to_owned(),
        page: 1,
        ..ListState::default()
    }
    .href()
}

/// The dashboard of a tenant's member (`None` for staff, who have their console).
pub async fn view(ctx: &AppContext, s: &Session) -> Result<Option<DashboardView>, PortalError> {
    if s.user.tenant_id.is_none() {
        return Ok(None);
    }
    let d = ctx.accounts.dashboard(s).await?;
    let figure = |f: Figure, count: i64, label: &'static str, attention: bool| FigureView {
        count,
        label,
        href: list_href(&Dashboard::filter_of(f)),
        attention: attention && count > 0,
    };
    let figures = vec![
        figure(Figure::Online, d.online, "online now", false),
        figure(Figure::Silent, d.silent, "gone silent", true),
        figure(Figure::Provisional, d.provisional, "awaiting the ERP", true),
        figure(Figure::Disputed, d.disputed, "with an open dispute", true),
        figure(Figure::Devices, d.devices, "paired in all", false),
    ];
    let pairings = d
        .latest_pairings
        .into_iter()
        .map(|(serial, status, at)| PairingLine {
            href: device_path(serial.as_str()),
            status: DeviceText::Recent { status }.to_string(),
            at: when_for(s.zone(), at),
            serial: serial.into(),
        })
        .collect();
    let events = if s.user.role.reads_audit() {
        let history = ctx
            .accounts
            .audit_history(s, AuditFilter::default(), 5)
            .await?;
        Some(sentences(&history, |t| when_for(s.zone(), t)))
    } else {
        None
    };
    Ok(Some(DashboardView {
        figures,
        pairings,
        events,
        pairs: s.user.role.pairs_devices(),
    }))
}
