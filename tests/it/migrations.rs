//! Migrations: the two backend folders stay in step, and every migration reverts and re-applies.

use std::collections::BTreeSet;
use std::path::Path;

use pairgate::store::{Backend as StoreBackend, migrations};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

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

backend_tests!(migrations_run_down_and_up_again);

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
