//! The device list and the dashboard: rows that link to the device page, search, filters,
//! sorting and pages driven by the query string, moving selected devices to a group, and the
//! dashboard's figures, each equal to the list it links to.

use super::security::member_id;
use super::{invited, owner};
use crate::backend_tests;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};
use pairgate::ids::{GroupId, TenantId};

backend_tests!(
    rows_link_to_devices_and_search_finds_part_of_a_serial,
    pages_keep_the_other_parameters,
    filters_and_sorting,
    bulk_move_moves_exactly_the_selected_devices,
    bulk_move_refuses_what_the_member_may_not_touch,
    dashboard_figures_equal_the_lists_they_link_to,
    a_member_with_selected_access_sees_only_those_devices,
);

/// 55 devices `PG-0001` … `PG-0055` in the owner's tenant: 0001–0010 sent a reading 1–10 minutes
/// ago (online), 0011–0015 three hours ago (silent), the rest none; 0050–0052 await the ERP;
/// 0053 has an open dispute. Another tenant holds `RV-0001`. Returns (tenant, rival tenant).
pub async fn fleet(app: &TestApp, owner_email: &str) -> (TenantId, TenantId) {
    let email = owner_email.to_owned();
    let tenant = app
        .ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap();
    let rival = app.tenant("Rival Water").await;
    let now = app.now() * 1000;
    let mut devices: Vec<(String, TenantId, &str)> = (1..=55)
        .map(|i| {
            let status = if (50..=52).contains(&i) {
                "provisional"
            } else {
                "active"
            };
            (format!("PG-{i:04}"), tenant, status)
        })
        .collect();
    devices.push(("RV-0001".to_owned(), rival, "active"));
    seed_devices(app, &devices, now).await;
    let mut readings = Vec::new();
    for i in 1..=10 {
        readings.push((format!("PG-{i:04}"), tenant, now - i * 60_000));
    }
    for i in 11..=15 {
        readings.push((format!("PG-{i:04}"), tenant, now - 3 * 3_600_000 - i));
    }
    readings.push(("RV-0001".to_owned(), rival, now - 60_000));
    seed_readings(app, &readings).await;
    app.raw_sql(&format!(
        "INSERT INTO disputes (serial, claimant_tenant_id, holder_tenant_id, reason, status, \
         opened_by, created_at) VALUES ('PG-0053', {rival}, {tenant}, 'paired_elsewhere', \
         'open', 'user:test', {now})"
    ))
    .await;
    (tenant, rival)
}

/// Registers and pairs devices behind pairgate's back: (serial, tenant, pairing status).
pub async fn seed_devices(app: &TestApp, devices: &[(String, TenantId, &str)], now: i64) {
    let values = |f: &dyn Fn(&(String, TenantId, &str)) -> String| {
        devices.iter().map(f).collect::<Vec<_>>().join(", ")
    };
    app.raw_sql(&format!(
        "INSERT INTO clients (client_id, kind, name, status, scope, created_at) VALUES {}",
        values(&|(s, _, _)| format!("('{s}', 'device', 'Meter', 'active', 'telemetry', {now})"))
    ))
    .await;
    app.raw_sql(&format!(
        "INSERT INTO devices (serial, model, tenant_id, paired_at, created_at) VALUES {}",
        values(&|(s, t, _)| {
            let model = if s.ends_with(['1', '3', '5', '7', '9']) {
                "Meter M1"
            } else {
                "Valve V2"
            };
            format!("('{s}', '{model}', {t}, {now}, {now})")
        })
    ))
    .await;
    app.raw_sql(&format!(
        "INSERT INTO pairings (serial, tenant_id, status, basis, approved_by, created_at) \
         VALUES {}",
        values(&|(s, t, st)| format!("('{s}', {t}, '{st}', 'operator', 'user:test', {now})"))
    ))
    .await;
}

/// One reading per (serial, tenant, time).
pub async fn seed_readings(app: &TestApp, readings: &[(String, TenantId, i64)]) {
    let values = readings
        .iter()
        .enumerate()
        .map(|(n, (s, t, ts))| format!("('{s}', 'r{n}', {t}, {ts}, {ts}, '{{\"t\":1}}')"))
        .collect::<Vec<_>>()
        .join(", ");
    app.raw_sql(&format!(
        "INSERT INTO telemetry_readings (serial, reading_id, tenant_id, ts, received_at, \
         metrics) VALUES {values}"
    ))
    .await;
}

