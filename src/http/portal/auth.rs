//! Signing up, in and out: `/signup`, `/login`, `/login/code`, `/logout`, `/invite/{token}`, and
//! the start page `/`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::passkey_offer::{self, PasskeyOffer};
use super::texts::Notice;
use super::{
    CsrfForm, Member, Page, PortalError, Visitor, redirect, redirect_with_session, render,
    safe_next,
};
use crate::accounts::passkeys::PublicKeyCredential;
use crate::accounts::{AccountError, LoginOutcome, Session, SignUp, Stage};
use crate::app::AppContext;
use crate::http::get;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", get().to(home_get))
        .route("/login", get().to(login_get))
        .route("/login", web::post().to(login_post))
        .route("/login/code", get().to(code_get))
        .route("/login/code", web::post().to(code_post))
        .route("/logout", web::post().to(logout_post))
        .route("/signup", get().to(signup_get))
        .route("/signup", web::post().to(signup_post))
        .route("/invite/{token}", get().to(invite_get))
        .route("/invite/{token}", web::post().to(invite_post));
}

fn ip(req: &HttpRequest) -> Option<String> {
    crate::http::client_addr::client_ip(req)
}

pub(super) fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    page: Page,
    tenant_name: String,
    user_name: String,
    role: &'static str,
    totp_enabled: bool,
    manages_users: bool,
    reads_audit: bool,
    dash: Option<super::dashboard::DashboardView>,
}

async fn home_get(
    ctx: web::Data<AppContext>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let page = v.page(&ctx, "Home");
    let dash = super::dashboard::view(&ctx, &s).await?;
    Ok(render(
        &v,
        StatusCode::OK,
        &HomePage {
            page,
            tenant_name: s
                .tenant
                .as_ref()
                .map_or_else(|| "Manufacturer staff".to_owned(), |t| t.name.clone()),
            user_name: s.user.name.clone(),
            role: s.user.role.as_str(),
            totp_enabled: s.user.totp_enabled,
            manages_users: s.user.role.manages_users(),
            reads_audit: s.user.role.reads_audit(),
            dash,
        },
    ))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    email: String,
    next: String,
    /// The form was shown because a session ended: a failed attempt still says so.
    expired: bool,
    /// Passkeys work on this server: the page offers to sign in with one alone.
    passkeys: bool,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    /// Set when a session ended on the way here (`error::sign_in_again`).
    expired: Option<String>,
}

/// Why the sign-in page asks again, when a session ended: with the code being approved, if the
/// page to come back to is the pairing of one.
fn expired_notice(next: &str) -> String {
    let code = next
        .strip_prefix("/device?")
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "user_code")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|c| !c.is_empty());
    Notice::SessionExpired {
        code: code.as_deref(),
    }
    .to_string()
}

async fn login_get(
    ctx: web::Data<AppContext>,
    q: web::Query<LoginQuery>,
    v: Visitor,
) -> Result<HttpResponse, PortalError> {
    let next = safe_next(q.next.as_deref());
    if v.session.as_ref().is_some_and(|s| s.stage == Stage::Full) {
        return Ok(redirect(&next));
    }
    let mut page = v.page(&ctx, "Sign in");
    page.script = ctx.accounts.passkeys_available();
    let expired = q.expired.is_some();
    if expired {
        page.notice = Some(expired_notice(&next));
    }
    Ok(render(
        &v,
        StatusCode::OK,
        &LoginPage {
            page,
            email: String::new(),
            next,
            expired,
            passkeys: ctx.accounts.passkeys_available(),
        },
    ))
}

