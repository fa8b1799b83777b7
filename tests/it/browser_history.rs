//! The audit log and the "Page not found" page in a real headless Chromium, on a phone
//! (390 × 844) and at a desk (1280 × 800): sentences with names, a filter that a person sets
//! with the form, and a 404 inside the layout. Screenshots go to target/screenshots/.

use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

fn totp_code(app: &TestApp, secret: &[u8]) -> String {
    pairgate::accounts::totp::code_at(secret, app.now()).unwrap()
}

/// Signs up Acme Water in `chrome` and turns on TOTP.
async fn sign_up(chrome: &Chrome, app: &TestApp) {
    chrome.goto(&app.url("/signup")).await;
    chrome.fill("Company", "Acme Water").await;
    chrome.fill("Your name", "Olivia Owner").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Create account").await;
    chrome.wait_for_path("/account/totp").await;
    let secret_text = chrome
        .client
        .find(fantoccini::Locator::Css("p.secret"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(secret_text.replace(' ', ""))
        .unwrap()
        .to_vec();
    chrome
        .fill("Authentication code", &totp_code(app, &secret))
        .await;
    chrome.press("Turn on").await;
    chrome.wait_for_text("Save your recovery codes").await;
}

/// The width of the page's content beyond the viewport (0: nothing scrolls sideways).
async fn overflow(chrome: &Chrome) -> i64 {
    chrome
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap()
}

#[actix_web::test]
async fn the_audit_log_and_a_missing_page_on_a_phone_and_a_desk() {
    let mut backends = vec![Backend::Sqlite];
    backends.extend(crate::support::postgres());
    for backend in backends {
        let engine = match backend {
            Backend::Sqlite => "sqlite",
            _ => "postgres",
        };
        for (width, height) in [(390, 844), (1280, 800)] {
            let Some(chrome) = Chrome::start_at(width, height).await else {
                return;
            };
            let app = TestApp::start(backend.clone()).await;
            let size = format!("{width}x{height}-{engine}");
            sign_up(&chrome, &app).await;

            chrome.goto(&app.url("/audit")).await;
            chrome
                .wait_for_text("Olivia Owner created the company Acme Water by signing up")
                .await;
            let text = chrome.text().await;
            assert!(
                text.contains("Olivia Owner set up two-factor authentication"),
                "{text}"
            );
            assert!(
                !text.contains("user:") && !text.contains("tenant.created"),
                "{text}"
            );
            assert_eq!(
                overflow(&chrome).await,
                0,
                "nothing scrolls sideways at {size}"
            );
            chrome.screenshot(&format!("history-audit-{size}")).await;

            // Filter with the form: only the enrolment is left.
            chrome.select("What happened", "user.totp_enrolled").await;
            chrome.press("Show").await;
            chrome.wait_for_text("Clear filters").await;
            let text = chrome.text().await;
            assert!(text.contains("Olivia Owner set up two-factor authentication"));
            assert!(!text.contains("created the company"), "{text}");
            assert!(chrome.path().await.starts_with("/audit"));
            chrome
                .screenshot(&format!("history-audit-filtered-{size}"))
                .await;

            // An address with no page: a page that says so, inside the layout.
            chrome.goto(&app.url("/no/such/page")).await;
            chrome.wait_for_text("Page not found").await;
            let text = chrome.text().await;
            assert!(text.contains("There is no page at this address."), "{text}");
            assert!(text.contains("Back to the start") && !text.contains("not_found"));
            chrome.screenshot(&format!("history-404-{size}")).await;
            chrome.close().await;
        }
    }
}
