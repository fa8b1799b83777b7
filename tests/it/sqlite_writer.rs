//! The SQLite writer thread shares the database file with other processes (the `pairgate`
//! commands write to it while the server runs). Its transactions take the write lock when they
//! begin: a write whose first statement only reads must not be refused because another process
//! wrote after that read (SQLite cannot upgrade such a read snapshot to a write).

use diesel::Connection;
use diesel::connection::SimpleConnection;
use pairgate::config::DatabaseUrl;
use pairgate::store::{StoreError, registry};

use crate::support::{Backend, TestApp};

#[actix_web::test]
async fn a_write_that_reads_first_survives_another_process_writing() {
    let app = TestApp::start(Backend::Sqlite).await;
    let DatabaseUrl::Sqlite(path) = app.ctx.settings.database.url.clone() else {
        panic!("a SQLite app");
    };
    let path = path.to_str().unwrap().to_owned();
    let other_wrote = app
        .ctx
        .store
        .write(move |tx| -> Result<bool, StoreError> {
            // The transaction's first statement reads.
            assert!(registry::find_client(tx, "nobody")?.is_none());
            // Another process writes now. It has to wait for this transaction; with a short busy
            // timeout it gives up instead of slipping in between the read and the write.
            let mut other = diesel::SqliteConnection::establish(&path).unwrap();
            let wrote = other
                .batch_execute(
                    "PRAGMA busy_timeout = 100;
                     INSERT INTO tenants (name, created_at) VALUES ('other process', 0);",
                )
                .is_ok();
            registry::insert_tenant(tx, "this write", 1)?;
            Ok(wrote)
        })
        .await
        .expect("the write that read first is committed");
    assert!(!other_wrote, "the other process waited for the writer");
}

/// SQLite's page cache has one bound for all connections (`database.sqlite_cache_mib`): the
/// writer takes half, and each of the pool's connections its share of the other half, so the
/// total never exceeds the setting however many connections the pool opens.
#[actix_web::test]
async fn sqlite_page_cache_is_shared_out_of_one_total() {
    #[derive(diesel::QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        cache_size: i32,
    }
    let dir = tempfile::tempdir().unwrap();
    let mut settings = pairgate::config::Settings::defaults_with(
        "[database]\nsqlite_cache_mib = 16\npool_size = 4",
    )
    .unwrap();
    settings.database.url = DatabaseUrl::Sqlite(dir.path().join("cache.db"));
    let spec = pairgate::store::ConnectionSpec::new(&settings.database);
    let size = tokio::task::spawn_blocking(move || {
        let mut conn = spec.establish().unwrap();
        diesel::RunQueryDsl::get_result::<CacheSize>(
            diesel::sql_query("PRAGMA cache_size"),
            &mut conn,
        )
        .unwrap()
        .cache_size
    })
    .await
    .unwrap();
    // Negative: KiB. 16 MiB, half for the writer, the rest over 4 connections.
    assert_eq!(size, -(16 * 1024 / 2 / 4));
}
