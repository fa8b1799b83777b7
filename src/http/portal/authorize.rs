//! The pages of OpenID Connect sign-in for apps: `GET /oauth/authorize` (the app sends the
//! person here), `POST /oauth/authorize` (the person allows it, after a step-up when the app
//! asked for a fresh sign-in), and RP-initiated logout at `/oauth/logout`.
//!
//! Every answer that takes the person back to an app is a page that moves on by itself
//! (`handoff.html`, a meta refresh), never a redirect: Chromium checks a form's `form-action`
//! against every redirect that follows the submission, and the pages' policy allows only
//! pairgate itself, so a sign-in, step-up or consent form whose answer redirected to the app
//! would be stopped there.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;

use super::{
    CsrfForm, MemberForm, Page, PortalError, Rotated, Visitor, member, redirect, render, step_up,
    urlencode,
};
use crate::accounts::{Session, Stage};
use crate::app::AppContext;
use crate::oauth::Params;
use crate::oauth::authorize::{Authorization, AuthorizeError, Person};
use crate::oauth::logout::{Logout, LogoutError};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/authorize", crate::http::get().to(authorize_get))
        .route("/oauth/authorize", web::post().to(authorize_post))
        .route("/oauth/logout", crate::http::get().to(logout_get))
        .route("/oauth/logout", web::post().to(logout_post));
}

/// The form fields that are the page's own, not the app's request.
const OWN_FIELDS: [&str; 2] = ["csrf", "decision"];

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage {
    page: Page,
    app_name: String,
    email: String,
    consent: bool,
    authenticate: bool,
    grants: Vec<&'static str>,
    /// The app's request, carried to the POST as it came.
    fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "handoff.html")]
struct HandoffPage {
    page: Page,
    message: String,
    target: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    page: Page,
    app_name: Option<String>,
    fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Page,
    message: String,
}

/// What a scope lets an app have, in words.
fn grant_words(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "openid" => "who you are, your company and your role",
        "email" => "your email address",
        "profile" => "your name",
        "telemetry:read" => "the readings of the devices you can see",
        _ => return None,
    })
}

/// The request's parameters, each at most once (RFC 6749 §3.1).
fn params(pairs: Vec<(String, String)>) -> Option<Params> {
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if OWN_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if map.insert(k, v).is_some() {
            return None;
        }
    }
    Some(Params::new(map))
}

fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// A page that tells the person what went wrong and sends them nowhere.
fn shown(ctx: &AppContext, v: &Visitor, message: &str) -> HttpResponse {
    let page = v.page(ctx, "This sign-in cannot go on");
    let message = message.to_owned();
    render(v, StatusCode::BAD_REQUEST, &MessagePage { page, message })
}

/// The page that takes the person on to `target` (an app's redirect URI).
fn handoff(ctx: &AppContext, v: &Visitor, message: &str, target: String) -> HttpResponse {
    let page = v.page(ctx, "Returning to the app");
    let message = message.to_owned();
    no_store(render(
        v,
        StatusCode::OK,
        &HandoffPage {
            page,
            message,
            target,
        },
    ))
}

fn refused(
    ctx: &AppContext,
    v: &Visitor,
    err: AuthorizeError,
) -> Result<HttpResponse, PortalError> {
    match err {
        AuthorizeError::Shown(m) => Ok(shown(ctx, v, m)),
        AuthorizeError::ToApp { url, .. } => Ok(handoff(
            ctx,
            v,
            "The app could not sign you in; taking you back to it.",
            url,
        )),
        AuthorizeError::Store(e) => Err(crate::accounts::AccountError::from(e).into()),
    }
}

fn person(session: &Session, just_authenticated: bool) -> Person {
    Person {
        user_id: session.user.id,
        tenant_id: session.user.tenant_id,
        amr: session.amr.clone(),
        auth_time_ms: session.auth_time(),
        just_authenticated,
        has_totp: session.user.totp_enabled,
        has_passkey: session.user.has_passkey,
    }
}

async fn issue(
    ctx: &AppContext,
    v: &Visitor,
    a: &Authorization,
    person: &Person,
    consented: bool,
) -> Result<HttpResponse, PortalError> {
    match ctx.oauth.issue_code(a, person, consented).await {
        Ok(url) => Ok(handoff(
            ctx,
            v,
            &format!("You are signed in; taking you back to {}.", a.app.name),
            url,
        )),
        Err(e) => refused(ctx, v, e),
    }
}

/// The app's request as the page carries it: the query, without `prompt` when the person signs
/// in again now (a fresh sign-in answers `prompt=login`, and must not be asked for twice).
fn again_target(req: &HttpRequest) -> String {
    let kept: Vec<(String, String)> = query_pairs(req)
        .into_iter()
        .filter(|(k, _)| k != "prompt")
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{}?{query}", req.path())
}

