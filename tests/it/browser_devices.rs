//! The dashboard and the device list in a real headless Chromium, on a phone (390 × 844) and at
//! a desk (1280 × 800): the figures link to their lists, the list is cards on a phone and a table
//! at a desk without sideways scrolling, the search form and the bulk move work without scripts,
//! and each row leads to its device page. Screenshots: `target/screenshots/devices-*.png`.

use fantoccini::Locator;

use crate::portal::PASSWORD;
use crate::portal::devices::fleet;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

#[actix_web::test]
async fn the_dashboard_and_the_device_list_on_a_phone() {
    dashboard_and_list(390, 844, "phone").await;
}

#[actix_web::test]
async fn the_dashboard_and_the_device_list_at_a_desk() {
    dashboard_and_list(1280, 800, "desk").await;
}

/// A computed style of the first element `css` finds.
async fn style(chrome: &Chrome, css: &str, property: &str) -> String {
    chrome
        .client
        .execute(
            "return getComputedStyle(document.querySelector(arguments[0]))\
             .getPropertyValue(arguments[1])",
            vec![css.into(), property.into()],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// Whether the page is wider than the window (sideways scrolling).
async fn overflows(chrome: &Chrome) -> bool {
    chrome
        .client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap()
}

async fn click_link(chrome: &Chrome, text: &str) {
    let xpath = format!("//a[contains(normalize-space(.), '{text}')]");
    chrome
        .client
        .find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn dashboard_and_list(width: u32, height: u32, size: &str) {
    let Some(chrome) = Chrome::start_at(width, height).await else {
        return;
    };
    let app = TestApp::start(Backend::Sqlite).await;
    chrome.goto(&app.url("/signup")).await;
    chrome.fill("Company", "Acme Water").await;
    chrome.fill("Your name", "Olivia Owner").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Create account").await;
    chrome.wait_for_path("/account/totp").await;
    let (tenant, _) = fleet(&app, "olivia@example.com").await;
    app.raw_sql(&format!(
        "INSERT INTO device_groups (tenant_id, name, created_at) VALUES ({tenant}, 'North', 0)"
    ))
    .await;
    let north = app
        .query_i64("SELECT id AS n FROM device_groups WHERE name = 'North'")
        .await;

    // Home: the figures, the primary action, the latest pairings.
    chrome.goto(&app.url("/")).await;
    chrome.wait_for_text("Your devices").await;
    let text = chrome.text().await;
    for figure in [
        "10\nonline now",
        "5\ngone silent",
        "3\nawaiting the ERP",
        "1\nwith an open dispute",
        "55\npaired in all",
    ] {
        assert!(text.contains(figure), "{figure:?} in {text}");
    }
    assert!(text.contains("Pair a device"));
    assert!(text.contains("Latest pairings"));
    assert!(
        !overflows(&chrome).await,
        "home scrolls sideways at {width} px"
    );
    chrome.screenshot(&format!("devices-home-{size}")).await;

    // A figure opens the list behind it.
    click_link(&chrome, "gone silent").await;
    chrome.wait_for_text("Devices 1–5 of 5").await;
    assert_eq!(chrome.path().await, "/devices");
    let text = chrome.text().await;
    assert!(text.contains("silent for 3 h"), "{text}");
    chrome.screenshot(&format!("devices-silent-{size}")).await;

    // The whole list: a table at a desk, cards on a phone; no sideways scrolling either way.
    chrome.goto(&app.url("/devices")).await;
    chrome.wait_for_text("Devices 1–50 of 55").await;
    let row_display = style(&chrome, "table.devices tbody tr", "display").await;
    let head_position = style(&chrome, "table.devices thead", "position").await;
    if width < 768 {
        assert_eq!(row_display, "block", "a row is a card on a phone");
        assert_eq!(
            head_position, "absolute",
            "the header row is for screen readers only"
        );
    } else {
        assert_eq!(row_display, "table-row", "a row is a table row at a desk");
        assert_ne!(head_position, "absolute", "column headers are visible");
        assert!(chrome.text().await.contains("Last reading"));
    }
    assert!(
        !overflows(&chrome).await,
        "the list scrolls sideways at {width} px"
    );
    chrome.screenshot(&format!("devices-list-{size}")).await;

    // Search with the form (a GET, no script), then move two of the results to a group.
    chrome.fill("Serial", "pg-004").await;
    chrome.press("Show").await;
    chrome.wait_for_text("Devices 1–10 of 10").await;
    for serial in ["PG-0041", "PG-0042"] {
        chrome
            .client
            .find(Locator::Css(&format!(
                "input[type=checkbox][value='{serial}']"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    chrome
        .select("Move the selected devices to", &north.to_string())
        .await;
    chrome.screenshot(&format!("devices-search-{size}")).await;
    chrome.press("Move selected").await;
    chrome.wait_for_text("Moved 2 devices.").await;
    let text = chrome.text().await;
    assert!(
        text.contains("Devices 1–10 of 10"),
        "back on the same search: {text}"
    );
    let moved = app
        .query_i64(&format!(
            "SELECT COUNT(*) AS n FROM device_group_members WHERE group_id = {north} \
             AND serial IN ('PG-0041', 'PG-0042')"
        ))
        .await;
    assert_eq!(moved, 2, "the two selected devices are in North");
    chrome.screenshot(&format!("devices-moved-{size}")).await;

    // A row leads to its device page.
    click_link(&chrome, "PG-0041").await;
    chrome.wait_for_path("/devices/PG-0041").await;
    chrome.close().await;
}
