//! The verification page (RFC 8628 §3.3, `verification_uri`): `/device` to enter the code (a
//! `?user_code=` only pre-fills it), the confirmation with everything a careful person checks, and
//! the decision; and unpair and release from a device's page (`device.rs` draws the page).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::passkey_offer::{self, PasskeyOffer};
use super::step_up::Ask;
use super::texts::{Line, Sale};
use super::{Member, MemberForm, Page, PortalError, Visitor, redirect, render};
use crate::accounts::passkeys::PublicKeyCredential;
use crate::accounts::{AccountError, Session};
use crate::app::AppContext;
use crate::http::get;
use crate::ids::{DeviceSerial, GroupId};
use crate::pairing::{
    Approval, Basis, Confirmation, Fresh, PairingError, Removal, SaleView, Shown, Verdict,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/device", get().to(code_get))
        .route("/device", web::post().to(code_post))
        .route("/device/decide", web::post().to(decide_post))
        .route("/devices/{serial}/unpair", web::post().to(unpair_post));
}

fn ip(req: &HttpRequest) -> Option<String> {
    crate::http::client_addr::client_ip(req)
}

#[derive(Template)]
#[template(path = "device_code.html")]
struct CodePage {
    page: Page,
    code: String,
    /// How long to wait, when too many codes were tried.
    wait: Option<String>,
}

/// The code form again: after an unknown code (422) or too many attempts (429, with
/// `Retry-After`), with the code typed so far.
fn code_page(
    ctx: &AppContext,
    v: &Visitor,
    code: &str,
    err: &PairingError,
) -> Option<HttpResponse> {
    let mut page = v.page(ctx, "Pair a device");
    let code = code.chars().take(32).collect();
    match *err {
        PairingError::UnknownCode => {
            page.error = Some(err.to_string());
            let form = CodePage {
                page,
                code,
                wait: None,
            };
            Some(render(v, StatusCode::UNPROCESSABLE_ENTITY, &form))
        }
        PairingError::Throttled { retry_after_secs } => {
            let form = CodePage {
                page,
                code,
                wait: Some(
                    Line::Wait {
                        secs: retry_after_secs,
                    }
                    .to_string(),
                ),
            };
            let mut res = render(v, StatusCode::TOO_MANY_REQUESTS, &form);
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
            Some(res)
        }
        _ => None,
    }
}

#[derive(Deserialize)]
struct CodeQuery {
    user_code: Option<String>,
}

