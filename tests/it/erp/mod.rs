//! The ERP API against the real server: authentication, devices, sales, customers, the event
//! feed and webhooks, the import command, and the OpenAPI document.

mod auth;
mod customers;
mod devices;
mod events;
mod import;
mod models;
pub(crate) mod openapi;
mod sales;
mod webhooks;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::support::device::Signer;

/// A client of the ERP API holding an access token with scope `erp`.
pub struct ErpClient<'a> {
    pub app: &'a TestApp,
    pub client_id: String,
    pub secret: String,
    pub token: String,
}

/// `Authorization: Basic` for a client secret.
pub fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

/// A client_credentials token for a service client with a secret.
pub async fn token_for(app: &TestApp, client_id: &str, secret: &str) -> String {
    let res = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic(client_id, secret))],
        )
        .await;
    assert_eq!(res.status(), 200, "client_credentials failed");
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

impl<'a> ErpClient<'a> {
    /// Registers an ERP service client (scope `erp`) and gets it a token.
    pub async fn new(app: &'a TestApp) -> Self {
        let (client_id, secret) = app.service_client_with_secret("erp").await;
        let token = token_for(app, &client_id, &secret).await;
        Self {
            app,
            client_id,
            secret,
            token,
        }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header("Authorization", format!("Bearer {}", self.token))
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.auth(self.app.client.post(self.app.url(path)))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.auth(self.app.client.put(self.app.url(path)))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.auth(self.app.client.delete(self.app.url(path)))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.auth(self.app.client.get(self.app.url(path)))
            .send()
            .await
            .unwrap()
    }

    /// PUT that must answer `status`; returns the JSON body.
    pub async fn put_ok(&self, path: &str, body: &Value, status: u16) -> Value {
        let res = self.put(path, body).await;
        expect_json(res, status).await
    }

    /// Registers a device through the ERP API with a fresh key; returns the key.
    pub async fn device(&self, serial: &str) -> Signer {
        let key = Signer::es256();
        self.put_ok(
            &format!("/api/erp/v1/devices/{serial}"),
            &json!({ "model": "TX-9000", "public_jwk": key.jwk() }),
            201,
        )
        .await;
        key
    }

    /// Every event of the feed, from the start.
    pub async fn all_events(&self) -> Vec<Value> {
        let body = expect_json(self.get("/api/erp/v1/events?limit=1000").await, 200).await;
        body["events"].as_array().unwrap().clone()
    }
}

/// A sale body.
pub fn sale(serial: &str, customer: &str, revision: i64) -> Value {
    json!({
        "serial": serial,
        "sold_at": "2026-11-20T10:00:00Z",
        "sold_to": { "customer_number": customer, "name": "Acme Water", "kind": "end_customer" },
        "revision": revision,
    })
}

/// Checks status, `no-store` and JSON; returns the body.
pub async fn expect_json(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let headers = res.headers().clone();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "unexpected status; body {body}");
    assert_eq!(headers["cache-control"], "no-store");
    body
}

/// Checks a problem answer (RFC 9457): status, media type, members; returns the body.
pub async fn expect_problem(res: reqwest::Response, status: u16, slug: &str) -> Value {
    let got = res.status().as_u16();
    let media = res.headers()["content-type"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "unexpected status; body {body}");
    assert_eq!(media, "application/problem+json");
    assert_eq!(
        body["type"],
        format!("urn:pairgate:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}
