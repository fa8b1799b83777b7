//! The OAuth surface in the OpenAPI document: the forms the endpoints read, the answers the
//! domain builds as JSON values (introspection, metadata, the key set), the refusals, and
//! [`OAuthApi`], which gathers the operations described on the handlers of `super`.
#![expect(
    dead_code,
    reason = "the forms and answers are described, never built: `OAuthForm` reads the form, and \
              the domain builds these answers as JSON values"
)]

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, OpenApi, ToSchema};

use super::ErrorBody;

/// The operations of `/oauth/*` and the RFC 8414 metadata, with the schemas they use.
#[derive(OpenApi)]
#[openapi(
    paths(
        super::device_authorization_post,
        super::token_post,
        super::introspect_post,
        super::revoke_post,
        super::jwks_get,
        super::metadata_get,
        super::openid_configuration_get,
        super::userinfo_get,
        super::userinfo_post,
    ),
    components(schemas(ErrorBody)),
    tags((name = "oauth", description = "The authorization server: the device flow (RFC 8628) \
        with DPoP-bound tokens (RFC 9449), client_credentials for service clients, refresh, \
        introspection (RFC 7662), revocation (RFC 7009), the signing keys and the metadata \
        (RFC 8414)"))
)]
pub struct OAuthApi;

/// The DPoP proof header (RFC 9449 §4).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct Dpop {
    /// A DPoP proof for this request; the access token is then bound to its key.
    #[serde(rename = "DPoP")]
    #[param(nullable = false)]
    dpop: Option<String>,
}

/// How a client authenticates in a form (RFC 6749 §2.3.1, RFC 7523 §2.2): `client_id` with
/// `client_secret` (client_secret_post), or a signed `client_assertion` (private_key_jwt);
/// client_secret_basic sends the secret in `Authorization: Basic` instead.
#[derive(Serialize, ToSchema)]
pub struct ClientAuthentication {
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` with `client_assertion`.
    #[schema(nullable = false)]
    client_assertion_type: Option<String>,
    /// A JWT signed by the client's registered key (for a device: its factory key).
    #[schema(nullable = false)]
    client_assertion: Option<String>,
}

/// The form of a device authorization request (RFC 8628 §3.1), by a registered device.
#[derive(Serialize, ToSchema)]
pub struct DeviceAuthorizationForm {
    /// At most `telemetry:write`, the default.
    #[schema(nullable = false)]
    scope: Option<String>,
    /// The SHA-256 thumbprint of the key the tokens will be bound to (RFC 9449 §10), if no
    /// DPoP proof is sent along.
    #[schema(nullable = false)]
    dpop_jkt: Option<String>,
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// The form of a token request (RFC 6749 §3.2).
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    /// `urn:ietf:params:oauth:grant-type:device_code`, `refresh_token` or
    /// `client_credentials`.
    grant_type: String,
    /// With the device_code grant.
    #[schema(nullable = false)]
    device_code: Option<String>,
    /// With the refresh_token grant.
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    /// With client_credentials: a subset of the client's scopes (default all of them).
    #[schema(nullable = false)]
    scope: Option<String>,
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// The form of an introspection or revocation request (RFC 7662 §2.1, RFC 7009 §2.1), by a
/// service client.
#[derive(Serialize, ToSchema)]
pub struct TokenQuestion {
    /// The access or refresh token.
    token: String,
    /// A hint only: the token's shape decides.
    #[schema(nullable = false)]
    token_type_hint: Option<String>,
    #[serde(flatten)]
    client: ClientAuthentication,
}

/// What introspection says of a token (RFC 7662 §2.2): `{"active": false}` when it is not an
/// active token the caller may see.
#[derive(Serialize, ToSchema)]
pub struct Introspection {
    active: bool,
    /// `Bearer` or `DPoP` for an access token, `refresh_token` for a refresh token.
    #[schema(nullable = false)]
    token_type: Option<String>,
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    sub: Option<String>,
    #[schema(nullable = false)]
    scope: Option<String>,
    #[schema(nullable = false)]
    iss: Option<String>,
    #[schema(nullable = false)]
    aud: Option<String>,
    #[schema(nullable = false)]
    exp: Option<i64>,
    #[schema(nullable = false)]
    iat: Option<i64>,
    #[schema(nullable = false)]
    jti: Option<String>,
    /// The key a DPoP-bound token is bound to.
    #[schema(nullable = false)]
    cnf: Option<Confirmation>,
    #[schema(nullable = false)]
    tenant_id: Option<i64>,
    /// The serial number of the device the token was issued to.
    #[schema(nullable = false)]
    device: Option<String>,
}

/// The key confirmation of a DPoP-bound token (RFC 9449 §6).
#[derive(Serialize, ToSchema)]
pub struct Confirmation {
    /// The SHA-256 thumbprint of the key (RFC 7638).
    jkt: String,
}

/// The public keys that sign access tokens (RFC 7517 §5).
#[derive(Serialize, ToSchema)]
pub struct JwkSet {
    keys: Vec<PublishedKey>,
}

/// A public signing key (RFC 7517 §4).
#[derive(Serialize, ToSchema)]
pub struct PublishedKey {
    /// `EC`, `RSA` or `OKP`.
    kty: String,
    kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    use_: String,
    /// The JWS algorithm the key signs with.
    alg: String,
    /// The key's public members: `crv`, `x` (and `y`) for EC and OKP keys, `n` and `e` for RSA.
    #[schema(nullable = false)]
    crv: Option<String>,
    #[schema(nullable = false)]
    x: Option<String>,
    #[schema(nullable = false)]
    y: Option<String>,
    #[schema(nullable = false)]
    n: Option<String>,
    #[schema(nullable = false)]
    e: Option<String>,
}

/// Authorization server metadata (RFC 8414 §2).
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    issuer: String,
    token_endpoint: String,
    device_authorization_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    grant_types_supported: Vec<String>,
    /// The code flow's authorization page (OpenID Connect sign-in for apps).
    authorization_endpoint: String,
    /// `code`.
    response_types_supported: Vec<String>,
    response_modes_supported: Vec<String>,
    /// `S256`.
    code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the authorization response carries `iss`.
    authorization_response_iss_parameter_supported: bool,
    scopes_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    dpop_signing_alg_values_supported: Vec<String>,
    service_documentation: String,
}

/// The refusals every endpoint that reads a form may answer (RFC 6749 §5.2, RFC 8628 §3.5,
/// RFC 9449 §7–8). Each carries `Cache-Control: no-store`, and a `DPoP-Nonce` when nonces are
/// required.
#[derive(IntoResponses)]
pub enum Refusals {
    /// `invalid_request`, `invalid_client` (assertion), `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `authorization_pending`, `slow_down`,
    /// `access_denied`, `expired_token`, `invalid_dpop_proof`, or `use_dpop_nonce` (with a fresh
    /// `DPoP-Nonce` and the server's time in `Date`).
    #[response(
        status = 400,
        headers(("DPoP-Nonce" = String, description = "Put it in the next DPoP proof"))
    )]
    BadRequest(ErrorBody),
    /// `invalid_client`: client_secret_basic credentials were refused.
    #[response(
        status = 401,
        headers(("WWW-Authenticate" = String, description = "A Basic challenge"))
    )]
    Unauthorized(ErrorBody),
    /// `invalid_request`: the body is over `server.max_form_bytes`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `temporarily_unavailable`: the database cannot be reached.
    #[response(
        status = 503,
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
    )]
    Unavailable(ErrorBody),
}

