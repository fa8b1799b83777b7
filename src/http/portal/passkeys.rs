//! The account's passkeys: `/account/passkeys` (add, then finish once the browser made it),
//! `/account/passkeys/{id}/remove`, whether they sign in alone (`/account/passkey-sign-in`), and
//! the owner's `/account/require-passkey-approval`. The
//! ceremonies ride on forms (`passkey_offer.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::passkey_offer::{PasskeyOffer, answer, capitalised, shown_inline};
use super::profile::account_page;
use super::{MemberForm, Page, PortalError, redirect, render};
use crate::accounts::PasskeyError;
use crate::accounts::passkeys::RegisterPublicKeyCredential;
use crate::app::AppContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/passkeys", web::post().to(add_post))
        .route("/account/passkeys/finish", web::post().to(finish_post))
        .route("/account/passkeys/{id}/remove", web::post().to(remove_post))
        .route(
            "/account/require-passkey-approval",
            web::post().to(policy_post),
        )
        .route("/account/passkey-sign-in", web::post().to(sign_in_post));
}

#[derive(Template)]
#[template(path = "passkey_new.html")]
struct NewPasskeyPage {
    page: Page,
    name: String,
    offer: PasskeyOffer,
}

/// Begins adding a passkey named in the form (after a step-up): the page that asks the
/// browser to create it.
async fn add_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let name = form.text("name");
    match ctx.accounts.begin_passkey_registration(&s, &name).await {
        Ok(ceremony) => {
            let offer = PasskeyOffer::registration(ceremony, "Create the passkey")
                .ok_or(PasskeyError::Internal("registration options"))?;
            let mut page = v.page(&ctx, "Add a passkey");
            page.script = true;
            let name = name.trim().to_owned();
            Ok(render(
                &v,
                StatusCode::OK,
                &NewPasskeyPage { page, name, offer },
            ))
        }
        Err(e @ (PasskeyError::InvalidName | PasskeyError::NameTaken | PasskeyError::TooMany)) => {
            refused(&req, &ctx, &e).await
        }
        Err(e) if shown_inline(&e) => refused(&req, &ctx, &e).await,
        Err(e) => Err(e.into()),
    }
}

/// The account page again, with why a passkey action was refused.
async fn refused(
    req: &HttpRequest,
    ctx: &AppContext,
    e: &PasskeyError,
) -> Result<HttpResponse, PortalError> {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    account_page(req, ctx, None, Some(capitalised(&e.to_string())), status).await
}

/// Stores the passkey the browser made.
async fn finish_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let given = answer::<RegisterPublicKeyCredential>(
        form.get("passkey_handle"),
        form.get("passkey_answer"),
    )
    .unwrap_or(Err(PasskeyError::Rejected));
    let outcome = match given {
        Ok((handle, credential)) => {
            ctx.accounts
                .finish_passkey_registration(&s, &handle, &credential)
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(_) => Ok(redirect("/account?done=passkey-added#passkeys")),
        Err(e @ PasskeyError::AlreadyRegistered) => refused(&req, &ctx, &e).await,
        Err(e) if shown_inline(&e) => refused(&req, &ctx, &e).await,
        Err(e) => Err(e.into()),
    }
}

/// Removes one of the person's passkeys (after a step-up).
async fn remove_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    path: web::Path<i64>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    match ctx.accounts.remove_passkey(&s, path.into_inner()).await {
        Ok(()) => Ok(redirect("/account?done=passkey-removed#passkeys")),
        Err(e @ PasskeyError::LastFactor) => refused(&req, &ctx, &e).await,
        Err(e) => Err(e.into()),
    }
}

/// An owner requires (or stops requiring) passkeys to approve pairings (after a step-up).
async fn policy_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let required = form.get("required") == Some("yes");
    ctx.accounts
        .set_tenant_requires_passkey_approval(&s, required)
        .await?;
    Ok(redirect("/account#company"))
}

/// The person lets their passkeys sign them in alone, or stops it (after a step-up).
async fn sign_in_post(
    ctx: web::Data<AppContext>,
    MemberForm(_, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let allowed = form.get("allowed") == Some("yes");
    ctx.accounts.set_passkey_sign_in(&s, allowed).await?;
    Ok(redirect("/account#passkeys"))
}
