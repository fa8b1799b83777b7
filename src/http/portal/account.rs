//! The signed-in person's own account: `/account` (password, sessions, tenant TOTP policy),
//! `/account/totp` (enrolment), and `/step-up` (a fresh TOTP check before sensitive actions).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::auth::{CodePage, code_status};
use super::passkey_offer;
use super::profile::{AccountNotice, account_page, done_notice, recovery_page};
use super::texts::{FormError, Notice};
use super::{
    Member, MemberForm, Page, PortalError, member, redirect, redirect_with_session, render,
    safe_next,
};
use crate::accounts::passkeys::PublicKeyCredential;
use crate::accounts::{AccountError, Role, TotpRequirement};
use crate::app::AppContext;
use crate::http::get;

pub fn configure(cfg: &mut web::ServiceConfig) {
    super::profile::configure(cfg);
    cfg.route("/account", get().to(account_get))
        .route("/account/password", web::post().to(password_post))
        .route(
            "/account/logout-everywhere",
            web::post().to(logout_everywhere_post),
        )
        .route("/account/require-totp", web::post().to(require_totp_post))
        .route("/account/totp", get().to(totp_get))
        .route("/account/totp", web::post().to(totp_post))
        .route("/step-up", get().to(step_up_get))
        .route("/step-up", web::post().to(step_up_post));
}

fn ip(req: &HttpRequest) -> Option<String> {
    crate::http::client_addr::client_ip(req)
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
    count: Option<usize>,
}

async fn account_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, PortalError> {
    // After a password change the session has a new id, so its page is a redirect away.
    let notice = match q.done.as_deref() {
        Some("password") => Some(Notice::PasswordChanged.to_string()),
        done => done_notice(done, q.count),
    };
    account_page(&req, &ctx, notice, None, StatusCode::OK).await
}

async fn password_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx
        .accounts
        .change_password(
            &s,
            &form.text("current"),
            &form.text("new"),
            ip(&req).as_deref(),
        )
        .await
    {
        Ok(cookie) => Ok(redirect_with_session(
            &ctx,
            "/account?done=password",
            cookie,
        )),
        Err(
            e @ (AccountError::InvalidCredentials
            | AccountError::WeakPassword(_)
            | AccountError::Throttled { .. }),
        ) => {
            let (message, status) = match e {
                AccountError::InvalidCredentials => (
                    FormError::WrongCurrentPassword.to_string(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ),
                AccountError::Throttled { .. } => (e.to_string(), StatusCode::TOO_MANY_REQUESTS),
                other => (other.to_string(), StatusCode::UNPROCESSABLE_ENTITY),
            };
            account_page(&req, &ctx, None, Some(message), status).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout_everywhere_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    ctx.accounts.sign_out_everywhere(&s).await?;
    Err(AccountError::SessionEnded.into())
}

async fn require_totp_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let requirement = if form.get("required") == Some("yes") {
        TotpRequirement::Required
    } else {
        TotpRequirement::Optional
    };
    match ctx.accounts.set_tenant_requires_totp(&s, requirement).await {
        Ok(()) => Ok(redirect("/account")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    page: Page,
    qr_svg: String,
    /// The `otpauth://` URI, a link an authenticator app on this phone opens.
    uri: String,
    /// The key in groups of four, for typing by hand.
    secret: String,
}

/// A base32 key in groups of four characters (`JBSW Y3DP EHPK 3PXP`), easier to type.
fn grouped(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn totp_page(
    req: &HttpRequest,
    ctx: &AppContext,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let Member(v, s) = member(req, ctx).await?;
    if s.user.totp_enabled {
        return Ok(redirect("/account"));
    }
    match ctx.accounts.begin_totp_enrolment(&s).await {
        Ok(enrolment) => {
            let mut page = v.page(ctx, "Two-factor authentication");
            page.error = error;
            // Why enrolment comes first, unless the page says what just happened.
            page.notice = notice.or_else(|| {
                if s.user.role == Role::Staff {
                    Some(AccountNotice::StaffTotpRequired.to_string())
                } else {
                    s.must_enrol_totp()
                        .then(|| Notice::TotpRequired.to_string())
                }
            });
            // The SVG is built by the qrcode crate from our own URI; drop its XML prologue so it
            // can sit inside HTML.
            let svg = enrolment
                .qr_svg
                .find("<svg")
                .map_or(enrolment.qr_svg.clone(), |i| {
                    enrolment.qr_svg[i..].to_owned()
                });
            Ok(render(
                &v,
                status,
                &TotpPage {
                    page,
                    qr_svg: svg,
                    uri: enrolment.uri,
                    secret: grouped(&enrolment.secret_base32),
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn totp_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, PortalError> {
    let notice =
        (q.done.as_deref() == Some("restarted")).then(|| AccountNotice::TotpRestarted.to_string());
    totp_page(&req, &ctx, notice, None, StatusCode::OK).await
}

async fn totp_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx
        .accounts
        .confirm_totp_enrolment(&s, &form.text("code"), ip(&req).as_deref())
        .await
    {
        Ok((codes, cookie)) => {
            let mut res = recovery_page(&ctx, &v, codes, false);
            let _ = res.add_cookie(&super::session_cookie(&ctx, cookie));
            Ok(res)
        }
        Err(AccountError::InvalidCode) => {
            totp_page(
                &req,
                &ctx,
                None,
                Some(AccountError::InvalidCode.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn step_up_page(page: Page, next: String) -> CodePage {
    CodePage {
        page,
        heading: "Confirm it's you",
        explanation: "This action needs a fresh confirmation: your passkey, or a code from your \
                      authenticator app.",
        action: "/step-up",
        next,
        allow_recovery: false,
        passkey: None,
        totp: true,
    }
}

async fn step_up_get(
    ctx: web::Data<AppContext>,
    q: web::Query<NextQuery>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    if !s.user.has_second_factor() {
        return Ok(redirect("/account/totp"));
    }
    let page = v.page(&ctx, "Confirm it's you");
    let page = step_up_page(page, safe_next(q.next.as_deref()))
        .with_passkey(&ctx, &s)
        .await;
    Ok(render(&v, StatusCode::OK, &page))
}

async fn step_up_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let next = safe_next(form.get("next"));
    let given = passkey_offer::answer::<PublicKeyCredential>(
        form.get("passkey_handle"),
        form.get("passkey_answer"),
    );
    let (ip, failed) = (ip(&req), StatusCode::UNAUTHORIZED);
    let error = if let Some(given) = given {
        let stepped = match given {
            Ok((handle, answer)) => {
                ctx.accounts
                    .step_up_passkey(&s, &handle, &answer, ip.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        match stepped {
            Ok(cookie) => return Ok(redirect_with_session(&ctx, &next, cookie)),
            Err(e) if passkey_offer::shown_inline(&e) => (e.to_string(), failed),
            Err(e) => return Err(e.into()),
        }
    } else {
        match ctx
            .accounts
            .step_up(&s, &form.text("code"), ip.as_deref())
            .await
        {
            Ok(cookie) => return Ok(redirect_with_session(&ctx, &next, cookie)),
            Err(e @ (AccountError::InvalidCode | AccountError::Throttled { .. })) => {
                (e.to_string(), code_status(&e))
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut page = v.page(&ctx, "Confirm it's you");
    page.error = Some(error.0);
    let page = step_up_page(page, next).with_passkey(&ctx, &s).await;
    Ok(render(&v, error.1, &page))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_read_in_groups_of_four() {
        assert_eq!(super::grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(super::grouped("ABCDEF"), "ABCD EF");
    }
}