async fn code_get(
    ctx: web::Data<AppContext>,
    q: web::Query<CodeQuery>,
    Member(v, _): Member,
) -> Result<HttpResponse, PortalError> {
    // The link from the device's QR code only fills the field in: a person still decides.
    let code: String = q
        .user_code
        .as_deref()
        .unwrap_or("")
        .chars()
        .take(32)
        .collect();
    let page = v.page(&ctx, "Pair a device");
    Ok(render(
        &v,
        StatusCode::OK,
        &CodePage {
            page,
            code,
            wait: None,
        },
    ))
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage {
    page: Page,
    c: Confirmation,
    requested_at: String,
    sale_text: String,
    allowed: bool,
    verdict: Advice,
    /// The group chosen before a wrong code, chosen again.
    chosen: Option<GroupId>,
    /// What the code confirms, beside the code field.
    ask: String,
    /// Why the last code was refused, beside the code field.
    code_error: Option<String>,
    /// A passkey to approve with, offered first when the person has one.
    passkey: Option<PasskeyOffer>,
    /// The person has TOTP and the company takes codes at approval, so the code field is there.
    totp: bool,
    /// The company approves devices with a passkey only.
    passkey_only: bool,
}

impl ConfirmPage {
    /// Offers the session user's passkey (and the script with it), and keeps the code field
    /// only where a code can approve.
    async fn with_passkey(mut self, ctx: &AppContext, session: &Session) -> Self {
        let label = if self.allowed {
            "Approve with a passkey"
        } else {
            "Ask for a review with a passkey"
        };
        self.passkey = PasskeyOffer::authentication(ctx, session, label).await;
        self.page.script = self.passkey.is_some();
        self.passkey_only = session
            .tenant
            .as_ref()
            .is_some_and(|t| t.require_passkey_approval);
        self.totp = session.user.totp_enabled && !self.passkey_only;
        self
    }
}

/// What the gate's verdict means for the person deciding; `device_confirm.html` says it.
enum Advice {
    /// Already in this account (after a factory reset, say).
    Repairing,
    Active,
    /// Allowed by a staff grant: who granted it, by name.
    Granted(String),
    Provisional,
    Review,
    /// The refusal's explanation.
    Refused(String),
}

fn confirm_page(
    page: Page,
    c: Confirmation,
    chosen: Option<GroupId>,
    code_error: Option<String>,
) -> ConfirmPage {
    let (allowed, verdict) = match c.verdict {
        Verdict::Active(_) if c.repairing => (true, Advice::Repairing),
        Verdict::Active(Basis::StaffGrant) => {
            let by = c.granted_by.clone().unwrap_or_default();
            (true, Advice::Granted(by))
        }
        Verdict::Active(_) => (true, Advice::Active),
        Verdict::Provisional => (true, Advice::Provisional),
        Verdict::Review => (true, Advice::Review),
        Verdict::Refused(r) => (false, Advice::Refused(r.explanation().to_string())),
    };
    let chosen = chosen.filter(|id| c.groups.iter().any(|g| g.id == *id));
    let group = c.groups.iter().find(|g| Some(g.id) == chosen);
    let ask = if allowed {
        Ask::Approve {
            serial: c.serial.as_str(),
            group: group.map(|g| g.name.as_str()),
        }
    } else {
        Ask::Review {
            serial: c.serial.as_str(),
        }
    }
    .to_string();
    ConfirmPage {
        requested_at: page.when(c.requested_at_ms),
        sale_text: sale_text(&c.sale, &page),
        page,
        c,
        allowed,
        verdict,
        chosen,
        ask,
        code_error,
        passkey: None,
        totp: true,
        passkey_only: false,
    }
}

/// The sale record in one sentence, as the deciding tenant may see it (never another
/// customer's name or number).
fn sale_text(sale: &SaleView, page: &Page) -> String {
    let sold_at = match sale {
        SaleView::ToClaimant { sold_at, .. } | SaleView::ToDistributor { sold_at, .. } => *sold_at,
        SaleView::NotRecorded | SaleView::ToAnotherCustomer => None,
    };
    let date = sold_at.map(|t| page.when(t));
    Sale::Seen { view: sale, date }.to_string()
}

async fn code_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let code = form.text("user_code");
    match ctx.ceremony.look_up(&s, &code, ip(&req).as_deref()).await {
        Ok(c) => {
            let page = v.page(&ctx, "Confirm the device");
            let page = confirm_page(page, c, None, None)
                .with_passkey(&ctx, &s)
                .await;
            Ok(render(&v, StatusCode::OK, &page))
        }
        Err(e) => Ok(code_page(&ctx, &v, &code, &e).ok_or(e)?),
    }
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DonePage {
    page: Page,
    serial: String,
    outcome: Outcome,
}

/// What a decision came to; `device_done.html` says it.
enum Outcome {
    Denied,
    Paired,
    Provisional,
    /// The refusal's explanation and the dispute's case number.
    Refused(String, i64),
    /// The dispute's case number.
    HeldForReview(i64),
}

async fn decide_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let (code, proof) = (form.text("user_code"), form.text("shown"));
    let shown = Shown {
        user_code: &code,
        proof: &proof,
    };
    if form.get("action") == Some("deny") {
        return match ctx.ceremony.deny(&s, shown, ip(&req).as_deref()).await {
            Ok(serial) => Ok(done(&ctx, &v, serial, Outcome::Denied)),
            Err(e) => Ok(code_page(&ctx, &v, &code, &e).ok_or(e)?),
        };
    }
    let group = form.get("group").and_then(|g| g.parse::<GroupId>().ok());
    let totp = form.text("totp");
    let given = passkey_offer::answer::<PublicKeyCredential>(
        form.get("passkey_handle"),
        form.get("passkey_answer"),
    );
    let fresh = match given {
        None => Fresh::Totp(&totp),
        Some(given) => {
            let used = match given {
                Ok((handle, answer)) => {
                    ctx.accounts
                        .finish_passkey_authentication(&s, &handle, &answer)
                        .await
                }
                Err(e) => Err(e),
            };
            match used {
                Ok(used) => Fresh::Passkey(used),
                Err(e) if passkey_offer::shown_inline(&e) => {
                    return reshow(&ctx, &v, &s, shown, group, e.to_string()).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    match ctx
        .ceremony
        .approve_with(&s, shown, fresh, group, ip(&req).as_deref())
        .await
    {
        Ok(approval) => Ok(approval_page(&ctx, &v, approval)),
        Err(PairingError::Account(
            e @ (AccountError::InvalidCode | AccountError::Throttled { .. }),
        )) => {
            let reason = match e {
                AccountError::Throttled { .. } => e.to_string(),
                _ => "That authentication code is not right, or was already used. Wait for the \
                      next one and try again."
                    .to_owned(),
            };
            reshow(&ctx, &v, &s, shown, group, reason).await
        }
        Err(e @ PairingError::PasskeyRequired) => {
            reshow(&ctx, &v, &s, shown, group, e.to_string()).await
        }
        Err(e) => Ok(code_page(&ctx, &v, shown.user_code, &e).ok_or(e)?),
    }
}

/// The confirmation again, as it was filled in, with the reason beside the code field, if the
/// request is still there.
async fn reshow(
    ctx: &AppContext,
    v: &Visitor,
    s: &Session,
    shown: Shown<'_>,
    group: Option<GroupId>,
    reason: String,
) -> Result<HttpResponse, PortalError> {
    match ctx.ceremony.reshow(s, shown).await {
        Ok(c) => {
            let page = v.page(ctx, "Confirm the device");
            let page = confirm_page(page, c, group, Some(passkey_offer::capitalised(&reason)))
                .with_passkey(ctx, s)
                .await;
            Ok(render(v, StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Ok(code_page(ctx, v, shown.user_code, &e).ok_or(e)?),
    }
}

/// A decision's outcome page: 409 for a refusal, else 200.
fn done(ctx: &AppContext, v: &Visitor, serial: String, outcome: Outcome) -> HttpResponse {
    let (title, status) = match outcome {
        Outcome::Denied => ("Denied", StatusCode::OK),
        Outcome::Paired => ("Device paired", StatusCode::OK),
        Outcome::Provisional => ("Device paired provisionally", StatusCode::OK),
        Outcome::Refused(..) => ("Not paired", StatusCode::CONFLICT),
        Outcome::HeldForReview(_) => ("Waiting for review", StatusCode::OK),
    };
    let page = v.page(ctx, title);
    render(
        v,
        status,
        &DonePage {
            page,
            serial,
            outcome,
        },
    )
}

/// The page for an approval's outcome: paired, held for review, or refused.
fn approval_page(ctx: &AppContext, v: &Visitor, approval: Approval) -> HttpResponse {
    let (serial, outcome) = match approval {
        Approval::Paired {
            serial,
            provisional,
        } => (
            serial,
            if provisional {
                Outcome::Provisional
            } else {
                Outcome::Paired
            },
        ),
        Approval::Refused {
            serial,
            refusal,
            dispute_id,
        } => (
            serial,
            Outcome::Refused(refusal.explanation().to_string(), dispute_id),
        ),
        Approval::HeldForReview { serial, dispute_id } => {
            (serial, Outcome::HeldForReview(dispute_id))
        }
    };
    done(ctx, v, serial.into(), outcome)
}

#[derive(Template)]
#[template(path = "device_removed.html")]
struct RemovedPage {
    page: Page,
    serial: String,
    /// Released for another customer, rather than unpaired.
    release: bool,
}

async fn unpair_post(
    ctx: web::Data<AppContext>,
    serial: web::Path<DeviceSerial>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let removal = if form.get("release") == Some("yes") {
        Removal::Release
    } else {
        Removal::Unpair
    };
    match ctx.ceremony.unpair(&s, &serial, removal).await {
        Ok(()) => {
            let page = v.page(&ctx, "Removed");
            let serial = serial.into_inner().into();
            let removed = RemovedPage {
                page,
                serial,
                release: removal == Removal::Release,
            };
            Ok(render(&v, StatusCode::OK, &removed))
        }
        Err(PairingError::NotFound) => Ok(redirect("/devices")),
        Err(e) => Err(e.into()),
    }
}
