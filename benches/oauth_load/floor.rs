//! `--floor`: a bare actix server that only does what pairgate's token endpoint does before the
//! database, to measure what HTTP and the two signature checks alone cost on this machine.

use std::net::TcpListener;
use std::sync::Arc;

use pairgate::app::AppContext;
use pairgate::clock::{Clock, SystemClock};
use pairgate::oauth::client_auth::{self, AssertionPolicy, Claimed, ClientCredentials};
use pairgate::store::registry::ClientRecord;
use pairgate::verifier::dpop::{DpopRequest, DpopVerifier};

use crate::Device;

/// What the verification-only server knows: the pollers' client records, and the checks that
/// pairgate's token endpoint would configure.
struct Floor {
    clients: std::collections::HashMap<String, ClientRecord>,
    policy: AssertionPolicy,
    dpop: DpopVerifier,
    /// The token endpoint URL the proofs were signed for (pairgate's, not this server's).
    token_url: String,
}

/// Starts the verification-only server (`--floor`) on its own two actix workers; returns its base
/// URL. It reads the form, claims the client from the assertion, checks the assertion and the DPoP
/// proof with pairgate's own functions against the client record loaded beforehand, and answers
/// `authorization_pending` as a pending poll would.
pub(super) async fn start(ctx: &AppContext, pollers: &[Arc<Device>], base: &str) -> String {
    let mut clients = std::collections::HashMap::new();
    for d in pollers {
        let serial = d.serial.clone();
        let record = ctx
            .store
            .read(move |tx| pairgate::store::registry::find_client(tx, &serial))
            .await
            .unwrap()
            .unwrap();
        clients.insert(d.serial.clone(), record);
    }
    let o = &ctx.settings.oauth;
    let floor = Arc::new(Floor {
        clients,
        policy: AssertionPolicy {
            audiences: vec![base.to_owned(), format!("{base}/oauth/token")],
            max_lifetime_ms: i64::from(o.client_assertion_max_lifetime_secs.get()) * 1000,
            skew_ms: i64::from(o.clock_skew_secs) * 1000,
        },
        dpop: DpopVerifier::new(pairgate::oauth::dpop::policy(o), [7; 32]),
        token_url: format!("{base}/oauth/token"),
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let floor = actix_web::web::Data::from(floor);
            actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(floor.clone())
                    .route("/oauth/token", actix_web::web::post().to(floor_token))
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

async fn floor_token(
    req: actix_web::HttpRequest,
    form: actix_web::web::Form<Vec<(String, String)>>,
    floor: actix_web::web::Data<Floor>,
) -> actix_web::HttpResponse {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let credentials = ClientCredentials {
        assertion_type: field("client_assertion_type"),
        assertion: field("client_assertion"),
        ..ClientCredentials::default()
    };
    let now_ms = SystemClock.now().timestamp_millis();
    let refused = |e: pairgate::oauth::OAuthError| {
        actix_web::HttpResponse::BadRequest().json(serde_json::json!({ "error": e.code() }))
    };
    let claimed = match credentials.claimed() {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    let (Claimed::Assertion { client_id, .. } | Claimed::Secret { client_id, .. }) = &claimed;
    let record = floor.clients.get(client_id).cloned();
    if let Err(e) = client_auth::verify(claimed, record, &floor.policy, now_ms) {
        return refused(e);
    }
    let proofs: Vec<String> = req
        .headers()
        .get_all("DPoP")
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let request = DpopRequest {
        proofs: &proofs,
        method: "POST",
        url: &floor.token_url,
        access_token: None,
    };
    match floor.dpop.check(&request, now_ms) {
        Ok(Some(_)) => actix_web::HttpResponse::BadRequest()
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "error": "authorization_pending" })),
        Ok(None) => actix_web::HttpResponse::BadRequest()
            .json(serde_json::json!({ "error": "invalid_dpop_proof" })),
        Err(e) => refused(e.into()),
    }
}
