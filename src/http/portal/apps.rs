//! Apps that sign people in with pairgate (OpenID Connect): `/apps` lists them and registers
//! one, `/apps/{client_id}/disable` ends one. A company's owners register apps for their own
//! company (always with a consent page); the manufacturer's staff register them for one company
//! or for every company, and may mark them first-party. Registering and disabling ask for a
//! step-up; a new app's secret is shown once, on the page that answers the registration.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::passkey_offer::capitalised;
use super::texts::Notice;
use super::{Member, MemberForm, Page, PortalError, Visitor, redirect, render, urlencode};
use crate::accounts::{AccountError, Role, Session};
use crate::app::AppContext;
use crate::http::get;
use crate::ids::TenantId;
use crate::oauth::apps::{self, AppError, AppKind, AppRegistration, Registrar};
use crate::oauth::clients::{ClientCredential, ClientError};
use crate::store::apps::AppRecord;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/apps", get().to(apps_get))
        .route("/apps", web::post().to(register_post))
        .route("/apps/{client_id}", get().to(app_get))
        .route("/apps/{client_id}/uris", web::post().to(uris_post))
        .route("/apps/{client_id}/secret", web::post().to(secret_post))
        .route("/apps/{client_id}/disable", web::post().to(disable_post));
}

/// Who the session's person registers apps as: an owner for their company, staff for all.
fn registrar(s: &Session) -> Result<Registrar, AccountError> {
    match (s.user.role, s.user.tenant_id) {
        (Role::Staff, _) => Ok(Registrar::Manufacturer),
        (Role::Owner, Some(tenant)) => Ok(Registrar::Company(tenant)),
        _ => Err(AccountError::Forbidden),
    }
}

/// The registrar of a change to apps: who the person is, once their session has a fresh
/// step-up.
fn stepped_up_registrar(ctx: &AppContext, s: &Session) -> Result<Registrar, AccountError> {
    let registrar = registrar(s)?;
    ctx.accounts.require_step_up(s)?;
    Ok(registrar)
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    page: Page,
    apps: Vec<AppRow>,
    /// Staff choose the company and first-party; owners register for their own company.
    staff: bool,
    /// (id, name, chosen) of every company, for staff.
    companies: Vec<(i64, String, bool)>,
    typed: Typed,
}

/// An app as the list shows it.
struct AppRow {
    client_id: String,
    name: String,
    active: bool,
    /// How it authenticates, in words.
    auth: &'static str,
    /// The company whose people it signs in, for staff ("Every company" for the manufacturer's).
    company: String,
    first_party: bool,
    redirect_uris: Vec<String>,
    created: String,
}

/// What was typed into the registration form, shown again when it was refused.
#[derive(Default)]
struct Typed {
    name: String,
    kind: String,
    jwks: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    first_party: bool,
}

impl Typed {
    fn kind_is(&self, kind: &str) -> bool {
        self.kind == kind || (self.kind.is_empty() && kind == "public")
    }
}

impl AppRow {
    fn new(a: AppRecord, company: String, page: &Page) -> Self {
        Self {
            auth: auth_words(&a),
            company,
            created: page.when(a.created_at),
            client_id: a.client_id,
            name: a.name,
            active: a.active,
            first_party: a.first_party,
            redirect_uris: a.redirect_uris,
        }
    }
}

fn auth_words(app: &AppRecord) -> &'static str {
    if app.public {
        "public: PKCE, no secret"
    } else if app.keys {
        "confidential: private_key_jwt"
    } else {
        "confidential: client secret"
    }
}

async fn apps_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let notice = (req.query_string() == "done=app-disabled").then_some(Notice::AppDisabled);
    let page = (notice.map(|n| n.to_string()), None);
    apps_page(&ctx, &v, &s, page, StatusCode::OK, Typed::default(), None).await
}

/// The apps page: the list, then the registration form (`typed` kept after a refusal).
async fn apps_page(
    ctx: &AppContext,
    v: &Visitor,
    s: &Session,
    (notice, error): (Option<String>, Option<String>),
    status: StatusCode,
    typed: Typed,
    chosen: Option<TenantId>,
) -> Result<HttpResponse, PortalError> {
    let registrar = registrar(s)?;
    let list = apps::apps_of(&ctx.store, registrar)
        .await
        .map_err(app_failure)?;
    let staff = registrar == Registrar::Manufacturer;
    let tenants = if staff {
        ctx.ceremony.staff_tenants(s).await?
    } else {
        Vec::new()
    };
    let mut page = v.page(ctx, "Apps");
    page.notice = notice;
    page.error = error;
    let apps = list
        .into_iter()
        .map(|a| {
            let company = match a.tenant_id {
                None => "Every company".to_owned(),
                Some(t) => tenants
                    .iter()
                    .find(|c| c.id == t)
                    .map_or_else(|| format!("Company {t}"), |c| c.name.clone()),
            };
            AppRow::new(a, company, &page)
        })
        .collect();
    let companies = tenants
        .into_iter()
        .map(|c| (c.id.0, c.name, Some(c.id) == chosen))
        .collect();
    let body = AppsPage {
        page,
        apps,
        staff,
        companies,
        typed,
    };
    Ok(render(v, status, &body))
}

