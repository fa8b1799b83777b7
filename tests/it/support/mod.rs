//! The test harness: a [`TestApp`] runs the real actix server on a loopback port against a fresh
//! database (a temporary SQLite file, or a new PostgreSQL database when
//! `PAIRGATE_TEST_POSTGRES_URL` is set), with a [`ManualClock`].

pub mod axe;
pub mod browser;
pub mod ceremony;
pub mod device;
pub mod portal;
pub mod proxy;
pub mod soft_passkey;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use chrono::{DateTime, Utc};
use diesel::{Connection, RunQueryDsl, pg::PgConnection};
use pairgate::app::AppContext;
use pairgate::clock::ManualClock;
use pairgate::config::{DatabaseUrl, PublicUrl, Settings};
use pairgate::ids::{DeviceSerial, TenantId};

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a PostgreSQL server, on which each test creates its own database.
    Postgres(String),
}

/// The PostgreSQL server to test against, if configured. When `PAIRGATE_TEST_POSTGRES_REQUIRED`
/// is set (as `.ci/run` does), a missing URL fails the test instead of skipping it.
pub fn postgres() -> Option<Backend> {
    match std::env::var("PAIRGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
        _ => {
            assert!(
                std::env::var_os("PAIRGATE_TEST_POSTGRES_REQUIRED").is_none(),
                "PAIRGATE_TEST_POSTGRES_REQUIRED is set but PAIRGATE_TEST_POSTGRES_URL is not"
            );
            eprintln!("PAIRGATE_TEST_POSTGRES_URL not set: skipping the PostgreSQL variant");
            None
        }
    }
}

/// Generates, for each named `async fn(Backend)`, a module with a `sqlite` and a `postgres` test.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }
            #[actix_web::test]
            async fn postgres() {
                if let Some(backend) = $crate::support::postgres() {
                    super::$name(backend).await;
                }
            }
        }
    )*};
}

/// The instant a test clock starts at: the real time, whole seconds, so tokens that third-party
/// libraries check against the wall clock are valid.
pub fn test_epoch() -> DateTime<Utc> {
    let now = pairgate::clock::Clock::now(&pairgate::clock::SystemClock);
    DateTime::from_timestamp(now.timestamp(), 0).expect("valid timestamp")
}

/// A database created for one test and removed afterwards.
enum TestDb {
    Sqlite(#[expect(dead_code, reason = "kept alive until the test ends")] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self
            && let Ok(mut conn) = PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    backend: Backend,
    overlay: String,
    via_proxy: bool,
    public_url: Option<String>,
    public_base: Option<String>,
    localhost: bool,
    sqlite_dir: Option<std::path::PathBuf>,
}

impl TestAppBuilder {
    /// Adds TOML on top of the defaults (e.g. `"[database]\nacquire_timeout_ms = 500"`).
    pub fn config(mut self, toml: &str) -> Self {
        self.overlay.push('\n');
        self.overlay.push_str(toml);
        self
    }

    /// Serves under this public URL (e.g. a reverse proxy's) instead of its own address.
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    /// Routes the app's PostgreSQL connections through a [`proxy::Proxy`] the test can cut.
    pub fn via_proxy(mut self) -> Self {
        self.via_proxy = true;
        self
    }

    /// Serves behind something else on loopback (e.g. a proxy the test runs): `base` becomes
    /// the public URL and [`TestApp::base`], and the server listens on [`TestApp::bound`].
    pub fn behind(mut self, base: &str) -> Self {
        self.public_base = Some(base.to_owned());
        self
    }

    /// Serves as `http://localhost:PORT` (still bound to 127.0.0.1): WebAuthn wants a domain
    /// name as its relying-party id, not an IP, and browsers treat `http://localhost` as a
    /// secure context.
    pub fn on_localhost(mut self) -> Self {
        self.localhost = true;
        self
    }

    /// SQLite: keeps the database in `dir` (which the test owns, e.g. a small tmpfs) instead of
    /// a fresh temporary folder.
    pub fn sqlite_dir(mut self, dir: &std::path::Path) -> Self {
        self.sqlite_dir = Some(dir.to_path_buf());
        self
    }

