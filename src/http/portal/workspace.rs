//! What a tenant works with: a device's group (`/devices/{serial}/group`; the list is
//! `device_list.rs`), `/groups`, and
//! `/audit` (the tenant's events; staff see everyone's).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Member, MemberForm, Page, PortalError, member, redirect, render};
use crate::accounts::{AccountError, GroupView};
use crate::app::AppContext;
use crate::http::get;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices/{serial}/group", web::post().to(device_group_post))
        .route("/groups", get().to(groups_get))
        .route("/groups", web::post().to(groups_post))
        .route("/audit", get().to(audit_get));
}

async fn device_group_post(
    ctx: web::Data<AppContext>,
    serial: web::Path<String>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let group = form.get("group").and_then(|g| g.parse::<i64>().ok());
    match ctx.accounts.assign_device_group(&s, &serial, group).await {
        Ok(()) => Ok(redirect("/devices")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    page: Page,
    groups: Vec<GroupView>,
}

async fn groups_page(
    req: &HttpRequest,
    ctx: &AppContext,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let Member(v, s) = member(req, ctx).await?;
    if !s.user.role.manages_users() {
        return Err(AccountError::Forbidden.into());
    }
    match ctx.accounts.groups(&s).await {
        Ok(groups) => {
            let mut page = v.page(ctx, "Groups and sites");
            page.error = error;
            Ok(render(&v, status, &GroupsPage { page, groups }))
        }
        Err(e) => Err(e.into()),
    }
}

async fn groups_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, PortalError> {
    groups_page(&req, &ctx, None, StatusCode::OK).await
}

async fn groups_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.create_group(&s, &form.text("name")).await {
        Ok(_) => Ok(redirect("/groups")),
        Err(e @ AccountError::InvalidInput(_)) => {
            groups_page(
                &req,
                &ctx,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    page: Page,
    /// (time, action, actor, subject, detail)
    events: Vec<(String, String, String, String, String)>,
    older: Option<i64>,
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
}

const AUDIT_PAGE: i64 = 50;

async fn audit_get(
    ctx: web::Data<AppContext>,
    q: web::Query<AuditQuery>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.audit_events(&s, q.before, AUDIT_PAGE).await {
        Ok(events) => {
            let older = (events.len() as i64 == AUDIT_PAGE)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            let rows = events
                .into_iter()
                .map(|e| {
                    let time = chrono::DateTime::from_timestamp_millis(e.occurred_at)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .unwrap_or_default();
                    (time, e.action, e.actor, e.subject, e.detail)
                })
                .collect();
            let page = v.page(&ctx, "Audit log");
            Ok(render(
                &v,
                StatusCode::OK,
                &AuditPage {
                    page,
                    events: rows,
                    older,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}
