//! What pairgate does while its database is unreachable or cannot write (PostgreSQL gone or
//! read-only, SQLite on a full disk or a read-only file): readiness and database-backed
//! requests on every surface answer 503 with Retry-After, and everything recovers without a
//! restart once the fault ends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::erp;
use crate::support::device::{Signer, TestDevice};
use crate::support::portal::Browser;
use crate::support::{Backend, JWT_BEARER, TestApp, postgres};
use crate::telemetry::{self, Paired};

#[actix_web::test]
async fn postgres_outage_turns_readyz_503_and_recovers() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::builder(backend)
        .via_proxy()
        .config("[database]\nacquire_timeout_ms = 500\n[server]\nretry_after_secs = 7")
        .start()
        .await;
    let device = app.device("SN-OUTAGE").await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    app.proxy.as_ref().unwrap().cut();
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "7");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "unavailable"})
    );
    // The process itself is fine.
    assert_eq!(app.get("/healthz").await.status(), 200);
    // Requests that need the database say so, and when to come back.
    let res = app.device_authorization(&device).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "7");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"error": "temporarily_unavailable"})
    );

    app.proxy.as_ref().unwrap().restore();
    let mut status = 0;
    for _ in 0..40 {
        status = app.get("/readyz").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        status, 200,
        "readyz did not recover after the database came back"
    );
}

/// What the fault tests send to every surface: a device with a pending pairing, a paired
/// device with its tokens, an ERP client with its token, and one device authorization request
/// prepared in advance (so that it can be sent again, unchanged, once the fault is over).
struct Surfaces {
    pending: TestDevice,
    device_code: String,
    paired: Paired,
    erp: (String, String),
    request: (String, String),
}

impl Surfaces {
    async fn new(app: &TestApp) -> Self {
        let pending = app.device("SN-FAULT-1").await;
        let started = app.start_pairing(&pending).await;
        let paired = telemetry::paired(app, "SN-FAULT-2").await;
        let (client_id, secret) = app.service_client_with_secret("erp").await;
        let token = erp::token_for(app, &client_id, &secret).await;
        let device = app.device("SN-FAULT-3").await;
        let now = app.now();
        Self {
            pending,
            device_code: started["device_code"].as_str().unwrap().to_owned(),
            paired,
            erp: (client_id, token),
            request: (
                device.assertion(now),
                device.dpop("POST", "/oauth/device_authorization", now),
            ),
        }
    }

    /// The prepared device authorization request; the same jti values each time.
    async fn prepared_request(&self, app: &TestApp) -> reqwest::Response {
        app.post_form(
            "/oauth/device_authorization",
            &[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &self.request.0),
            ],
            &[("DPoP", &self.request.1)],
        )
        .await
    }

    /// Every surface answers 503 with `Retry-After` (never 500), `/readyz` says not ready, and
    /// `/healthz` still says the process is up.
    async fn assert_unavailable(&self, app: &TestApp, stage: &str) {
        let unavailable = |res: &reqwest::Response, what: &str| {
            assert_eq!(res.status(), 503, "{stage}: {what}");
            assert_eq!(res.headers()["retry-after"], "7", "{stage}: {what}");
        };
        let res = app.get("/readyz").await;
        unavailable(&res, "readyz");
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"status": "unavailable"})
        );
        assert_eq!(app.get("/healthz").await.status(), 200, "{stage}");

        // OAuth: a device authorization and a token request.
        let res = self.prepared_request(app).await;
        unavailable(&res, "device authorization");
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"error": "temporarily_unavailable"})
        );
        let res = app.poll(&self.pending, &self.device_code).await;
        unavailable(&res, "token endpoint");

        // Telemetry: the upload's batch cannot be committed.
        let body = telemetry::readings(app, &format!("fault-{}", stage.replace(' ', "-")), 3);
        let res = telemetry::upload(app, &self.paired, &body).await;
        unavailable(&res, "telemetry upload");

        // ERP: a device registration.
        let res = app
            .client
            .put(app.url("/api/erp/v1/devices/SN-FAULT-ERP"))
            .header("Authorization", format!("Bearer {}", self.erp.1))
            .json(&serde_json::json!({
                "model": "TX-9000",
                "public_jwk": Signer::ed25519().jwk(),
            }))
            .send()
            .await
            .unwrap();
        unavailable(&res, "ERP device registration");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{stage}"
        );

        // Portal: a sign-in counts the attempt before it checks it, a write.
        let mut browser = Browser::new(app);
        let page = browser
            .sign_in("nobody@example.com", "wrong password")
            .await;
        assert_eq!(page.status, 503, "{stage}: portal sign-in: {}", page.body);
    }

    /// Everything works again, and the request refused during the fault is taken as new: its
    /// jti values were never committed, so no replay memory may hold them.
    async fn assert_recovered(&self, app: &TestApp) {
        assert_eq!(wait_until_ready(app).await, 200, "readyz did not recover");
        assert_eq!(self.prepared_request(app).await.status(), 200);
        let res = app.poll(&self.pending, &self.device_code).await;
        assert_eq!(res.status(), 400);
        let body = telemetry::readings(app, "after", 3);
        let res = telemetry::upload(app, &self.paired, &body).await;
        assert_eq!(telemetry::accepted(res).await, (3, 0));
        assert_eq!(telemetry::stored(app, &self.paired.device.serial).await, 3);
    }
}