    pub async fn start(self) -> TestApp {
        let mut settings = Settings::defaults_with(&self.overlay).expect("test settings");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let bound = addr.to_string();
        assert!(
            !(self.localhost && self.public_base.is_some()),
            "on_localhost and behind both choose the base URL"
        );
        let base = match &self.public_base {
            Some(base) => base.clone(),
            None if self.localhost => format!("http://localhost:{}", addr.port()),
            None => format!("http://{bound}"),
        };
        let public_url = self.public_url.clone().unwrap_or_else(|| base.clone());
        settings.server.public_url = PublicUrl::try_from(public_url).expect("public url");
        settings.server.workers = 2;
        settings.server.shutdown_timeout_secs = 1;
        settings.keys.master_key = pairgate::config::Secret::new(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            rand::random::<[u8; 32]>(),
        ));
        let mut proxy = None;
        let db = match &self.backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let folder = self.sqlite_dir.as_deref().unwrap_or(dir.path());
                settings.database.url = DatabaseUrl::Sqlite(folder.join("pairgate.db"));
                TestDb::Sqlite(dir)
            }
            Backend::Postgres(admin_url) => {
                let name = format!("pairgate_test_{}", hex(&rand_bytes()));
                let admin = admin_url.clone();
                let create = name.clone();
                tokio::task::spawn_blocking(move || {
                    let mut conn = PgConnection::establish(&admin).expect("connect to PostgreSQL");
                    diesel::sql_query(format!("CREATE DATABASE \"{create}\""))
                        .execute(&mut conn)
                        .expect("create test database");
                })
                .await
                .expect("create database task");
                let mut url = url::Url::parse(admin_url).expect("postgres url");
                url.set_path(&format!("/{name}"));
                if self.via_proxy {
                    let upstream = format!(
                        "{}:{}",
                        url.host_str().expect("postgres host"),
                        url.port().unwrap_or(5432)
                    );
                    let p = proxy::Proxy::start(upstream).await;
                    url.set_host(Some("127.0.0.1")).expect("host");
                    url.set_port(Some(p.port())).expect("port");
                    proxy = Some(p);
                }
                settings.database.url = DatabaseUrl::try_from(url.to_string()).expect("db url");
                TestDb::Postgres {
                    admin_url: admin_url.clone(),
                    name,
                }
            }
        };
        let clock = Arc::new(ManualClock::new(test_epoch()));
        let ctx = AppContext::start(settings, clock.clone())
            .await
            .expect("start app context");
        let server = pairgate::http::server(ctx.clone(), listener, pairgate::http::Signals::Ignore)
            .expect("start server");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestApp {
            base,
            bound,
            ctx,
            clock,
            // `localhost` may resolve to ::1 first, where nothing listens.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .resolve("localhost", addr)
                .build()
                .expect("http client"),
            proxy,
            handle,
            _db: db,
        }
    }
}

/// A running pairgate with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT` (`http://localhost:PORT` [`TestAppBuilder::on_localhost`]), also
    /// the configured public URL (issuer).
    pub base: String,
    /// The address the server listens on (`127.0.0.1:PORT`): `base`'s, unless it serves
    /// [`TestAppBuilder::behind`] something.
    pub bound: String,
    pub ctx: AppContext,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    pub proxy: Option<proxy::Proxy>,
    handle: ServerHandle,
    // Dropped last: the database outlives the server.
    _db: TestDb,
}

