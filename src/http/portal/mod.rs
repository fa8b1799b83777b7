//! The portal: server-rendered pages (askama, escaped at compile time) for customers and staff.
//! This module holds what every page shares: sessions from cookies, CSRF and Origin checks,
//! rendering with the page security headers, and the one mapping of `AccountError` to HTTP.

mod account;
mod apps;
mod audit;
mod auth;
mod authorize;
mod chart;
mod csv_export;
mod dashboard;
mod device;
mod device_list;
mod error;
mod extract;
mod history;
mod members;
mod pairing;
mod passkey_offer;
mod passkey_sign_in;
mod passkeys;
mod profile;
mod staff;
mod step_up;
mod texts;
mod workspace;
mod zone;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::accounts::{Session, Stage, Zone};
use crate::app::AppContext;
pub use error::{PortalError, no_such_page};
pub use extract::{CsrfForm, Member, MemberForm, member};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(stylesheet));
    auth::configure(cfg);
    authorize::configure(cfg);
    account::configure(cfg);
    apps::configure(cfg);
    passkeys::configure(cfg);
    passkey_sign_in::configure(cfg);
    zone::configure(cfg);
    members::configure(cfg);
    // Before `/devices/{serial}` (pairing), which would take `/devices/group`.
    device_list::configure(cfg);
    device::configure(cfg);
    pairing::configure(cfg);
    staff::configure(cfg);
    workspace::configure(cfg);
    audit::configure(cfg);
}

const STYLESHEET: &str = include_str!("../../../static/app.css");

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(3600),
        ]))
        .body(STYLESHEET)
}

/// What the layout needs on every page.
pub struct Page {
    pub title: String,
    pub csrf: String,
    pub nav: Option<Nav>,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The zone the page shows times in: the viewer's (`Session::zone`), UTC when signed out.
    pub zone: Zone,
    /// The page offers a passkey ceremony, so it carries the ceremony script (`passkeys.rs`).
    pub script: bool,
}

impl Page {
    /// A time for the viewer, in their zone: `2026-12-05 14:30 CET`.
    pub fn when(&self, ms: i64) -> String {
        zone::when_for(self.zone, ms)
    }

    /// The ceremony script, for `base.html` to inline when [`Self::script`] is set.
    pub fn script_text(&self) -> &'static str {
        passkey_offer::SCRIPT
    }
}

pub struct Nav {
    pub is_staff: bool,
    pub manages_users: bool,
    pub reads_audit: bool,
    /// Owners and staff register the apps that sign people in.
    pub registers_apps: bool,
}

/// The person behind a request: a session, or an anonymous visitor with a CSRF cookie. As an
/// extractor: any stage of session, or none.
pub struct Visitor {
    pub session: Option<Session>,
    /// The CSRF binding: the session's id hash, or the anonymous cookie's value.
    binding: String,
    /// A cookie to set on the response (a new anonymous CSRF cookie).
    set_cookie: Option<Cookie<'static>>,
}

impl std::fmt::Debug for Visitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The binding is a CSRF secret: never in a log line.
        f.debug_struct("Visitor")
            .field("signed_in", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl Visitor {
    fn page(&self, ctx: &AppContext, title: &str) -> Page {
        Page {
            title: title.to_owned(),
            csrf: ctx.accounts.csrf_token(&self.binding),
            nav: self
                .session
                .as_ref()
                .filter(|s| s.stage == Stage::Full)
                .map(|s| Nav {
                    is_staff: s.user.role == crate::accounts::Role::Staff,
                    manages_users: s.user.role.manages_users(),
                    reads_audit: s.user.role.reads_audit(),
                    registers_apps: matches!(
                        s.user.role,
                        crate::accounts::Role::Owner | crate::accounts::Role::Staff
                    ),
                }),
            notice: None,
            error: None,
            zone: self.session.as_ref().map_or(Zone::UTC, Session::zone),
            script: false,
        }
    }
}

fn cookie_names(ctx: &AppContext) -> (&'static str, &'static str) {
    // `__Host-` needs Secure, which a plain-http development URL cannot have.
    if ctx.settings.server.public_url.is_https() {
        ("__Host-pairgate", "__Host-pairgate-csrf")
    } else {
        ("pairgate_session", "pairgate_csrf")
    }
}

fn cookie(ctx: &AppContext, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(ctx.settings.server.public_url.is_https())
        .same_site(SameSite::Lax)
        .finish()
}

/// The session cookie to set after sign-in, second factor or step-up.
pub fn session_cookie(ctx: &AppContext, value: String) -> Cookie<'static> {
    cookie(ctx, cookie_names(ctx).0, value)
}

fn expired_session_cookie(ctx: &AppContext) -> Cookie<'static> {
    let mut c = cookie(ctx, cookie_names(ctx).0, String::new());
    c.make_removal();
    c
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The path (and query) of this request, to come back to after signing in.
fn local_target(req: &HttpRequest) -> String {
    match req.query_string() {
        "" => req.path().to_owned(),
        q => format!("{}?{q}", req.path()),
    }
}

/// A `next` parameter is followed only to a local path (no scheme, no `//host`, no backslash).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Where to come back to after signing in again, for a form whose session ended: the pairing of
/// the code it carried, or the page it was sent from (a local path only), or home.
pub struct ReturnTo(pub String);

/// Marks a request whose session cookie no longer opens a session.
pub struct SessionGone;

/// The session's new cookie value, after it stepped up while this request was read: the page a
/// handler renders afterwards reads the session under it.
pub struct Rotated(pub String);

/// A page, rendered, that asks for a step-up code for the action of this request's form; the
/// error mapping answers with it if the action asks for a step-up (`step_up.rs`).
pub struct Offer(pub StatusCode, pub String);

/// The pages' Content-Security-Policy: no script but the passkey ceremony's, by its hash.
static PAGE_POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src 'self'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        *passkey_offer::SCRIPT_SOURCE
    )
});

/// Renders a template into a response with the page headers.
pub fn render(visitor: &Visitor, status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => respond(visitor, status, body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// A rendered page as a response with the page headers.
fn respond(visitor: &Visitor, status: StatusCode, body: String) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        // Same-origin requests keep their Referer and Origin (a `no-referrer` policy makes
        // browsers send `Origin: null` on form posts, which the CSRF check refuses).
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY.as_str()));
    if let Some(c) = &visitor.set_cookie {
        res.cookie(c.clone());
    }
    res.body(body)
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Page,
    message: String,
}

/// A page with a title and a sentence.
fn message(
    ctx: &AppContext,
    visitor: &Visitor,
    status: StatusCode,
    message: &texts::Message,
) -> HttpResponse {
    render(
        visitor,
        status,
        &MessagePage {
            page: visitor.page(ctx, &message.title()),
            message: message.sentence(),
        },
    )
}

/// 303 to `to` (after a POST, the browser GETs).
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .finish()
}

/// 303 with a new session cookie.
pub fn redirect_with_session(ctx: &AppContext, to: &str, cookie_value: String) -> HttpResponse {
    let mut res = redirect(to);
    let _ = res.add_cookie(&session_cookie(ctx, cookie_value));
    res
}

/// A sale record in one sentence, in full (for staff).
fn sale_text(sale: Option<&crate::pairing::SaleFacts>, page: &Page) -> String {
    let date = sale.and_then(|s| s.sold_at).map(|t| page.when(t));
    texts::Sale::Record { facts: sale, date }.to_string()
}
