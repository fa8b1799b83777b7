//! The audit log's hash chain: concurrent appends never fork it, and tampering is detected.

use pairgate::ids::TenantId;
use pairgate::store::audit::{ChainCheck, NewAuditRecord};

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    concurrent_appends_keep_the_chain_intact,
    tampering_is_detected
);

fn record(n: i64) -> NewAuditRecord {
    NewAuditRecord {
        occurred_at: 1_800_000_000_000 + n,
        tenant_id: Some(TenantId(n % 3)),
        actor: format!("user:{n}"),
        action: "test.event".into(),
        subject: format!("device:SN{n}"),
        detail: format!("{{\"n\":{n}}}"),
    }
}

async fn concurrent_appends_keep_the_chain_intact(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = app.ctx.store.clone();
    let tasks: Vec<_> = (0..24)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append_audit(record(n)).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.verify_audit_chain().await.unwrap(),
        ChainCheck::Intact { events: 24 }
    );
    let page = store
        .audit_page(Some(TenantId(1)), None, 100)
        .await
        .unwrap();
    assert_eq!(page.len(), 8);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
}

async fn tampering_is_detected(backend: Backend) {
    let app = TestApp::start(backend).await;
    let store = &app.ctx.store;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(store.append_audit(record(n)).await.unwrap());
    }
    app.raw_sql(&format!(
        "UPDATE audit_events SET subject = 'device:OTHER' WHERE id = {}",
        ids[2]
    ))
    .await;
    assert_eq!(
        store.verify_audit_chain().await.unwrap(),
        ChainCheck::BrokenAt { id: ids[2] }
    );
}
