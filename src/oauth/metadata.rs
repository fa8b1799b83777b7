//! Authorization server metadata (RFC 8414 §2), served at
//! `/.well-known/oauth-authorization-server`.

use serde_json::{Value, json};

use super::token::DEVICE_CODE_GRANT;
use super::tokens::DEVICE_SCOPE;
use super::{OAuth, paths};
use crate::crypto::jose::JwsAlg;

impl OAuth {
    pub fn metadata(&self) -> Value {
        let url = |p: &str| self.url(p);
        let auth_methods = [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
        ];
        let algs = JwsAlg::all();
        json!({
            "issuer": self.issuer,
            "token_endpoint": url(paths::TOKEN),
            "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
            "jwks_uri": url(paths::JWKS),
            "introspection_endpoint": url(paths::INTROSPECT),
            "revocation_endpoint": url(paths::REVOKE),
            "grant_types_supported": [DEVICE_CODE_GRANT, "refresh_token", "client_credentials"],
            // RFC 8414 requires this member. pairgate has no authorization endpoint, so the only
            // honest value is "none" (no credentials are returned from one).
            "response_types_supported": ["none"],
            "scopes_supported": [DEVICE_SCOPE, "erp"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            "dpop_signing_alg_values_supported": algs,
            "service_documentation": url("/"),
        })
    }
}
