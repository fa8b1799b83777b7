//! Authorization server metadata (RFC 8414 §2), served at
//! `/.well-known/oauth-authorization-server`, and the OpenID Provider configuration (OpenID
//! Connect Discovery §3): the same document plus the OpenID fields, at
//! `/.well-known/openid-configuration`.

use serde_json::{Value, json};

use super::apps::APP_SCOPES;
use super::authorize::{ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT};
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
        let token_auth_methods = [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
            "none",
        ];
        let algs = JwsAlg::all();
        let mut scopes = vec![DEVICE_SCOPE, "erp"];
        scopes.extend(APP_SCOPES);
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": url(paths::AUTHORIZE),
            "token_endpoint": url(paths::TOKEN),
            "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
            "jwks_uri": url(paths::JWKS),
            "introspection_endpoint": url(paths::INTROSPECT),
            "revocation_endpoint": url(paths::REVOKE),
            "grant_types_supported": [
                "authorization_code",
                DEVICE_CODE_GRANT,
                "refresh_token",
                "client_credentials",
            ],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": scopes,
            "token_endpoint_auth_methods_supported": token_auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": token_auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            "dpop_signing_alg_values_supported": algs,
            "service_documentation": url("/"),
        })
    }

    /// The RFC 8414 document plus what OpenID Connect Discovery §3 adds.
    pub fn openid_configuration(&self) -> Value {
        let mut doc = self.metadata();
        let extra = json!({
            "userinfo_endpoint": self.url(paths::USERINFO),
            "end_session_endpoint": self.url(paths::LOGOUT),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": JwsAlg::all(),
            "acr_values_supported": [ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT],
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp",
                "tenant_id", "roles", "email", "email_verified", "name",
            ],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "prompt_values_supported": ["none", "login", "consent"],
        });
        if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
            doc.extend(extra);
        }
        doc
    }
}
