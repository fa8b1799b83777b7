//! The ERP surface, `/api/erp/v1/*`: JSON in and out, errors as `application/problem+json`.
//! Every handler takes a `Caller` (a pairgate access token with scope `erp`, Bearer or DPoP)
//! or an `AuthorizedJson`, calls the `Erp` domain service, and returns `ErpHttpError` with
//! `?`.

mod problem;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder, dev, web};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::credentials;
use super::errors::{Extracting, context};
use crate::app::AppContext;
use crate::erp::SCOPE;
use crate::verifier::ResourceRequest;
pub use problem::{ErpHttpError, PROBLEM_JSON, Problem, TYPE_PREFIX};

/// The ERP API's routes as (method, path template); the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/erp/v1/devices/{serial}"),
    ("PUT", "/api/erp/v1/sales/{sale_id}"),
    ("DELETE", "/api/erp/v1/sales/{sale_id}"),
    ("PUT", "/api/erp/v1/customers/{customer_number}"),
    ("GET", "/api/erp/v1/events"),
    ("POST", "/api/erp/v1/pairings/{serial}/confirm"),
    ("POST", "/api/erp/v1/pairings/{serial}/reject"),
];

/// The answer for any other method on a resource that allows only `allow`: 405 with `Allow`.
pub(crate) fn only(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Problem::method_not_allowed(allow).response() })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/erp/v1")
            .service(
                web::resource("/devices/{serial}")
                    .route(web::put().to(devices_put))
                    .default_service(only("PUT")),
            )
            .service(
                web::resource("/sales/{sale_id}")
                    .route(web::put().to(sales_put))
                    .route(web::delete().to(sales_delete))
                    .default_service(only("PUT, DELETE")),
            )
            .service(
                web::resource("/customers/{customer_number}")
                    .route(web::put().to(customers_put))
                    .default_service(only("PUT")),
            )
            .service(
                web::resource("/events")
                    .route(super::get().to(events_get))
                    .default_service(only("GET, HEAD")),
            )
            .service(
                web::resource("/pairings/{serial}/{verdict}")
                    .route(web::post().to(pairing_verdict_post))
                    .default_service(only("POST")),
            )
            .default_service(web::to(|| async { Problem::not_found().response() })),
    );
}

/// The extractor of every ERP request: who called, `client:<client_id>` (the audit actor), once
/// the access token (one, in the `Authorization` header, and its DPoP proof) and the `erp` scope
/// are checked.
struct Caller {
    actor: String,
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, _: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(authorize(&req, context(&req)?).await?) })
    }
}

async fn authorize(req: &HttpRequest, ctx: &AppContext) -> Result<Caller, ErpHttpError> {
    let credentials = credentials::read(req)?;
    let url = ctx.oauth.url(req.path());
    let authorized = ctx
        .oauth
        .authorize_resource(&ResourceRequest {
            authorization: credentials.authorization,
            dpop: &credentials.dpop,
            method: req.method().as_str(),
            url: &url,
        })
        .await?;
    if !authorized.claims.scope.split(' ').any(|s| s == SCOPE) {
        return Err(problem::insufficient_scope(authorized.scheme, SCOPE).into());
    }
    Ok(Caller {
        actor: format!("client:{}", authorized.claims.client_id),
    })
}

/// The extractor of a request with a JSON body: the [`Caller`], then the body. A form body is no
/// JSON, but it is read first to refuse a token in it (RFC 6750 §2.2, §3.1) before anything else.
struct AuthorizedJson {
    caller: Caller,
    body: Value,
}

impl FromRequest for AuthorizedJson {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move { Ok(authorized_json(&req, payload, context(&req)?).await?) })
    }
}

async fn authorized_json(
    req: &HttpRequest,
    payload: dev::Payload,
    ctx: &AppContext,
) -> Result<AuthorizedJson, ErpHttpError> {
    if credentials::is_form(req) {
        let body = read_body(req, payload, ctx).await?;
        if let Some(refusal) = credentials::token_in_form(req, &body) {
            return Err(refusal.into());
        }
        authorize(req, ctx).await?;
        return Err(unsupported_media_type().into());
    }
    let caller = authorize(req, ctx).await?;
    let body = read_json(req, payload, ctx).await?;
    Ok(AuthorizedJson { caller, body })
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        "send the body as application/json",
    )
}