/// The serials of the list's rows, in order.
fn serials(body: &str) -> Vec<String> {
    body.split("<th scope=\"row\" data-label=\"Serial\"><a href=\"/devices/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The "of N" of the list's count line (0 for "No devices match").
fn total(body: &str) -> i64 {
    if body.contains("No devices match.") {
        return 0;
    }
    let line = body
        .split("id=\"device-count\">")
        .nth(1)
        .expect("a count line");
    let after = line.split(" of ").nth(1).expect("a count");
    after
        .split('<')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("a number")
}

async fn list(b: &mut Browser<'_>, path: &str) -> String {
    let page = b.get(path).await;
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    // Links as a browser reads them.
    page.body.replace("&#38;", "&")
}

async fn rows_link_to_devices_and_search_finds_part_of_a_serial(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    let body = list(&mut b, "/devices").await;
    assert!(body.contains("<a href=\"/devices/PG-0001\">PG-0001</a>"));
    assert!(!body.contains("RV-0001"), "another tenant's device");
    let row = body.split("/devices/PG-0002\"").nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    for cell in ["Valve V2", "Paired", "2 min ago"] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    let silent = body.split("/devices/PG-0011\"").nth(1).unwrap();
    assert!(
        silent
            .split("</tr>")
            .next()
            .unwrap()
            .contains("silent for 3 h")
    );
    // The device page the row links to exists.
    assert_eq!(b.get("/devices/PG-0001").await.status, 200);

    // Prefix, any case.
    let prefix: Vec<String> = (40..=49).map(|i| format!("PG-{i:04}")).collect();
    assert_eq!(serials(&list(&mut b, "/devices?q=pg-004").await), prefix);
    assert_eq!(serials(&list(&mut b, "/devices?q=PG-004").await), prefix);
    // Anywhere in the serial.
    assert_eq!(serials(&list(&mut b, "/devices?q=049").await), ["PG-0049"]);
    // Wildcards are letters, not patterns.
    assert_eq!(total(&list(&mut b, "/devices?q=PG_00").await), 0);
    assert_eq!(total(&list(&mut b, "/devices?q=%25").await), 0);
    assert_eq!(total(&list(&mut b, "/devices?q=rv-").await), 0);
}

async fn pages_keep_the_other_parameters(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    let first = list(&mut b, "/devices").await;
    assert!(first.contains("Devices 1–50 of 55"), "{first}");
    assert_eq!(serials(&first).len(), 50);
    assert_eq!(serials(&first)[49], "PG-0050");
    assert!(first.contains("href=\"/devices?page=2\" rel=\"next\""));
    assert!(!first.contains("rel=\"prev\""));
    let second = list(&mut b, "/devices?page=2").await;
    let expected: Vec<String> = (51..=55).map(|i| format!("PG-{i:04}")).collect();
    assert_eq!(serials(&second), expected);
    assert!(second.contains("href=\"/devices\" rel=\"prev\""));
    assert!(!second.contains("rel=\"next\""));
    // A search and a sort travel with the pages, and the column links keep the search.
    let sorted = list(&mut b, "/devices?q=pg-00&sort=model&dir=desc").await;
    assert!(
        sorted.contains("href=\"/devices?q=pg-00&sort=model&dir=desc&page=2\" rel"),
        "{sorted}"
    );
    assert!(sorted.contains("href=\"/devices?q=pg-00&sort=last\""));
    let late = list(&mut b, "/devices?q=pg-00&sort=model&dir=desc&page=2").await;
    assert!(late.contains("href=\"/devices?q=pg-00&sort=model&dir=desc\" rel=\"prev\""));
    assert_eq!(serials(&late).len(), 5);
    // Past the end: no rows, the count stays right.
    let beyond = list(&mut b, "/devices?page=9").await;
    assert!(serials(&beyond).is_empty());
    assert!(beyond.contains("href=\"/devices?page=2\" rel=\"prev\""));
}

async fn filters_and_sorting(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    let range = |a: i64, z: i64| (a..=z).map(|i| format!("PG-{i:04}")).collect::<Vec<_>>();
    assert_eq!(
        serials(&list(&mut b, "/devices?seen=online").await),
        range(1, 10)
    );
    assert_eq!(
        serials(&list(&mut b, "/devices?seen=silent").await),
        range(11, 15)
    );
    assert_eq!(total(&list(&mut b, "/devices?seen=never").await), 40);
    assert_eq!(
        serials(&list(&mut b, "/devices?status=provisional").await),
        range(50, 52)
    );
    let disputed = list(&mut b, "/devices?status=disputed").await;
    assert_eq!(serials(&disputed), ["PG-0053"]);
    assert!(disputed.contains("Paired, disputed"));
    assert_eq!(total(&list(&mut b, "/devices?status=active").await), 52);
    // Combined: online and a model's half of the serials.
    assert_eq!(
        serials(&list(&mut b, "/devices?seen=online&q=pg-000").await),
        range(1, 9)
    );

    // Groups.
    b.submit("/groups", "/groups", &[("name", "North")]).await;
    let north = group_id(&app, "North").await;
    let page = b
        .submit(
            "/devices",
            "/devices/group",
            &[
                ("serial", "PG-0020"),
                ("serial", "PG-0030"),
                ("group", &north),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let in_north = list(&mut b, &format!("/devices?group={north}")).await;
    assert_eq!(serials(&in_north), ["PG-0020", "PG-0030"]);
    assert_eq!(total(&list(&mut b, "/devices?group=none").await), 53);

    // Sorting.
    let newest = serials(&list(&mut b, "/devices?sort=last&dir=desc").await);
    assert_eq!(&newest[..3], ["PG-0001", "PG-0002", "PG-0003"]);
    let oldest = serials(&list(&mut b, "/devices?sort=last&seen=silent").await);
    assert_eq!(
        oldest,
        ["PG-0015", "PG-0014", "PG-0013", "PG-0012", "PG-0011"]
    );
    let desc = serials(&list(&mut b, "/devices?dir=desc").await);
    assert_eq!(desc[0], "PG-0055");
    let by_group = serials(&list(&mut b, "/devices?sort=group&dir=desc").await);
    assert_eq!(&by_group[..2], ["PG-0020", "PG-0030"]);
    let by_status = serials(&list(&mut b, "/devices?sort=status&dir=desc").await);
    assert_eq!(&by_status[..3], ["PG-0050", "PG-0051", "PG-0052"]);
    let by_model = serials(&list(&mut b, "/devices?sort=model").await);
    assert_eq!(&by_model[..2], ["PG-0001", "PG-0003"], "Meter M1 first");
}

async fn group_id(app: &TestApp, name: &str) -> String {
    app.query_i64(&format!(
        "SELECT id AS n FROM device_groups WHERE name = '{name}'"
    ))
    .await
    .to_string()
}

async fn members_of(app: &TestApp, group: &str) -> Vec<String> {
    let group: GroupId = group.parse().unwrap();
    let tenant = app
        .ctx
        .store
        .read(move |tx| pairgate::store::groups::find(tx, group))
        .await
        .unwrap()
        .unwrap()
        .tenant_id;
    let mut serials: Vec<String> = app
        .ctx
        .store
        .read(move |tx| pairgate::store::groups::memberships(tx, tenant))
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, g)| *g == group)
        .map(|(s, _)| s.into_string())
        .collect();
    serials.sort();
    serials
}

async fn bulk_move_moves_exactly_the_selected_devices(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    for name in ["North", "South"] {
        b.submit("/groups", "/groups", &[("name", name)]).await;
    }
    let (north, south) = (group_id(&app, "North").await, group_id(&app, "South").await);
    let page = b
        .submit(
            "/devices?q=pg-001",
            "/devices/group",
            &[
                ("serial", "PG-0011"),
                ("serial", "PG-0013"),
                ("serial", "PG-0017"),
                ("group", &north),
                ("back", "/devices?q=pg-001"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/devices?q=pg-001&moved=3"));
    assert!(
        b.get("/devices?q=pg-001&moved=3")
            .await
            .body
            .contains("Moved 3 devices.")
    );
    assert_eq!(
        members_of(&app, &north).await,
        ["PG-0011", "PG-0013", "PG-0017"]
    );
    // Moving one of them on leaves the others where they are.
    b.submit(
        "/devices",
        "/devices/group",
        &[("serial", "PG-0013"), ("group", &south)],
    )
    .await;
    assert_eq!(members_of(&app, &north).await, ["PG-0011", "PG-0017"]);
    assert_eq!(members_of(&app, &south).await, ["PG-0013"]);
    // Out of any group.
    b.submit(
        "/devices",
        "/devices/group",
        &[("serial", "PG-0011"), ("group", "")],
    )
    .await;
    assert_eq!(members_of(&app, &north).await, ["PG-0017"]);
    // Without the form's CSRF token nothing moves.
    b.get("/devices").await;
    let page = b
        .post_raw(
            "/devices/group",
            &[("serial", "PG-0017"), ("group", &south)],
            None,
            Some(&app.base.clone()),
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(members_of(&app, &north).await, ["PG-0017"]);
    // Nothing selected.
    let page = b
        .submit("/devices", "/devices/group", &[("group", &south)])
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("select at least one device"));
}

async fn bulk_move_refuses_what_the_member_may_not_touch(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    let mut rival = owner(&app, "rita@example.com").await;
    rival
        .submit("/groups", "/groups", &[("name", "Rival site")])
        .await;
    b.submit("/groups", "/groups", &[("name", "North")]).await;
    let north = group_id(&app, "North").await;
    // Another tenant's device among the selected: nothing moves.
    let page = b
        .submit(
            "/devices",
            "/devices/group",
            &[
                ("serial", "PG-0001"),
                ("serial", "RV-0001"),
                ("group", &north),
            ],
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
    assert!(members_of(&app, &north).await.is_empty());
    // Another tenant's group.
    let theirs = group_id(&app, "Rival site").await;
    let page = b
        .submit(
            "/devices",
            "/devices/group",
            &[("serial", "PG-0001"), ("group", &theirs)],
        )
        .await;
    assert_eq!(page.status, 404);
    assert!(members_of(&app, &theirs).await.is_empty());
    // A member who may not manage groups, even for devices they see.
    let mut operator = invited(&app, &mut b, "otto@example.com", "operator").await;
    let body = list(&mut operator, "/devices").await;
    assert!(
        !body.contains("Move selected"),
        "no move form for operators"
    );
    let page = operator
        .submit(
            "/devices",
            "/devices/group",
            &[("serial", "PG-0001"), ("group", &north)],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(members_of(&app, &north).await.is_empty());
}

/// The figures of the home page: (count, link).
fn figures(body: &str) -> Vec<(i64, String)> {
    body.split("<ul class=\"figures\"")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap()
        .split("<a href=\"")
        .skip(1)
        .map(|rest| {
            let href = rest.split('"').next().unwrap().to_owned();
            let count = rest
                .split("<strong>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap();
            (count.parse().unwrap(), href)
        })
        .collect()
}

async fn dashboard_figures_equal_the_lists_they_link_to(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    let home = list(&mut b, "/").await;
    assert!(home.contains("<a class=\"button\" href=\"/device\">Pair a device</a>"));
    let figures = figures(&home);
    let expected = [
        (10, "/devices?seen=online"),
        (5, "/devices?seen=silent"),
        (3, "/devices?status=provisional"),
        (1, "/devices?status=disputed"),
        (55, "/devices"),
    ];
    assert_eq!(
        figures,
        expected.map(|(n, h)| (n, h.to_owned())).to_vec(),
        "{home}"
    );
    for (count, href) in &figures {
        assert_eq!(total(&list(&mut b, href).await), *count, "{href}");
    }
    // An hour later the online devices have gone silent, on both pages alike (signed in again).
    app.advance(3600);
    b.sign_in("olivia@example.com", super::PASSWORD).await;
    let code = b.code();
    let page = b
        .submit("/login/code", "/login/code", &[("code", &code)])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let later = figures_of(&mut b).await;
    assert_eq!(later[0].0, 0);
    assert_eq!(later[1].0, 15);
    for (count, href) in &later {
        assert_eq!(total(&list(&mut b, href).await), *count, "{href}");
    }
    // Latest pairings link to their devices; the owner reads the latest events.
    assert!(home.contains("Latest pairings"));
    assert!(home.contains("<a href=\"/devices/PG-0055\">PG-0055</a>"));
    assert!(home.contains("Latest events"));
    // A viewer may not pair: no primary action, no events.
    let mut viewer = invited(&app, &mut b, "victor@example.com", "viewer").await;
    let home = list(&mut viewer, "/").await;
    assert!(!home.contains("class=\"button\" href=\"/device\""));
    assert!(!home.contains("Latest events"));
}

async fn figures_of(b: &mut Browser<'_>) -> Vec<(i64, String)> {
    figures(&list(b, "/").await)
}

async fn a_member_with_selected_access_sees_only_those_devices(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    fleet(&app, "olivia@example.com").await;
    b.submit("/groups", "/groups", &[("name", "North")]).await;
    let north = group_id(&app, "North").await;
    b.submit(
        "/devices",
        "/devices/group",
        &[
            ("serial", "PG-0001"),
            ("serial", "PG-0012"),
            ("group", &north),
        ],
    )
    .await;
    let mut victor = invited(&app, &mut b, "victor@example.com", "viewer").await;
    let id = member_id(&app, "victor@example.com").await;
    let page = b
        .submit(
            &format!("/users/{id}/access"),
            &format!("/users/{id}/access"),
            &[
                ("scope", "selected"),
                ("group", &north),
                ("device", "PG-0050"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let body = list(&mut victor, "/devices").await;
    assert_eq!(serials(&body), ["PG-0001", "PG-0012", "PG-0050"]);
    let figures = figures_of(&mut victor).await;
    let counts: Vec<i64> = figures.iter().map(|f| f.0).collect();
    assert_eq!(
        counts,
        [1, 1, 1, 0, 3],
        "online, silent, provisional, disputed, all"
    );
    for (count, href) in &figures {
        assert_eq!(total(&list(&mut victor, href).await), *count, "{href}");
    }
    let home = list(&mut victor, "/").await;
    assert!(home.contains("PG-0050"), "a granted device's pairing");
    assert!(
        !home.contains("PG-0055"),
        "a pairing of a device not granted"
    );
    assert!(
        list(&mut victor, "/devices?q=pg-0055")
            .await
            .contains("No devices match.")
    );
}
