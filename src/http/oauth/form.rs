//! Reading an OAuth request off the wire (RFC 6749 §3.2, §2.3.1): a form body only, no parameter
//! twice, empty parameters treated as absent, unknown ones ignored; HTTP Basic credentials
//! decoded from the one `Authorization` header (two are refused); every `DPoP` header kept so the
//! domain can refuse more than one.

use std::collections::HashMap;

use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, dev, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;

use super::OAuthHttpError;
use crate::http::errors::{Extracting, context};
use crate::oauth::{ClientCredentials, OAuthError, OAuthRequest, Params};

/// The extractor for the form of the token, device authorization, introspection and revocation
/// endpoints: the body (at most `server.max_form_bytes`) and the headers, read into an
/// [`OAuthRequest`]; a refusal is an [`OAuthHttpError`].
pub struct OAuthForm(pub OAuthRequest);

impl FromRequest for OAuthForm {
    type Error = actix_web::Error;
    type Future = Extracting<Self>;

    fn from_request(req: &HttpRequest, payload: &mut dev::Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let limit = context(&req)?.settings.server.max_form_bytes.get() as usize;
            Ok(Self(read(&req, payload, limit).await?))
        })
    }
}

/// Reads the body (at most `limit` bytes) and the headers into an [`OAuthRequest`].
async fn read(
    req: &HttpRequest,
    mut payload: dev::Payload,
    limit: usize,
) -> Result<OAuthRequest, OAuthHttpError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(OAuthHttpError::TooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| OAuthError::InvalidRequest("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(OAuthHttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let mut params = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(&body) {
        if params.contains_key(key.as_ref()) {
            return Err(OAuthError::InvalidRequest("a parameter was sent more than once").into());
        }
        params.insert(key.into_owned(), value.into_owned());
    }
    params.retain(|_, v| !v.is_empty());

    let credentials = ClientCredentials {
        basic: basic_credentials(req)?,
        client_id: params.get("client_id").cloned(),
        client_secret: params.get("client_secret").cloned(),
        assertion_type: params.get("client_assertion_type").cloned(),
        assertion: params.get("client_assertion").cloned(),
    };
    let dpop = req
        .headers()
        .get_all("dpop")
        .map(|v| v.to_str().map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| OAuthError::InvalidDpopProof("the DPoP header is not valid text"))?;
    Ok(OAuthRequest {
        params: Params::new(params),
        credentials,
        dpop,
        client_ip: crate::http::client_addr::client_ip(req),
    })
}

/// `Authorization: Basic` (RFC 6749 §2.3.1: id and secret are form-encoded before base64).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let mut lines = req.headers().get_all(AUTHORIZATION);
    let Some(value) = lines.next() else {
        return Ok(None);
    };
    // RFC 6749 §2.3: one authentication method, so one set of credentials, never "the first".
    if lines.next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "send one Authorization header, not several",
        ));
    }
    let bad = || OAuthError::InvalidClient {
        reason: "malformed Basic credentials",
        basic: true,
    };
    let text = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidRequest(
            "only Basic authorization is accepted here",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Result<String, OAuthError> {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}
