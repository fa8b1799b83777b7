//! Passkeys in a real headless Chromium, with its virtual authenticator (the WebDriver WebAuthn
//! extension): the ceremony script runs under the pages' CSP, creates a passkey from the account
//! page, signs in with it, approves a pairing with it (offered before the code), meets the
//! owner's "passkey only" rule, confirms a removal as a step-up (an authenticator that cannot
//! verify its user is told so on the page), and the authenticator's answers reach the server in
//! the form webauthn-rs reads. Both engines.

use fantoccini::Locator;

use crate::backend_tests;
use crate::browser::{acme_owner, press_and_wait, totp_code};
use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

backend_tests!(passkeys_register_sign_in_approve_and_are_removed_in_chromium);

/// Whether the element with `id` is on the page.
async fn has(chrome: &Chrome, id: &str) -> bool {
    chrome.client.find(Locator::Id(id)).await.is_ok()
}

/// Starts a pairing of `serial` (sold to C-100) and opens its confirmation page.
async fn confirmation(app: &TestApp, chrome: &Chrome, serial: &str) {
    crate::pairing::sell(app, serial, "C-100", false, None).await;
    let device = app.device(serial).await;
    let started = app.start_pairing(&device).await;
    chrome
        .goto(started["verification_uri_complete"].as_str().unwrap())
        .await;
    chrome.wait_for_path("/device").await;
    chrome.press("Continue").await;
    chrome.wait_for_text("Is this your device?").await;
}

async fn passkeys_register_sign_in_approve_and_are_removed_in_chromium(backend: Backend) {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let engine = match backend {
        Backend::Sqlite => "sqlite",
        _ => "postgres",
    };
    let app = TestApp::builder(backend).on_localhost().start().await;
    let (_, secret) = acme_owner(&app, Some("C-100")).await;
    let authenticator = chrome.add_virtual_authenticator().await;

    // Signed in with a code (no passkey yet, so none is offered).
    chrome.goto(&app.url("/login")).await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    assert!(!chrome.text().await.contains("Use a passkey"));
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_path("/").await;

    // Adds a passkey from the account page; the browser's authenticator creates it.
    chrome.goto(&app.url("/account")).await;
    chrome.fill("Name of the new passkey", "This laptop").await;
    chrome.press("Add a passkey").await;
    chrome.wait_for_text("Create the passkey").await;
    chrome.screenshot(&format!("passkey-create-{engine}")).await;
    chrome.press("Create the passkey").await;
    chrome.wait_for_text("Your passkey has been added").await;
    let text = chrome.text().await;
    assert!(
        text.contains("This laptop") && text.contains("Not used yet"),
        "{text}"
    );
    let held = chrome.passkey_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost", "{held:?}");
    chrome.screenshot(&format!("passkey-listed-{engine}")).await;

    // Signs out and in again: the password, then the passkey.
    chrome.press("Sign out").await;
    chrome.wait_for_path("/login").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    chrome
        .screenshot(&format!("passkey-sign-in-passkey-{engine}"))
        .await;
    chrome.press("Use a passkey").await;
    chrome.wait_for_path("/").await;

    // Once allowed, the passkey signs in alone (a discoverable credential names the account).
    chrome.goto(&app.url("/account")).await;
    chrome
        .client
        .find(Locator::XPath(
            "//label[contains(., 'passkey alone')]/input",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press_and_wait(&chrome, "Save sign-in choice").await;
    chrome.press("Sign out").await;
    chrome.wait_for_path("/login").await;
    chrome.press("Sign in with a passkey").await;
    chrome.wait_for_text("Use your passkey").await;
    chrome.screenshot(&format!("passkey-alone-{engine}")).await;
    chrome.press("Use your passkey").await;
    chrome.wait_for_path("/").await;

    // Approves a pairing with the passkey, offered before the code.
    confirmation(&app, &chrome, "SN-8101").await;
    assert!(has(&chrome, "totp").await, "the code stays the alternative");
    chrome
        .screenshot(&format!("passkey-approve-with-passkey-{engine}"))
        .await;
    chrome.press("Approve with a passkey").await;
    chrome
        .wait_for_text("Device SN-8101 joins your account")
        .await;

    // The owner turns on "passkey only": the code field goes, the rule is explained.
    chrome.goto(&app.url("/account")).await;
    chrome
        .client
        .find(Locator::XPath(
            "//label[contains(., 'with a passkey only')]/input",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press_and_wait(&chrome, "Save approval rule").await;
    confirmation(&app, &chrome, "SN-8102").await;
    assert!(!has(&chrome, "totp").await, "no code field under the rule");
    assert!(
        chrome
            .text()
            .await
            .contains("Your company approves devices with a passkey only")
    );
    chrome.screenshot(&format!("passkey-only-{engine}")).await;
    chrome.press("Approve with a passkey").await;
    chrome
        .wait_for_text("Device SN-8102 joins your account")
        .await;

    // Removing it waits for a step-up, which the passkey itself gives.
    app.advance(600);
    chrome.goto(&app.url("/account")).await;
    chrome.press("Remove This laptop").await;
    chrome.wait_for_text("remove a passkey").await;
    chrome
        .screenshot(&format!("passkey-remove-step-up-{engine}"))
        .await;
    // An authenticator that cannot verify its user is refused in the browser, and the page
    // says so; verified again, it confirms.
    chrome.set_user_verified(&authenticator, false).await;
    chrome.press("Confirm with a passkey").await;
    chrome.wait_for_text("The passkey was not used").await;
    chrome.set_user_verified(&authenticator, true).await;
    chrome.press("Confirm with a passkey").await;
    chrome.wait_for_text("The passkey has been removed").await;
    assert!(chrome.text().await.contains("You have no passkeys yet"));

    let log = app.ctx.store.audit_page(None, None, 200).await.unwrap();
    let count = |action: &str| log.iter().filter(|e| e.action == action).count();
    assert_eq!(count("user.passkey_registered"), 1);
    assert_eq!(
        count("user.passkey_used"),
        5,
        "two sign-ins, two approvals, a step-up"
    );
    assert_eq!(count("user.passkey_removed"), 1);
    chrome.remove_virtual_authenticator(&authenticator).await;
    chrome.close().await;
}
