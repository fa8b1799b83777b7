//! Nothing typed is lost, in a real headless Chromium on a phone (390 × 844) and at a desk
//! (1280 × 800): a wrong step-up code on the approval page keeps the chosen group and says what
//! the code confirms; an expired session says why it asks to sign in again and comes back to the
//! code being approved. Screenshots go to target/screenshots/.

use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

fn totp_code(app: &TestApp, secret: &[u8]) -> String {
    pairgate::accounts::totp::code_at(secret, app.now()).unwrap()
}

/// Signs up Acme Water in `chrome`, turns on TOTP and returns its secret.
async fn sign_up(chrome: &Chrome, app: &TestApp) -> Vec<u8> {
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
    let secret = totp_rs::Secret::try_from_base32(secret_text.replace(char::is_whitespace, ""))
        .unwrap()
        .to_vec();
    chrome
        .fill("Authentication code", &totp_code(app, &secret))
        .await;
    chrome.press("Turn on").await;
    chrome.wait_for_text("Save your recovery codes").await;
    secret
}

/// A value read by script from the page.
async fn script(chrome: &Chrome, js: &str) -> String {
    let value = chrome.client.execute(js, vec![]).await.unwrap();
    match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Links the company to customer C-100, sells it `serial`, and starts its pairing.
async fn a_device_waiting(app: &TestApp, serial: &str) -> String {
    let tenant = app
        .ctx
        .store
        .read(|tx| pairgate::store::users::find_by_email(tx, "olivia@example.com"))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap();
    app.ctx
        .store
        .write(move |tx| pairgate::store::erp::set_tenant_customer(tx, tenant, Some("C-100")))
        .await
        .unwrap();
    crate::pairing::sell(app, serial, "C-100", false, None).await;
    crate::pairing::requesting(app, serial).await.2
}

#[actix_web::test]
async fn a_wrong_code_and_an_expired_session_keep_what_was_typed() {
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
            let secret = approval_keeps_the_group(&chrome, &app, &size).await;
            expired_session_comes_back(&chrome, &app, &size, &secret).await;
            chrome.close().await;
        }
    }
}

/// Returns the owner's TOTP secret.
async fn approval_keeps_the_group(chrome: &Chrome, app: &TestApp, size: &str) -> Vec<u8> {
    let secret = sign_up(chrome, app).await;
    chrome.goto(&app.url("/groups")).await;
    chrome.fill("New group name", "Plant South").await;
    chrome.press("Create group").await;
    chrome.wait_for_text("Plant South").await;
    chrome.fill("New group name", "Plant North").await;
    chrome.press("Create group").await;
    chrome.wait_for_text("Plant North").await;
    let user_code = a_device_waiting(app, "SN-9001").await;

    chrome
        .goto(&app.url(&format!("/device?user_code={user_code}")))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_text("Is this your device?").await;
    let north = script(
        chrome,
        "return [...document.querySelectorAll('#group option')]\
         .find(o => o.textContent === 'Plant North').value",
    )
    .await;
    chrome.select("Group or site", &north).await;
    chrome.fill("Authentication code", "000000").await;
    chrome.press("Approve").await;
    chrome
        .wait_for_text("Confirm with your code to approve pairing SN-9001 into Plant North.")
        .await;
    let text = chrome.text().await;
    assert!(
        text.contains("That authentication code is not right"),
        "{text}"
    );
    assert_eq!(
        script(chrome, "return document.getElementById('group').value").await,
        north,
        "the group chosen before the wrong code is still chosen"
    );
    // The error sits beside the code field, and the field says it is wrong.
    assert_eq!(
        script(
            chrome,
            "return document.getElementById('totp').previousElementSibling.id"
        )
        .await,
        "totp-error"
    );
    assert_eq!(
        script(
            chrome,
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        .await,
        "0",
        "nothing scrolls sideways at {size}"
    );
    chrome
        .screenshot(&format!("forms-approval-wrong-code-{size}"))
        .await;

    app.advance(30);
    chrome
        .fill("Authentication code", &totp_code(app, &secret))
        .await;
    chrome.press("Approve").await;
    chrome
        .wait_for_text("Device SN-9001 joins your account")
        .await;
    secret
}

async fn expired_session_comes_back(chrome: &Chrome, app: &TestApp, size: &str, secret: &[u8]) {
    let qr_link = "/device?user_code=ABCD-EFGH";
    // Idle past the 30-minute limit, the owner scans a device's QR code.
    app.advance(1801);
    chrome.goto(&app.url(qr_link)).await;
    chrome
        .wait_for_text("Your session expired; sign in again to continue approving ABCD-EFGH.")
        .await;
    assert_eq!(chrome.path().await, "/login");
    chrome
        .screenshot(&format!("forms-session-expired-{size}"))
        .await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    app.advance(30);
    chrome
        .fill("Authentication code", &totp_code(app, secret))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_path("/device").await;
    assert_eq!(
        script(chrome, "return document.getElementById('user_code').value").await,
        "ABCD-EFGH",
        "back at the code being approved"
    );
}
