//! The client_credentials grant (RFC 6749 §4.4) for service clients such as the ERP: scopes come
//! from the registry; a DPoP proof, when sent, binds the token to its key.

use super::{Committed, signing_failed};
use crate::oauth::client_auth::AuthenticatedClient;
use crate::oauth::minting::{Grantee, TokenResponse};
use crate::oauth::{OAuth, OAuthError, OAuthRequest, remember_jtis};
use crate::store::registry::ClientKind;
use crate::verifier::dpop::DpopProof;

pub async fn exchange(
    oauth: &OAuth,
    req: &OAuthRequest,
    client: AuthenticatedClient,
    proof: Option<DpopProof>,
) -> Result<TokenResponse, OAuthError> {
    if client.client.kind != ClientKind::Service {
        return Err(OAuthError::UnauthorizedClient);
    }
    let allowed: Vec<&str> = client
        .client
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let scope = match req.params.get("scope") {
        Some(requested) if !requested.trim().is_empty() => {
            let wanted: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
            if wanted.iter().any(|s| !allowed.contains(s)) {
                return Err(OAuthError::InvalidScope);
            }
            wanted.join(" ")
        }
        _ => allowed.join(" "),
    };
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope);
    }
    let now = oauth.now_ms();
    let minter = oauth.minter();
    let client_id = client.client.client_id.clone();
    let grantee = Grantee {
        sub: format!("client:{client_id}"),
        client_id,
        scope,
        jkt: proof.as_ref().map(|p| p.jkt.clone()),
        tenant_id: None,
        device: None,
        generation: None,
        family: None,
    };
    if client.assertion_jti.is_none() && proof.is_none() {
        // Secret authentication without DPoP: nothing to record, no transaction needed.
        let (jwt, claims) = minter.access_token(grantee, now)?;
        return Ok(minter.response(jwt, &claims, None));
    }
    oauth
        .store
        .write(move |tx| -> Committed<TokenResponse> {
            if let Err(refusal) = remember_jtis(tx, &client, proof.as_ref())? {
                return Ok(Err(refusal));
            }
            let (jwt, claims) = minter.access_token(grantee, now).map_err(signing_failed)?;
            Ok(Ok(minter.response(jwt, &claims, None)))
        })
        .await?
}
