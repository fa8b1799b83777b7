//! A sensitive action sent without a fresh step-up keeps everything typed: the answer is a page
//! that says which action waits ("Confirm with your code to unpair SN-1") and asks for the code,
//! with the form's fields sealed to the session (`accounts::pending`) and posted back to the same
//! path. [`resume`], part of every [`MemberForm`](super::MemberForm), opens them again, checks
//! the code, and hands the handler the original fields under the stepped-up session, so the
//! action completes once. A wrong code shows the same page again, the error beside the field.
//! The page is rendered while the form is read (names need the database) and left for the error
//! mapping as an [`Offer`](super::Offer), used only if the action asks for a step-up.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};
use askama::Template;

use super::error::FormRefusal;
use super::passkey_offer::{self, PasskeyOffer};
use super::{Offer, Page, PortalError, Rotated, Visitor, safe_next, session_cookie};
use crate::accounts::passkeys::PublicKeyCredential;
use crate::accounts::{AccountError, Session};
use crate::app::AppContext;
use crate::http::errors::SetCookie;
use crate::ids::UserId;

/// A form's fields, in order.
type Fields = Vec<(String, String)>;

/// The fields a pending action keeps: everything but the form's own machinery.
const MACHINERY: [&str; 5] = [
    "csrf",
    "pending",
    "step_up_code",
    "step_up_passkey_handle",
    "step_up_passkey_answer",
];

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What a step-up confirms, in words (`templates/texts/step_up.txt`).
#[derive(Template)]
#[template(path = "texts/step_up.txt")]
pub enum Ask<'a> {
    Approve {
        serial: &'a str,
        group: Option<&'a str>,
    },
    Review {
        serial: &'a str,
    },
    Unpair {
        serial: &'a str,
    },
    Release {
        serial: &'a str,
    },
    Settle {
        id: &'a str,
        resolution: &'a str,
        note: &'a str,
    },
    CustomerNumber {
        number: &'a str,
    },
    Role {
        name: &'a str,
        role: &'a str,
    },
    Disable {
        name: &'a str,
    },
    Enable {
        name: &'a str,
    },
    ResetTotp {
        name: &'a str,
    },
    Access {
        name: &'a str,
    },
    RequireTotp,
    RelaxTotp,
    AddPasskey {
        name: &'a str,
    },
    RemovePasskey,
    PasskeySignIn {
        allowed: bool,
    },
    RequirePasskeys,
    RelaxPasskeys,
    NewRecoveryCodes,
    NewPhone,
    SignInToApp,
    RegisterApp {
        name: &'a str,
    },
    DisableApp {
        client_id: &'a str,
    },
    AppUris {
        client_id: &'a str,
    },
    AppSecret {
        client_id: &'a str,
    },
    Other,
}

#[derive(Template)]
#[template(path = "step_up.html")]
struct PendingPage {
    page: Page,
    /// The path the form was sent to, and goes back to with the code.
    action: String,
    pending: String,
    ask: String,
    code_error: Option<String>,
    /// Where "Cancel" leads: the page the form was on.
    back: String,
    /// A passkey to confirm with, offered before the code when the person has one.
    passkey: Option<PasskeyOffer>,
    /// The person has TOTP, so the code field is there.
    totp: bool,
}

