//! A person's access token, as an app presents it (the code flow's tokens: `Bearer`, or `DPoP`
//! with a proof) to UserInfo and the user-scoped telemetry reads. Refusals are JSON bodies
//! with RFC 6750 §3 / RFC 9449 §7.1 challenges, mapped here once for both surfaces.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::credentials::{self, CredentialError};
use crate::app::AppContext;
use crate::ids::UserId;
use crate::oauth::id_token::user_of;
use crate::oauth::resource::{Authorized, ResourceError, TokenScheme};

/// Why a person's token was refused.
#[derive(Debug)]
pub enum UserTokenError {
    Resource(ResourceError),
    /// A valid token without `scope`, or not a person's (RFC 6750 §3.1).
    InsufficientScope(TokenScheme, &'static str),
}

impl From<ResourceError> for UserTokenError {
    fn from(e: ResourceError) -> Self {
        Self::Resource(e)
    }
}

impl From<CredentialError> for UserTokenError {
    fn from(e: CredentialError) -> Self {
        Self::Resource(match e {
            CredentialError::InvalidRequest(d) => ResourceError::InvalidRequest(d),
            CredentialError::InvalidDpopProof(d) => ResourceError::InvalidDpopProof(d),
        })
    }
}

/// The request's token, checked, with `scope`, issued for a person: the token and the person.
pub async fn authorize(
    req: &HttpRequest,
    ctx: &AppContext,
    scope: &'static str,
) -> Result<(Authorized, UserId), UserTokenError> {
    let authorized = credentials::authorize::<UserTokenError>(req, ctx).await?;
    let has_scope = authorized.claims.scope.split(' ').any(|s| s == scope);
    match user_of(&authorized.claims.sub).filter(|_| has_scope) {
        Some(user) => Ok((authorized, user)),
        None => Err(UserTokenError::InsufficientScope(authorized.scheme, scope)),
    }
}

fn challenge(scheme: TokenScheme, error: Option<&str>, description: Option<&str>) -> String {
    let mut value = match scheme {
        TokenScheme::Bearer => "Bearer realm=\"pairgate\"".to_owned(),
        TokenScheme::Dpop => "DPoP realm=\"pairgate\", algs=\"ES256 EdDSA\"".to_owned(),
    };
    if let Some(e) = error {
        value.push_str(&format!(", error=\"{e}\""));
    }
    if let Some(d) = description {
        value.push_str(&format!(", error_description=\"{d}\""));
    }
    value
}

/// A refusal's status, wire code, description and challenges.
type Classified = (StatusCode, &'static str, Option<String>, Vec<String>);

fn classify(err: &UserTokenError) -> Classified {
    match err {
        UserTokenError::Resource(ResourceError::Missing) => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Some("send the person's access token: Authorization: Bearer or DPoP".into()),
            vec![
                challenge(TokenScheme::Bearer, None, None),
                challenge(TokenScheme::Dpop, None, None),
            ],
        ),
        UserTokenError::Resource(ResourceError::InvalidRequest(d)) => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some((*d).into()),
            vec![challenge(
                TokenScheme::Bearer,
                Some("invalid_request"),
                Some(d),
            )],
        ),
        UserTokenError::Resource(ResourceError::InvalidToken(scheme, d)) => (
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Some((*d).into()),
            vec![challenge(*scheme, Some("invalid_token"), Some(d))],
        ),
        UserTokenError::Resource(ResourceError::InvalidDpopProof(d)) => (
            StatusCode::UNAUTHORIZED,
            "invalid_dpop_proof",
            Some((*d).into()),
            vec![challenge(
                TokenScheme::Dpop,
                Some("invalid_dpop_proof"),
                Some(d),
            )],
        ),
        UserTokenError::Resource(ResourceError::UseDpopNonce) => (
            StatusCode::UNAUTHORIZED,
            "use_dpop_nonce",
            Some("a DPoP nonce is required; use the DPoP-Nonce header".into()),
            vec![challenge(TokenScheme::Dpop, Some("use_dpop_nonce"), None)],
        ),
        UserTokenError::Resource(ResourceError::Store(e)) => (
            if e.is_unavailable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            },
            if e.is_unavailable() {
                "temporarily_unavailable"
            } else {
                "server_error"
            },
            None,
            Vec::new(),
        ),
        UserTokenError::InsufficientScope(scheme, scope) => {
            let d = "the access token is not a person's with the scope this needs";
            let mut c = challenge(*scheme, Some("insufficient_scope"), Some(d));
            c.push_str(&format!(", scope=\"{scope}\""));
            (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                Some(d.into()),
                vec![c],
            )
        }
    }
}

/// The one mapping of a refused person's token to HTTP.
pub fn refusal(ctx: &AppContext, err: &UserTokenError) -> HttpResponse {
    let (status, code, description, challenges) = classify(err);
    if let UserTokenError::Resource(ResourceError::Store(e)) = err {
        tracing::warn!(error = %e, "a person's token could not be checked");
    }
    let mut res = HttpResponse::build(status);
    res.insert_header(CacheControl(vec![CacheDirective::NoStore]));
    for c in challenges {
        res.append_header((header::WWW_AUTHENTICATE, c));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header((
            header::RETRY_AFTER,
            ctx.settings.server.retry_after_secs.to_string(),
        ));
    }
    if matches!(err, UserTokenError::Resource(ResourceError::UseDpopNonce)) {
        res.insert_header(("DPoP-Nonce", ctx.oauth.fresh_dpop_nonce()));
        res.insert_header(credentials::date(ctx));
    }
    res.json(json!({ "error": code, "error_description": description }))
}
