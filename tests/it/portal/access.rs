//! Device groups and per-user device access: every device list a person sees is filtered.

use super::security::member_id;
use super::{invited, owner};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    members_see_only_the_devices_they_were_given,
    groups_and_devices_stay_inside_their_tenant
);

async fn members_see_only_the_devices_they_were_given(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut owner = owner(&app, "olivia@example.com").await;
    let tenant = app
        .ctx
        .store
        .read(|tx| pairgate::store::users::find_by_email(tx, "olivia@example.com"))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap();
    for serial in ["SN-NORTH-1", "SN-NORTH-2", "SN-SOUTH-1", "SN-LONE-1"] {
        let device = app.device(serial).await;
        app.pair(&device, tenant).await;
    }
    for name in ["North", "South"] {
        owner.submit("/groups", "/groups", &[("name", name)]).await;
    }
    let groups = app
        .ctx
        .store
        .read(move |tx| pairgate::store::groups::list(tx, tenant))
        .await
        .unwrap();
    let north = groups
        .iter()
        .find(|g| g.name == "North")
        .unwrap()
        .id
        .to_string();
    let south = groups
        .iter()
        .find(|g| g.name == "South")
        .unwrap()
        .id
        .to_string();
    for (serial, group) in [
        ("SN-NORTH-1", &north),
        ("SN-NORTH-2", &north),
        ("SN-SOUTH-1", &south),
    ] {
        let page = owner
            .submit(
                "/devices",
                &format!("/devices/{serial}/group"),
                &[("group", group)],
            )
            .await;
        assert_eq!(page.status, 303);
    }
    let mut victor = invited(&app, &mut owner, "victor@example.com", "viewer").await;
    assert!(
        victor.get("/devices").await.contains("SN-SOUTH-1"),
        "all devices by default"
    );
    let id = member_id(&app, "victor@example.com").await;
    let page = owner
        .submit(
            &format!("/users/{id}/access"),
            &format!("/users/{id}/access"),
            &[
                ("scope", "selected"),
                ("group", &north),
                ("device", "SN-LONE-1"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let seen = victor.get("/devices").await;
    for serial in ["SN-NORTH-1", "SN-NORTH-2", "SN-LONE-1"] {
        assert!(seen.contains(serial), "{serial} should be visible");
    }
    assert!(!seen.contains("SN-SOUTH-1"), "South is not granted");
    // Back to everything.
    owner
        .submit(
            &format!("/users/{id}/access"),
            &format!("/users/{id}/access"),
            &[("scope", "all")],
        )
        .await;
    assert!(victor.get("/devices").await.contains("SN-SOUTH-1"));
}

async fn groups_and_devices_stay_inside_their_tenant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut acme = owner(&app, "olivia@example.com").await;
    let mut rival = owner(&app, "rita@example.com").await;
    let rival_tenant = app
        .ctx
        .store
        .read(|tx| pairgate::store::users::find_by_email(tx, "rita@example.com"))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap();
    let device = app.device("SN-RIVAL-1").await;
    app.pair(&device, rival_tenant).await;
    rival
        .submit("/groups", "/groups", &[("name", "Rival site")])
        .await;
    assert!(!acme.get("/devices").await.contains("SN-RIVAL-1"));
    let page = acme
        .submit("/devices", "/devices/SN-RIVAL-1/group", &[("group", "")])
        .await;
    assert_eq!(
        page.status, 404,
        "another tenant's device is not found, not forbidden"
    );
    let rival_id = member_id(&app, "rita@example.com").await;
    let page = acme
        .submit(
            "/users",
            &format!("/users/{rival_id}/active"),
            &[("active", "no")],
        )
        .await;
    assert_eq!(page.status, 404);
}