/// Polls `/readyz` for up to 10 s; returns the last status.
async fn wait_until_ready(app: &TestApp) -> u16 {
    let mut status = 0;
    for _ in 0..40 {
        status = app.get("/readyz").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    status
}

/// A small tmpfs mounted for one test, unmounted when dropped. Mounting needs root (as here and
/// in CI); elsewhere the test is skipped, unless `PAIRGATE_TEST_MOUNT_REQUIRED` is set (as
/// `.ci/run` does), which makes it fail instead.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .map(|out| out.status.success())
            .unwrap_or(false);
        let tmpfs = mounted.then_some(Self { dir });
        // chattr +i binds root too; tmpfs takes it since Linux 6.0.
        let immutable = tmpfs.as_ref().is_some_and(|t| {
            let probe = t.path().join("probe");
            std::fs::write(&probe, b"").unwrap();
            let ok = chattr("+i", &probe) && chattr("-i", &probe);
            std::fs::remove_file(&probe).unwrap();
            ok
        });
        if tmpfs.is_some() && immutable {
            return tmpfs;
        }
        assert!(
            std::env::var_os("PAIRGATE_TEST_MOUNT_REQUIRED").is_none(),
            "PAIRGATE_TEST_MOUNT_REQUIRED is set but a tmpfs with chattr +i cannot be had here"
        );
        eprintln!("cannot mount a tmpfs and make files immutable (not root?): skipping");
        None
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..512]).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.path()) {
            for entry in entries.flatten() {
                chattr("-i", &entry.path());
            }
        }
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// `chattr FLAG PATH`; true when it worked.
pub fn chattr(flag: &str, path: &Path) -> bool {
    Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// SQLite on a full disk: every surface answers 503 with `Retry-After`, `/readyz` says not
/// ready, and all of it recovers by itself once there is space again, without losing or
/// replaying anything. (A read-only SQLite file: `binary.rs`, since only a connection opened
/// after the file became read-only notices.)
#[actix_web::test]
async fn sqlite_full_disk_answers_503_and_recovers() {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let app = TestApp::builder(Backend::Sqlite)
        .sqlite_dir(tmpfs.path())
        .config("[server]\nretry_after_secs = 7")
        .start()
        .await;
    let surfaces = Surfaces::new(&app).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    // The WAL is emptied first, so that the next commit has to grow it.
    app.raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").await;
    let filler = tmpfs.fill();
    surfaces.assert_unavailable(&app, "disk full").await;
    // Still full: the failed commits left nothing behind that a retry could trip over.
    surfaces.assert_unavailable(&app, "still full").await;

    std::fs::remove_file(&filler).unwrap();
    surfaces.assert_recovered(&app).await;
}

/// PostgreSQL that accepts connections but refuses writes (a standby, or
/// `default_transaction_read_only`): every surface answers 503 with `Retry-After`, and service
/// comes back once the database takes writes again, without a restart.
#[actix_web::test]
async fn postgres_read_only_database_answers_503_and_recovers() {
    let Some(Backend::Postgres(admin)) = postgres() else {
        return;
    };
    // Two connections: the ones the cut leaves dead are soon used up (below).
    let app = TestApp::builder(Backend::Postgres(admin.clone()))
        .config("[server]\nretry_after_secs = 7\n[database]\npool_size = 2")
        .start()
        .await;
    let surfaces = Surfaces::new(&app).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let pairgate::config::DatabaseUrl::Postgres(url) = app.ctx.settings.database.url.clone() else {
        panic!("a PostgreSQL app");
    };
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();

    // New sessions of this database are read-only; the ones pairgate holds are ended, as a
    // failover to a standby would.
    admin_sql(
        &admin,
        &format!("ALTER DATABASE \"{name}\" SET default_transaction_read_only = on"),
    )
    .await;
    admin_sql(
        &admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    )
    .await;
    // A request that meets a connection the cut left dead gets a 503 as well, and the pool
    // drops that connection; once those are used up, every connection is a new, read-only one.
    for _ in 0..4 {
        let _ = app.get("/readyz").await;
    }
    surfaces
        .assert_unavailable(&app, "read-only database")
        .await;

    // Writable again for new sessions; the connections that met the read-only state are
    // replaced, so pairgate recovers without anyone ending its sessions.
    admin_sql(
        &admin,
        &format!("ALTER DATABASE \"{name}\" RESET default_transaction_read_only"),
    )
    .await;
    surfaces.assert_recovered(&app).await;
}

async fn admin_sql(admin: &str, sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let (admin, sql) = (admin.to_owned(), sql.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&admin).unwrap();
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    })
    .await
    .unwrap();
}
