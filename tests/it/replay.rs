//! The replay store: a jti is new once. On PostgreSQL its primary key decides, shared by every
//! instance; on SQLite the writer thread's memory decides, and the table brings the values back
//! after a restart. Either way a write that rolls back forgets its values, the sweep forgets
//! expired ones, and on SQLite a second server on the same file is refused.

use std::time::Duration;

use futures_util::future::join_all;
use pairgate::config::{DatabaseUrl, Settings};
use pairgate::store::{Store, StoreError, replay};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_jti_is_new_once,
    a_write_that_rolls_back_forgets_its_jti,
    among_concurrent_writes_the_failed_ones_forget_their_jtis,
    the_sweep_forgets_expired_jtis_and_keeps_the_others,
    a_second_store_on_the_database_shares_or_is_refused,
    concurrent_hits_on_a_rate_bucket_are_all_counted,
);

const FAR: i64 = i64::MAX / 2;

/// Remembers each `(scope, jti, until)` in one write; whether each was new.
async fn remember(store: &Store, entries: &[(&str, &str, i64)]) -> Result<Vec<bool>, StoreError> {
    let owned: Vec<(String, String, i64)> = entries
        .iter()
        .map(|(s, j, u)| ((*s).to_owned(), (*j).to_owned(), *u))
        .collect();
    store
        .write(move |tx| {
            let entries: Vec<replay::JtiEntry<'_>> = owned
                .iter()
                .map(|(s, j, u)| (s.as_str(), j.as_str(), *u))
                .collect();
            replay::remember_jtis(tx, &entries)
        })
        .await
}

async fn is_new(store: &Store, scope: &str, jti: &str) -> bool {
    remember(store, &[(scope, jti, FAR)]).await.unwrap()[0]
}

async fn a_jti_is_new_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    assert!(is_new(store, "dpop:k1", "a").await);
    assert!(!is_new(store, "dpop:k1", "a").await, "seen");
    assert!(
        is_new(store, "dpop:k2", "a").await,
        "the scope is part of it"
    );
    // In one call, of two equal values only the first is new; the many-value path too.
    let many: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let mut entries: Vec<(&str, &str, i64)> =
        many.iter().map(|j| ("client:c", j.as_str(), FAR)).collect();
    entries.push(("client:c", "m3", FAR));
    entries.push(("dpop:k1", "a", FAR));
    let fresh = remember(store, &entries).await.unwrap();
    assert_eq!(fresh[..10], [true; 10]);
    assert_eq!(fresh[10..], [false, false]);
    assert_eq!(
        remember(store, &[("client:c", "x", FAR), ("client:c", "x", FAR)])
            .await
            .unwrap(),
        [true, false]
    );
}

async fn a_write_that_rolls_back_forgets_its_jti(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    let failed = store
        .write(|tx| {
            assert!(replay::remember_jti(tx, "dpop:k", "j", FAR)?);
            Err::<(), _>(StoreError::Conflict(
                "the rest of the request failed".into(),
            ))
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    assert!(
        is_new(store, "dpop:k", "j").await,
        "the failed write did not use it up"
    );
    assert!(!is_new(store, "dpop:k", "j").await);
}

async fn among_concurrent_writes_the_failed_ones_forget_their_jtis(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    // Submitted together, so that on SQLite most share a group commit with others.
    let results = join_all((0..60).map(|i| {
        store.write(move |tx| {
            let jti = format!("j{i}");
            assert!(replay::remember_jti(tx, "dpop:k", &jti, FAR)?);
            if i % 3 == 0 {
                return Err(StoreError::Conflict(jti));
            }
            Ok(())
        })
    }))
    .await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.is_err(), i % 3 == 0, "write {i}");
        assert_eq!(
            is_new(store, "dpop:k", &format!("j{i}")).await,
            i % 3 == 0,
            "only the failed writes' jti values are new again (j{i})"
        );
    }
}