impl TestApp {
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            overlay: String::new(),
            via_proxy: false,
            public_url: None,
            public_base: None,
            localhost: false,
            sqlite_dir: None,
        }
    }

    pub async fn start(backend: Backend) -> TestApp {
        Self::builder(backend).start().await
    }

    /// The absolute URL of `path`.
    /// The app's database as `PAIRGATE_DATABASE_URL` names it, for the binaries a test runs.
    pub fn database_url(&self) -> String {
        match &self.ctx.settings.database.url {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => url.clone(),
        }
    }

    /// `pairgate` in `dir`, on this app's database and master key (quiet logs), as an operator
    /// would run it beside the server.
    pub fn cli(&self, dir: &std::path::Path) -> std::process::Command {
        let mut cmd = clean_command(env!("CARGO_BIN_EXE_pairgate"));
        cmd.current_dir(dir)
            .env("PAIRGATE_DATABASE_URL", self.database_url())
            .env(
                "PAIRGATE_KEYS__MASTER_KEY",
                self.ctx.settings.keys.master_key.expose(),
            )
            .env("PAIRGATE_LOG__LEVEL", "warn");
        cmd
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs SQL on a connection of its own, behind pairgate's back (to tamper, or to inspect).
    pub async fn raw_sql(&self, sql: &str) {
        let spec = pairgate::store::ConnectionSpec::new(&self.ctx.settings.database);
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = spec.establish().expect("raw connection");
            diesel::sql_query(sql).execute(&mut conn).expect("raw sql");
        })
        .await
        .expect("raw sql task");
    }

    /// One number from SQL run behind pairgate's back: `sql` selects a single BIGINT as `n`.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Number {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let spec = pairgate::store::ConnectionSpec::new(&self.ctx.settings.database);
        let sql = sql.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = spec.establish().expect("raw connection");
            diesel::sql_query(sql)
                .get_result::<Number>(&mut conn)
                .expect("raw query")
                .n
        })
        .await
        .expect("raw query task")
    }

    /// The app's clock, in whole seconds (for JWT claims).
    pub fn now(&self) -> i64 {
        pairgate::clock::Clock::now(&*self.clock).timestamp()
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(chrono::Duration::seconds(secs));
    }

    pub fn advance_ms(&self, ms: i64) {
        self.clock.advance(chrono::Duration::milliseconds(ms));
    }

    /// Registers a device with a fresh ES256 factory key.
    pub async fn device(&self, serial: &str) -> device::TestDevice {
        self.device_with_key(serial, device::Signer::es256()).await
    }

    pub async fn device_with_key(&self, serial: &str, key: device::Signer) -> device::TestDevice {
        pairgate::devices::register(
            &self.ctx.store,
            self.now() * 1000,
            "test",
            &DeviceSerial::from(serial),
            "TX-9000",
            &key.jwk(),
        )
        .await
        .expect("register device");
        device::TestDevice {
            serial: serial.to_owned(),
            key,
            issuer: self.base.clone(),
        }
    }

    /// Registers a service client authenticating with a secret; returns (client_id, secret).
    pub async fn service_client_with_secret(&self, scope: &str) -> (String, String) {
        let created = pairgate::oauth::clients::create_service_client(
            &self.ctx.store,
            self.now() * 1000,
            "test",
            "Test ERP",
            scope,
            pairgate::oauth::clients::ClientCredential::Secret,
        )
        .await
        .expect("create service client");
        (created.client_id, created.secret.expect("secret"))
    }

    /// Registers a service client authenticating with private_key_jwt; returns it as a
    /// [`device::TestDevice`] (whose `serial` is the client_id), which signs assertions alike.
    pub async fn service_client_with_key(
        &self,
        scope: &str,
        key: device::Signer,
    ) -> device::TestDevice {
        let created = pairgate::oauth::clients::create_service_client(
            &self.ctx.store,
            self.now() * 1000,
            "test",
            "Test relying app",
            scope,
            pairgate::oauth::clients::ClientCredential::Jwks(
                serde_json::json!({ "keys": [key.jwk()] }),
            ),
        )
        .await
        .expect("create service client");
        device::TestDevice {
            serial: created.client_id,
            key,
            issuer: self.base.clone(),
        }
    }

    pub async fn tenant(&self, name: &str) -> TenantId {
        pairgate::accounts::create_tenant(&self.ctx.store, self.now() * 1000, "test", name)
            .await
            .expect("create tenant")
    }

    /// POSTs a form, with optional extra headers.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("POST")
    }

    /// Starts a device authorization for `device` (with a DPoP proof), returning the response.
    pub async fn device_authorization(&self, device: &device::TestDevice) -> reqwest::Response {
        let now = self.now();
        let assertion = device.assertion(now);
        let proof = device.dpop("POST", "/oauth/device_authorization", now);
        self.post_form(
            "/oauth/device_authorization",
            &[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await
    }

    /// Starts a device authorization that must succeed; returns its JSON.
    pub async fn start_pairing(&self, device: &device::TestDevice) -> serde_json::Value {
        let res = self.device_authorization(device).await;
        assert_eq!(res.status(), 200, "device authorization failed");
        res.json().await.expect("device authorization JSON")
    }

    /// One poll of the token endpoint with the device_code grant.
    pub async fn poll(&self, device: &device::TestDevice, device_code: &str) -> reqwest::Response {
        let now = self.now();
        let assertion = device.assertion(now);
        let proof = device.dpop("POST", "/oauth/token", now);
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("device_code", device_code),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
            &[("DPoP", &proof)],
        )
        .await
    }

    /// Pairs `device` into `tenant` end to end; returns the token response JSON.
    pub async fn pair(&self, device: &device::TestDevice, tenant: TenantId) -> serde_json::Value {
        let started = self.start_pairing(device).await;
        self.ctx
            .oauth
            .decide(
                started["user_code"].as_str().unwrap(),
                pairgate::oauth::device_flow::Verdict::Approve { tenant_id: tenant },
                "user:test",
            )
            .await
            .expect("approve");
        let res = self
            .poll(device, started["device_code"].as_str().unwrap())
            .await;
        assert_eq!(res.status(), 200, "poll after approval failed");
        res.json().await.expect("token JSON")
    }

    /// Stops the HTTP server at once, as a crash would; the database and context stay.
    pub async fn stop_server(&self) {
        self.handle.stop(false).await;
    }

    /// Serves again on the same address with the same context (after [`Self::stop_server`]).
    pub fn start_server(&mut self) {
        let listener = TcpListener::bind(&self.bound).expect("rebind");
        let server =
            pairgate::http::server(self.ctx.clone(), listener, pairgate::http::Signals::Ignore)
                .expect("restart server");
        self.handle = server.handle();
        actix_web::rt::spawn(server);
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

pub fn rand_bytes() -> [u8; 8] {
    rand::random()
}

/// A command (one of this crate's binaries, or a wrapper such as `script`) that starts from a
/// clean slate: no `PAIRGATE_*` variable of the test's own environment reaches it, only what the
/// test sets.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("PAIRGATE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl TestApp {
    /// The value `/metrics` shows for `series` (name and labels, as rendered), if it shows it.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").await.text().await.expect("metrics");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// How many requests `limit` refused, as `pairgate_throttled_total` shows it.
    pub async fn throttled(&self, limit: &str) -> Option<f64> {
        self.metric(&format!("pairgate_throttled_total{{limit=\"{limit}\"}}"))
            .await
    }
}