async fn login_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    CsrfForm(v, form): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    let next = safe_next(form.get("next"));
    let email = form.text("email");
    let outcome = ctx
        .accounts
        .sign_in(
            &email,
            &form.text("password"),
            ip(&req).as_deref(),
            user_agent(&req).as_deref(),
        )
        .await;
    match outcome {
        Ok(LoginOutcome::SignedIn(cookie)) => Ok(redirect_with_session(&ctx, &next, cookie)),
        Ok(LoginOutcome::SecondFactor(cookie)) => Ok(redirect_with_session(
            &ctx,
            &format!("/login/code?next={}", super::urlencode(&next)),
            cookie,
        )),
        Err(e @ (AccountError::InvalidCredentials | AccountError::Throttled { .. })) => {
            let mut page = v.page(&ctx, "Sign in");
            page.error = Some(e.to_string());
            let expired = form.get("expired").is_some();
            if expired {
                page.notice = Some(expired_notice(&next));
            }
            let status = match e {
                AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let passkeys = ctx.accounts.passkeys_available();
            page.script = passkeys;
            let page = LoginPage {
                page,
                email,
                next,
                expired,
                passkeys,
            };
            Ok(render(&v, status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "code.html")]
pub(super) struct CodePage {
    pub page: Page,
    pub heading: &'static str,
    pub explanation: &'static str,
    pub action: &'static str,
    pub next: String,
    pub allow_recovery: bool,
    /// A passkey offered before the code, when the person has one.
    pub passkey: Option<PasskeyOffer>,
    /// The person has TOTP, so the code field is there.
    pub totp: bool,
}

impl CodePage {
    /// Offers the session user's passkey before the code (and the script with it); the code
    /// field stays only if they have TOTP.
    pub(super) async fn with_passkey(mut self, ctx: &AppContext, session: &Session) -> Self {
        self.passkey = PasskeyOffer::authentication(ctx, session, "Use a passkey").await;
        self.page.script = self.passkey.is_some();
        self.totp = session.user.totp_enabled;
        self
    }
}

fn code_page(page: Page, next: String) -> CodePage {
    CodePage {
        page,
        heading: "Two-factor authentication",
        explanation: "Confirm with your passkey, or enter the 6-digit code from your \
                      authenticator app.",
        action: "/login/code",
        next,
        allow_recovery: true,
        passkey: None,
        totp: true,
    }
}

/// A wrong code is 401; a code not even checked because of a wait is 429.
pub(super) fn code_status(e: &AccountError) -> StatusCode {
    match e {
        AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::UNAUTHORIZED,
    }
}

async fn code_get(
    ctx: web::Data<AppContext>,
    q: web::Query<NextQuery>,
    v: Visitor,
) -> Result<HttpResponse, PortalError> {
    match &v.session {
        Some(s) if s.stage == Stage::SecondFactor => {
            let page = v.page(&ctx, "Authentication code");
            let page = code_page(page, safe_next(q.next.as_deref()))
                .with_passkey(&ctx, s)
                .await;
            Ok(render(&v, StatusCode::OK, &page))
        }
        _ => Ok(redirect("/login")),
    }
}

async fn code_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    CsrfForm(v, form): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    let next = safe_next(form.get("next"));
    let Some(session) = v.session.clone().filter(|s| s.stage == Stage::SecondFactor) else {
        return Ok(redirect("/login"));
    };
    let given = passkey_offer::answer::<PublicKeyCredential>(
        form.get("passkey_handle"),
        form.get("passkey_answer"),
    );
    if let Some(given) = given {
        let signed_in = match given {
            Ok((handle, answer)) => {
                ctx.accounts
                    .sign_in_second_factor_passkey(&session, &handle, &answer, ip(&req).as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        return match signed_in {
            Ok(cookie) => Ok(redirect_with_session(&ctx, &next, cookie)),
            Err(e) if passkey_offer::shown_inline(&e) => {
                let mut page = v.page(&ctx, "Authentication code");
                page.error = Some(e.to_string());
                let page = code_page(page, next).with_passkey(&ctx, &session).await;
                Ok(render(&v, StatusCode::UNAUTHORIZED, &page))
            }
            Err(e) => Err(e.into()),
        };
    }
    match ctx
        .accounts
        .sign_in_second_factor(&session, &form.text("code"), ip(&req).as_deref())
        .await
    {
        Ok(cookie) => Ok(redirect_with_session(&ctx, &next, cookie)),
        Err(e @ (AccountError::InvalidCode | AccountError::Throttled { .. })) => {
            let mut page = v.page(&ctx, "Authentication code");
            page.error = Some(e.to_string());
            let page = code_page(page, next).with_passkey(&ctx, &session).await;
            Ok(render(&v, code_status(&e), &page))
        }
        Err(e) => Err(e.into()),
    }
}

async fn logout_post(
    ctx: web::Data<AppContext>,
    CsrfForm(v, _): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    if let Some(s) = &v.session {
        ctx.accounts.sign_out(s).await?;
    }
    Err(AccountError::SessionEnded.into())
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage {
    page: Page,
    company: String,
    name: String,
    email: String,
}

async fn signup_get(ctx: web::Data<AppContext>, v: Visitor) -> Result<HttpResponse, PortalError> {
    let page = v.page(&ctx, "Create an account");
    Ok(render(
        &v,
        StatusCode::OK,
        &SignUpPage {
            page,
            company: String::new(),
            name: String::new(),
            email: String::new(),
        },
    ))
}

async fn signup_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    CsrfForm(v, form): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    let sign_up = SignUp {
        company: form.text("company"),
        name: form.text("name"),
        email: form.text("email"),
        password: form.text("password"),
    };
    let (company, name, email) = (
        sign_up.company.clone(),
        sign_up.name.clone(),
        sign_up.email.clone(),
    );
    match ctx
        .accounts
        .sign_up(sign_up, ip(&req).as_deref(), user_agent(&req).as_deref())
        .await
    {
        Ok(cookie) => Ok(redirect_with_session(&ctx, "/account/totp", cookie)),
        Err(
            e @ (AccountError::InvalidInput(_)
            | AccountError::WeakPassword(_)
            | AccountError::EmailTaken
            | AccountError::Throttled { .. }),
        ) => {
            let mut page = v.page(&ctx, "Create an account");
            page.error = Some(e.to_string());
            let status = match e {
                AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Ok(render(
                &v,
                status,
                &SignUpPage {
                    page,
                    company,
                    name,
                    email,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    page: Page,
    token: String,
    tenant_name: String,
    email: String,
    role: &'static str,
}

async fn invite_get(
    ctx: web::Data<AppContext>,
    token: web::Path<String>,
    v: Visitor,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.invitation(&token).await {
        Ok(inv) => {
            let page = v.page(&ctx, "Join");
            Ok(render(
                &v,
                StatusCode::OK,
                &InvitePage {
                    page,
                    token: token.into_inner(),
                    tenant_name: inv.tenant_name,
                    email: inv.email,
                    role: inv.role.as_str(),
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

async fn invite_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    token: web::Path<String>,
    CsrfForm(v, form): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    let outcome = ctx
        .accounts
        .accept_invitation(
            &token,
            &form.text("name"),
            &form.text("password"),
            ip(&req).as_deref(),
            user_agent(&req).as_deref(),
        )
        .await;
    match outcome {
        Ok(cookie) => Ok(redirect_with_session(&ctx, "/account/totp", cookie)),
        Err(e @ (AccountError::InvalidInput(_) | AccountError::WeakPassword(_))) => {
            match ctx.accounts.invitation(&token).await {
                Ok(inv) => {
                    let mut page = v.page(&ctx, "Join");
                    page.error = Some(e.to_string());
                    Ok(render(
                        &v,
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &InvitePage {
                            page,
                            token: token.into_inner(),
                            tenant_name: inv.tenant_name,
                            email: inv.email,
                            role: inv.role.as_str(),
                        },
                    ))
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}
