//! The OAuth part of `GET /api/openapi.json` against real requests and responses: the forms
//! clients send are valid under the document's schemas, what the server answers (issued,
//! pending, refused, introspected, the keys, the metadata) matches the schema documented for
//! that status and media type, and every endpoint the metadata advertises is documented.

use serde_json::{Value, json};

use super::service_clients::basic;
use crate::backend_tests;
use crate::erp::openapi::{conforms, validate};
use crate::support::{Backend, TestApp};

backend_tests!(oauth_requests_and_answers_match_the_document);

const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
const TOKEN: &str = "/oauth/token";
const INTROSPECT: &str = "/oauth/introspect";
const REVOKE: &str = "/oauth/revoke";

/// The schema of the form an operation takes.
fn form_schema<'a>(doc: &'a Value, path: &str) -> &'a Value {
    let content = &doc["paths"][path]["post"]["requestBody"]["content"];
    let schema = &content["application/x-www-form-urlencoded"]["schema"];
    assert!(schema.is_object(), "{path}: no form schema");
    schema
}

/// `form` is valid under the documented form of `path`.
fn documented_form(doc: &Value, path: &str, form: &[(&str, &str)]) {
    let value: Value = form
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    validate(doc, form_schema(doc, path), &value).unwrap_or_else(|e| panic!("{path}: {e}"));
}

async fn oauth_requests_and_answers_match_the_document(backend: Backend) {
    let app = TestApp::start(backend).await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    device_flow_conforms(&app, &doc).await;
    service_client_conforms(&app, &doc).await;

    // The keys and the metadata; every endpoint the metadata names is a documented path.
    conforms(&doc, "get", "/oauth/jwks", app.get("/oauth/jwks").await).await;
    let metadata = "/.well-known/oauth-authorization-server";
    let metadata = conforms(&doc, "get", metadata, app.get(metadata).await).await;
    for (member, url) in metadata.as_object().unwrap() {
        // The authorization endpoint is a page for people (the portal's), not an API.
        if member == "authorization_endpoint" {
            assert_eq!(url, &json!(app.url("/oauth/authorize")));
            continue;
        }
        if member.ends_with("_endpoint") || member == "jwks_uri" {
            let path = url.as_str().unwrap().trim_start_matches(app.base.as_str());
            let path = format!("/{}", path.trim_start_matches('/'));
            assert!(
                doc["paths"][&path].is_object(),
                "{member}: {path} is not documented"
            );
        }
    }
}

/// A device pairs: started, pending, approved, issued; a bad grant type is refused.
async fn device_flow_conforms(app: &TestApp, doc: &Value) {
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-8801").await;
    let started = app.device_authorization(&device).await;
    let started = conforms(doc, "post", DEVICE_AUTHORIZATION, started).await;
    let device_code = started["device_code"].as_str().unwrap();
    let pending = conforms(doc, "post", TOKEN, app.poll(&device, device_code).await).await;
    assert_eq!(pending["error"], "authorization_pending");
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            pairgate::oauth::device_flow::Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    app.advance(10);
    let issued = conforms(doc, "post", TOKEN, app.poll(&device, device_code).await).await;
    assert_eq!(issued["token_type"], "DPoP");
    assert!(issued["refresh_token"].is_string());

    let form = [("grant_type", "password")];
    documented_form(doc, TOKEN, &form);
    let refused = conforms(doc, "post", TOKEN, app.post_form(TOKEN, &form, &[]).await).await;
    assert_eq!(refused["error"], "unsupported_grant_type");
}

/// A service client gets a token, introspects and revokes it; refusals match too.
async fn service_client_conforms(app: &TestApp, doc: &Value) {
    let (id, secret) = app.service_client_with_secret("introspect").await;
    let auth = basic(&id, &secret);
    let form = [("grant_type", "client_credentials")];
    documented_form(doc, TOKEN, &form);
    let res = app
        .post_form(TOKEN, &form, &[("Authorization", &auth)])
        .await;
    let issued = conforms(doc, "post", TOKEN, res).await;
    assert_eq!(issued["token_type"], "Bearer");
    let token = issued["access_token"].as_str().unwrap();

    let form = [("token", token)];
    documented_form(doc, INTROSPECT, &form);
    let res = app
        .post_form(INTROSPECT, &form, &[("Authorization", &auth)])
        .await;
    assert_eq!(conforms(doc, "post", INTROSPECT, res).await["active"], true);
    let wrong = basic(&id, "not-the-secret");
    let res = app
        .post_form(INTROSPECT, &form, &[("Authorization", &wrong)])
        .await;
    assert_eq!(
        conforms(doc, "post", INTROSPECT, res).await["error"],
        "invalid_client"
    );
    let (other, other_secret) = app.service_client_with_secret("erp").await;
    let other = basic(&other, &other_secret);
    let res = app
        .post_form(INTROSPECT, &form, &[("Authorization", &other)])
        .await;
    assert_eq!(
        conforms(doc, "post", INTROSPECT, res).await["error"],
        "insufficient_scope"
    );

    // Revocation answers 200 with an empty body, as documented (no content).
    documented_form(doc, REVOKE, &form);
    let res = app
        .post_form(REVOKE, &form, &[("Authorization", &auth)])
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().is_empty());
    let ok = &doc["paths"][REVOKE]["post"]["responses"]["200"];
    assert!(ok.is_object() && ok.get("content").is_none(), "{ok}");
    let res = app
        .post_form(INTROSPECT, &form, &[("Authorization", &auth)])
        .await;
    let inactive = conforms(doc, "post", INTROSPECT, res).await;
    assert_eq!(inactive, json!({ "active": false }));
}
