//! The account page (`/account`: name, email, second factor, password, sessions) and what it
//! saves of the person's own account: `/account/name`, `/account/sign-out-others`,
//! `/account/recovery-codes` (new codes after a step-up, shown once), `/account/totp/restart`
//! (set up again on a new phone, after a step-up).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::zone::when_for;
use super::{Member, MemberForm, Page, PortalError, Visitor, member, redirect, render};
use crate::accounts::{AccountError, PasskeyError, Role, SecondFactorState, Session, SessionView};
use crate::app::AppContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/name", web::post().to(name_post))
        .route("/account/sign-out-others", web::post().to(others_post))
        .route("/account/recovery-codes", web::post().to(codes_post))
        .route("/account/totp/restart", web::post().to(restart_post))
        .route(
            "/account/apps/{client_id}/withdraw",
            web::post().to(withdraw_post),
        );
}

/// What the account and second-factor pages say (`templates/texts/account.txt`).
#[derive(Template)]
#[template(path = "texts/account.txt")]
pub enum AccountNotice {
    NameSaved,
    /// After "sign out the others": how many sessions ended.
    OthersSignedOut {
        count: usize,
    },
    CodesReplaced,
    /// The person's own second factor was forgotten, to be set up on a new phone.
    TotpRestarted,
    /// Enrolment comes first for the manufacturer's staff.
    StaffTotpRequired,
    PasskeyAdded,
    PasskeyRemoved,
    AppWithdrawn,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    page: Page,
    user_name: String,
    email: String,
    role: &'static str,
    is_owner: bool,
    tenant_requires_totp: bool,
    tenant_requires_passkeys: bool,
    second: SecondFactorState,
    passkeys: Vec<PasskeyRow>,
    passkeys_available: bool,
    /// The person lets their passkeys sign them in alone.
    passkey_sign_in: bool,
    sessions: Vec<SessionRow>,
    /// Sessions other than this one.
    others: usize,
    /// Apps the person allowed to sign them in.
    apps: Vec<AppRow>,
    /// The zone this page's times are in.
    zone: &'static str,
}

/// A passkey as the account page lists it.
struct PasskeyRow {
    id: i64,
    name: String,
    added: String,
    last_used: Option<String>,
}

/// An app the person allowed, as the account page lists it.
struct AppRow {
    client_id: String,
    name: String,
    allowed: String,
}

/// A session as the account page lists it.
struct SessionRow {
    browser: String,
    ip: Option<String>,
    started: String,
    last_seen: String,
    current: bool,
}

impl SessionRow {
    /// A session as `viewer` sees it, its times in the viewer's zone.
    fn of(s: SessionView, viewer: &Session) -> Self {
        Self {
            browser: browser(s.user_agent.as_deref()),
            ip: s.ip,
            started: when_for(viewer.zone(), s.started_at),
            last_seen: when_for(viewer.zone(), s.last_seen_at),
            current: s.current,
        }
    }
}

/// A browser's `User-Agent` in a few words ("Chrome on Android"), as a person knows it.
fn browser(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "An unknown browser".to_owned();
    };
    let name = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    let system = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(token, _)| ua.contains(token))
    .map(|(_, name)| *name);
    match (name, system) {
        (Some(n), Some(s)) => format!("{n} on {s}"),
        (Some(n), None) => n.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        // Not a browser we know: what it calls itself, shortened.
        (None, None) => ua.chars().take(60).collect(),
    }
}

