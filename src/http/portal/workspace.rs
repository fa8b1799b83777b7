//! What a tenant works with: a device's group (`/devices/{serial}/group`; the list is
//! `device_list.rs`) and `/groups` (the audit log is `audit.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::texts::Notice;
use super::{Member, MemberForm, Page, PortalError, member, redirect, render};
use crate::accounts::{AccountError, GroupView};
use crate::app::AppContext;
use crate::http::get;
use crate::ids::{DeviceSerial, GroupId};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices/{serial}/group", web::post().to(device_group_post))
        .route("/groups", get().to(groups_get))
        .route("/groups", web::post().to(groups_post));
}

async fn device_group_post(
    ctx: web::Data<AppContext>,
    serial: web::Path<DeviceSerial>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let group = form.get("group").and_then(|g| g.parse::<GroupId>().ok());
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
    /// The name typed into the new-group form, kept when it was refused.
    typed_name: String,
}

async fn groups_page(
    req: &HttpRequest,
    ctx: &AppContext,
    (notice, error): (Option<String>, Option<String>),
    status: StatusCode,
    typed_name: String,
) -> Result<HttpResponse, PortalError> {
    let Member(v, s) = member(req, ctx).await?;
    if !s.user.role.manages_users() {
        return Err(AccountError::Forbidden.into());
    }
    match ctx.accounts.groups(&s).await {
        Ok(groups) => {
            let mut page = v.page(ctx, "Groups and sites");
            page.notice = notice;
            page.error = error;
            let groups_page = GroupsPage {
                page,
                groups,
                typed_name,
            };
            Ok(render(&v, status, &groups_page))
        }
        Err(e) => Err(e.into()),
    }
}

async fn groups_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, PortalError> {
    let created = req.query_string() == "done=created";
    let notice = created.then(|| Notice::GroupCreated.to_string());
    groups_page(&req, &ctx, (notice, None), StatusCode::OK, String::new()).await
}

async fn groups_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let name = form.text("name");
    match ctx.accounts.create_group(&s, &name).await {
        Ok(_) => Ok(redirect("/groups?done=created")),
        Err(e @ AccountError::InvalidInput(_)) => {
            let typed = name.chars().take(200).collect();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            groups_page(&req, &ctx, (None, Some(e.to_string())), status, typed).await
        }
        Err(e) => Err(e.into()),
    }
}
