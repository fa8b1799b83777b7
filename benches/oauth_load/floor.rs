//! `--floors`: a bare actix server, in this process, that does for each measured path only what
//! pairgate does before storage: it reads the request and runs pairgate's own checks (client
//! authentication, the DPoP proof, an upload's token, proof and batch), then answers as the
//! path would, storing nothing and writing no replay memory. Beside each path's figure it shows
//! what HTTP and the checks alone cost on this machine, the least any storage could add to.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, RwLock};

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use pairgate::app::AppContext;
use pairgate::clock::{Clock, SystemClock};
use pairgate::oauth::client_auth::{self, AssertionPolicy, ClientCredentials};
use pairgate::store::registry::ClientRecord;
use pairgate::telemetry::Upload;
use pairgate::verifier::dpop::{DpopRequest, DpopVerifier};
use serde_json::json;

/// What the verification-only server knows: the client records it has read (each once, before
/// its first measured request: the warm-up), and the checks pairgate would configure.
struct Floor {
    ctx: AppContext,
    clients: RwLock<HashMap<String, ClientRecord>>,
    policy: AssertionPolicy,
    dpop: DpopVerifier,
    /// pairgate's URLs, which the proofs were signed for.
    base: String,
}

/// Starts the verification-only server on its own two actix workers; returns its base URL.
pub(super) fn start(ctx: &AppContext, base: &str) -> String {
    let o = &ctx.settings.oauth;
    let floor = Arc::new(Floor {
        ctx: ctx.clone(),
        clients: RwLock::default(),
        policy: AssertionPolicy {
            audiences: vec![base.to_owned(), format!("{base}/oauth/token")],
            max_lifetime_ms: i64::from(o.client_assertion_max_lifetime_secs.get()) * 1000,
            skew_ms: i64::from(o.clock_skew_secs) * 1000,
        },
        dpop: DpopVerifier::new(pairgate::oauth::dpop::policy(o), [7; 32]),
        base: base.to_owned(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let floor = web::Data::from(floor);
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(floor.clone())
                    .route("/oauth/token", web::post().to(token))
                    .route("/oauth/device_authorization", web::post().to(authorize))
                    .route("/api/v1/telemetry", web::post().to(upload))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    url
}

type Form = web::Form<Vec<(String, String)>>;

fn refused(e: pairgate::oauth::OAuthError) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": e.code() }))
}

impl Floor {
    /// The client record, read from the store the first time the client is seen.
    async fn client(&self, client_id: &str) -> Option<ClientRecord> {
        if let Some(record) = self.clients.read().unwrap().get(client_id) {
            return Some(record.clone());
        }
        let id = client_id.to_owned();
        let record = self
            .ctx
            .store
            .read(move |tx| pairgate::store::registry::find_client(tx, &id))
            .await
            .unwrap()?;
        let mut clients = self.clients.write().unwrap();
        clients.insert(client_id.to_owned(), record.clone());
        Some(record)
    }

    /// Client authentication as the token endpoint runs it (secret or `private_key_jwt`).
    async fn authenticate(&self, req: &HttpRequest, form: &Form) -> Result<(), HttpResponse> {
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let basic = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok()?.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
        let credentials = ClientCredentials {
            basic,
            assertion_type: field("client_assertion_type"),
            assertion: field("client_assertion"),
            ..ClientCredentials::default()
        };
        let claimed = credentials.claimed().map_err(refused)?;
        let record = self.client(claimed.client_id()).await;
        let now_ms = SystemClock.now().timestamp_millis();
        client_auth::verify(claimed, record, &self.policy, now_ms).map_err(refused)?;
        Ok(())
    }

    /// The DPoP proof for `path`, checked as pairgate checks it (no replay memory).
    fn proof(&self, req: &HttpRequest, path: &str) -> Result<(), HttpResponse> {
        let proofs: Vec<String> = req
            .headers()
            .get_all("DPoP")
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let url = format!("{}{path}", self.base);
        let request = DpopRequest {
            proofs: &proofs,
            method: "POST",
            url: &url,
            access_token: None,
        };
        let now_ms = SystemClock.now().timestamp_millis();
        match self.dpop.check(&request, now_ms) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                Err(HttpResponse::BadRequest().json(json!({ "error": "invalid_dpop_proof" })))
            }
            Err(e) => Err(refused(e.into())),
        }
    }
}

/// The token endpoint: client credentials (authentication only, a dummy token), a device-code
/// poll (`authorization_pending`), a refresh (its own refresh token back, so the device goes on).
async fn token(req: HttpRequest, form: Form, floor: web::Data<Floor>) -> HttpResponse {
    if let Err(answer) = floor.authenticate(&req, &form).await {
        return answer;
    }
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") == Some("client_credentials") {
        return HttpResponse::Ok().json(json!({ "access_token": "floor", "token_type": "Bearer" }));
    }
    if let Err(answer) = floor.proof(&req, "/oauth/token") {
        return answer;
    }
    match field("refresh_token") {
        Some(rt) => HttpResponse::Ok().json(json!({ "refresh_token": rt })),
        None => HttpResponse::BadRequest()
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({ "error": "authorization_pending" })),
    }
}

/// Device authorization: the device's authentication and proof, and a made-up answer.
async fn authorize(req: HttpRequest, form: Form, floor: web::Data<Floor>) -> HttpResponse {
    if let Err(answer) = floor.authenticate(&req, &form).await {
        return answer;
    }
    if let Err(answer) = floor.proof(&req, "/oauth/device_authorization") {
        return answer;
    }
    HttpResponse::Ok().json(json!({ "device_code": "floor", "user_code": "FLOR-FLOR" }))
}

/// A telemetry upload, checked as pairgate checks it (`Telemetry::check`) and not stored.
async fn upload(req: HttpRequest, body: web::Bytes, floor: web::Data<Floor>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let dpop: Vec<String> = req
        .headers()
        .get_all("dpop")
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let checked = floor
        .ctx
        .telemetry
        .check(Upload {
            authorization: header("authorization"),
            dpop: &dpop,
            body: &body,
        })
        .await;
    match checked {
        Ok(upload) => {
            HttpResponse::Ok().json(json!({ "accepted": upload.readings(), "duplicates": 0 }))
        }
        Err(_) => HttpResponse::BadRequest().json(json!({ "error": "refused" })),
    }
}
