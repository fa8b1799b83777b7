//! Migrations: the two backend folders stay in step, and every migration reverts and re-applies.

use std::collections::BTreeSet;
use std::path::Path;

use pairgate::store::{Backend as StoreBackend, migrations};

use crate::backend_tests;
use crate::oauth::error_of;
use crate::oauth::refresh::{refresh, refreshed};
use crate::support::{Backend, JWT_BEARER, TestApp};

fn folder_names(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect()
}

#[test]
fn sqlite_and_postgres_folders_have_the_same_migrations() {
    let sqlite = folder_names("migrations/sqlite");
    let postgres = folder_names("migrations/postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
    for name in &sqlite {
        for backend in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(backend)
                    .join(name)
                    .join(file);
                assert!(path.is_file(), "{} is missing", path.display());
            }
        }
    }
    // The embedded lists match the folders too (a stale build would not).
    let embedded_sqlite: BTreeSet<String> = migrations::names(StoreBackend::Sqlite)
        .unwrap()
        .into_iter()
        .collect();
    let embedded_pg: BTreeSet<String> = migrations::names(StoreBackend::Postgres)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(embedded_sqlite, sqlite);
    assert_eq!(embedded_pg, postgres);
}

/// Reverts migrations, newest first, through the one whose name ends with `name`; returns how
/// many it reverted (later migrations go too, and come back with the next `migrate`).
async fn revert_through(store: &pairgate::store::Store, name: &str) -> usize {
    let names = migrations::names(store.backend()).unwrap();
    let at = names.iter().position(|n| n.ends_with(name)).unwrap();
    for _ in at..names.len() {
        store.revert_last_migration().await.unwrap();
    }
    names.len() - at
}

backend_tests!(
    migrations_run_down_and_up_again,
    the_replay_store_migration_keeps_seen_jtis,
    live_refresh_tokens_from_before_families_carry_over,
    a_refresh_family_keeps_the_generation_it_was_issued_in,
    readings_carry_over_into_daily_partitions_and_back,
);

async fn migrations_run_down_and_up_again(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    let all = migrations::names(store.backend()).unwrap();
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "start applied all"
    );
    let reverted = store.revert_all_migrations().await.unwrap();
    assert_eq!(reverted.len(), all.len());
    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), all.len());
    assert_eq!(app.get("/readyz").await.status(), 200);
}

/// Migration 000008 rebuilds SQLite's `seen_jtis` (on PostgreSQL it only comments the table):
/// reverted and applied again over live data, the replay records stay. The writer reloads its
/// replay memory after a migration, so the refusal below comes from the rows the migration
/// copied. (Reverting 000009 on the way loses the device's refresh token, which is why the
/// request is refused at its client assertion, before any token is looked at.)
async fn the_replay_store_migration_keeps_seen_jtis(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-7001").await;
    let token_of = |v: serde_json::Value| v["refresh_token"].as_str().unwrap().to_owned();
    let first = token_of(app.pair(&device, tenant).await);
    // A refresh whose client assertion the replay store records.
    let now = app.now();
    let assertion = device.assertion(now);
    let refresh_using = |token: String| {
        let assertion = assertion.clone();
        let proof = device.dpop("POST", "/oauth/token", now);
        let app = &app;
        async move {
            app.post_form(
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ],
                &[("DPoP", proof.as_str())],
            )
            .await
        }
    };
    let res = refresh_using(first).await;
    assert_eq!(res.status(), 200);
    let second = token_of(res.json().await.unwrap());

    let store = &app.ctx.store;
    let reverted = revert_through(store, "seen_jtis_by_expiry").await;
    assert!(reverted >= 2, "000008 and 000009 at least");
    assert_eq!(
        store.migrate().await.unwrap().len(),
        reverted,
        "applied again"
    );

    let body = error_of(refresh_using(second).await, 400).await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "the client assertion was used before"
    );
}