/// `slow_down`: too many pairing requests from this device or address (RFC 6585).
#[derive(IntoResponses)]
#[response(
    status = 429,
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
)]
pub struct RateLimited(ErrorBody);

/// `insufficient_scope`: the service client lacks the `introspect` scope.
#[derive(IntoResponses)]
#[response(status = 403)]
pub struct Forbidden(ErrorBody);

/// OpenID Provider configuration (OpenID Connect Discovery §3): the [`Metadata`] members and
/// these.
#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    #[serde(flatten)]
    metadata: Metadata,
    userinfo_endpoint: String,
    /// RP-initiated logout.
    end_session_endpoint: String,
    /// `public`: `sub` is `user:ID` for every app.
    subject_types_supported: Vec<String>,
    id_token_signing_alg_values_supported: Vec<String>,
    /// `pwd` (a password), `mfa` (a second factor), `phr` (a passkey).
    acr_values_supported: Vec<String>,
    claims_supported: Vec<String>,
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    prompt_values_supported: Vec<String>,
}

/// A person's claims (OpenID Connect Core §5.3.2).
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    /// `user:ID`, the same in ID tokens, never reused.
    sub: String,
    /// The person's company; absent for the manufacturer's staff.
    #[schema(nullable = false)]
    tenant_id: Option<i64>,
    /// `owner`, `admin`, `operator`, `viewer` or `staff`.
    roles: Vec<String>,
    /// With the `email` scope.
    #[schema(nullable = false)]
    email: Option<String>,
    /// With the `email` scope: the person joined by an emailed invitation.
    #[schema(nullable = false)]
    email_verified: Option<bool>,
    /// With the `profile` scope.
    #[schema(nullable = false)]
    name: Option<String>,
}
