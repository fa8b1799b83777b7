//! The device page in a real headless Chromium, on a phone (390 × 844) and at a desk
//! (1280 × 800): each chart has a title, a value axis labelled with the unit and ticks, a time
//! axis with labelled ticks and the zone, and fits the width; the CSV link is there; a range is
//! chosen with the form, without scripts. Screenshots: `target/screenshots/device-page-*.png`.

use fantoccini::Locator;

use crate::portal::PASSWORD;
use crate::portal::device_page::{describe_meter, metered};
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

#[actix_web::test]
async fn the_device_page_on_a_phone() {
    device_page(390, 844, "phone").await;
}

#[actix_web::test]
async fn the_device_page_at_a_desk() {
    device_page(1280, 800, "desk").await;
}

/// What a script in the page returns, as text.
async fn eval(chrome: &Chrome, script: &str) -> String {
    let value = chrome.client.execute(script, vec![]).await.unwrap();
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

async fn device_page(width: u32, height: u32, size: &str) {
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
    metered(&app, "olivia@example.com").await;
    describe_meter(&app).await;

    chrome.goto(&app.url("/devices/PG-0001")).await;
    chrome.wait_for_text("Telemetry").await;
    let flow = "document.querySelector('figure.chart svg')";
    // The first chart is Flow: its title, the unit on the value axis, ticks on both axes.
    let title = eval(
        &chrome,
        &format!("return {flow}.querySelector('title').textContent"),
    )
    .await;
    assert_eq!(title, "Flow");
    let unit = eval(
        &chrome,
        &format!("return {flow}.querySelector('.value-axis .axis-title').textContent"),
    )
    .await;
    assert_eq!(unit, "m³/h");
    let values = eval(
        &chrome,
        &format!(
            "return Array.from({flow}.querySelectorAll('.value-axis text:not(.axis-title)'))\
             .map(t => t.textContent).join(' ')"
        ),
    )
    .await;
    assert_eq!(values, "0 1 2 3 4");
    let times = eval(
        &chrome,
        &format!(
            "return Array.from({flow}.querySelectorAll('.time-axis text'))\
             .map(t => t.textContent).join('|')"
        ),
    )
    .await;
    assert!(times.ends_with("|Time (UTC)"), "{times}");
    assert!(times.split('|').count() >= 5, "{times}");
    // The labels are on the screen: the tick labels are at least 9 px high at this size.
    let font = eval(
        &chrome,
        &format!("return {flow}.querySelector('.time-axis text').getBoundingClientRect().height"),
    )
    .await;
    assert!(font.parse::<f64>().unwrap() >= 9.0, "label height {font}");
    // The chart scales to the width: no sideways scrolling, the SVG inside its figure.
    let fits = eval(
        &chrome,
        &format!(
            "return document.documentElement.scrollWidth <= window.innerWidth && \
             {flow}.getBoundingClientRect().right <= \
             {flow}.closest('figure').getBoundingClientRect().right + 1"
        ),
    )
    .await;
    assert_eq!(fits, "true", "the chart fits at {width} px");
    let text = chrome.text().await;
    assert!(
        text.contains("No readings of Pressure in the last 24 hours"),
        "{text}"
    );
    let csv = chrome
        .client
        .find(Locator::Css("a[href*='/readings.csv?from=']"))
        .await
        .expect("a CSV link");
    assert!(csv.text().await.unwrap().contains("as CSV"));
    chrome.screenshot(&format!("device-page-{size}")).await;
    eval(
        &chrome,
        &format!("{flow}.closest('figure').scrollIntoView(); return ''"),
    )
    .await;
    chrome
        .screenshot(&format!("device-page-chart-{size}"))
        .await;

    // Another range, by its link.
    chrome
        .client
        .find(Locator::Css("a[href$='range=7d']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome.wait_for_text("readings in the last 7 days").await;
    eval(
        &chrome,
        &format!("{flow}.closest('figure').scrollIntoView(); return ''"),
    )
    .await;
    chrome.screenshot(&format!("device-page-7d-{size}")).await;
    chrome.goto(&app.url("/account/time-zone")).await;
    chrome.select("Your time zone", "Asia/Tokyo").await;
    chrome.press("Save my time zone").await;
    chrome.wait_for_text("Asia/Tokyo, your choice").await;
    chrome.screenshot(&format!("device-time-zone-{size}")).await;
    chrome.goto(&app.url("/devices/PG-0001")).await;
    chrome.wait_for_text("Times in Asia/Tokyo").await;
    let zone = eval(
        &chrome,
        &format!("return {flow}.querySelector('.time-axis .axis-title').textContent"),
    )
    .await;
    assert_eq!(zone, "Time (JST)");
    chrome.close().await;
}
