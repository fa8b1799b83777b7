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

backend_tests!(
    migrations_run_down_and_up_again,
    the_latest_migration_keeps_refresh_tokens_and_seen_jtis,
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

/// The latest migration (000008) rebuilds SQLite's `seen_jtis` (on PostgreSQL it only comments
/// the table): reverted and applied again over live data, tokens and replay records stay. The
/// writer reloads its replay memory after a migration, so the refused assertion below comes
/// from the rows the migration copied.
async fn the_latest_migration_keeps_refresh_tokens_and_seen_jtis(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-7001").await;
    let token_of = |v: serde_json::Value| v["refresh_token"].as_str().unwrap().to_owned();
    let first = token_of(app.pair(&device, tenant).await);
    let second = token_of(refreshed(&app, &device, &first).await);
    // A refresh whose client assertion the replay store records.
    let now = app.now();
    let assertion = device.assertion(now);
    let refresh_using = |token: String, proof: String| {
        let assertion = assertion.clone();
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
    let res = refresh_using(second.clone(), device.dpop("POST", "/oauth/token", now)).await;
    assert_eq!(res.status(), 200);
    let third = token_of(res.json().await.unwrap());

    let store = &app.ctx.store;
    store.revert_last_migration().await.unwrap();
    assert_eq!(store.migrate().await.unwrap().len(), 1, "applied again");

    // The assertion is still known as used...
    let body = error_of(
        refresh_using(third.clone(), device.dpop("POST", "/oauth/token", now)).await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(
        body["error_description"],
        "the client assertion was used before"
    );
    // ...the live refresh token still works...
    let fourth = token_of(refreshed(&app, &device, &third).await);
    // ...and a consumed one is still recognised as reused.
    let body = error_of(refresh(&app, &device, &first).await, 400).await;
    assert_eq!(
        body["error_description"],
        "the refresh token was already used"
    );
    let body = error_of(refresh(&app, &device, &fourth).await, 400).await;
    assert_eq!(body["error"], "invalid_grant", "the family was revoked");
}
