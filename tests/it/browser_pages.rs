//! Every portal page in a real headless Chromium, on a phone (390 × 844) and at a desk
//! (1280 × 800), checked with axe-core (through `Chrome::screenshot`, which runs it): a company
//! with a paired device, a member, a group and an open dispute, seen by its owner, by the
//! manufacturer's staff, and signed out. Screenshots go to target/screenshots/pages-*.

use crate::pairing::{approve, company, requesting, sell, staff};
use crate::portal::invited;
use crate::support::browser::Chrome;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

/// The pages, by who sees them: (screenshot name, path, a text the page must show).
const OWNER_PAGES: [(&str, &str, &str); 12] = [
    ("home", "/", "Pair a device"),
    ("devices", "/devices", "SN-7001"),
    ("device", "/devices/SN-7001", "SN-7001"),
    ("groups", "/groups", "North site"),
    ("users", "/users", "Member viewer"),
    ("audit", "/audit", "Olivia Owner"),
    ("apps", "/apps", "Acme Dashboard"),
    ("account", "/account", "olivia@acme.example"),
    ("time-zone", "/account/time-zone", "Time zone"),
    ("enter-code", "/device", "code"),
    ("step-up", "/step-up", "code"),
    ("missing", "/no/such/page", "Page not found"),
];
const STAFF_PAGES: [(&str, &str, &str); 5] = [
    ("staff", "/staff", "SN-7001"),
    ("staff-dispute", "/staff/disputes/1", "SN-7001"),
    ("staff-device", "/staff/devices?serial=SN-7001", "SN-7001"),
    ("staff-tenants", "/staff/tenants", "Acme Water"),
    ("staff-apps", "/apps", "Every company"),
];
const SIGNED_OUT_PAGES: [(&str, &str, &str); 2] = [
    ("sign-in", "/login", "Sign in"),
    ("sign-up", "/signup", "Company"),
];

/// Puts `b`'s session into Chromium, on the app's origin. (A script sets it: WebDriver's
/// add-cookie refuses a cookie for an IP-address host.)
async fn take_session(chrome: &Chrome, app: &TestApp, b: &Browser<'_>) {
    chrome.goto(&app.url("/login")).await;
    chrome.client.delete_all_cookies().await.unwrap();
    let value = b.session_cookie().unwrap();
    chrome
        .client
        .execute(
            "document.cookie = 'pairgate_session=' + arguments[0] + '; path=/; samesite=lax';",
            vec![value.into()],
        )
        .await
        .unwrap();
}

/// How a page lays itself out: (the page scrolls sideways, the width of `main` in CSS pixels,
/// each list table's header is shown as a row of column names).
async fn layout(chrome: &Chrome) -> (bool, f64, Vec<bool>) {
    let script = "const de = document.documentElement; \
        return [de.scrollWidth > window.innerWidth, \
          document.querySelector('main').getBoundingClientRect().width, \
          [...document.querySelectorAll('table.list thead')].map(h => \
            getComputedStyle(h).position !== 'absolute' \
            && h.getBoundingClientRect().height > 10)];";
    let v = chrome.client.execute(script, vec![]).await.unwrap();
    let headers = v[2].as_array().unwrap();
    (
        v[0].as_bool().unwrap(),
        v[1].as_f64().unwrap(),
        headers.iter().map(|h| h.as_bool().unwrap()).collect(),
    )
}

/// The pages whose lists become tables at a desk (cards on a phone), and those that use a
/// desk's width.
const TABLES: [&str; 7] = [
    "devices",
    "groups",
    "users",
    "staff",
    "staff-tenants",
    "apps",
    "staff-apps",
];
const WIDE: [&str; 11] = [
    "home",
    "devices",
    "device",
    "groups",
    "users",
    "audit",
    "staff",
    "staff-device",
    "staff-tenants",
    "apps",
    "staff-apps",
];

async fn visit(chrome: &Chrome, app: &TestApp, pages: &[(&str, &str, &str)], size: &str) {
    let desk = size.starts_with("1280");
    for (name, path, shows) in pages {
        chrome.goto(&app.url(path)).await;
        chrome.wait_for_text(shows).await;
        chrome.screenshot(&format!("pages-{name}-{size}")).await;
        let (sideways, main, headers) = layout(chrome).await;
        assert!(!sideways, "{name} at {size} scrolls sideways");
        if TABLES.contains(name) {
            assert!(!headers.is_empty(), "{name} lists nothing as a table");
            assert!(
                headers.iter().all(|shown| *shown == desk),
                "{name} at {size}: column names shown {headers:?}, a desk shows them"
            );
        }
        if desk && WIDE.contains(name) {
            assert!(main > 1000.0, "{name} at a desk uses {main}px of 1280");
        }
    }
}

#[actix_web::test]
async fn every_page_passes_axe_on_a_phone_and_at_a_desk() {
    let mut backends = vec![Backend::Sqlite];
    backends.extend(crate::support::postgres());
    for backend in backends {
        let engine = match backend {
            Backend::Sqlite => "sqlite",
            _ => "postgres",
        };
        let app = TestApp::start(backend).await;
        let mut acme = company(&app, "olivia@acme.example", Some("C-100")).await;
        acme.owner
            .submit("/groups", "/groups", &[("name", "North site")])
            .await;
        invited(&app, &mut acme.owner, "val@acme.example", "viewer").await;
        let (_device, _, user_code) = requesting(&app, "SN-7001").await;
        sell(&app, "SN-7001", "C-100", false, None).await;
        let page = approve(&app, &mut acme.owner, &user_code, "").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let rival = app.tenant("Rival Water").await;
        let now = app.now() * 1000;
        app.raw_sql(&format!(
            "INSERT INTO disputes (serial, claimant_tenant_id, holder_tenant_id, reason, \
             status, opened_by, created_at) VALUES ('SN-7001', {rival}, {}, \
             'paired_elsewhere', 'open', 'user:test', {now})",
            acme.tenant
        ))
        .await;
        let support = staff(&app).await;
        let dash = crate::oidc::register(&app, true, Some(acme.tenant), false).await;
        let app_path = format!("/apps/{}", dash.client_id);
        let app_page = [("app", app_path.as_str(), "Where it sends people back")];

        for (width, height) in [(390, 844), (1280, 800)] {
            let Some(chrome) = Chrome::start_at(width, height).await else {
                return;
            };
            let size = format!("{width}x{height}-{engine}");
            take_session(&chrome, &app, &acme.owner).await;
            visit(&chrome, &app, &OWNER_PAGES, &size).await;
            visit(&chrome, &app, &app_page, &size).await;
            take_session(&chrome, &app, &support).await;
            visit(&chrome, &app, &STAFF_PAGES, &size).await;
            chrome.client.delete_all_cookies().await.unwrap();
            visit(&chrome, &app, &SIGNED_OUT_PAGES, &size).await;
            chrome.close().await;
        }
    }
}