async fn authorize_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    v: Visitor,
) -> Result<HttpResponse, PortalError> {
    let Some(params) = params(query_pairs(&req)) else {
        return Ok(shown(&ctx, &v, "The app sent a parameter more than once."));
    };
    let a = match ctx.oauth.authorization(&params).await {
        Ok(a) => a,
        Err(e) => return refused(&ctx, &v, e),
    };
    let signed_in = v.session.as_ref().is_some_and(|s| s.stage == Stage::Full);
    if !signed_in && a.prompt_none {
        let url = a
            .back
            .error("login_required", "the person is not signed in");
        return Ok(handoff(&ctx, &v, "You are not signed in to pairgate.", url));
    }
    let super::Member(v, session) = member(&req, &ctx).await?;
    let me = person(&session, false);
    let needed = match ctx.oauth.interaction(&a, &me).await {
        Ok(n) => n,
        Err(e) => return refused(&ctx, &v, e),
    };
    if needed.authenticate && !session.user.has_second_factor() {
        // Nothing to step up with: the person signs in again, then comes back.
        ctx.accounts.sign_out(&session).await?;
        let to = format!("/login?next={}", urlencode(&again_target(&req)));
        return Ok(redirect(&to));
    }
    if needed.none() {
        return issue(&ctx, &v, &a, &me, false).await;
    }
    let page = v.page(&ctx, &format!("Sign in to {}", a.app.name));
    let grants = a.scope.iter().filter_map(|s| grant_words(s)).collect();
    let body = AuthorizePage {
        page,
        app_name: a.app.name.clone(),
        email: session.user.email.clone(),
        consent: needed.consent,
        authenticate: needed.authenticate,
        grants,
        fields: query_pairs(&req),
    };
    Ok(no_store(render(&v, StatusCode::OK, &body)))
}

async fn authorize_post(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    MemberForm(v, session, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let fields = form.pairs();
    let Some(params) = params(fields.clone()) else {
        return Ok(shown(&ctx, &v, "The app sent a parameter more than once."));
    };
    let a = match ctx.oauth.authorization(&params).await {
        Ok(a) => a,
        Err(e) => return refused(&ctx, &v, e),
    };
    if form.get("decision") == Some("deny") {
        let url = ctx.oauth.declined(&a);
        return Ok(handoff(&ctx, &v, "Taking you back to the app.", url));
    }
    let just_authenticated = req.extensions().get::<Rotated>().is_some();
    let me = person(&session, just_authenticated);
    let needed = match ctx.oauth.interaction(&a, &me).await {
        Ok(n) => n,
        Err(e) => return refused(&ctx, &v, e),
    };
    if needed.authenticate {
        return Err(step_up::demand(&req, &ctx, &v, &session, &fields).await);
    }
    issue(&ctx, &v, &a, &me, true).await
}

async fn logout_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    v: Visitor,
) -> Result<HttpResponse, PortalError> {
    let logout = match logout_request(&ctx, &v, query_pairs(&req)).await? {
        Ok(l) => l,
        Err(page) => return Ok(page),
    };
    let session = v.session.clone();
    let named = match (&session, &logout.hint) {
        (Some(s), Some(h)) => s.user.id == h.user,
        (None, _) => true,
        (Some(_), None) => false,
    };
    if !named {
        // Nothing proves the app speaks for this person: ask them.
        let page = v.page(&ctx, "Sign out");
        let body = LogoutPage {
            page,
            app_name: logout.app_name,
            fields: query_pairs(&req),
        };
        return Ok(no_store(render(&v, StatusCode::OK, &body)));
    }
    if let Some(s) = &session {
        ctx.accounts.sign_out(s).await?;
    }
    Ok(signed_out(&ctx, &v, logout.back))
}

async fn logout_post(
    ctx: web::Data<AppContext>,
    CsrfForm(v, form): CsrfForm,
) -> Result<HttpResponse, PortalError> {
    let logout = match logout_request(&ctx, &v, form.pairs()).await? {
        Ok(l) => l,
        Err(page) => return Ok(page),
    };
    if let Some(s) = &v.session {
        ctx.accounts.sign_out(s).await?;
    }
    Ok(signed_out(&ctx, &v, logout.back))
}

/// A logout request's checks; `Err` is the page that says why it cannot go on.
async fn logout_request(
    ctx: &AppContext,
    v: &Visitor,
    pairs: Vec<(String, String)>,
) -> Result<Result<Logout, HttpResponse>, PortalError> {
    let Some(params) = params(pairs) else {
        return Ok(Err(shown(
            ctx,
            v,
            "The app sent a parameter more than once.",
        )));
    };
    match ctx.oauth.logout_request(&params).await {
        Ok(l) => Ok(Ok(l)),
        Err(LogoutError::Refused(m)) => Ok(Err(shown(ctx, v, m))),
        Err(LogoutError::OAuth(e)) => Err(oauth_failure(e)),
    }
}

fn signed_out(ctx: &AppContext, v: &Visitor, back: Option<String>) -> HttpResponse {
    let anonymous = Visitor {
        session: None,
        binding: v.binding.clone(),
        set_cookie: None,
    };
    let mut res = match back {
        Some(url) => handoff(ctx, &anonymous, "You are signed out of pairgate.", url),
        None => {
            let page = anonymous.page(ctx, "Signed out");
            let message = "You are signed out of pairgate.".to_owned();
            render(&anonymous, StatusCode::OK, &MessagePage { page, message })
        }
    };
    let _ = res.add_cookie(&super::expired_session_cookie(ctx));
    res
}

/// A failure below the OAuth domain while a page was answered.
fn oauth_failure(e: crate::oauth::OAuthError) -> PortalError {
    match e {
        crate::oauth::OAuthError::Store(e) => crate::accounts::AccountError::from(e).into(),
        _ => crate::accounts::AccountError::Internal("id_token_hint").into(),
    }
}
