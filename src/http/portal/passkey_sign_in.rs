//! Signing in with a passkey alone: `/login/passkey`. The sign-in page offers it (to browsers
//! with WebAuthn, through the script); a first post begins a ceremony that any of the server's
//! discoverable passkeys may answer, counted in the address's sign-in limit, and the answer
//! signs in the account whose passkey it is, if its owner allowed passkeys to sign in alone.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::auth::user_agent;
use super::passkey_offer::{self, PasskeyOffer, shown_inline};
use super::{CsrfForm, Page, PortalError, Visitor, redirect_with_session, render, safe_next};
use crate::accounts::passkeys::PublicKeyCredential;
use crate::accounts::{AccountError, PasskeyError};
use crate::app::AppContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/passkey", web::post().to(sign_in_post));
}

#[derive(Template)]
#[template(path = "passkey_sign_in.html")]
struct SignInPage {
    page: Page,
    next: String,
    /// The ceremony, or `None` after a refusal (the page offers to start again).
    passkey: Option<PasskeyOffer>,
}

async fn sign_in_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    CsrfForm(v, form): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    let next = safe_next(form.get("next"));
    let ip = crate::http::client_addr::client_ip(&req);
    let given = passkey_offer::answer::<PublicKeyCredential>(
        form.get("passkey_handle"),
        form.get("passkey_answer"),
    );
    let refusal = match given {
        Some(given) => {
            let signed_in = match given {
                Ok((handle, answer)) => {
                    let ua = user_agent(&req);
                    ctx.accounts
                        .sign_in_passkey(&handle, &answer, ip.as_deref(), ua.as_deref())
                        .await
                }
                Err(e) => Err(e),
            };
            match signed_in {
                Ok(cookie) => return Ok(redirect_with_session(&ctx, &next, cookie)),
                Err(e) => e,
            }
        }
        None => match ctx.accounts.begin_passkey_sign_in_from(ip.as_deref()).await {
            Ok(ceremony) => {
                let passkey = PasskeyOffer::sign_in(ceremony);
                let mut page = v.page(&ctx, "Sign in with a passkey");
                page.script = true;
                let page = SignInPage {
                    page,
                    next,
                    passkey,
                };
                return Ok(render(&v, StatusCode::OK, &page));
            }
            Err(e) => e,
        },
    };
    refused(&ctx, &v, next, refusal)
}

/// The page again, with why the sign-in was refused and a way to start over.
fn refused(
    ctx: &AppContext,
    v: &Visitor,
    next: String,
    e: PasskeyError,
) -> Result<HttpResponse, PortalError> {
    let status = match &e {
        PasskeyError::Account(AccountError::Throttled { .. }) => StatusCode::TOO_MANY_REQUESTS,
        PasskeyError::NotAlone => StatusCode::UNAUTHORIZED,
        e if shown_inline(e) => StatusCode::UNAUTHORIZED,
        _ => return Err(e.into()),
    };
    let mut page = v.page(ctx, "Sign in with a passkey");
    page.error = Some(passkey_offer::capitalised(&e.to_string()));
    let page = SignInPage {
        page,
        next,
        passkey: None,
    };
    Ok(render(v, status, &page))
}
