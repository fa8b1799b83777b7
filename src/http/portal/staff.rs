//! The manufacturer's staff console: `/staff` (open disputes, device search),
//! `/staff/disputes/{id}`, `/staff/devices?serial=`, `/staff/tenants`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::history::{name_of, pairing_line, sentences};
use super::texts::{Code, Line, Notice};
use super::{Member, MemberForm, Page, PortalError, redirect, render, sale_text};
use crate::app::AppContext;
use crate::events::Party;
use crate::http::get;
use crate::ids::{DeviceSerial, TenantId};
use crate::pairing::{DisputeStatus, Resolution, TenantRow};
use crate::store::history::Names;
use crate::store::pairings::DisputeRecord;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/staff", get().to(home_get))
        .route("/staff/disputes/{id}", get().to(dispute_get))
        .route("/staff/disputes/{id}/resolve", web::post().to(resolve_post))
        .route("/staff/devices", get().to(device_get))
        .route("/staff/tenants", get().to(tenants_get))
        .route(
            "/staff/tenants/{id}/customer",
            web::post().to(customer_post),
        );
}

/// A dispute's state in words: open, or settled by whom, when and how.
fn dispute_state(d: &DisputeRecord, people: &Names, page: &Page) -> String {
    match (&d.resolution, &d.resolved_by) {
        (Some(resolution), Some(by)) => Line::Settled {
            resolution: Code::Resolution(resolution).to_string(),
            by: &name_of(people, &Party::parse(by)),
            at: d.resolved_at.map(|t| page.when(t)).unwrap_or_default(),
        }
        .to_string(),
        _ => Line::Open.to_string(),
    }
}

#[derive(Template)]
#[template(path = "staff.html")]
struct HomePage {
    page: Page,
    disputes: Vec<DisputeRow>,
}

/// An open dispute as the console lists it, in words.
struct DisputeRow {
    id: i64,
    serial: String,
    /// Why the pairing was refused.
    reason: String,
    /// Who asks for the device, and who holds it.
    sides: String,
    /// When it was opened, in the viewer's zone.
    opened: String,
}

async fn home_get(
    ctx: web::Data<AppContext>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    match ctx.ceremony.disputes(&s, DisputeStatus::Open).await {
        Ok(list) => {
            let page = v.page(&ctx, "Staff console");
            let disputes = list
                .into_iter()
                .map(|d| DisputeRow {
                    id: d.dispute.id,
                    serial: d.dispute.serial.to_string(),
                    reason: Code::Refusal(&d.dispute.reason).to_string(),
                    sides: Line::Sides {
                        claimant: &d.claimant,
                        holder: d.holder.as_deref(),
                    }
                    .to_string(),
                    opened: page.when(d.dispute.created_at),
                })
                .collect();
            Ok(render(&v, StatusCode::OK, &HomePage { page, disputes }))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "staff_dispute.html")]
struct DisputePage {
    page: Page,
    id: i64,
    serial: String,
    model: String,
    reason: String,
    claimant: String,
    holder: Option<String>,
    sale_text: String,
    status: String,
    note: Option<String>,
    open: bool,
    /// (time, sentence)
    trail: Vec<(String, String)>,
}

async fn dispute_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    match ctx.ceremony.dispute(&s, *id, 100).await {
        Ok(d) => {
            let mut page = v.page(&ctx, &format!("Dispute #{}", d.dispute.id));
            if req.query_string() == "done=settled" {
                page.notice = Some(Notice::DisputeSettled.to_string());
            }
            let status = dispute_state(&d.dispute, &d.people, &page);
            let sale_text = sale_text(d.sale.as_ref(), &page);
            let trail = sentences(&d.trail, |t| page.when(t));
            Ok(render(
                &v,
                StatusCode::OK,
                &DisputePage {
                    page,
                    id: d.dispute.id,
                    open: d.dispute.status == DisputeStatus::Open,
                    serial: d.dispute.serial.to_string(),
                    model: d.model.clone(),
                    reason: Code::Refusal(&d.dispute.reason).to_string(),
                    note: d.dispute.note.clone(),
                    claimant: d.claimant.clone(),
                    holder: d.holder.clone(),
                    sale_text,
                    status,
                    trail,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn resolve_post(
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let Some(resolution) = form.get("resolution").and_then(Resolution::parse) else {
        return Err(crate::pairing::PairingError::Invalid("choose a decision").into());
    };
    match ctx
        .ceremony
        .resolve(&s, *id, resolution, &form.text("note"))
        .await
    {
        Ok(()) => Ok(redirect(&format!("/staff/disputes/{id}?done=settled"))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct SerialQuery {
    serial: DeviceSerial,
}

#[derive(Template)]
#[template(path = "staff_device.html")]
struct DevicePage {
    page: Page,
    serial: String,
    model: String,
    tenant: Option<String>,
    sale_text: String,
    pairings: Vec<String>,
    /// (id, reason, state, note)
    disputes: Vec<(i64, String, String, Option<String>)>,
    /// (time, sentence)
    trail: Vec<(String, String)>,
}

async fn device_get(
    ctx: web::Data<AppContext>,
    q: web::Query<SerialQuery>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    match ctx.ceremony.staff_device(&s, &q.serial).await {
        Ok(d) => {
            let page = v.page(&ctx, d.serial.as_str());
            Ok(render(
                &v,
                StatusCode::OK,
                &DevicePage {
                    sale_text: sale_text(d.sale.as_ref(), &page),
                    pairings: d
                        .pairings
                        .iter()
                        .map(|(p, company)| pairing_line(p, &d.people, Some(company), page.zone))
                        .collect(),
                    disputes: d
                        .disputes
                        .iter()
                        .map(|x| {
                            let reason = Code::Refusal(&x.reason).to_string();
                            (
                                x.id,
                                reason,
                                dispute_state(x, &d.people, &page),
                                x.note.clone(),
                            )
                        })
                        .collect(),
                    trail: sentences(&d.trail, |t| page.when(t)),
                    serial: d.serial.into(),
                    model: d.model,
                    tenant: d.tenant,
                    // Last: the fields above read the page's zone.
                    page,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "staff_tenants.html")]
struct TenantsPage {
    page: Page,
    tenants: Vec<TenantRow>,
}

async fn tenants_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    match ctx.ceremony.staff_tenants(&s).await {
        Ok(tenants) => {
            let mut page = v.page(&ctx, "Tenants");
            if req.query_string() == "done=customer" {
                page.notice = Some(Notice::CustomerNumberSaved.to_string());
            }
            Ok(render(&v, StatusCode::OK, &TenantsPage { page, tenants }))
        }
        Err(e) => Err(e.into()),
    }
}

async fn customer_post(
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx
        .ceremony
        .set_customer_number(&s, TenantId::from(*id), form.get("customer_number"))
        .await
    {
        Ok(()) => Ok(redirect("/staff/tenants?done=customer")),
        Err(e) => Err(e.into()),
    }
}
