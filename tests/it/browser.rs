//! The portal in a real headless Chromium with a phone-sized viewport: sign up, enrol TOTP, sign
//! out and in again with a code, invite a colleague, change their role (with a step-up).

use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

fn totp_code(app: &TestApp, secret: &[u8]) -> String {
    pairgate::accounts::totp::code_at(secret, app.now()).unwrap()
}

#[actix_web::test]
async fn a_company_signs_up_and_manages_its_people_on_a_phone() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = TestApp::start(Backend::Sqlite).await;

    // Sign up.
    chrome.goto(&app.url("/signup")).await;
    chrome.screenshot("01-signup").await;
    chrome.fill("Company", "Acme Water").await;
    chrome.fill("Your name", "Olivia Owner").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Create account").await;

    // TOTP enrolment: read the key shown for typing by hand, answer with a code.
    chrome.wait_for_path("/account/totp").await;
    chrome.screenshot("02-totp-enrolment").await;
    let secret_text = chrome
        .client
        .find(fantoccini::Locator::Css("p.secret"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap();
    let secret = totp_rs::Secret::Encoded(secret_text.trim().to_owned())
        .to_bytes()
        .unwrap();
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Turn on").await;
    chrome.wait_for_text("Save your recovery codes").await;
    chrome.screenshot("03-recovery-codes").await;

    // Sign out, sign in again with a (fresh) code.
    chrome.goto(&app.url("/account")).await;
    chrome.press("Sign out everywhere").await;
    chrome.wait_for_path("/login").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    app.advance(30);
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.screenshot("04-sign-in-code").await;
    chrome.press("Continue").await;
    chrome
        .wait_for_text("Signed in as Olivia Owner (owner)")
        .await;

    // Invite a colleague.
    chrome.goto(&app.url("/users")).await;
    chrome.fill("Email", "victor@example.com").await;
    chrome.select("Role", "viewer").await;
    chrome.press("Send invitation").await;
    chrome
        .wait_for_text("Invitation sent to victor@example.com")
        .await;
    let link = crate::portal::latest_link(&app, "victor@example.com").await;

    // The colleague accepts in another browser session.
    let colleague = Chrome::start().await.unwrap();
    colleague.goto(&link).await;
    colleague.fill("Your name", "Victor Viewer").await;
    colleague.fill("Password", PASSWORD).await;
    colleague.screenshot("05-accept-invitation").await;
    colleague.press("Join").await;
    colleague.wait_for_path("/account/totp").await;
    colleague.close().await;

    // Change Victor's role: the step-up from signing in is still fresh... until 5 minutes pass.
    app.advance(301);
    chrome.goto(&app.url("/users")).await;
    chrome.select("Role for Victor Viewer", "operator").await;
    chrome.press("Change role").await;
    chrome.wait_for_path("/step-up").await;
    chrome.screenshot("06-step-up").await;
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_path("/users").await;
    chrome.select("Role for Victor Viewer", "operator").await;
    chrome.press("Change role").await;
    chrome.wait_for_text("The role has been changed.").await;
    chrome.screenshot("07-users").await;
    assert_eq!(
        crate::portal::security_role(&app, "victor@example.com").await,
        "operator"
    );
    chrome.close().await;
}
