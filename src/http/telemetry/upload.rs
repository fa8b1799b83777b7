//! `POST /api/v1/telemetry`: a device's batch of readings. The body is read here (JSON only,
//! at most `server.max_json_bytes`); the token, the proof and the batch are the domain's.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ErrorBody, TelemetryHttpError, no_store};
use crate::app::AppContext;
use crate::http::credentials::{self, CredentialError};
use crate::telemetry::{TelemetryError, Upload};
use crate::verifier::VerifyError;

/// The answer to a stored upload.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TelemetryResult)]
pub struct UploadAnswer {
    /// Readings stored by this upload.
    pub accepted: usize,
    /// Readings whose id this device had already uploaded.
    pub duplicates: usize,
}

/// Upload a batch of readings (devices).
///
/// For paired devices only: a DPoP-bound pairgate access token with scope `telemetry:write`
/// (`Authorization: DPoP <token>` and a `DPoP` proof), for the device and tenant named in the
/// token. Each reading id is unique per device, so a retried batch stores nothing twice; the
/// answer counts accepted readings and duplicates. Refusals follow RFC 6750 and RFC 9449 with
/// `WWW-Authenticate`.
#[utoipa::path(post, path = "/api/v1/telemetry", operation_id = "telemetryPost",
    tag = "telemetry", security(("dpop" = [])),
    request_body = crate::telemetry::batch::BatchIn,
    responses(
        (status = 200, description = "Stored", body = UploadAnswer),
        (status = 400, body = ErrorBody, description = "invalid_request: a malformed batch (size, \
            ids, names, metric count, timestamps), or credentials sent more than one way (two \
            Authorization lines, an access_token in the query or a form body); do not retry it"),
        (status = 401, body = ErrorBody, description = "No valid DPoP-bound token and proof, or \
            the device was revoked, moved or unpaired: see WWW-Authenticate (DPoP \
            error=\"invalid_token\" | \"invalid_dpop_proof\" | \"use_dpop_nonce\"). \
            use_dpop_nonce (the proof's iat is out of the window, or its nonce is not current) \
            comes with a DPoP-Nonce to put in the next proof and the server's time in Date, from \
            which a device whose clock is wrong sets its own",
            headers(("WWW-Authenticate" = String), ("DPoP-Nonce" = String))),
        (status = 403, body = ErrorBody,
            description = "insufficient_scope: the token lacks the telemetry:write scope"),
        (status = 413, body = ErrorBody, description = "The body is over server.max_json_bytes"),
        (status = 415, body = ErrorBody, description = "The body is not application/json"),
        (status = 503, body = ErrorBody, description = "Retry later (the database is away, or \
            too many uploads are queued)", headers(("Retry-After" = u32))),
    ))]
pub async fn telemetry_post(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<AppContext>,
) -> Result<HttpResponse, TelemetryHttpError> {
    let body = read_json_body(&req, payload, &ctx).await?;
    let (authorization, dpop) = credentials(&req)?;
    let upload = Upload {
        authorization,
        dpop: &dpop,
        body: &body,
    };
    let outcome = ctx.telemetry.upload(upload).await?;
    let mut res = no_store(StatusCode::OK);
    if let Some(nonce) = ctx.telemetry.dpop_nonce() {
        res.insert_header(("DPoP-Nonce", nonce));
    }
    Ok(res.json(UploadAnswer {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
    }))
}

/// The `Authorization` header (one, and the only way the token came) and every `DPoP` header.
fn credentials(req: &HttpRequest) -> Result<(Option<&str>, Vec<String>), TelemetryError> {
    let read = credentials::read(req).map_err(refusal)?;
    Ok((read.authorization, read.dpop))
}

fn refusal(err: CredentialError) -> TelemetryError {
    TelemetryError::Auth(match err {
        CredentialError::InvalidRequest(d) => VerifyError::InvalidRequest(d),
        CredentialError::InvalidDpopProof(d) => VerifyError::InvalidDpopProof(d),
    })
}

/// The JSON body. A form body is read too, only to refuse a token in it as RFC 6750 §3.1 asks
/// (400) before its media type (415).
async fn read_json_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    ctx: &AppContext,
) -> Result<web::BytesMut, TelemetryError> {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    let is_form = credentials::is_form(req);
    if !is_json && !is_form {
        return Err(TelemetryError::UnsupportedMediaType);
    }
    let limit = ctx.settings.server.max_json_bytes.get() as usize;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(TelemetryError::TooLarge);
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            TelemetryError::InvalidBatch(crate::telemetry::BatchProblem::body(
                "the request body could not be read",
            ))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(TelemetryError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if is_form {
        return Err(credentials::token_in_form(req, &body)
            .map_or(TelemetryError::UnsupportedMediaType, refusal));
    }
    Ok(body)
}
