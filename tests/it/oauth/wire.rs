//! Wire discipline of the OAuth endpoints (RFC 6749 §3.2, §5, RFC 9110): form bodies only, no
//! parameter twice, unknown parameters ignored and empty ones absent, 405 with `Allow`, 413 for
//! oversized bodies, no caching of anything that carries a token or an error, grant type errors,
//! and no malformed request, however odd, ever answered with a server error.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::client_auth::basic;
use super::error_of;
use crate::backend_tests;
use crate::support::device::TestDevice;
use crate::support::{Backend, DEVICE_CODE_GRANT, JWT_BEARER, TestApp};

backend_tests!(
    post_endpoints_take_form_bodies_only,
    repeated_parameters_are_refused,
    unknown_parameters_are_ignored,
    empty_parameters_count_as_absent,
    wrong_methods_get_405_with_allow,
    oversized_bodies_get_413,
    token_and_error_responses_are_never_cached,
    grant_type_is_required_and_must_be_supported,
    malformed_requests_never_cause_server_errors,
    two_authorization_headers_are_refused,
);

const TOKEN: &str = "/oauth/token";
const DA: &str = "/oauth/device_authorization";
const INTROSPECT: &str = "/oauth/introspect";
const REVOKE: &str = "/oauth/revoke";
const POST_ENDPOINTS: [&str; 4] = [TOKEN, DA, INTROSPECT, REVOKE];
const FORM: &str = "application/x-www-form-urlencoded";

type Pairs = Vec<(&'static str, String)>;

/// An app with a device and a secret-authenticated service client holding an access token.
struct Fixture {
    app: TestApp,
    device: TestDevice,
    id: String,
    secret: String,
    access_token: String,
}

impl Fixture {
    async fn new(app: TestApp) -> Self {
        let device = app.device("SN-WIRE-1").await;
        // `introspect`: introspection needs it; the other endpoints take any service client.
        let (id, secret) = app.service_client_with_secret("erp:read introspect").await;
        let res = app
            .post_form(
                TOKEN,
                &[("grant_type", "client_credentials")],
                &[("Authorization", &basic(&id, &secret))],
            )
            .await;
        assert_eq!(res.status(), 200);
        let access_token = res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            app,
            device,
            id,
            secret,
            access_token,
        }
    }

    /// A request that succeeds at `path`: its form and its headers (fresh jti values each time).
    fn valid(&self, path: &str) -> (Pairs, Pairs) {
        let basic = vec![("Authorization", basic(&self.id, &self.secret))];
        let now = self.app.now();
        match path {
            TOKEN => (vec![("grant_type", "client_credentials".to_owned())], basic),
            DA => (
                vec![
                    ("client_assertion_type", JWT_BEARER.to_owned()),
                    ("client_assertion", self.device.assertion(now)),
                ],
                vec![("DPoP", self.device.dpop("POST", DA, now))],
            ),
            INTROSPECT | REVOKE => (vec![("token", self.access_token.clone())], basic),
            other => panic!("no valid request for {other}"),
        }
    }

    async fn send(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
        headers: &Pairs,
    ) -> reqwest::Response {
        let mut req = self.app.client.post(self.app.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.expect("POST")
    }

    async fn send_form(&self, path: &str, form: &Pairs, headers: &Pairs) -> reqwest::Response {
        self.send(path, Some(FORM), encode(form), headers).await
    }
}

fn encode(form: &Pairs) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

async fn assert_ok(res: reqwest::Response, case: &str) {
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "{case}: {text}");
}

