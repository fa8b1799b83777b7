//! `Store::write`: a write whose closure fails leaves nothing behind, whether it ran alone (on
//! SQLite, a group of one runs without a savepoint and the transaction is rolled back) or among
//! others committed together (each in its own savepoint), and the writes after it go on.

use futures_util::future::join_all;
use pairgate::ids::TenantId;
use pairgate::store::{StoreError, registry};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_failed_write_leaves_nothing_and_the_next_one_commits,
    among_concurrent_writes_only_the_failed_ones_roll_back,
);

/// Inserts a tenant named `name`; fails afterwards when `fail`, naming the tenant's id.
async fn tenant_write(app: &TestApp, name: String, fail: bool) -> Result<TenantId, StoreError> {
    app.ctx
        .store
        .write(move |tx| {
            let id = registry::insert_tenant(tx, &name, 1)?;
            if fail {
                return Err(StoreError::Conflict(id.to_string()));
            }
            Ok(id)
        })
        .await
}

async fn tenant_name(app: &TestApp, id: TenantId) -> Option<String> {
    app.ctx
        .store
        .read(move |tx| registry::find_tenant(tx, id))
        .await
        .unwrap()
        .map(|t| t.name)
}

async fn a_failed_write_leaves_nothing_and_the_next_one_commits(backend: Backend) {
    let app = TestApp::start(backend).await;
    let Err(StoreError::Conflict(id)) = tenant_write(&app, "failed".into(), true).await else {
        panic!("the write's own error comes back");
    };
    let id = TenantId(id.parse().unwrap());
    assert_eq!(
        tenant_name(&app, id).await,
        None,
        "its insert was rolled back"
    );

    let kept = tenant_write(&app, "kept".into(), false).await.unwrap();
    assert_eq!(tenant_name(&app, kept).await.as_deref(), Some("kept"));
}

async fn among_concurrent_writes_only_the_failed_ones_roll_back(backend: Backend) {
    let app = TestApp::start(backend).await;
    // Submitted together, so that on SQLite most share a group commit with others.
    let results = join_all((0..60).map(|i| tenant_write(&app, format!("t{i}"), i % 3 == 0))).await;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(id) => {
                assert!(i % 3 != 0, "write {i} should have failed");
                assert_eq!(tenant_name(&app, id).await, Some(format!("t{i}")));
            }
            Err(StoreError::Conflict(id)) => {
                assert_eq!(i % 3, 0, "write {i} should have committed");
                // Its row id may have gone to a later write; its row must not be there.
                let id = TenantId(id.parse().unwrap());
                assert_ne!(
                    tenant_name(&app, id).await,
                    Some(format!("t{i}")),
                    "write {i} was rolled back"
                );
            }
            Err(e) => panic!("write {i}: unexpected {e}"),
        }
    }
}
