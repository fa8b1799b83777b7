//! Times in the viewer's time zone: [`when_for`] formats a time for a zone (with the zone's
//! abbreviation; `Page::when` uses the viewer's, `Session::zone`: their own, else the company's,
//! else UTC), and `/account/time-zone` lets a person choose theirs and an owner the company's.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::TimeZone;

use super::{Member, MemberForm, Page, PortalError, Visitor, redirect, render};
use crate::accounts::{AccountError, Role, Session, TimeZones, Zone, ZoneSource};
use crate::app::AppContext;
use crate::http::get;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/time-zone", get().to(zone_get))
        .route("/account/time-zone", web::post().to(zone_post))
        .route("/account/time-zone/company", web::post().to(company_post));
}

/// A time for people in `zone`, labelled with the zone's abbreviation: `2026-12-05 14:30 CET`.
pub fn when_for(zone: Zone, ms: i64) -> String {
    zone.tz()
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "time_zone.html")]
struct ZonePage {
    page: Page,
    /// The zone in force, in words ("Europe/Berlin, your company's default").
    in_force: String,
    /// An example time: now, in the zone in force.
    now: String,
    own: String,
    company: String,
    is_owner: bool,
    choices: Vec<&'static str>,
}

fn zone_page(
    ctx: &AppContext,
    v: &Visitor,
    s: &Session,
    zones: TimeZones,
    (notice, error): (Option<String>, Option<String>),
) -> HttpResponse {
    let mut page = v.page(ctx, "Time zone");
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    page.notice = notice;
    page.error = error;
    let (zone, source) = zones.in_force();
    let in_force = match source {
        ZoneSource::Own => format!("{}, your choice", zone.name()),
        ZoneSource::Company => format!("{}, your company's default", zone.name()),
        ZoneSource::Default => "UTC, as nobody chose another".to_owned(),
    };
    let now = when_for(zone, ctx.clock.now().timestamp_millis());
    render(
        v,
        status,
        &ZonePage {
            page,
            in_force,
            now,
            own: zones.own.map(|z| z.name().to_owned()).unwrap_or_default(),
            company: zones
                .company
                .map(|z| z.name().to_owned())
                .unwrap_or_default(),
            is_owner: s.user.role == Role::Owner,
            choices: Zone::choices(),
        },
    )
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn zone_get(
    ctx: web::Data<AppContext>,
    q: web::Query<DoneQuery>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let zones = s.time_zones();
    let notice = match q.done.as_deref() {
        Some("own") => Some("Saved. Times are now shown in the zone below.".to_owned()),
        Some("company") => Some("Saved your company's default time zone.".to_owned()),
        _ => None,
    };
    Ok(zone_page(&ctx, &v, &s, zones, (notice, None)))
}

/// The page again with the reason, for a zone that is not one.
async fn refused(
    ctx: &AppContext,
    v: &Visitor,
    s: &Session,
    e: AccountError,
) -> Result<HttpResponse, PortalError> {
    match e {
        AccountError::InvalidInput(reason) => {
            let zones = s.time_zones();
            Ok(zone_page(ctx, v, s, zones, (None, Some(reason.to_owned()))))
        }
        other => Err(other.into()),
    }
}

async fn zone_post(
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.set_time_zone(&s, &form.text("zone")).await {
        Ok(()) => Ok(redirect("/account/time-zone?done=own")),
        Err(e) => refused(&ctx, &v, &s, e).await,
    }
}

async fn company_post(
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx
        .accounts
        .set_company_time_zone(&s, &form.text("zone"))
        .await
    {
        Ok(()) => Ok(redirect("/account/time-zone?done=company")),
        Err(e) => refused(&ctx, &v, &s, e).await,
    }
}
