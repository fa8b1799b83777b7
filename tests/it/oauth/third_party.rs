//! A real third-party client: the `oauth2` crate runs the device flow (RFC 8628) against the live
//! server. pairgate asks more of a device than oauth2 knows (private_key_jwt and DPoP on every
//! request), so the HTTP client function oauth2 calls adds a fresh client assertion and a fresh
//! DPoP proof to each request, as device firmware built on such a library would. A relying app then
//! verifies the access token from discovery and the JWKS alone.

use std::sync::Mutex;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicTokenType};
use oauth2::http;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, HttpRequest, HttpResponse, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use pairgate::clock::Clock;
use pairgate::oauth::device_flow::Verdict;
use serde_json::json;

use crate::backend_tests;
use crate::support::device::TestDevice;
use crate::support::{Backend, JWT_BEARER, TestApp};

backend_tests!(the_oauth2_crate_completes_the_device_flow);

/// What oauth2 hands its HTTP client, sent as `device` would send it: the form body gains a fresh
/// `client_assertion` (private_key_jwt) and the request a fresh `DPoP` proof for its method and
/// URL; then it goes out with reqwest.
async fn send_as_device(
    app: &TestApp,
    device: &TestDevice,
    request: HttpRequest,
) -> Result<HttpResponse, reqwest::Error> {
    let now = app.now();
    let url = request.uri().to_string();
    let method = request.method().as_str().to_owned();
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(url::form_urlencoded::parse(request.body()));
    form.append_pair("client_assertion_type", JWT_BEARER);
    form.append_pair("client_assertion", &device.assertion(now));
    let proof = device.dpop_with(&method, "", now, json!({}), json!({ "htu": url }));

    let mut outgoing = app
        .client
        .request(request.method().clone(), &url)
        .header("DPoP", proof);
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name, value);
    }
    let res = outgoing.body(form.finish()).send().await?;

    let mut response = http::Response::builder().status(res.status());
    for (name, value) in res.headers() {
        response = response.header(name, value);
    }
    let body = res.bytes().await?.to_vec();
    Ok(response.body(body).expect("response"))
}

async fn the_oauth2_crate_completes_the_device_flow(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let device = app.device("SN-6001").await;

    let client = BasicClient::new(ClientId::new(device.serial.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(app.url("/oauth/device_authorization")).unwrap(),
        )
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap());
    let http_client = |request: HttpRequest| send_as_device(&app, &device, request);

    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("telemetry:write".into()))
        .request_async(&http_client)
        .await
        .expect("device authorization");
    assert_eq!(details.verification_uri().as_str(), app.url("/device"));
    let complete = details.verification_uri_complete().expect("complete URI");
    assert!(
        complete
            .secret()
            .ends_with(&format!("?user_code={}", details.user_code().secret()))
    );
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    assert_eq!(details.interval(), Duration::from_secs(5));

    // oauth2 polls, and between polls calls this instead of sleeping: the first time (after an
    // authorization_pending), the person approves; every time, the app's clock moves on by the
    // interval oauth2 chose. Its timeout is measured on the same clock.
    let slept = Mutex::new(Vec::new());
    let user_code = details.user_code().secret().clone();
    let sleep = |interval: Duration| {
        let first = {
            let mut slept = slept.lock().unwrap();
            slept.push(interval);
            slept.len() == 1
        };
        let (app, user_code) = (&app, user_code.clone());
        async move {
            if first {
                app.ctx
                    .oauth
                    .decide(&user_code, Verdict::Approve { tenant_id: tenant }, "user:1")
                    .await
                    .expect("approve");
            }
            app.advance(i64::try_from(interval.as_secs()).unwrap());
        }
    };
    let clock = app.clock.clone();
    let token = client
        .exchange_device_access_token(&details)
        .set_time_fn(move || clock.now())
        .request_async(&http_client, sleep, None)
        .await
        .expect("device access token");

    assert_eq!(
        *slept.lock().unwrap(),
        [Duration::from_secs(5)],
        "one authorization_pending, at the advertised interval, no slow_down"
    );
    // token_type "DPoP" (RFC 9449 §5) is an extension type to oauth2, compared case-insensitively.
    assert_eq!(
        *token.token_type(),
        BasicTokenType::Extension("dpop".into())
    );
    assert_eq!(token.expires_in(), Some(Duration::from_secs(600)));
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["telemetry:write".to_owned()])
    );
    let refresh_token = token.refresh_token().expect("refresh token");

    // A relying app that knows only the issuer checks the token.
    let claims = super::discovery::verify_with_jwks(&app, token.access_token().secret()).await;
    assert_eq!(claims["sub"], "device:SN-6001");
    assert_eq!(claims["tenant_id"], tenant.get());
    assert_eq!(claims["cnf"]["jkt"], device.key.thumbprint());

    // The same library refreshes (with rotation) through the same HTTP client.
    let refreshed = client
        .exchange_refresh_token(refresh_token)
        .request_async(&http_client)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh_token.secret()
    );
    let claims = super::discovery::verify_with_jwks(&app, refreshed.access_token().secret()).await;
    assert_eq!(claims["cnf"]["jkt"], device.key.thumbprint());
    assert_eq!(claims["tenant_id"], tenant.get());
}
