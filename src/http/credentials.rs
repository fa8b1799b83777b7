//! What the surfaces share about a request's credentials. Reading them: the one access token of
//! a request to a protected resource (telemetry, ERP) comes in the `Authorization` header, once;
//! two header lines, or a token also (or instead) in the URL query or a form body, are
//! `invalid_request` (RFC 6750 §2, §3.1), never "the first one wins". And answering
//! `use_dpop_nonce` (RFC 9449 §8, §9): a fresh `DPoP-Nonce`, and a `Date` from pairgate's own
//! clock, the one that judged the proof's `iat`, from which a device with a wrong clock sets its
//! own.

use std::time::SystemTime;

use actix_web::HttpRequest;
use actix_web::http::header::{self, HttpDate};

use crate::app::AppContext;

/// A request's credentials could not be read. Descriptions are fixed and safe to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// RFC 6750 §3.1 `invalid_request`.
    InvalidRequest(&'static str),
    /// RFC 9449 §7.1 `invalid_dpop_proof`.
    InvalidDpopProof(&'static str),
}

/// The credentials of a request to a protected resource.
#[derive(Debug)]
pub struct Credentials<'a> {
    /// The `Authorization` header, if there is one.
    pub authorization: Option<&'a str>,
    /// Every `DPoP` header value (the proof check refuses more than one).
    pub dpop: Vec<String>,
}

const ONE_WAY: &str = "send the access token one way only, in the Authorization header";
const HEADER_ONLY: &str = "send the access token in the Authorization header";

/// Reads the `Authorization` and `DPoP` headers, refusing a second `Authorization` line and an
/// `access_token` in the query (RFC 6750 §2.3, a way pairgate does not take: tokens in URLs end
/// up in logs).
pub fn read(req: &HttpRequest) -> Result<Credentials<'_>, CredentialError> {
    let mut lines = req.headers().get_all(header::AUTHORIZATION);
    let authorization = match (lines.next(), lines.next()) {
        (None, _) => None,
        (Some(line), None) => Some(line.to_str().map_err(|_| {
            CredentialError::InvalidRequest("the Authorization header is not valid text")
        })?),
        (Some(_), Some(_)) => {
            return Err(CredentialError::InvalidRequest(
                "send one Authorization header, not several",
            ));
        }
    };
    let query = req.query_string();
    if !query.is_empty()
        && url::form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == "access_token")
    {
        return Err(CredentialError::InvalidRequest(
            if authorization.is_some() {
                ONE_WAY
            } else {
                HEADER_ONLY
            },
        ));
    }
    let dpop = req
        .headers()
        .get_all("dpop")
        .map(|v| v.to_str().map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CredentialError::InvalidDpopProof("the DPoP header is not valid text"))?;
    Ok(Credentials {
        authorization,
        dpop,
    })
}

/// Checks the request's access token (and DPoP proof) as pairgate's APIs do: read once from
/// the headers, then `OAuth::authorize_resource` with this request's method and public URL.
pub async fn authorize<E>(
    req: &HttpRequest,
    ctx: &AppContext,
) -> Result<crate::oauth::resource::Authorized, E>
where
    E: From<CredentialError> + From<crate::oauth::resource::ResourceError>,
{
    let credentials = read(req)?;
    let url = ctx.oauth.url(req.path());
    Ok(ctx
        .oauth
        .authorize_resource(&crate::verifier::ResourceRequest {
            authorization: credentials.authorization,
            dpop: &credentials.dpop,
            method: req.method().as_str(),
            url: &url,
        })
        .await?)
}

/// Whether the request's body is a form (`application/x-www-form-urlencoded`), the one kind of
/// body that can carry an access token (RFC 6750 §2.2).
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The refusal for a form body that carries an `access_token`, if `body` (the request's whole
/// form body) does.
pub fn token_in_form(req: &HttpRequest, body: &[u8]) -> Option<CredentialError> {
    url::form_urlencoded::parse(body)
        .any(|(key, _)| key == "access_token")
        .then(|| {
            CredentialError::InvalidRequest(if req.headers().contains_key(header::AUTHORIZATION) {
                ONE_WAY
            } else {
                HEADER_ONLY
            })
        })
}

/// The `Date` of a `use_dpop_nonce` answer: pairgate's clock (the injected one), not the
/// server's own stamp, so that the time a device learns is the time its proof was judged by.
pub fn date(ctx: &AppContext) -> (header::HeaderName, String) {
    let now = SystemTime::from(ctx.clock.now());
    (header::DATE, HttpDate::from(now).to_string())
}