async fn the_sweep_forgets_expired_jtis_and_keeps_the_others(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    let fresh = remember(
        store,
        &[("dpop:k", "old", 1_000), ("dpop:k", "live", 3_000)],
    )
    .await
    .unwrap();
    assert_eq!(fresh, [true, true]);
    let removed = store
        .write(|tx| replay::delete_expired(tx, 2_000, 0))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(
        is_new(store, "dpop:k", "old").await,
        "expired and forgotten"
    );
    assert!(!is_new(store, "dpop:k", "live").await, "not yet expired");
}

/// Another store on the same database (another process, in production): on PostgreSQL it sees
/// what the first remembered; on SQLite it may not remember anything while the first lives,
/// and after the first is gone it finds the first's values in the table.
async fn a_second_store_on_the_database_shares_or_is_refused(backend: Backend) {
    let app = TestApp::start(backend.clone()).await;
    assert!(is_new(&app.ctx.store, "client:c", "first").await);
    let second = Store::open(&app.ctx.settings.database).await.unwrap();
    match backend {
        Backend::Postgres(_) => {
            second.claim_sqlite_writer().await.unwrap();
            assert!(!is_new(&second, "client:c", "first").await, "shared");
            assert!(is_new(&second, "client:c", "second").await);
            assert!(!is_new(&app.ctx.store, "client:c", "second").await);
        }
        Backend::Sqlite => {
            let refused = second.claim_sqlite_writer().await.unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains("another pairgate server uses this SQLite database"),
                "{refused}"
            );
            let used = remember(&second, &[("client:c", "second", FAR)]).await;
            assert!(used.unwrap_err().is_unavailable(), "nothing remembered");
            assert!(is_new(&app.ctx.store, "client:c", "second").await);
        }
    }
}

/// A SQLite store of its own (not a [`TestApp`]'s), so that the test can close it and open the
/// file again, as a restarted server would.
#[actix_web::test]
async fn sqlite_a_reopened_store_still_refuses_the_jti_values_it_saw() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults_with("").unwrap();
    settings.database.url = DatabaseUrl::Sqlite(dir.path().join("replay.db"));
    let first = Store::open(&settings.database).await.unwrap();
    first.migrate().await.unwrap();
    first.claim_sqlite_writer().await.unwrap();
    assert!(is_new(&first, "dpop:k", "before").await);
    // More values than the memory loads per statement (4,096), over many expiry times.
    let many: Vec<String> = (0..9_000).map(|i| format!("v{i}")).collect();
    let entries: Vec<(&str, &str, i64)> = many
        .iter()
        .enumerate()
        .map(|(i, jti)| ("client:c", jti.as_str(), FAR - (i % 7) as i64))
        .collect();
    assert!(
        remember(&first, &entries)
            .await
            .unwrap()
            .iter()
            .all(|&new| new)
    );
    drop(first);

    // The closed store's writer thread lets go of the lock as it ends.
    let reopened = Store::open(&settings.database).await.unwrap();
    let mut claimed = reopened.claim_sqlite_writer().await;
    for _ in 0..100 {
        if claimed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        claimed = reopened.claim_sqlite_writer().await;
    }
    claimed.expect("the lock is free once the first store is closed");
    assert!(
        !is_new(&reopened, "dpop:k", "before").await,
        "loaded from the table"
    );
    let again = remember(&reopened, &entries).await.unwrap();
    assert_eq!(
        again.iter().filter(|&&new| new).count(),
        0,
        "every page was loaded"
    );
    assert!(is_new(&reopened, "dpop:k", "after").await);
}

/// Every throttle counts through `replay::hit`. Concurrent first hits on a bucket (and the first
/// hits of a new window) must each count once: a lost hit is a free attempt.
async fn concurrent_hits_on_a_rate_bucket_are_all_counted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    for round in 0..6_i64 {
        // Rounds 0-2 create their bucket; rounds 3-5 find it in an older window.
        let bucket = format!("test:bucket:{}", round % 3);
        let window = 60_000 * (round / 3);
        let hits = join_all((0..20).map(|_| {
            let bucket = bucket.clone();
            store.write(move |tx| replay::hit(tx, &bucket, window))
        }))
        .await;
        let mut counts: Vec<i32> = hits.into_iter().map(|h| h.unwrap()).collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=20).collect::<Vec<_>>(), "round {round}");
    }
}
