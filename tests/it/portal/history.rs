//! The audit log as people read it: sentences with names, filters by person, action, device and
//! dates, pages that follow one another, and one company's log closed to another.

use pairgate::ids::TenantId;
use pairgate::store::audit::NewAuditRecord;

use super::security::member_id;
use super::{invited, owner};
use crate::backend_tests;
use crate::support::portal::{Browser, Page};
use crate::support::{Backend, TestApp};

backend_tests!(
    the_audit_log_speaks_in_names,
    the_audit_log_filters_and_pages,
);

/// The sentences of an audit page, in order.
fn sentences(page: &Page) -> Vec<String> {
    page.body
        .split("<li><time>")
        .skip(1)
        .filter_map(|li| {
            let (_, rest) = li.split_once("<span>")?;
            Some(rest.split_once("</span>")?.0.replace("&#39;", "'"))
        })
        .collect()
}

async fn tenant_of(app: &TestApp, email: &str) -> TenantId {
    let email = email.to_owned();
    app.ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap()
}

async fn the_audit_log_speaks_in_names(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let _admin = invited(&app, &mut olivia, "ada@example.com", "admin").await;
    let page = olivia
        .submit("/groups", "/groups", &[("name", "Plant North")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = olivia.get("/audit").await;
    assert_eq!(page.status, 200);
    let lines = sentences(&page);
    for expected in [
        "Olivia Owner created the company Acme Water by signing up",
        "Olivia Owner created their account, an owner",
        "Olivia Owner invited ada@example.com to join as an admin",
        "Member admin accepted an invitation and joined as an admin",
        "Olivia Owner created the group Plant North",
        "Member admin set up two-factor authentication",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    for code in ["user:", "tenant:", "group:", "{&quot;", "{&#34;"] {
        assert!(!page.body.contains(code), "{code} in {}", page.body);
    }
    let text = lines.join("\n");
    for code in ["user.invited", "sign_in", "tenant.created", "device_group"] {
        assert!(!text.contains(code), "{code} in {text}");
    }
    // Another company's log holds none of this, and names none of Acme's people.
    let mut other = Browser::new(&app);
    other
        .sign_up(
            "Rival Inc",
            "Rita Rival",
            "rita@example.com",
            super::PASSWORD,
        )
        .await;
    other.enrol_totp().await;
    let page = other.get("/audit").await;
    let lines = sentences(&page);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Rita Rival created the company Rival Inc"))
    );
    assert!(
        !page.body.contains("Olivia") && !page.body.contains("Acme"),
        "{lines:#?}"
    );
}

async fn the_audit_log_filters_and_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let _viewer = invited(&app, &mut olivia, "victor@example.com", "viewer").await;
    let tenant = tenant_of(&app, "olivia@example.com").await;
    let victor = member_id(&app, "victor@example.com").await;
    // 70 sign-ins of Victor over three days of 2025, and 5 events about a device.
    let day = |d: i64| 1_735_689_600_000 + d * 86_400_000; // 2025-01-01 + d days
    for i in 0..70 {
        let event = NewAuditRecord {
            occurred_at: day(i % 3) + i * 1000,
            tenant_id: Some(tenant),
            actor: format!("user:{victor}"),
            action: "user.signed_in".to_owned(),
            subject: format!("user:{victor}"),
            detail: format!("{{\"ip\":\"192.0.2.{i}\",\"second_factor\":\"totp\"}}"),
        };
        app.ctx.store.append_audit(event).await.unwrap();
    }
    for _ in 0..5 {
        let event = NewAuditRecord {
            occurred_at: day(1),
            tenant_id: Some(tenant),
            actor: "client:erp".to_owned(),
            action: "device.updated".to_owned(),
            subject: "device:SN-7".to_owned(),
            detail: "{\"from\":\"TH-1\",\"to\":\"TH-2\"}".to_owned(),
        };
        app.ctx.store.append_audit(event).await.unwrap();
    }
    // The person filter offers the company's members by name.
    let page = olivia.get("/audit").await;
    assert!(page.contains(&format!(
        "<option value=\"{victor}\">Member viewer</option>"
    )));
    assert_eq!(sentences(&page).len(), 50);
    // By device.
    let page = olivia.get("/audit?device=SN-7").await;
    let lines = sentences(&page);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("changed the model of the device SN-7 from TH-1"))
    );
    // By action: only Victor's 70 sign-ins (and his own, through the portal).
    let first = olivia.get("/audit?action=user.signed_in&person=").await;
    let lines = sentences(&first);
    assert_eq!(lines.len(), 50);
    assert!(lines.iter().all(|l| l.contains(" signed in")), "{lines:#?}");
    assert!(first.contains("<option value=\"user.signed_in\" selected>Signed in</option>"));
    // The next page carries the filter and continues where the first stopped.
    let older = crate::support::portal::extract(&first.body, "<a href=\"/audit?")
        .expect("a link to older events");
    let older = older.replace("&#38;", "&");
    assert!(
        older.starts_with("action=user.signed_in&before="),
        "{older}"
    );
    let second = olivia.get(&format!("/audit?{older}")).await;
    let rest = sentences(&second);
    let own = lines.len() + rest.len() - 70;
    assert!(
        own <= 3,
        "only the portal's own sign-ins besides the 70: {own}"
    );
    let dated = |l: &&String| l.contains("192.0.2.");
    assert!(rest.iter().filter(dated).all(|l| !lines.contains(l)));
    assert!(second.contains("Newest events"));
    assert!(!second.contains("Older events"));
    // By person and date: Victor's sign-ins on 2 January 2025 only (every third of the 70).
    let page = olivia
        .get(&format!(
            "/audit?person={victor}&from=2025-01-02&to=2025-01-02"
        ))
        .await;
    let lines = sentences(&page);
    assert_eq!(lines.len(), 23, "{lines:#?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("Member viewer signed in from 192.0.2."))
    );
    assert!(!page.contains("Older events"));
    // Nothing matches: said plainly.
    let page = olivia.get("/audit?device=NOPE").await;
    assert!(page.contains("No events match these filters."));
}
