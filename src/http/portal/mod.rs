//! The portal: server-rendered pages (askama, escaped at compile time) for customers and staff.
//! This module holds what every page shares: sessions from cookies, CSRF and Origin checks,
//! rendering with the page security headers, and the one mapping of `AccountError` to HTTP.

mod account;
mod auth;
mod chart;
mod members;
mod pairing;
mod staff;
mod workspace;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::accounts::{AccountError, Session, Stage};
use crate::app::AppContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(stylesheet));
    auth::configure(cfg);
    account::configure(cfg);
    members::configure(cfg);
    pairing::configure(cfg);
    staff::configure(cfg);
    workspace::configure(cfg);
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
}

pub struct Nav {
    pub is_staff: bool,
    pub manages_users: bool,
    pub reads_audit: bool,
}

/// The person behind a request: a session, or an anonymous visitor with a CSRF cookie.
pub struct Visitor {
    pub session: Option<Session>,
    /// The CSRF binding: the session's id hash, or the anonymous cookie's value.
    binding: String,
    /// A cookie to set on the response (a new anonymous CSRF cookie).
    set_cookie: Option<Cookie<'static>>,
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
                }),
            notice: None,
            error: None,
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

/// Reads the visitor (any stage of session, or none).
pub async fn visitor(req: &HttpRequest, ctx: &AppContext) -> Result<Visitor, HttpResponse> {
    let (session_name, csrf_name) = cookie_names(ctx);
    let session = match req.cookie(session_name) {
        Some(c) => ctx
            .accounts
            .session(c.value())
            .await
            .map_err(|e| failure(req, ctx, e))?,
        None => None,
    };
    if let Some(s) = &session {
        return Ok(Visitor {
            binding: s.id_hash.clone(),
            session,
            set_cookie: None,
        });
    }
    match req.cookie(csrf_name).filter(|c| c.value().len() == 43) {
        Some(c) => Ok(Visitor {
            binding: c.value().to_owned(),
            session: None,
            set_cookie: None,
        }),
        None => {
            let value = crate::crypto::tokens::random_token();
            Ok(Visitor {
                binding: value.clone(),
                session: None,
                set_cookie: Some(cookie(ctx, csrf_name, value)),
            })
        }
    }
}

/// A signed-in person (past the second factor); others are sent to sign in, and members of a
/// tenant that requires TOTP are sent to enrol before anything else.
pub async fn member(
    req: &HttpRequest,
    ctx: &AppContext,
) -> Result<(Visitor, Session), HttpResponse> {
    let v = visitor(req, ctx).await?;
    match v.session.clone() {
        Some(s) if s.stage == Stage::Full => {
            if s.must_enrol_totp() && req.path() != "/account/totp" {
                return Err(redirect("/account/totp"));
            }
            Ok((v, s))
        }
        _ => Err(redirect(&format!(
            "/login?next={}",
            urlencode(&local_target(req))
        ))),
    }
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

/// A POST form, parsed once; repeated fields (checkboxes) are kept.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_owned()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Checks a state-changing request: a same-origin `Origin` (or, without one, `Referer`), a form
/// body within the size limit, and a CSRF token bound to this visitor.
pub fn checked_form(
    req: &HttpRequest,
    ctx: &AppContext,
    visitor: &Visitor,
    body: &web::Bytes,
) -> Result<Form, HttpResponse> {
    if body.len() > ctx.settings.server.max_form_bytes.get() as usize {
        return Err(message(
            ctx,
            visitor,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "The form was too large.",
        ));
    }
    let public = ctx.settings.server.public_url.as_str();
    let same_origin = match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        Some(origin) => origin == public,
        None => req
            .headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|r| r.starts_with(&format!("{public}/"))),
    };
    let form = Form(url::form_urlencoded::parse(body).into_owned().collect());
    let token_ok = form
        .get("csrf")
        .is_some_and(|t| ctx.accounts.csrf_ok(&visitor.binding, t));
    if !same_origin || !token_ok {
        tracing::info!(
            same_origin,
            token_ok,
            path = req.path(),
            "refused a cross-site or stale form"
        );
        return Err(message(
            ctx,
            visitor,
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired or did not come from pairgate. Go back, reload the page and try again.",
        ));
    }
    Ok(form)
}

/// A signed-in person's checked form submission ([`member`], then [`checked_form`]).
pub async fn member_form(
    req: &HttpRequest,
    ctx: &AppContext,
    body: &web::Bytes,
) -> Result<(Visitor, Session, Form), HttpResponse> {
    let (v, s) = member(req, ctx).await?;
    let form = checked_form(req, ctx, &v, body)?;
    Ok((v, s, form))
}

