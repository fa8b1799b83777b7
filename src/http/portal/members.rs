//! Managing a tenant's people: `/users` (list, invite, role, disable, second-factor reset) and
//! `/users/{id}/access` (which devices someone sees).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::texts::{FormError, Notice};
use super::{Member, MemberForm, Page, PortalError, member, redirect, render};
use crate::accounts::{AccountError, ActiveStatus, DeviceAccess, Role, UserView};
use crate::app::AppContext;
use crate::http::get;
use crate::ids::{DeviceSerial, GroupId, UserId};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", get().to(users_get))
        .route("/users/invite", web::post().to(invite_post))
        .route("/users/{id}/role", web::post().to(role_post))
        .route("/users/{id}/active", web::post().to(active_post))
        .route("/users/{id}/totp-reset", web::post().to(totp_reset_post))
        .route("/users/{id}/access", get().to(access_get))
        .route("/users/{id}/access", web::post().to(access_post));
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    page: Page,
    members: Vec<MemberRow>,
    invitations: Vec<(String, &'static str)>,
    /// (role, preselected) for the invitation form.
    invite_roles: Vec<(&'static str, bool)>,
    /// The address typed into the invitation form, kept when it was refused.
    invite_email: String,
    self_id: UserId,
}

/// What was typed into the invitation form, shown again when it was refused.
#[derive(Default)]
struct Typed {
    email: String,
    role: Option<Role>,
}

struct MemberRow {
    id: UserId,
    name: String,
    email: String,
    role: &'static str,
    active: bool,
    totp_enabled: bool,
    has_passkey: bool,
    device_access_all: bool,
    /// (role, is this member's role) for the role menu.
    options: Vec<(&'static str, bool)>,
    /// The viewer may reset this member's second factor (it is set up, and the viewer may
    /// manage their role: an admin does not reset an owner's).
    may_reset: bool,
}

impl MemberRow {
    fn new(u: UserView, assignable: &[Role]) -> Self {
        Self {
            options: assignable
                .iter()
                .map(|r| (r.as_str(), *r == u.role))
                .collect(),
            may_reset: (u.totp_enabled || u.has_passkey) && assignable.contains(&u.role),
            id: u.id,
            name: u.name,
            email: u.email,
            role: u.role.as_str(),
            active: u.active,
            totp_enabled: u.totp_enabled,
            has_passkey: u.has_passkey,
            device_access_all: u.device_access_all,
        }
    }
}

async fn users_page(
    req: &HttpRequest,
    ctx: &AppContext,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let typed = Typed::default();
    users_page_typed(req, ctx, (notice, error), status, typed).await
}

async fn users_page_typed(
    req: &HttpRequest,
    ctx: &AppContext,
    (notice, error): (Option<String>, Option<String>),
    status: StatusCode,
    typed: Typed,
) -> Result<HttpResponse, PortalError> {
    let Member(v, s) = member(req, ctx).await?;
    if !s.user.role.manages_users() {
        return Err(AccountError::Forbidden.into());
    }
    match ctx.accounts.members(&s).await {
        Ok((members, invitations)) => {
            let mut page = v.page(ctx, "Users");
            page.notice = notice;
            page.error = error;
            let assignable: Vec<Role> = Role::tenant_roles()
                .into_iter()
                .filter(|r| s.user.role.may_assign(*r))
                .collect();
            Ok(render(
                &v,
                status,
                &UsersPage {
                    page,
                    members: members
                        .into_iter()
                        .map(|m| MemberRow::new(m, &assignable))
                        .collect(),
                    invitations: invitations
                        .into_iter()
                        .map(|(e, r)| (e, r.as_str()))
                        .collect(),
                    invite_roles: assignable
                        .iter()
                        .map(|r| (r.as_str(), *r == typed.role.unwrap_or(Role::Viewer)))
                        .collect(),
                    invite_email: typed.email,
                    self_id: s.user.id,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

async fn users_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    q: web::Query<Done>,
) -> Result<HttpResponse, PortalError> {
    // What the last save did (the POST redirected here).
    let notice = match q.done.as_deref() {
        Some("disabled") => Some(Notice::MemberDisabled),
        Some("enabled") => Some(Notice::MemberEnabled),
        Some("access") => Some(Notice::AccessChanged),
        _ => None,
    };
    let notice = notice.map(|n| n.to_string());
    users_page(&req, &ctx, notice, None, StatusCode::OK).await
}

async fn invite_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let email = form.text("email");
    let role = form.get("role").and_then(Role::parse);
    let typed = Typed {
        email: email.chars().take(320).collect(),
        role,
    };
    let refused = |error: String, status| (typed, error, status);
    let Some(role) = role else {
        let (typed, error, status) = refused(
            FormError::ChooseRole.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return users_page_typed(&req, &ctx, (None, Some(error)), status, typed).await;
    };
    match ctx.accounts.invite(&s, &email, role).await {
        Ok(()) => {
            users_page(
                &req,
                &ctx,
                Some(
                    Notice::InvitationQueued {
                        email: email.trim(),
                    }
                    .to_string(),
                ),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e @ (AccountError::InvalidInput(_) | AccountError::EmailTaken)) => {
            let (typed, error, status) = refused(e.to_string(), StatusCode::UNPROCESSABLE_ENTITY);
            users_page_typed(&req, &ctx, (None, Some(error)), status, typed).await
        }
        Err(e @ AccountError::Throttled { .. }) => {
            let reason = e.to_string();
            let error = FormError::TooManyInvitations { reason: &reason }.to_string();
            let (typed, error, status) = refused(error, StatusCode::TOO_MANY_REQUESTS);
            users_page_typed(&req, &ctx, (None, Some(error)), status, typed).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn role_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let Some(role) = form.get("role").and_then(Role::parse) else {
        return Err(AccountError::InvalidInput("unknown role").into());
    };
    match ctx.accounts.change_role(&s, UserId::from(*id), role).await {
        Ok(()) => {
            users_page(
                &req,
                &ctx,
                Some(Notice::RoleChanged.to_string()),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e @ AccountError::InvalidInput(_)) => {
            users_page(
                &req,
                &ctx,
                None,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn active_post(
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let status = if form.get("active") == Some("yes") {
        ActiveStatus::Active
    } else {
        ActiveStatus::Disabled
    };
    match ctx
        .accounts
        .set_member_status(&s, UserId::from(*id), status)
        .await
    {
        Ok(()) if status == ActiveStatus::Active => Ok(redirect("/users?done=enabled")),
        Ok(()) => Ok(redirect("/users?done=disabled")),
        Err(e) => Err(e.into()),
    }
}

async fn totp_reset_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.reset_member_totp(&s, UserId::from(*id)).await {
        Ok(()) => {
            users_page(
                &req,
                &ctx,
                Some(Notice::TotpReset.to_string()),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    page: Page,
    user_id: UserId,
    user_name: String,
    all: bool,
    /// (id, name, granted)
    groups: Vec<(i64, String, bool)>,
    /// (serial, granted)
    devices: Vec<(String, bool)>,
}

async fn access_get(
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let user_id = UserId::from(*id);
    let result = async {
        let (all, granted_groups, granted_devices) =
            ctx.accounts.device_access(&s, user_id).await?;
        let (members, _) = ctx.accounts.members(&s).await?;
        let name = members
            .into_iter()
            .find(|m| m.id == user_id)
            .map(|m| m.name)
            .ok_or(AccountError::NotFound)?;
        let groups = ctx.accounts.groups(&s).await?;
        let devices = ctx.accounts.visible_devices(&s).await?;
        Ok::<_, AccountError>(AccessPage {
            page: v.page(&ctx, "Device access"),
            user_id,
            user_name: name,
            all,
            groups: groups
                .into_iter()
                .map(|g| (g.id.get(), g.name, granted_groups.contains(&g.id)))
                .collect(),
            devices: devices
                .into_iter()
                .map(|d| (d.serial.to_string(), granted_devices.contains(&d.serial)))
                .collect(),
        })
    }
    .await;
    match result {
        Ok(page) => Ok(render(&v, StatusCode::OK, &page)),
        Err(e) => Err(e.into()),
    }
}

async fn access_post(
    ctx: web::Data<AppContext>,
    id: web::Path<i64>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let access = if form.get("scope") == Some("selected") {
        DeviceAccess::Selected
    } else {
        DeviceAccess::All
    };
    let groups: Vec<GroupId> = form
        .all("group")
        .iter()
        .filter_map(|g| g.parse().ok())
        .collect();
    match ctx
        .accounts
        .set_device_access(
            &s,
            UserId::from(*id),
            access,
            groups,
            form.all("device")
                .into_iter()
                .map(DeviceSerial::from)
                .collect(),
        )
        .await
    {
        Ok(()) => Ok(redirect("/users?done=access")),
        Err(e) => Err(e.into()),
    }
}
