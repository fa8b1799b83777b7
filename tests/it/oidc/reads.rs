//! User-scoped telemetry reads: an app holding a person's token with `telemetry:read` sees what
//! the person sees in the portal, and nothing of another company.

use pairgate::accounts::{DeviceAccess, Role};
use serde_json::Value;

use super::{Pkce, authorize_path, bearer_get, code, person, redeem, register};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};
use crate::telemetry::{accepted, pair_into, readings, upload};

backend_tests!(
    an_app_reads_what_the_person_may_see,
    a_token_without_telemetry_read_is_refused,
);

/// A person's access token for `client_id`, through the pages (`scope` as asked).
async fn token_for(app: &TestApp, b: &mut Browser<'_>, client_id: &str, scope: &str) -> String {
    let pkce = Pkce::new();
    let code = code(b, &authorize_path(client_id, &pkce, &[("scope", scope)])).await;
    let (status, tokens) = redeem(app, client_id, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn serials(list: &Value) -> Vec<&str> {
    list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["serial"].as_str().unwrap())
        .collect()
}

async fn an_app_reads_what_the_person_may_see(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = app.tenant("Acme Water").await;
    let a = pair_into(&app, "SN-8801", acme).await;
    let b = pair_into(&app, "SN-8802", acme).await;
    for p in [&a, &b] {
        accepted(upload(&app, p, &readings(&app, "r", 2)).await).await;
    }
    let dash = register(&app, false, None, true).await;
    let scope = "openid telemetry:read";

    // The owner sees both; a viewer given SN-8801 only sees that one.
    let (_, mut owner) = person(&app, Some(acme), Role::Owner, "o@acme.example").await;
    let (viewer_id, mut viewer) = person(&app, Some(acme), Role::Viewer, "v@acme.example").await;
    let owner_cookie = owner.session_cookie().unwrap();
    let mut session = app
        .ctx
        .accounts
        .session(&owner_cookie)
        .await
        .unwrap()
        .unwrap();
    session.stepped_up_at = Some(app.now() * 1000);
    app.ctx
        .accounts
        .set_device_access(
            &session,
            viewer_id,
            DeviceAccess::Selected,
            vec![],
            vec!["SN-8801".into()],
        )
        .await
        .unwrap();
    let owner_token = token_for(&app, &mut owner, &dash.client_id, scope).await;
    let viewer_token = token_for(&app, &mut viewer, &dash.client_id, scope).await;

    let (status, list, _) = bearer_get(&app, "/api/v1/devices", &owner_token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(serials(&list), ["SN-8801", "SN-8802"]);
    assert_eq!(list["total"], 2);
    assert!(list["devices"][0]["last_reading"].is_string());
    let (status, list, _) = bearer_get(&app, "/api/v1/devices", &viewer_token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(serials(&list), ["SN-8801"]);

    let (status, series, _) =
        bearer_get(&app, "/api/v1/devices/SN-8801/telemetry", &viewer_token).await;
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["readings"].as_array().unwrap().len(), 2);
    let (hidden, hidden_body, _) =
        bearer_get(&app, "/api/v1/devices/SN-8802/telemetry", &viewer_token).await;
    let (unknown, unknown_body, _) =
        bearer_get(&app, "/api/v1/devices/SN-NOPE/telemetry", &viewer_token).await;
    assert_eq!((hidden, unknown), (404, 404));
    assert_eq!(hidden_body, unknown_body, "hidden and unknown look alike");

    // Another company's person, through the same app: none of Acme's devices.
    let elsewhere = app.tenant("Elsewhere").await;
    let (_, mut stranger) = person(&app, Some(elsewhere), Role::Owner, "o@else.example").await;
    let stranger_token = token_for(&app, &mut stranger, &dash.client_id, scope).await;
    let (status, list, _) = bearer_get(&app, "/api/v1/devices", &stranger_token).await;
    assert_eq!(status, 200);
    assert!(serials(&list).is_empty());
    let (status, _, _) =
        bearer_get(&app, "/api/v1/devices/SN-8801/telemetry", &stranger_token).await;
    assert_eq!(status, 404);

    // An app of Acme's own signs in nobody else.
    let acme_tool = register(&app, false, Some(acme), true).await;
    let page = stranger
        .get(&authorize_path(&acme_tool.client_id, &Pkce::new(), &[]))
        .await;
    let back = super::handoff(&page).expect("back to the app");
    assert_eq!(super::query(&back)["error"], "access_denied");

    // A person disabled since: their token reads nothing.
    app.raw_sql(&format!(
        "UPDATE users SET status = 'disabled' WHERE id = {viewer_id}"
    ))
    .await;
    let (status, body, challenge) = bearer_get(&app, "/api/v1/devices", &viewer_token).await;
    assert_eq!(status, 401, "{body}");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

async fn a_token_without_telemetry_read_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let acme = app.tenant("Acme Water").await;
    let device = pair_into(&app, "SN-8803", acme).await;
    let dash = register(&app, false, None, true).await;
    let (_, mut owner) = person(&app, Some(acme), Role::Owner, "o@acme.example").await;
    let token = token_for(&app, &mut owner, &dash.client_id, "openid email").await;
    let (status, body, challenge) = bearer_get(&app, "/api/v1/devices", &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    assert!(
        challenge.contains("scope=\"telemetry:read\""),
        "{challenge}"
    );
    // UserInfo takes it (openid), but not a device's token.
    assert_eq!(bearer_get(&app, "/oauth/userinfo", &token).await.0, 200);
    let (status, _, _) = bearer_get(&app, "/api/v1/devices", &device.access_token).await;
    assert_eq!(status, 401, "a DPoP-bound device token sent as Bearer");
    // No token and no session: the portal's cookie challenge, as before.
    let res = app.get("/api/v1/devices").await;
    assert_eq!(res.status(), 401);
    // A token that is not one.
    let (status, body, _) = bearer_get(&app, "/oauth/userinfo", "not-a-token").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}
