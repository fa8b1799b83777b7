//! The client address behind reverse proxies (`server.trusted_proxies`): forwarding headers are
//! believed from trusted peers only, and every per-address limit counts the address they give.
//! The last two run the nginx and Caddy configurations of docs/operations.md in front of pairgate.

use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use crate::backend_tests;
use crate::portal::{PASSWORD, owner};
use crate::support::portal::{Browser, extract};
use crate::support::{Backend, JWT_BEARER, TestApp};

backend_tests!(
    an_untrusted_peer_cannot_pick_its_bucket_with_x_forwarded_for,
    clients_behind_a_trusted_proxy_get_their_own_buckets,
    nginx_in_front_passes_the_client_address,
    caddy_in_front_passes_the_client_address,
);

fn forwarded_for(address: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
    headers
}

/// Five wrong passwords for one account from `browser`: the account's free failures per address.
async fn five_failures(browser: &mut Browser<'_>, email: &str) {
    for _ in 0..5 {
        let page = browser.sign_in(email, "guess guess guess").await;
        assert_eq!(page.status, 401, "{}", page.body);
    }
}

/// With no trusted proxies (the default), a forged `X-Forwarded-For` changes nothing: every
/// attempt counts against the connection's own address, whatever each one claims.
async fn an_untrusted_peer_cannot_pick_its_bucket_with_x_forwarded_for(backend: Backend) {
    let app = TestApp::start(backend).await;
    owner(&app, "olivia@example.com").await;
    let mut attacker = Browser::with_headers(&app, forwarded_for("198.51.100.1"));
    five_failures(&mut attacker, "olivia@example.com").await;
    // A "fresh" address, and the right password: still the attacker's bucket.
    let mut again = Browser::with_headers(&app, forwarded_for("198.51.100.2"));
    let page = again.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 429, "{}", page.body);
    let page = Browser::new(&app)
        .sign_in("olivia@example.com", PASSWORD)
        .await;
    assert_eq!(page.status, 429, "{}", page.body);
}