/// Reads a JSON body of at most `server.max_json_bytes`.
async fn read_json(
    req: &HttpRequest,
    payload: dev::Payload,
    ctx: &AppContext,
) -> Result<Value, Problem> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let is_json = media.as_deref().is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    });
    if !is_json {
        return Err(unsupported_media_type());
    }
    let body = read_body(req, payload, ctx).await?;
    serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "Malformed JSON",
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// Reads a body of at most `server.max_json_bytes`.
async fn read_body(
    req: &HttpRequest,
    mut payload: dev::Payload,
    ctx: &AppContext,
) -> Result<web::BytesMut, Problem> {
    let limit = ctx.settings.server.max_json_bytes.get() as usize;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the body may have {limit} bytes at most"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed body",
                "the request body could not be read",
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    HttpResponseBuilder::new(status)
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(body)
}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

async fn devices_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let serial = req.match_info().query("serial");
    let outcome = ctx
        .erp
        .put_device(&input.caller.actor, serial, &input.body)
        .await?;
    let created = outcome.change == crate::erp::devices::DeviceChange::Created;
    Ok(json(created_or_ok(created), &outcome))
}

async fn sales_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let sale_id = req.match_info().query("sale_id");
    let outcome = ctx
        .erp
        .put_sale(&input.caller.actor, sale_id, &input.body)
        .await?;
    Ok(json(created_or_ok(outcome.created), &outcome))
}

async fn sales_delete(
    req: HttpRequest,
    caller: Caller,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let sale_id = req.match_info().query("sale_id");
    let outcome = ctx.erp.cancel_sale(&caller.actor, sale_id).await?;
    Ok(json(StatusCode::OK, &outcome))
}

async fn customers_put(
    req: HttpRequest,
    input: AuthorizedJson,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let number = req.match_info().query("customer_number");
    let outcome = ctx
        .erp
        .put_customer(&input.caller.actor, number, &input.body)
        .await?;
    Ok(json(created_or_ok(outcome.created), &outcome))
}

async fn events_get(
    req: HttpRequest,
    _: Caller,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, ErpHttpError> {
    let mut after = None;
    let mut limit = None;
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match key.as_ref() {
            "after" => after = Some(value.into_owned()),
            "limit" => limit = Some(value.into_owned()),
            _ => {}
        }
    }
    let page = ctx.erp.events(after.as_deref(), limit.as_deref()).await?;
    Ok(json(StatusCode::OK, &page))
}

/// `POST /pairings/{serial}/confirm|reject`: the ERP's verdict on a provisional pairing (a device
/// sold to a distributor and approved by a customer). Rejecting unpairs the device and revokes its
/// tokens at once.
async fn pairing_verdict_post(
    req: HttpRequest,
    caller: Caller,
    ctx: web::Data<AppContext>,
) -> HttpResponse {
    let serial = req.match_info().query("serial").to_owned();
    let result = match req.match_info().query("verdict") {
        "confirm" => ctx
            .ceremony
            .erp_confirm(&serial, &caller.actor)
            .await
            .map(|ok| (ok, "active")),
        "reject" => ctx
            .ceremony
            .erp_reject(&serial, &caller.actor)
            .await
            .map(|ok| (ok, "ended")),
        _ => return Problem::not_found().response(),
    };
    match result {
        Ok((true, status)) => HttpResponse::Ok()
            .insert_header(header::CacheControl(vec![header::CacheDirective::NoStore]))
            .json(serde_json::json!({ "serial": serial, "pairing": status })),
        Ok((false, _)) => Problem::new(
            StatusCode::CONFLICT,
            "not-provisional",
            "No provisional pairing",
            "this device has no provisional pairing to confirm or reject",
        )
        .response(),
        Err(e) => match crate::store::StoreFailure::store_error(&e) {
            Some(store_error) => Problem::store(&req, &ctx, store_error).response(),
            None => {
                tracing::error!(error = %e, "pairing verdict failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the error has been logged",
                )
                .response()
            }
        },
    }
}