#[derive(Template)]
#[template(path = "app_created.html")]
struct CreatedPage {
    page: Page,
    name: String,
    client_id: String,
    /// Shown once: only its hash is kept.
    secret: Option<String>,
    issuer: String,
    redirect_uris: Vec<String>,
}

/// One URI per line (or separated by spaces), blanks skipped.
fn uris(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// Registers an app from the form (after a step-up) and shows its client id, and its secret
/// once; a refused form comes back with what was typed and why.
async fn register_post(
    ctx: web::Data<AppContext>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let registrar = stepped_up_registrar(&ctx, &s)?;
    let staff = registrar == Registrar::Manufacturer;
    let typed = Typed {
        name: form.text("name"),
        kind: form.text("kind"),
        jwks: form.text("jwks"),
        redirect_uris: form.text("redirect_uris"),
        post_logout_redirect_uris: form.text("post_logout_redirect_uris"),
        first_party: staff && form.get("first_party") == Some("yes"),
    };
    let tenant_id = match registrar {
        Registrar::Company(tenant) => Some(tenant),
        Registrar::Manufacturer => match form.get("company").unwrap_or("") {
            "" => None,
            id => Some(
                id.parse::<i64>()
                    .map_err(|_| AccountError::NotFound)?
                    .into(),
            ),
        },
    };
    let kind = match typed.kind.as_str() {
        "secret" => Ok(AppKind::Confidential(ClientCredential::Secret)),
        "keys" => serde_json::from_str(&typed.jwks)
            .map(|set| AppKind::Confidential(ClientCredential::Jwks(set)))
            .map_err(|_| "The public keys must be a JWK Set: {\"keys\": [...]}.".to_owned()),
        _ => Ok(AppKind::Public),
    };
    let redirect_uris = uris(&typed.redirect_uris);
    let registration = kind.map(|kind| AppRegistration {
        name: typed.name.clone(),
        kind,
        tenant_id,
        first_party: typed.first_party,
        redirect_uris: redirect_uris.clone(),
        post_logout_redirect_uris: uris(&typed.post_logout_redirect_uris),
    });
    let outcome = match registration {
        Ok(r) => apps::register_app(&ctx.store, ctx.clock.now_ms(), &s.actor(), registrar, r)
            .await
            .map_err(refusal),
        Err(text) => Err(Ok(text)),
    };
    match outcome {
        Ok(created) => {
            let body = CreatedPage {
                page: v.page(&ctx, "App registered"),
                name: typed.name.trim().to_owned(),
                client_id: created.client_id,
                secret: created.secret,
                issuer: ctx.settings.server.public_url.as_str().to_owned(),
                redirect_uris,
            };
            Ok(render(&v, StatusCode::OK, &body))
        }
        Err(Ok(text)) => {
            let (page, status) = ((None, Some(text)), StatusCode::UNPROCESSABLE_ENTITY);
            apps_page(&ctx, &v, &s, page, status, typed, tenant_id).await
        }
        Err(Err(e)) => Err(e),
    }
}

/// A refusal shown beside the form (`Ok`: its words), or the portal's own error.
fn refusal(e: AppError) -> Result<String, PortalError> {
    match e {
        AppError::Client(ClientError::InvalidName | ClientError::InvalidKeys(_))
        | AppError::NoRedirectUri
        | AppError::TooManyRedirectUris
        | AppError::InvalidRedirectUri(_)
        | AppError::NoSecret
        | AppError::NoSuchTenant => Ok(format!("{}.", capitalised(&e.to_string()))),
        other => Err(app_failure(other)),
    }
}

/// What the portal's error mapping answers for an app refusal no form shows.
fn app_failure(e: AppError) -> PortalError {
    match e {
        AppError::NotPermitted => AccountError::Forbidden.into(),
        AppError::NotFound | AppError::NoSuchTenant => AccountError::NotFound.into(),
        AppError::Store(e) | AppError::Client(ClientError::Store(e)) => {
            AccountError::Store(e).into()
        }
        _ => AccountError::Internal("app registration").into(),
    }
}

/// Disables one of the apps the person manages (after a step-up).
async fn disable_post(
    ctx: web::Data<AppContext>,
    path: web::Path<String>,
    MemberForm(_, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let registrar = stepped_up_registrar(&ctx, &s)?;
    let now = ctx.clock.now_ms();
    apps::disable_app(&ctx.store, now, &s.actor(), registrar, &path)
        .await
        .map_err(app_failure)?;
    Ok(redirect("/apps?done=app-disabled"))
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage {
    page: Page,
    app: AppRow,
    /// The redirect and post-logout URIs, one per line, as the form shows them (or as typed).
    redirect_uris: String,
    post_logout_redirect_uris: String,
    /// The app authenticates with a secret, so it may be given a new one.
    has_secret: bool,
    /// A new secret, shown once.
    new_secret: Option<String>,
    issuer: String,
}

/// What an app's page shows beside the app: a line at the top, what was typed into the URI
/// form after a refusal, a new secret to show once.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    error: Option<String>,
    /// Redirect and post-logout URIs as typed.
    typed: Option<(String, String)>,
    new_secret: Option<String>,
}

/// One app's page: where it sends people back (changeable), and a new secret for an app that
/// uses one.
async fn app_get(
    req: HttpRequest,
    ctx: web::Data<AppContext>,
    path: web::Path<String>,
    Member(v, s): Member,
) -> Result<HttpResponse, PortalError> {
    let shown = Shown {
        notice: (req.query_string() == "done=uris").then(|| Notice::AppUrisSaved.to_string()),
        ..Shown::default()
    };
    app_page(&ctx, &v, &s, &path, StatusCode::OK, shown).await
}

async fn app_page(
    ctx: &AppContext,
    v: &Visitor,
    s: &Session,
    client_id: &str,
    status: StatusCode,
    shown: Shown,
) -> Result<HttpResponse, PortalError> {
    let registrar = registrar(s)?;
    let app = apps::app_of(&ctx.store, registrar, client_id)
        .await
        .map_err(app_failure)?;
    let mut page = v.page(ctx, &app.name);
    page.notice = shown.notice;
    page.error = shown.error;
    let (redirect_uris, post_logout_redirect_uris) = shown.typed.unwrap_or_else(|| {
        (
            app.redirect_uris.join("\n"),
            app.post_logout_redirect_uris.join("\n"),
        )
    });
    let body = AppPage {
        has_secret: !app.public && !app.keys,
        app: AppRow::new(app, String::new(), &page),
        page,
        redirect_uris,
        post_logout_redirect_uris,
        new_secret: shown.new_secret,
        issuer: ctx.settings.server.public_url.as_str().to_owned(),
    };
    Ok(render(v, status, &body))
}

/// Replaces where the app sends people back (after a step-up); a refused list comes back as
/// typed, with why.
async fn uris_post(
    ctx: web::Data<AppContext>,
    path: web::Path<String>,
    MemberForm(v, s, form): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let registrar = stepped_up_registrar(&ctx, &s)?;
    let typed = (
        form.text("redirect_uris"),
        form.text("post_logout_redirect_uris"),
    );
    let lists = (&uris(&typed.0)[..], &uris(&typed.1)[..]);
    let now = ctx.clock.now_ms();
    match apps::set_app_uris(&ctx.store, now, &s.actor(), registrar, &path, lists).await {
        Ok(()) => Ok(redirect(&format!("/apps/{}?done=uris", urlencode(&path)))),
        Err(e) => {
            let shown = Shown {
                error: Some(refusal(e)?),
                typed: Some(typed),
                ..Shown::default()
            };
            app_page(&ctx, &v, &s, &path, StatusCode::UNPROCESSABLE_ENTITY, shown).await
        }
    }
}

/// Gives the app a new secret (after a step-up) and shows it once on the app's page.
async fn secret_post(
    ctx: web::Data<AppContext>,
    path: web::Path<String>,
    MemberForm(v, s, _): MemberForm,
) -> Result<HttpResponse, PortalError> {
    let registrar = stepped_up_registrar(&ctx, &s)?;
    let now = ctx.clock.now_ms();
    let (status, shown) =
        match apps::new_app_secret(&ctx.store, now, &s.actor(), registrar, &path).await {
            Ok(secret) => (
                StatusCode::OK,
                Shown {
                    notice: Some(Notice::AppSecretReplaced.to_string()),
                    new_secret: Some(secret),
                    ..Shown::default()
                },
            ),
            Err(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Shown {
                    error: Some(refusal(e)?),
                    ..Shown::default()
                },
            ),
        };
    app_page(&ctx, &v, &s, &path, status, shown).await
}