/// Renders a template into a response with the page headers.
pub fn render(visitor: &Visitor, status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => {
            let mut res = HttpResponse::build(status);
            res.content_type("text/html; charset=utf-8")
                .insert_header(CacheControl(vec![CacheDirective::NoStore]))
                // Same-origin requests keep their Referer and Origin (a `no-referrer` policy makes
                // browsers send `Origin: null` on form posts, which the CSRF check refuses).
                .insert_header((header::REFERRER_POLICY, "same-origin"))
                .insert_header((
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ));
            if let Some(c) = &visitor.set_cookie {
                res.cookie(c.clone());
            }
            res.body(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Page,
    message: String,
}

/// A page with a title and a sentence.
pub fn message(
    ctx: &AppContext,
    visitor: &Visitor,
    status: StatusCode,
    title: &str,
    text: &str,
) -> HttpResponse {
    render(
        visitor,
        status,
        &MessagePage {
            page: visitor.page(ctx, title),
            message: text.to_owned(),
        },
    )
}

/// 503 with `Retry-After`: the request may succeed if sent again shortly.
fn try_again_shortly(ctx: &AppContext, visitor: &Visitor, text: &str) -> HttpResponse {
    let mut res = message(
        ctx,
        visitor,
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        text,
    );
    res.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(ctx.settings.server.retry_after_secs),
    );
    res
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

/// The one mapping of errors that no form shows inline.
pub fn failure(req: &HttpRequest, ctx: &AppContext, err: AccountError) -> HttpResponse {
    let anon = Visitor {
        session: None,
        binding: String::new(),
        set_cookie: None,
    };
    match err {
        AccountError::StepUpRequired => {
            let back = req
                .headers()
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.strip_prefix(ctx.settings.server.public_url.as_str()))
                .map(str::to_owned)
                .unwrap_or_else(|| "/".to_owned());
            redirect(&format!(
                "/step-up?next={}",
                urlencode(&safe_next(Some(&back)))
            ))
        }
        AccountError::TotpRequired => redirect("/account/totp"),
        AccountError::SessionEnded => {
            let mut res = redirect("/login");
            let _ = res.add_cookie(&expired_session_cookie(ctx));
            res
        }
        AccountError::Forbidden => message(
            ctx,
            &anon,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your role does not allow this.",
        ),
        AccountError::NotFound | AccountError::InvalidLink => message(
            ctx,
            &anon,
            StatusCode::NOT_FOUND,
            "Not found",
            &err.to_string(),
        ),
        AccountError::Busy => try_again_shortly(
            ctx,
            &anon,
            "pairgate is busy checking other passwords right now.",
        ),
        AccountError::Store(ref e) if e.is_unavailable() => {
            try_again_shortly(ctx, &anon, "pairgate cannot reach its database right now.")
        }
        AccountError::Store(_) | AccountError::Internal(_) => {
            tracing::error!(error = %err, path = req.path(), "portal request failed");
            message(
                ctx,
                &anon,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error has been logged.",
            )
        }
        other => message(
            ctx,
            &anon,
            StatusCode::BAD_REQUEST,
            "Not possible",
            &other.to_string(),
        ),
    }
}

/// The one mapping of pairing-ceremony errors that no form shows inline.
pub fn pairing_failure(
    req: &HttpRequest,
    ctx: &AppContext,
    err: crate::pairing::PairingError,
) -> HttpResponse {
    use crate::pairing::PairingError;
    let anon = Visitor {
        session: None,
        binding: String::new(),
        set_cookie: None,
    };
    match err {
        PairingError::Account(e) => failure(req, ctx, e),
        PairingError::Store(e) => failure(req, ctx, AccountError::Store(e)),
        PairingError::NotFound => failure(req, ctx, AccountError::NotFound),
        PairingError::Throttled { .. } => message(
            ctx,
            &anon,
            StatusCode::TOO_MANY_REQUESTS,
            "Slow down",
            &err.to_string(),
        ),
        PairingError::UnknownCode | PairingError::Invalid(_) => message(
            ctx,
            &anon,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not possible",
            &err.to_string(),
        ),
    }
}

/// A time for people (UTC).
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A sale record in one sentence.
pub fn sale_text(sale: Option<&crate::pairing::SaleFacts>) -> String {
    match sale {
        None => "no sale recorded".to_owned(),
        Some(s) => {
            let date = s
                .sold_at
                .map(|t| format!(" on {}", when(t)))
                .unwrap_or_default();
            if s.sold_to_distributor {
                match &s.end_customer_number {
                    Some(end) => format!(
                        "sold{date} via the distributor {} ({}) to customer {end}",
                        s.sold_to_name, s.sold_to_customer_number
                    ),
                    None => format!(
                        "sold{date} to the distributor {} ({}); end customer not known yet",
                        s.sold_to_name, s.sold_to_customer_number
                    ),
                }
            } else {
                format!(
                    "sold{date} directly to {} ({})",
                    s.sold_to_name, s.sold_to_customer_number
                )
            }
        }
    }
}
