//! The portal's extractors: the [`Visitor`] (a session from its cookie, or an anonymous CSRF
//! cookie), the signed-in [`Member`], and the checked forms ([`CsrfForm`], [`MemberForm`]: size,
//! same-origin `Origin` or `Referer`, an HMAC CSRF token bound to the session or the anonymous
//! cookie). A refusal is a [`PortalError`], answered as the handlers answered it before.

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev, web};

use super::error::FormRefusal;
use super::{PortalError, ReturnTo, Rotated, SessionGone, Visitor, cookie, cookie_names};
use crate::accounts::{Session, Stage};
use crate::app::AppContext;
use crate::http::errors::{Extracting, context};

impl FromRequest for Visitor {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(visitor(&req, context(&req)?).await?) })
    }
}

/// Reads the visitor (any stage of session, or none).
async fn visitor(req: &HttpRequest, ctx: &AppContext) -> Result<Visitor, PortalError> {
    let (session_name, csrf_name) = cookie_names(ctx);
    let rotated = req.extensions().get::<Rotated>().map(|r| r.0.clone());
    let session = match (rotated, req.cookie(session_name)) {
        (Some(value), _) => ctx.accounts.session(&value).await?,
        (None, Some(c)) => ctx.accounts.session(c.value()).await?,
        (None, None) => None,
    };
    if session.is_none() && req.cookie(session_name).is_some() {
        // A cookie that opens no session: it expired, or was ended.
        req.extensions_mut().insert(SessionGone);
    }
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
pub struct Member(pub Visitor, pub Session);

impl FromRequest for Member {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(member(&req, context(&req)?).await?) })
    }
}

/// The [`Member`] of a request, for pages that handlers render again after a change.
pub async fn member(req: &HttpRequest, ctx: &AppContext) -> Result<Member, PortalError> {
    let v = visitor(req, ctx).await?;
    match v.session.clone() {
        Some(s) if s.stage == Stage::Full => {
            if s.must_enrol_totp() && req.path() != "/account/totp" {
                return Err(crate::accounts::AccountError::TotpRequired.into());
            }
            Ok(Member(v, s))
        }
        _ => Err(PortalError::SignIn),
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

    /// Every field, in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0.clone()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A visitor's checked form submission (signed in or not): the body is read first, then the
/// visitor, then the checks.
pub struct CsrfForm(pub Visitor, pub Form);

impl FromRequest for CsrfForm {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        submission(req, payload, |v, (), form| Self(v, form))
    }
}

/// A signed-in person's checked form submission: the body, then the [`Member`], then the checks,
/// then a pending action and its step-up code (`step_up::resume`).
pub struct MemberForm(pub Visitor, pub Session, pub Form);

impl FromRequest for MemberForm {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let submitted = submission(req, payload, Self);
        let req = req.clone();
        Box::pin(async move {
            let Self(v, s, form) = submitted.await?;
            let ctx = context(&req)?;
            let (v, s, fields) = super::step_up::resume(&req, ctx, v, s, form.0).await?;
            Ok(Self(v, s, Form(fields)))
        })
    }
}

/// Who submits a checked form: the visitor, and what else the form needs of them.
trait Submitter: Sized {
    async fn read(req: &HttpRequest, ctx: &AppContext) -> Result<(Visitor, Self), PortalError>;
}

/// Any visitor, signed in or not.
impl Submitter for () {
    async fn read(req: &HttpRequest, ctx: &AppContext) -> Result<(Visitor, Self), PortalError> {
        Ok((visitor(req, ctx).await?, ()))
    }
}

/// A [`Member`] only.
impl Submitter for Session {
    async fn read(req: &HttpRequest, ctx: &AppContext) -> Result<(Visitor, Self), PortalError> {
        let Member(v, s) = member(req, ctx).await?;
        Ok((v, s))
    }
}

/// The steps of every checked form: the body is read first (the payload is only at hand now),
/// then the submitter, then the checks; `build` puts the parts together.
fn submission<S: Submitter + 'static, T: 'static>(
    req: &HttpRequest,
    payload: &mut dev::Payload,
    build: fn(Visitor, S, Form) -> T,
) -> Extracting<T> {
    let req = req.clone();
    let body = web::Bytes::from_request(&req, payload);
    Box::pin(async move {
        let body = body.await?;
        let ctx = context(&req)?;
        let (v, submitter) = match S::read(&req, ctx).await {
            Err(PortalError::SignIn) => {
                req.extensions_mut()
                    .insert(ReturnTo(return_target(&req, ctx, &body)));
                return Err(PortalError::SignIn.into());
            }
            read => read?,
        };
        let (v, form) = checked(&req, ctx, v, &body)?;
        Ok(build(v, submitter, form))
    })
}

fn return_target(req: &HttpRequest, ctx: &AppContext, body: &web::Bytes) -> String {
    let form = Form(url::form_urlencoded::parse(body).into_owned().collect());
    if let Some(code) = form
        .get("user_code")
        .filter(|c| !c.is_empty() && c.len() <= 32)
    {
        return format!("/device?user_code={}", super::urlencode(code));
    }
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix(ctx.settings.server.public_url.as_str()));
    super::safe_next(referer)
}

/// The visitor's form, or the refusal answered with the visitor's page.
fn checked(
    req: &HttpRequest,
    ctx: &AppContext,
    visitor: Visitor,
    body: &web::Bytes,
) -> Result<(Visitor, Form), PortalError> {
    match checked_form(req, ctx, &visitor, body) {
        Ok(form) => Ok((visitor, form)),
        Err(refusal) => Err(PortalError::Form(Box::new(visitor), refusal)),
    }
}

/// Checks a state-changing request: a same-origin `Origin` (or, without one, `Referer`), a form
/// body within the size limit, and a CSRF token bound to this visitor.
fn checked_form(
    req: &HttpRequest,
    ctx: &AppContext,
    visitor: &Visitor,
    body: &web::Bytes,
) -> Result<Form, FormRefusal> {
    if body.len() > ctx.settings.server.max_form_bytes.get() as usize {
        return Err(FormRefusal::TooLarge);
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
        return Err(FormRefusal::Expired);
    }
    Ok(form)
}