/// The account page with a notice or an error.
pub async fn account_page(
    req: &HttpRequest,
    ctx: &AppContext,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PortalError> {
    let Member(v, s) = member(req, ctx).await?;
    let second = ctx.accounts.second_factor_state(&s).await?;
    let sessions: Vec<SessionRow> = ctx
        .accounts
        .own_sessions(&s)
        .await?
        .into_iter()
        .map(|row| SessionRow::of(row, &s))
        .collect();
    let mut page = v.page(ctx, "Your account");
    page.notice = notice;
    page.error = error;
    let (passkeys, passkeys_available) = match ctx.accounts.passkeys(&s).await {
        Ok(list) => (list, true),
        Err(PasskeyError::Unavailable) => (Vec::new(), false),
        Err(e) => return Err(e.into()),
    };
    let passkeys = passkeys
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            added: page.when(p.created_at),
            last_used: p.last_used_at.map(|t| page.when(t)),
            name: p.name,
        })
        .collect();
    let apps = ctx
        .accounts
        .app_access(&s)
        .await?
        .into_iter()
        .map(|a| AppRow {
            allowed: page.when(a.granted_at),
            client_id: a.client_id,
            name: a.app_name,
        })
        .collect();
    Ok(render(
        &v,
        status,
        &AccountPage {
            apps,
            page,
            user_name: s.user.name.clone(),
            email: s.user.email.clone(),
            role: s.user.role.as_str(),
            is_owner: s.user.role == Role::Owner,
            tenant_requires_totp: s.tenant.as_ref().is_some_and(|t| t.require_totp),
            tenant_requires_passkeys: s
                .tenant
                .as_ref()
                .is_some_and(|t| t.require_passkey_approval),
            second,
            passkeys,
            passkeys_available,
            passkey_sign_in: s.user.passkey_sign_in,
            others: sessions.iter().filter(|r| !r.current).count(),
            zone: s.zone().name(),
            sessions,
        },
    ))
}

/// What the account page says after the save that redirected to it (`?done=…&count=…`).
pub fn done_notice(done: Option<&str>, count: Option<usize>) -> Option<String> {
    let notice = match done? {
        "name" => AccountNotice::NameSaved,
        "passkey-added" => AccountNotice::PasskeyAdded,
        "passkey-removed" => AccountNotice::PasskeyRemoved,
        "app-withdrawn" => AccountNotice::AppWithdrawn,
        "others" => AccountNotice::OthersSignedOut {
            count: count.unwrap_or(0),
        },
        _ => return None,
    };
    Some(notice.to_string())
}

async fn name_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.rename(&s, &form.text("name")).await {
        Ok(_) => Ok(redirect("/account?done=name")),
        Err(e @ AccountError::InvalidInput(_)) => {
            account_page(
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

async fn others_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let n = ctx.accounts.sign_out_others(&s).await?;
    Ok(redirect(&format!("/account?done=others&count={n}")))
}

async fn withdraw_post(
    ctx: web::Data<AppContext>,
    client_id: web::Path<String>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    ctx.accounts.withdraw_app_access(&s, &client_id).await?;
    Ok(redirect("/account?done=app-withdrawn"))
}

async fn restart_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    ctx.accounts.restart_own_totp(&s).await?;
    Ok(redirect("/account/totp?done=restarted"))
}

#[derive(Template)]
#[template(path = "recovery.html")]
pub struct RecoveryPage {
    pub page: Page,
    pub codes: Vec<String>,
    /// Where "I have saved them" leads.
    pub done: &'static str,
}

async fn codes_post(
    ctx: web::Data<AppContext>,
    MemberForm(v, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let codes = ctx.accounts.regenerate_recovery_codes(&s).await?;
    Ok(recovery_page(&ctx, &v, codes, true))
}

/// The page that shows recovery codes, once: at enrolment, or replacing the old ones.
pub fn recovery_page(
    ctx: &AppContext,
    v: &Visitor,
    codes: Vec<String>,
    replaced: bool,
) -> HttpResponse {
    let mut page = v.page(ctx, "Recovery codes");
    if replaced {
        page.notice = Some(AccountNotice::CodesReplaced.to_string());
    }
    let done = if replaced { "/account" } else { "/" };
    render(v, StatusCode::OK, &RecoveryPage { page, codes, done })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_read_as_a_person_knows_them() {
        for (ua, expected) in [
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/120.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 \
                 Safari/537.36 Edg/120.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 \
                 Firefox/121.0",
                "Firefox on macOS",
            ),
            ("curl/8.5.0", "curl/8.5.0"),
            ("", "An unknown browser"),
        ] {
            assert_eq!(browser(Some(ua)), expected);
        }
        assert_eq!(browser(None), "An unknown browser");
    }

    #[test]
    fn the_notices_say_what_happened() {
        assert_eq!(
            done_notice(Some("others"), Some(2)).as_deref(),
            Some("Signed out 2 other sessions.")
        );
        assert_eq!(
            done_notice(Some("others"), Some(1)).as_deref(),
            Some("Signed out 1 other session.")
        );
        assert_eq!(
            done_notice(Some("others"), Some(0)).as_deref(),
            Some("There were no other sessions to sign out.")
        );
        assert_eq!(done_notice(Some("elsewhere"), None), None);
    }
}