/// The steps a member's form takes after its checks: a pending action opened again, its code
/// checked (the session steps up), and, while the session has no fresh step-up, the page that
/// would ask for one prepared.
pub async fn resume(
    req: &HttpRequest,
    ctx: &AppContext,
    visitor: Visitor,
    session: Session,
    mut fields: Fields,
) -> Result<(Visitor, Session, Fields), PortalError> {
    let code = field(&fields, "step_up_code")
        .unwrap_or("")
        .trim()
        .to_owned();
    let given = passkey_offer::answer::<PublicKeyCredential>(
        field(&fields, "step_up_passkey_handle"),
        field(&fields, "step_up_passkey_answer"),
    );
    if let Some(sealed) = field(&fields, "pending") {
        match ctx.accounts.open_pending(&session, req.path(), sealed) {
            Some(opened) => fields = opened,
            None => return Err(PortalError::Form(Box::new(visitor), FormRefusal::Expired)),
        }
    }
    fields.retain(|(k, _)| !MACHINERY.contains(&k.as_str()));
    let ip = crate::http::client_addr::client_ip(req);
    if let Some(given) = given {
        let stepped = match given {
            Ok((handle, answer)) => {
                ctx.accounts
                    .step_up_passkey(&session, &handle, &answer, ip.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        return match stepped {
            Ok(cookie) => stepped_up(req, ctx, cookie, fields).await,
            Err(e) if passkey_offer::shown_inline(&e) => {
                let error = Some(e.to_string());
                let page = pending_page(req, ctx, &visitor, &session, &fields, error).await;
                let status = StatusCode::UNAUTHORIZED;
                match page.render() {
                    Ok(body) => Err(PortalError::StepUp(status, Box::new(visitor), body)),
                    Err(_) => Err(AccountError::Internal("step-up page").into()),
                }
            }
            Err(e) => Err(e.into()),
        };
    }
    if code.is_empty() {
        if !ctx.accounts.is_stepped_up(&session) {
            let page = pending_page(req, ctx, &visitor, &session, &fields, None).await;
            if let Ok(body) = page.render() {
                req.extensions_mut()
                    .insert(Offer(StatusCode::UNAUTHORIZED, body));
            }
        }
        return Ok((visitor, session, fields));
    }
    match ctx.accounts.step_up(&session, &code, ip.as_deref()).await {
        Ok(cookie) => stepped_up(req, ctx, cookie, fields).await,
        Err(e @ (AccountError::InvalidCode | AccountError::Throttled { .. })) => {
            let status = match e {
                AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let error = Some(e.to_string());
            let page = pending_page(req, ctx, &visitor, &session, &fields, error).await;
            match page.render() {
                Ok(body) => Err(PortalError::StepUp(status, Box::new(visitor), body)),
                Err(_) => Err(AccountError::Internal("step-up page").into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks for a step-up for this request's form even while the session has a fresh one: an app
/// asked for a newer sign-in than the step-up window allows (`max_age`, `prompt=login`). The
/// answer to the page comes back to the same path with the same fields.
pub async fn demand(
    req: &HttpRequest,
    ctx: &AppContext,
    visitor: &Visitor,
    session: &Session,
    fields: &[(String, String)],
) -> PortalError {
    let page = pending_page(req, ctx, visitor, session, fields, None).await;
    match page.render() {
        Ok(body) => {
            req.extensions_mut()
                .insert(Offer(StatusCode::UNAUTHORIZED, body));
            AccountError::StepUpRequired.into()
        }
        Err(_) => AccountError::Internal("step-up page").into(),
    }
}

/// The session under its new cookie, after a step-up while the form was read.
async fn stepped_up(
    req: &HttpRequest,
    ctx: &AppContext,
    cookie: String,
    fields: Fields,
) -> Result<(Visitor, Session, Fields), PortalError> {
    let stepped = ctx
        .accounts
        .session(&cookie)
        .await?
        .ok_or(PortalError::SignIn)?;
    // Every answer from here on (a page or a redirect) carries the session's new id, and a page
    // rendered afterwards reads the session under it.
    req.extensions_mut()
        .insert(SetCookie(session_cookie(ctx, cookie.clone())));
    req.extensions_mut().insert(Rotated(cookie));
    let visitor = Visitor {
        session: Some(stepped.clone()),
        binding: stepped.id_hash.clone(),
        set_cookie: None,
    };
    Ok((visitor, stepped, fields))
}

async fn pending_page(
    req: &HttpRequest,
    ctx: &AppContext,
    visitor: &Visitor,
    session: &Session,
    fields: &[(String, String)],
    code_error: Option<String>,
) -> PendingPage {
    let name = match member_id(req.path()) {
        Some(id) => member_name(ctx, session, id).await,
        None => String::new(),
    };
    let ask = ask(req.path(), fields, &name).to_string();
    let back = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix(ctx.settings.server.public_url.as_str()))
        // After a wrong code the form came from this very path, which only takes a POST.
        .filter(|r| r.starts_with('/') && r.split('?').next() != Some(req.path()));
    let passkey = PasskeyOffer::step_up(ctx, session).await;
    let mut page = visitor.page(ctx, "Confirm it's you");
    page.script = passkey.is_some();
    PendingPage {
        page,
        passkey,
        totp: session.user.totp_enabled,
        action: req.path().to_owned(),
        pending: ctx.accounts.seal_pending(session, req.path(), fields),
        ask,
        code_error,
        back: safe_next(back),
    }
}

/// The member a `/users/{id}/…` path is about.
fn member_id(path: &str) -> Option<UserId> {
    let rest = path.strip_prefix("/users/")?;
    rest.split('/')
        .next()?
        .parse::<i64>()
        .ok()
        .map(UserId::from)
}

async fn member_name(ctx: &AppContext, session: &Session, id: UserId) -> String {
    match ctx.accounts.members(session).await {
        Ok((members, _)) => members
            .into_iter()
            .find(|m| m.id == id)
            .map(|m| m.name)
            .unwrap_or_else(|| "this member".to_owned()),
        Err(_) => "this member".to_owned(),
    }
}

/// The action a form sent to `path` asks for.
fn ask<'a>(path: &'a str, form: &'a [(String, String)], name: &'a str) -> Ask<'a> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["devices", serial, "unpair"] if field(form, "release") == Some("yes") => {
            Ask::Release { serial }
        }
        ["devices", serial, "unpair"] => Ask::Unpair { serial },
        ["staff", "disputes", id, "resolve"] => Ask::Settle {
            id,
            resolution: field(form, "resolution").unwrap_or(""),
            note: field(form, "note").map_or("", str::trim),
        },
        ["staff", "tenants", _, "customer"] => Ask::CustomerNumber {
            number: field(form, "customer_number").map_or("", str::trim),
        },
        ["users", _, "role"] => Ask::Role {
            name,
            role: field(form, "role").unwrap_or(""),
        },
        ["users", _, "active"] if field(form, "active") == Some("yes") => Ask::Enable { name },
        ["users", _, "active"] => Ask::Disable { name },
        ["users", _, "totp-reset"] => Ask::ResetTotp { name },
        ["users", _, "access"] => Ask::Access { name },
        ["account", "require-totp"] if field(form, "required") == Some("yes") => Ask::RequireTotp,
        ["account", "require-totp"] => Ask::RelaxTotp,
        ["account", "passkeys"] => Ask::AddPasskey {
            name: field(form, "name").map_or("", str::trim),
        },
        ["account", "passkeys", _, "remove"] => Ask::RemovePasskey,
        ["account", "passkey-sign-in"] => Ask::PasskeySignIn {
            allowed: field(form, "allowed") == Some("yes"),
        },
        ["account", "require-passkey-approval"] if field(form, "required") == Some("yes") => {
            Ask::RequirePasskeys
        }
        ["account", "require-passkey-approval"] => Ask::RelaxPasskeys,
        ["account", "recovery-codes"] => Ask::NewRecoveryCodes,
        ["account", "totp", "restart"] => Ask::NewPhone,
        ["oauth", "authorize"] => Ask::SignInToApp,
        ["apps"] => Ask::RegisterApp {
            name: field(form, "name").map_or("", str::trim),
        },
        ["apps", client_id, "disable"] => Ask::DisableApp { client_id },
        ["apps", client_id, "uris"] => Ask::AppUris { client_id },
        ["apps", client_id, "secret"] => Ask::AppSecret { client_id },
        _ => Ask::Other,
    }
}