/// Behind a trusted proxy (127.0.0.1 here), each client is counted under the address the proxy
/// reports: one client's failures do not slow another down, and the device authorization limit
/// and the pairing record see the client too.
async fn clients_behind_a_trusted_proxy_get_their_own_buckets(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .start()
        .await;
    owner(&app, "olivia@example.com").await;
    let mut attacker = Browser::with_headers(&app, forwarded_for("203.0.113.10"));
    five_failures(&mut attacker, "olivia@example.com").await;
    let page = attacker.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 429, "the attacker's own bucket is full");

    let mut olivia = Browser::with_headers(&app, forwarded_for("203.0.113.20"));
    let page = olivia.sign_in("olivia@example.com", PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);

    // The audit log names the address the proxy reported.
    let events = app.ctx.store.audit_page(None, None, 50).await.unwrap();
    let failed = events
        .iter()
        .find(|e| e.action == "user.sign_in_failed")
        .unwrap();
    assert!(
        failed.detail.contains("\"203.0.113.10\""),
        "{}",
        failed.detail
    );

    // The OAuth side reads the same address.
    let device = app.device("SN-PROXY-1").await;
    let now = app.now();
    let (assertion, proof) = (
        device.assertion(now),
        device.dpop("POST", "/oauth/device_authorization", now),
    );
    let res = app
        .post_form(
            "/oauth/device_authorization",
            &[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof), ("X-Forwarded-For", "2001:db8::30")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let started: serde_json::Value = res.json().await.unwrap();
    let pending = app
        .ctx
        .oauth
        .pending_request(started["user_code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(pending.requested_ip.as_deref(), Some("2001:db8::30"));
}

async fn nginx_in_front_passes_the_client_address(backend: Backend) {
    proxy_in_front_passes_the_client_address(backend, Kind::Nginx).await;
}

async fn caddy_in_front_passes_the_client_address(backend: Backend) {
    proxy_in_front_passes_the_client_address(backend, Kind::Caddy).await;
}

/// The documented configuration of `kind`, in front of pairgate on loopback: two clients at
/// 127.0.0.2 and 127.0.0.3 get separate sign-in throttles, although the proxy connects from
/// 127.0.0.1 and one of them forges `X-Forwarded-For` and `Forwarded` on every request.
async fn proxy_in_front_passes_the_client_address(backend: Backend, kind: Kind) {
    let Some(binary) = kind.binary() else {
        assert!(
            std::env::var_os("PAIRGATE_TEST_PROXY_REQUIRED").is_none(),
            "PAIRGATE_TEST_PROXY_REQUIRED is set but {kind:?} is not installed"
        );
        eprintln!("{kind:?} not installed: skipping the reverse proxy test");
        return;
    };
    let proxy_port = free_port();
    let public_url = format!("https://127.0.0.1:{proxy_port}");
    let app = TestApp::builder(backend)
        .config("[server]\ntrusted_proxies = [\"127.0.0.1/32\"]")
        .config("[portal]\nlogin_free_failures_per_ip = 3")
        .public_url(&public_url)
        .start()
        .await;
    let app_port = app.base.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let _proxy = Proxy::start(kind, &binary, dir.path(), proxy_port, &app_port).await;

    let client = |source: &str| {
        reqwest::Client::builder()
            .local_address(source.parse::<IpAddr>().unwrap())
            .cookie_store(true)
            .danger_accept_invalid_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let sign_in = |client: reqwest::Client, email: String, forged: Option<String>| {
        let public_url = public_url.clone();
        async move {
            let page = client
                .get(format!("{public_url}/login"))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200);
            let csrf = extract(&page.text().await.unwrap(), "name=\"csrf\" value=\"").unwrap();
            let mut post = client
                .post(format!("{public_url}/login"))
                .header("Origin", &public_url)
                .form(&[
                    ("email", email.as_str()),
                    ("password", "guess guess guess"),
                    ("csrf", csrf.as_str()),
                ]);
            if let Some(forged) = forged {
                post = post
                    .header("Forwarded", format!("for={forged}"))
                    .header("X-Forwarded-For", forged);
            }
            post.send().await.unwrap().status().as_u16()
        }
    };

    let (first, second) = (client("127.0.0.2"), client("127.0.0.3"));
    // The first client fails three times, each time claiming another address.
    for n in 1..=3 {
        let status = sign_in(
            first.clone(),
            format!("nobody{n}@example.com"),
            Some(format!("198.51.100.{n}")),
        )
        .await;
        assert_eq!(status, 401);
    }
    let status = sign_in(
        first.clone(),
        "nobody4@example.com".into(),
        Some("198.51.100.4".into()),
    )
    .await;
    assert_eq!(status, 429, "127.0.0.2 has used its free failures");
    // The second client is not held up by the first.
    let status = sign_in(second.clone(), "someone@example.com".into(), None).await;
    assert_eq!(status, 401, "127.0.0.3 has a bucket of its own");
}

/// A reverse proxy whose documented configuration the test runs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn binary(self) -> Option<String> {
        let names: &[&str] = match self {
            Kind::Nginx => &["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"],
            Kind::Caddy => &["/usr/bin/caddy", "/usr/local/bin/caddy"],
        };
        names
            .iter()
            .find(|p| Path::new(p).is_file())
            .map(|p| (*p).to_owned())
    }

    /// The heading of its section in docs/operations.md, and the language of its block there.
    fn documented(self) -> (&'static str, &'static str) {
        match self {
            Kind::Nginx => ("### nginx", "nginx"),
            Kind::Caddy => ("### Caddy", "caddyfile"),
        }
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The first `language` block after `heading` in docs/operations.md, each `(documented, test)`
/// replaced once (the test fails if the documentation no longer has it).
pub fn documented_block(
    (heading, language): (&str, &str),
    replacements: &[(&str, String)],
) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let section = doc
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/operations.md has a {heading} section"));
    let mut block = section
        .split(&format!("```{language}\n"))
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap_or_else(|| panic!("the {heading} section has a {language} block"))
        .to_owned();
    for (documented, test) in replacements {
        assert_eq!(block.matches(documented).count(), 1, "{documented}");
        block = block.replace(documented, test);
    }
    block
}

/// The proxy in the foreground, one process, everything under a temporary directory; killed on
/// drop.
struct Proxy(Child);

impl Proxy {
    async fn start(kind: Kind, binary: &str, dir: &Path, proxy_port: u16, app_port: &str) -> Self {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let openssl = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(openssl.success(), "openssl made a certificate");
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let d = dir.display();
        let log = dir.join("error.log");
        let mut command = Command::new(binary);
        match kind {
            Kind::Nginx => {
                let block = documented_block(
                    kind.documented(),
                    &[
                        (
                            "listen 443 ssl;",
                            format!("listen 127.0.0.1:{proxy_port} ssl;"),
                        ),
                        ("/etc/ssl/certs/id.example.com.pem", cert),
                        ("/etc/ssl/private/id.example.com.key", key),
                        (
                            "proxy_pass http://127.0.0.1:8080;",
                            format!("proxy_pass http://127.0.0.1:{app_port};"),
                        ),
                    ],
                );
                let conf = format!(
                    "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\n\
                     error_log {d}/error.log;\n\
                     events {{ worker_connections 64; }}\n\
                     http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    \
                     proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
                     uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n{block}\n}}\n"
                );
                std::fs::write(dir.join("nginx.conf"), conf).unwrap();
                command
                    .arg("-p")
                    .arg(dir)
                    .arg("-e")
                    .arg(&log)
                    .arg("-c")
                    .arg(dir.join("nginx.conf"))
                    .stderr(Stdio::null());
            }
            Kind::Caddy => {
                // The site gets the test's certificate instead of one from an ACME issuer.
                let block = documented_block(
                    kind.documented(),
                    &[
                        (
                            "id.example.com {",
                            format!(
                                "https://127.0.0.1:{proxy_port} {{\n    bind 127.0.0.1\n    \
                                 tls {cert} {key}"
                            ),
                        ),
                        (
                            "reverse_proxy 127.0.0.1:8080 {",
                            format!("reverse_proxy 127.0.0.1:{app_port} {{"),
                        ),
                    ],
                );
                let conf = format!(
                    "{{\n    admin off\n    auto_https disable_redirects\n    \
                     storage file_system {d}/caddy\n}}\n{block}"
                );
                std::fs::write(dir.join("Caddyfile"), conf).unwrap();
                command
                    .args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(dir.join("Caddyfile"))
                    .env("HOME", dir)
                    .env("XDG_DATA_HOME", dir)
                    .env("XDG_CONFIG_HOME", dir)
                    .stderr(std::fs::File::create(&log).unwrap());
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("the proxy starts");
        let proxy = Self(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", proxy_port))
                .await
                .is_ok()
            {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("{kind:?} did not listen on port {proxy_port} within 5 s:\n{log}");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