async fn assert_invalid_request(res: reqwest::Response, case: &str) -> Value {
    let status = res.status();
    assert_eq!(res.headers()["cache-control"], "no-store", "{case}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 400, "{case}: {body}");
    assert_eq!(body["error"], "invalid_request", "{case}: {body}");
    body
}

async fn post_endpoints_take_form_bodies_only(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    for path in POST_ENDPOINTS {
        let (form, headers) = fx.valid(path);
        let as_json: serde_json::Map<String, Value> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let json_body = Value::Object(as_json).to_string();
        let body = assert_invalid_request(
            fx.send(path, Some("application/json"), json_body.clone(), &headers)
                .await,
            &format!("{path}: JSON"),
        )
        .await;
        assert_eq!(
            body["error_description"],
            "the body must be application/x-www-form-urlencoded"
        );
        if path == TOKEN {
            insta::assert_json_snapshot!("wire_json_body_error", body);
        }
        for content_type in [
            None,
            Some("text/plain"),
            Some("multipart/form-data; boundary=x"),
            Some("application/x-www-form-urlencoded-extra"),
            Some("application/jsonx-www-form-urlencoded"),
        ] {
            let res = fx.send(path, content_type, encode(&form), &headers).await;
            assert_invalid_request(res, &format!("{path}: {content_type:?}")).await;
        }
        // The media type is case-insensitive and may carry parameters.
        let (form, headers) = fx.valid(path);
        let res = fx
            .send(
                path,
                Some("Application/X-WWW-Form-URLEncoded ; charset=UTF-8"),
                encode(&form),
                &headers,
            )
            .await;
        assert_ok(res, &format!("{path}: form with charset")).await;
    }
}

async fn repeated_parameters_are_refused(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    let mut snapshot_taken = false;
    for path in POST_ENDPOINTS {
        let (form, headers) = fx.valid(path);
        for i in 0..form.len() {
            let (form, headers) = fx.valid(path);
            let mut twice = form.clone();
            twice.push(form[i].clone());
            let case = format!("{path}: {} twice", form[i].0);
            let body =
                assert_invalid_request(fx.send_form(path, &twice, &headers).await, &case).await;
            assert_eq!(
                body["error_description"],
                "a parameter was sent more than once"
            );
            if !snapshot_taken {
                insta::assert_json_snapshot!("wire_repeated_parameter_error", body);
                snapshot_taken = true;
            }
        }
        // Twice with different values, one of them empty, or the repeat far apart.
        let mut differing = form.clone();
        differing.insert(0, ("scope", "a".to_owned()));
        differing.push(("scope", "b".to_owned()));
        assert_invalid_request(
            fx.send_form(path, &differing, &headers).await,
            &format!("{path}: scope a, scope b"),
        )
        .await;
        let (form, headers) = fx.valid(path);
        let mut with_empty = form.clone();
        with_empty.push((form[0].0, String::new()));
        assert_invalid_request(
            fx.send_form(path, &with_empty, &headers).await,
            &format!("{path}: repeated once empty"),
        )
        .await;
        let (form, headers) = fx.valid(path);
        assert_ok(fx.send_form(path, &form, &headers).await, path).await;
    }
    // A client_credentials request that repeats grant_type with another grant.
    let (mut form, headers) = fx.valid(TOKEN);
    form.push(("grant_type", DEVICE_CODE_GRANT.to_owned()));
    assert_invalid_request(fx.send_form(TOKEN, &form, &headers).await, "two grants").await;
}

async fn unknown_parameters_are_ignored(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    for path in POST_ENDPOINTS {
        let (mut form, headers) = fx.valid(path);
        form.extend([
            ("foo", "bar".to_owned()),
            ("x-vendor-extension", "1".to_owned()),
            ("password", "hunter2".to_owned()),
            ("redirect_uri", "https://evil.example/cb".to_owned()),
            ("ünïcödé", "✓".to_owned()),
            ("empty", String::new()),
        ]);
        assert_ok(fx.send_form(path, &form, &headers).await, path).await;
    }
}

async fn empty_parameters_count_as_absent(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    // Empty client credentials next to Basic are no second method; an empty scope asks for the
    // default scope.
    let (mut form, headers) = fx.valid(TOKEN);
    form.extend([
        ("scope", String::new()),
        ("client_id", String::new()),
        ("client_secret", String::new()),
        ("client_assertion", String::new()),
        ("client_assertion_type", String::new()),
    ]);
    let res = fx.send_form(TOKEN, &form, &headers).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["scope"],
        "erp:read introspect"
    );
    // An empty dpop_jkt or scope at device authorization is no binding and no scope.
    let (mut form, headers) = fx.valid(DA);
    form.extend([("dpop_jkt", String::new()), ("scope", String::new())]);
    assert_ok(
        fx.send_form(DA, &form, &headers).await,
        "device authorization",
    )
    .await;
    // An empty required parameter is a missing one.
    let (_, headers) = fx.valid(TOKEN);
    let body = assert_invalid_request(
        fx.send_form(TOKEN, &vec![("grant_type", String::new())], &headers)
            .await,
        "empty grant_type",
    )
    .await;
    assert_eq!(body["error_description"], "grant_type is required");
    for path in [INTROSPECT, REVOKE] {
        let (_, headers) = fx.valid(path);
        let form = vec![("token", String::new()), ("token_type_hint", String::new())];
        let body = assert_invalid_request(fx.send_form(path, &form, &headers).await, path).await;
        assert_eq!(body["error_description"], "token is required");
    }
    // Empty client credentials alone are no authentication at all.
    let form = vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", fx.id.clone()),
        ("client_secret", String::new()),
    ];
    let body = error_of(fx.send_form(TOKEN, &form, &vec![]).await, 400).await;
    assert_eq!(body["error"], "invalid_client");
}