/// Migration 000009 moves refresh tokens into families. A family's live token from before goes
/// on working, once: its use rotates it into the counter form, and using it again is a reuse.
/// Used and revoked tokens from before are refused as unknown. Reverted, a family still at its
/// token from before gets that token's row back.
async fn live_refresh_tokens_from_before_families_carry_over(backend: Backend) {
    use pairgate::crypto::jose;
    use pairgate::crypto::tokens::hash_token;
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-7002").await;
    // fam-c is another device's: a device holds one family, and a reuse in fam-a ends all of
    // its device's tokens.
    let keeper = app.device("SN-7004").await;
    // Paired to the tenant, as devices holding refresh tokens are (these pairings' own families
    // are in counter form, and do not survive the revert).
    app.pair(&device, tenant).await;
    app.pair(&keeper, tenant).await;
    let store = &app.ctx.store;
    let reverted = revert_through(store, "refresh_families").await;

    let legacy = |n: u8| format!("pgr_{}", jose::b64([n; 32]));
    let (used, live, revoked, untouched) = (legacy(1), legacy(2), legacy(3), legacy(4));
    let now_ms = app.now() * 1000;
    let rows = [
        (&used, "fam-a", "consumed", &device),
        (&live, "fam-a", "active", &device),
        (&revoked, "fam-b", "revoked", &device),
        (&untouched, "fam-c", "active", &keeper),
    ];
    for (token, family, status, holder) in rows {
        let serial = &holder.serial;
        app.raw_sql(&format!(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, tenant_id, \
             scope, jkt, status, created_at, idle_expires_at, family_expires_at) VALUES ('{}', \
             '{family}', '{serial}', 'device:{serial}', {tenant}, 'telemetry:write', '{}', \
             '{status}', {now_ms}, {}, {})",
            hash_token(token),
            holder.key.thumbprint(),
            now_ms + 3_600_000,
            now_ms + 86_400_000,
        ))
        .await;
    }
    assert_eq!(store.migrate().await.unwrap().len(), reverted);
    let families = "SELECT COUNT(*) AS n FROM refresh_families";
    assert_eq!(app.query_i64(families).await, 2, "fam-a and fam-c");

    for gone in [&used, &revoked] {
        let body = error_of(refresh(&app, &device, gone).await, 400).await;
        assert_eq!(body["error_description"], "unknown refresh token");
    }
    let next = refreshed(&app, &device, &live).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next.len(), live.len(), "the counter form");
    // Past the retry grace, using it again is a reuse.
    app.advance(30);
    let body = error_of(refresh(&app, &device, &live).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
    let body = error_of(refresh(&app, &device, &next).await, 400).await;
    assert_eq!(body["error_description"], "the refresh token was revoked");

    // Reverted: only fam-c, still at its token from before, can go back.
    assert_eq!(revert_through(store, "refresh_families").await, reverted);
    let back = "SELECT COUNT(*) AS n FROM refresh_tokens";
    assert_eq!(app.query_i64(back).await, 1);
    let kept = format!(
        "SELECT COUNT(*) AS n FROM refresh_tokens WHERE token_hash = '{}' AND status = 'active'",
        hash_token(&untouched)
    );
    assert_eq!(app.query_i64(&kept).await, 1);
    assert_eq!(store.migrate().await.unwrap().len(), reverted);
    refreshed(&app, &keeper, &untouched).await;
}

/// The `refresh_family_generation` migration records each family's device generation; live
/// families of devices take the device's current one, so their tokens go on working.
async fn a_refresh_family_keeps_the_generation_it_was_issued_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-7003").await;
    let token = app.pair(&device, tenant).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let generation = "SELECT generation AS n FROM refresh_families WHERE client_id = 'SN-7003'";
    let current = "SELECT token_generation AS n FROM devices WHERE serial = 'SN-7003'";
    assert_eq!(
        app.query_i64(generation).await,
        app.query_i64(current).await
    );

    let store = &app.ctx.store;
    let reverted = revert_through(store, "refresh_family_generation").await;
    assert_eq!(store.migrate().await.unwrap().len(), reverted);
    assert_eq!(
        app.query_i64(generation).await,
        app.query_i64(current).await
    );
    refreshed(&app, &device, &token).await;
}

/// The `telemetry_partitions` migration (PostgreSQL; nothing on SQLite) moves the readings
/// stored before it into their days' partitions, and its revert brings them back into one table.
async fn readings_carry_over_into_daily_partitions_and_back(backend: Backend) {
    let partitioned = matches!(backend, Backend::Postgres(_));
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    let reverted = revert_through(store, "telemetry_partitions").await;
    let now = app.now() * 1000;
    for (i, ts) in [(1, now - 86_400_000), (2, now)] {
        app.raw_sql(&format!(
            "INSERT INTO telemetry_readings (serial, reading_id, tenant_id, ts, received_at, \
             metrics) VALUES ('SN-7005', 'r{i}', 1, {ts}, {ts}, '{{}}')"
        ))
        .await;
    }
    let count = "SELECT COUNT(*) AS n FROM telemetry_readings WHERE serial = 'SN-7005'";
    assert_eq!(store.migrate().await.unwrap().len(), reverted);
    assert_eq!(app.query_i64(count).await, 2);
    let tables = "SELECT COUNT(DISTINCT tableoid) AS n FROM telemetry_readings";
    if partitioned {
        assert_eq!(app.query_i64(tables).await, 2, "a partition per day");
    }
    assert_eq!(
        revert_through(store, "telemetry_partitions").await,
        reverted
    );
    assert_eq!(app.query_i64(count).await, 2);
    if partitioned {
        assert_eq!(app.query_i64(tables).await, 1, "one table again");
    }
    assert_eq!(store.migrate().await.unwrap().len(), reverted);
    assert_eq!(app.query_i64(count).await, 2);
}