async fn wrong_methods_get_405_with_allow(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut snapshot_taken = false;
    let cases = POST_ENDPOINTS
        .iter()
        .flat_map(|p| {
            ["GET", "PUT", "DELETE", "PATCH"]
                .into_iter()
                .map(move |m| (*p, m, "POST"))
        })
        .chain(
            ["/oauth/jwks", "/.well-known/oauth-authorization-server"]
                .into_iter()
                .flat_map(|p| {
                    ["POST", "PUT", "DELETE"]
                        .into_iter()
                        .map(move |m| (p, m, "GET, HEAD"))
                }),
        );
    for (path, method, allow) in cases {
        let res = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .header("Content-Type", FORM)
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{method} {path}");
        if !snapshot_taken {
            insta::assert_json_snapshot!("wire_method_not_allowed_error", body);
            snapshot_taken = true;
        }
    }
    // The allowed methods work, HEAD included (RFC 9110 §9.3.2), without a body.
    for path in [
        "/oauth/jwks",
        "/.well-known/oauth-authorization-server",
        "/healthz",
    ] {
        let res = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "HEAD {path}");
        assert!(
            res.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
    assert_eq!(app.get("/oauth/jwks").await.status(), 200);
    assert_eq!(
        app.get("/.well-known/oauth-authorization-server")
            .await
            .status(),
        200
    );
}

/// Sends raw bytes to the server and returns the status and the whole response text.
async fn raw_http(app: &TestApp, request: &[u8]) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    // The server may close while request bytes are still unread; what arrived counts.
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn oversized_bodies_get_413(backend: Backend) {
    const LIMIT: usize = 2048;
    let app = TestApp::builder(backend)
        .config(&format!("[server]\nmax_form_bytes = {LIMIT}"))
        .start()
        .await;
    let fx = Fixture::new(app).await;
    // A valid request padded with an unknown parameter to exactly `len` bytes.
    let padded = |path: &str, len: usize| {
        let (mut form, headers) = fx.valid(path);
        form.push(("pad", String::new()));
        let bare = encode(&form).len();
        assert!(bare < len, "{path}: the request itself fits");
        form.last_mut().unwrap().1 = "a".repeat(len - bare);
        let body = encode(&form);
        assert_eq!(body.len(), len);
        (body, headers)
    };
    let mut snapshot_taken = false;
    for path in POST_ENDPOINTS {
        let (body, headers) = padded(path, LIMIT + 1);
        let res = fx.send(path, Some(FORM), body, &headers).await;
        assert_eq!(res.status(), 413, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(res.headers()["pragma"], "no-cache", "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
        if !snapshot_taken {
            insta::assert_json_snapshot!("wire_payload_too_large_error", body);
            snapshot_taken = true;
        }
        // Much larger, and without a form content type: still 413, decided before reading.
        let res = fx
            .send(
                path,
                Some("application/json"),
                vec![b'x'; 64 * 1024],
                &headers,
            )
            .await;
        assert_eq!(res.status(), 413, "{path}: 64 KiB");
        // Exactly at the limit is fine.
        let (body, headers) = padded(path, LIMIT);
        assert_ok(fx.send(path, Some(FORM), body, &headers).await, path).await;
    }
    // Without a Content-Length (chunked), the limit holds while reading.
    let host = fx.app.base.trim_start_matches("http://").to_owned();
    let chunk = "grant_type=client_credentials&pad=".to_owned() + &"a".repeat(LIMIT);
    let request = format!(
        "POST {TOKEN} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FORM}\r\n\
         Authorization: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n0\r\n\r\n",
        basic(&fx.id, &fx.secret),
        chunk.len()
    );
    let (status, text) = raw_http(&fx.app, request.as_bytes()).await;
    assert_eq!(status, 413, "{text}");
    // And a small chunked body is read normally.
    let small = "grant_type=client_credentials";
    let request = format!(
        "POST {TOKEN} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FORM}\r\n\
         Authorization: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{small}\r\n0\r\n\r\n",
        basic(&fx.id, &fx.secret),
        small.len()
    );
    let (status, text) = raw_http(&fx.app, request.as_bytes()).await;
    assert_eq!(status, 200, "{text}");
}

fn assert_no_store(res: &reqwest::Response, case: &str) {
    assert_eq!(res.headers()["cache-control"], "no-store", "{case}");
    assert_eq!(res.headers()["pragma"], "no-cache", "{case}");
}

async fn token_and_error_responses_are_never_cached(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    let app = &fx.app;
    // Successes.
    for path in POST_ENDPOINTS {
        let (form, headers) = fx.valid(path);
        let res = fx.send_form(path, &form, &headers).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_no_store(&res, path);
    }
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-WIRE-2").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let res = app.poll(&device, code).await;
    assert_eq!(res.status(), 400);
    assert_no_store(&res, "authorization_pending");
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            pairgate::oauth::device_flow::Verdict::Approve { tenant_id: tenant },
            "user:test",
        )
        .await
        .unwrap();
    app.advance(5);
    let res = app.poll(&device, code).await;
    assert_eq!(res.status(), 200);
    assert_no_store(&res, "device_code tokens");
    // Errors, of every kind the endpoints give.
    let bad_basic = vec![("Authorization", basic(&fx.id, "wrong"))];
    for path in POST_ENDPOINTS {
        let (form, _) = fx.valid(path);
        let form: Pairs = form
            .into_iter()
            .filter(|(k, _)| !k.starts_with("client_assertion"))
            .collect();
        let res = fx.send_form(path, &form, &bad_basic).await;
        assert_eq!(res.status(), 401, "{path}");
        assert_no_store(&res, &format!("{path}: 401"));
        let res = fx.send_form(path, &vec![], &vec![]).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_no_store(&res, &format!("{path}: 400"));
        let res = fx.send(path, Some("application/json"), "{}", &vec![]).await;
        assert_eq!(res.status(), 400, "{path}");
        assert_no_store(&res, &format!("{path}: JSON"));
    }
    let (_, headers) = fx.valid(TOKEN);
    let res = fx
        .send_form(
            TOKEN,
            &vec![("grant_type", "password".to_owned())],
            &headers,
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_no_store(&res, "unsupported_grant_type");
}

async fn grant_type_is_required_and_must_be_supported(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    let (_, headers) = fx.valid(TOKEN);
    let body = assert_invalid_request(
        fx.send_form(TOKEN, &vec![("scope", "erp:read".to_owned())], &headers)
            .await,
        "no grant_type",
    )
    .await;
    assert_eq!(body["error_description"], "grant_type is required");
    insta::assert_json_snapshot!("wire_missing_grant_type_error", body);
    let mut snapshot_taken = false;
    for grant in [
        "password",
        "implicit",
        "token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "CLIENT_CREDENTIALS",
        "client_credentials ",
        "urn:ietf:params:oauth:grant-type:device_code:x",
    ] {
        for headers in [headers.clone(), vec![]] {
            let res = fx
                .send_form(TOKEN, &vec![("grant_type", grant.to_owned())], &headers)
                .await;
            let body = error_of(res, 400).await;
            assert_eq!(body["error"], "unsupported_grant_type", "{grant:?}");
            if !snapshot_taken {
                insta::assert_json_snapshot!("wire_unsupported_grant_type_error", body);
                snapshot_taken = true;
            }
        }
    }
}

/// One malformed request of the robustness test.
struct Odd {
    label: String,
    path: &'static str,
    content_type: Option<String>,
    body: Vec<u8>,
    headers: Vec<(&'static str, Vec<u8>)>,
}

impl Odd {
    fn form(label: impl Into<String>, path: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            label: label.into(),
            path,
            content_type: Some(FORM.to_owned()),
            body: body.into(),
            headers: vec![],
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    (0..len).map(|_| rng.random()).collect()
}

fn random_from(rng: &mut StdRng, alphabet: &[u8], max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
        .collect()
}

/// A client_assertion form body for `path`.
fn assertion_body(path: &str, assertion: &str) -> String {
    let mut form: Pairs = vec![
        ("client_assertion_type", JWT_BEARER.to_owned()),
        ("client_assertion", assertion.to_owned()),
    ];
    if path == TOKEN {
        form.push(("grant_type", "client_credentials".to_owned()));
    }
    if path == INTROSPECT || path == REVOKE {
        form.push(("token", "x".to_owned()));
    }
    encode(&form)
}

fn odd_requests(fx: &Fixture, rng: &mut StdRng) -> Vec<Odd> {
    let now = fx.app.now();
    let device = &fx.device;
    let mut out = Vec::new();
    let path_of = |i: usize| POST_ENDPOINTS[i % POST_ENDPOINTS.len()];

    // Random bytes, as a form, as nothing, as something else.
    for i in 0..48 {
        let body = random_bytes(rng, 3000);
        let mut odd = Odd::form(format!("random bytes {i}"), path_of(i), body);
        odd.content_type = match i % 3 {
            0 => Some(FORM.to_owned()),
            1 => None,
            _ => Some(String::from_utf8_lossy(&random_from(rng, b"abc/;=+ -x", 40)).into_owned()),
        };
        out.push(odd);
    }
    // Form-shaped noise: separators, escapes, NULs, invalid percent-encoding.
    for i in 0..48 {
        let body = random_from(
            rng,
            b"=&%+;:. \0aZ9_-\xff\xc3\x28grant_typeclientsecret",
            600,
        );
        out.push(Odd::form(format!("form noise {i}"), path_of(i), body));
    }
    // Non-UTF-8 values, raw and percent-encoded.
    for (i, body) in [
        &b"grant_type=\xff\xfe&client_id=\xc3\x28&client_secret=\xed\xa0\x80"[..],
        b"grant_type=client_credentials&client_id=%ff%fe&client_secret=%c3%28",
        b"token=%ED%A0%80&token_type_hint=%F4%90%80%80",
        b"client_assertion_type=%FF&client_assertion=%C0%AF",
        b"%ZZ=%&&&==&=&%%%%&grant_type=%",
        b"\xef\xbb\xbfgrant_type=client_credentials",
        b"grant_type=client_credentials\r\n\r\nclient_id=x",
    ]
    .iter()
    .enumerate()
    {
        for path in POST_ENDPOINTS {
            let mut odd = Odd::form(format!("non-UTF-8 body {i}"), path, *body);
            if i % 2 == 0 {
                odd = odd.header("Authorization", basic(&fx.id, &fx.secret));
            }
            out.push(odd);
        }
    }
    // Truncated and mangled JWTs, as client assertions and as DPoP proofs.
    let assertion = device.assertion(now);
    let proof = device.dpop("POST", DA, now);
    for i in 0..40 {
        let path = path_of(i);
        let cut = rng.random_range(0..assertion.len());
        out.push(Odd::form(
            format!("truncated assertion at {cut}"),
            path,
            assertion_body(path, &assertion[..cut]),
        ));
        let cut = rng.random_range(0..proof.len());
        out.push(
            Odd::form(
                format!("truncated proof at {cut}"),
                path,
                assertion_body(path, &device.assertion(now)),
            )
            .header("DPoP", &proof[..cut]),
        );
        let mut mangled = assertion.clone().into_bytes();
        let at = rng.random_range(0..mangled.len());
        mangled[at] = b"._-=+/A\0"[i % 8];
        out.push(Odd::form(
            format!("mangled assertion at {at}"),
            path,
            assertion_body(path, &String::from_utf8_lossy(&mangled)),
        ));
    }
    // JWS segments holding junk JSON: deep nesting, wrong types, huge numbers.
    let deep = "[".repeat(5000) + &"]".repeat(5000);
    let junk_json = [
        deep.as_str(),
        "[]",
        "null",
        "\"str\"",
        "{\"alg\":[\"ES256\"]}",
        "{\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":1,\"y\":null}}",
        "{\"alg\":\"ES256\",\"typ\":\"dpop+jwt\",\
         \"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}}",
        "{\"alg\":\"EdDSA\",\"typ\":\"dpop+jwt\",\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\
         \"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}",
        "{\"iss\":1e400,\"exp\":-1e400}",
        "{\"exp\":18446744073709551616000}",
    ];
    for (i, h) in junk_json.iter().enumerate() {
        for (j, c) in junk_json.iter().enumerate().step_by(3) {
            let jws = format!(
                "{}.{}.{}",
                pairgate::crypto::jose::b64(h),
                pairgate::crypto::jose::b64(c),
                pairgate::crypto::jose::b64([1u8; 64])
            );
            let path = path_of(i + j);
            out.push(Odd::form(
                format!("junk JWS {i}/{j} as assertion"),
                path,
                assertion_body(path, &jws),
            ));
            out.push(
                Odd::form(
                    format!("junk JWS {i}/{j} as proof"),
                    path,
                    assertion_body(path, &device.assertion(now)),
                )
                .header("DPoP", jws.as_bytes()),
            );
        }
    }
    // Genuinely signed, absurd claims.
    let absurd = [
        json!({ "iat": i64::MIN, "exp": i64::MAX }),
        json!({ "iat": -1e308, "exp": 1e308 }),
        json!({ "exp": i64::MIN }),
        json!({ "nbf": i64::MIN, "iat": i64::MIN }),
        json!({ "nbf": i64::MAX }),
        json!({ "iat": u64::MAX, "exp": u64::MAX }),
        json!({ "exp": 0.5, "iat": -0.5 }),
        json!({ "aud": [[[fx.app.base]]] }),
        json!({ "jti": "j".repeat(4000) }),
        json!({ "iss": "x".repeat(3000), "sub": "x".repeat(3000) }),
        json!({ "iss": "SN-WIRE-1\u{0}", "sub": "SN-WIRE-1\u{0}" }),
        json!({ "iss": "\u{202e}1-ERIW-NS", "sub": "\u{202e}1-ERIW-NS" }),
    ];
    for (i, overrides) in absurd.iter().enumerate() {
        for path in POST_ENDPOINTS {
            out.push(Odd::form(
                format!("signed absurd assertion {i}"),
                path,
                assertion_body(path, &device.assertion_with(now, overrides.clone())),
            ));
        }
    }
    let absurd_proofs = [
        (json!({}), json!({ "iat": i64::MIN })),
        (json!({}), json!({ "iat": i64::MAX })),
        (json!({}), json!({ "iat": 1e308 })),
        (json!({}), json!({ "iat": -1e308, "nonce": "AAAA" })),
        (json!({}), json!({ "htu": "x".repeat(6000) })),
        (json!({}), json!({ "htu": "http://[::1" })),
        (json!({}), json!({ "htu": "\u{0}" })),
        (json!({}), json!({ "htm": ["POST"] })),
        (json!({}), json!({ "nonce": "%%%%" })),
        (json!({}), json!({ "jti": "\u{0}" })),
        (
            json!({ "jwk": { "kty": "EC", "crv": "P-256", "x": "A".repeat(4000), "y": "B" } }),
            json!({}),
        ),
        (
            json!({ "jwk": { "kty": "RSA", "n": "AQAB", "e": "AQAB" } }),
            json!({}),
        ),
        (json!({ "typ": ["dpop+jwt"] }), json!({})),
        (json!({ "kid": {"a": 1} }), json!({})),
    ];
    for (i, (header, claims)) in absurd_proofs.iter().enumerate() {
        for path in [TOKEN, DA] {
            let proof = device.dpop_with("POST", path, now, header.clone(), claims.clone());
            let mut form = assertion_body(path, &device.assertion(now));
            if path == TOKEN {
                form = form.replace(
                    "client_credentials",
                    "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
                ) + "&device_code=abc";
            }
            out.push(
                Odd::form(format!("signed absurd proof {i}"), path, form).header("DPoP", proof),
            );
        }
    }
    // Huge and odd parameter values.
    let huge = "a".repeat(15_000);
    let odd_values = [
        huge.as_str(),
        "\u{0}",
        "\u{202e}\u{200b}\u{feff}",
        "🦀🦀🦀",
        "' OR 1=1 --",
        "../../etc/passwd",
        "%00",
        " ",
        "\t\r\n",
        "pgr_",
        "pgr_\u{0}",
        "a.b.c",
        "..",
    ];
    for (i, value) in odd_values.iter().enumerate() {
        for name in [
            "grant_type",
            "client_id",
            "client_secret",
            "device_code",
            "refresh_token",
            "scope",
            "dpop_jkt",
            "token",
            "token_type_hint",
            "client_assertion",
            "client_assertion_type",
        ] {
            let path = path_of(i + name.len());
            let mut form: Pairs = vec![(name, (*value).to_owned())];
            if name != "grant_type" && path == TOKEN {
                form.push(("grant_type", "refresh_token".to_owned()));
            }
            if i % 2 == 0 {
                form.push(("client_id", "SN-WIRE-1".to_owned()));
            }
            let odd = Odd::form(format!("odd {name} {i}"), path, encode(&dedup(form)));
            out.push(if i % 3 == 0 {
                odd.header("Authorization", basic(&fx.id, &fx.secret))
            } else {
                odd
            });
        }
    }
    // Client ids that PostgreSQL cannot even compare (NUL) or that are no VSCHAR.
    for (i, id) in ["\u{0}", "SN-WIRE-1\u{0}", "\u{7f}", "ü", "a\nb"]
        .iter()
        .enumerate()
    {
        for path in POST_ENDPOINTS {
            let form: Pairs = vec![
                ("grant_type", "client_credentials".to_owned()),
                ("token", "x".to_owned()),
                ("client_id", (*id).to_owned()),
                ("client_secret", "s".to_owned()),
            ];
            out.push(Odd::form(
                format!("client_id {i} with a secret"),
                path,
                encode(&form),
            ));
            out.push(
                Odd::form(
                    format!("client_id {i} in Basic"),
                    path,
                    encode(&form[..2].to_vec()),
                )
                .header("Authorization", basic(id, "s")),
            );
        }
    }
    // Broken Basic credentials.
    let mut not_utf8 = b"Basic ".to_vec();
    not_utf8.extend(b"\xff\xfe\xfd");
    let b64 =
        |bytes: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
    let basics: Vec<Vec<u8>> = vec![
        b"Basic".to_vec(),
        b"Basic ".to_vec(),
        b"Basic ###".to_vec(),
        b"Basic =".to_vec(),
        b"Basic YWJj=".to_vec(),
        b"Basic YWJ".to_vec(),
        b"Basic Og==".to_vec(),
        format!("Basic {}", b64(b"\xff\xfe:\xfd")).into_bytes(),
        format!("Basic {}", b64(b"id:%ZZ")).into_bytes(),
        format!("Basic {}", b64(b"%ff:%fe")).into_bytes(),
        format!("Basic {}", b64(b"id")).into_bytes(),
        format!("Basic {}", b64(&vec![b'a'; 10_000])).into_bytes(),
        format!("Basic {}:{}", fx.id, fx.secret).into_bytes(),
        b"Basic    ".to_vec(),
        b"Basic\tYTpi".to_vec(),
        b"Bearer x".to_vec(),
        b"DPoP x".to_vec(),
        b"\xe2\x82\xac".to_vec(),
        not_utf8,
    ];
    for (i, value) in basics.into_iter().enumerate() {
        for path in POST_ENDPOINTS {
            let (form, _) = fx.valid(path);
            let form: Pairs = form
                .into_iter()
                .filter(|(k, _)| !k.starts_with("client_assertion"))
                .collect();
            out.push(
                Odd::form(format!("bad Basic {i}"), path, encode(&form))
                    .header("Authorization", value.clone()),
            );
        }
    }
    // DPoP headers that are no text, or many.
    for (i, value) in [&b"\xff\xfe"[..], b"\xc3\x28.x.y", b"", b" "]
        .iter()
        .enumerate()
    {
        for path in [TOKEN, DA] {
            out.push(
                Odd::form(
                    format!("odd DPoP header {i}"),
                    path,
                    assertion_body(path, &device.assertion(now)),
                )
                .header("DPoP", *value),
            );
        }
    }
    let mut many = Odd::form(
        "fifty DPoP headers",
        DA,
        assertion_body(DA, &device.assertion(now)),
    );
    for _ in 0..50 {
        many = many.header("DPoP", device.dpop("POST", DA, now));
    }
    out.push(many);
    out
}

/// Keeps the first of each parameter name.
fn dedup(form: Pairs) -> Pairs {
    let mut seen = std::collections::HashSet::new();
    form.into_iter().filter(|(k, _)| seen.insert(*k)).collect()
}

async fn malformed_requests_never_cause_server_errors(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    let mut rng = StdRng::seed_from_u64(0x7061_6972);
    let requests = odd_requests(&fx, &mut rng);
    assert!(requests.len() >= 300, "{} requests", requests.len());
    let mut failures = Vec::new();
    for odd in &requests {
        let mut req = fx
            .app
            .client
            .post(fx.app.url(odd.path))
            .body(odd.body.clone());
        if let Some(ct) = &odd.content_type
            && let Ok(v) = HeaderValue::from_bytes(ct.as_bytes())
        {
            req = req.header("Content-Type", v);
        }
        for (name, value) in &odd.headers {
            let v = HeaderValue::from_bytes(value).expect("a header value the client can send");
            req = req.header(*name, v);
        }
        match req.send().await {
            Ok(res) if res.status().is_server_error() => {
                failures.push(format!("{} at {}: {}", odd.label, odd.path, res.status()));
            }
            Ok(res) => {
                // Whatever the answer, it is JSON that names an error or a success, not a trace.
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                if status.is_client_error() {
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if !body["error"].is_string() {
                        failures.push(format!("{} at {}: {status} {text}", odd.label, odd.path));
                    }
                }
            }
            Err(e) => failures.push(format!("{} at {}: no response: {e}", odd.label, odd.path)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests went wrong:\n{}",
        failures.len(),
        requests.len(),
        failures.join("\n")
    );
    // The server is still healthy and still serves good requests.
    assert_eq!(fx.app.get("/healthz").await.status(), 200);
    for path in POST_ENDPOINTS {
        let (form, headers) = fx.valid(path);
        assert_ok(fx.send_form(path, &form, &headers).await, path).await;
    }
}

/// RFC 6749 §2.3: one authentication method. Two `Authorization` lines, even both right, are an
/// invalid request, never "the first one wins".
async fn two_authorization_headers_are_refused(backend: Backend) {
    let fx = Fixture::new(TestApp::start(backend).await).await;
    let credentials = basic(&fx.id, &fx.secret);
    for path in [TOKEN, INTROSPECT, REVOKE] {
        let (form, _) = fx.valid(path);
        let headers = vec![
            ("Authorization", credentials.clone()),
            ("Authorization", credentials.clone()),
        ];
        let body = assert_invalid_request(fx.send_form(path, &form, &headers).await, path).await;
        assert_eq!(
            body["error_description"],
            "send one Authorization header, not several"
        );
        let once = vec![("Authorization", credentials.clone())];
        assert_ok(fx.send_form(path, &form, &once).await, path).await;
    }
}
