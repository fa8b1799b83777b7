//! The portal in a real headless Chromium with a phone-sized viewport: sign up, enrol TOTP, sign
//! out and in again with a code, invite a colleague, change their role (with a step-up); pair a
//! device; meet the code attempt limit.

use pairgate::ids::DeviceSerial;

use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::{Backend, TestApp};

pub fn totp_code(app: &TestApp, secret: &[u8]) -> String {
    pairgate::accounts::totp::code_at(secret, app.now()).unwrap()
}

/// Acme Water (linked to an ERP customer number when given) with its owner, Olivia
/// (olivia@example.com), who has TOTP; returns the tenant and her TOTP key.
pub async fn acme_owner(
    app: &TestApp,
    customer_number: Option<&'static str>,
) -> (pairgate::ids::TenantId, Vec<u8>) {
    let tenant =
        pairgate::accounts::create_tenant(&app.ctx.store, app.now() * 1000, "test", "Acme Water")
            .await
            .unwrap();
    if let Some(number) = customer_number {
        app.ctx
            .store
            .write(move |tx| pairgate::store::erp::set_tenant_customer(tx, tenant, Some(number)))
            .await
            .unwrap();
    }
    let (_, uri) = app
        .ctx
        .accounts
        .create_user(
            "test",
            pairgate::accounts::NewUser {
                tenant_id: Some(tenant),
                email: "olivia@example.com".into(),
                name: "Olivia Owner".into(),
                role: pairgate::accounts::Role::Owner,
                password: PASSWORD.into(),
                totp: true,
            },
        )
        .await
        .unwrap();
    let secret = uri
        .unwrap()
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    (
        tenant,
        totp_rs::Secret::try_from_base32(secret).unwrap().to_vec(),
    )
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
    let secret = totp_rs::Secret::try_from_base32(secret_text.replace(' ', ""))
        .unwrap()
        .to_vec();
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
        .wait_for_text("Invitation to victor@example.com queued")
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
    // The change waits on a page that names it, and goes ahead once the code is right.
    chrome
        .wait_for_text("Confirm with your code to make Victor Viewer operator.")
        .await;
    chrome.screenshot("06-step-up").await;
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Confirm").await;
    chrome.wait_for_text("The role has been changed.").await;
    chrome.screenshot("07-users").await;
    assert_eq!(
        crate::portal::security_role(&app, "victor@example.com").await,
        "operator"
    );
    chrome.close().await;
}

#[actix_web::test]
async fn a_person_pairs_the_device_in_front_of_them_on_a_phone() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = TestApp::start(Backend::Sqlite).await;
    // A customer company linked to its ERP customer number, with an owner who has TOTP.
    let (tenant, secret) = acme_owner(&app, Some("C-100")).await;
    crate::pairing::sell(&app, "SN-8001", "C-100", false, None).await;
    crate::pairing::sell(&app, "SN-8002", "C-999", false, None).await;

    // The device starts pairing and shows its code and a QR of verification_uri_complete.
    let device = app.device("SN-8001").await;
    let started = app.start_pairing(&device).await;
    let user_code = started["user_code"].as_str().unwrap().to_owned();

    // The person scans it: signs in, with a code, and lands back on the same step.
    chrome
        .goto(started["verification_uri_complete"].as_str().unwrap())
        .await;
    chrome.wait_for_path("/login").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_path("/device").await;
    chrome.screenshot("10-enter-code").await;
    let prefilled = chrome
        .client
        .find(fantoccini::Locator::Id("user_code"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        prefilled.as_deref(),
        Some(user_code.as_str()),
        "the code is filled in, nothing more"
    );
    chrome.press("Continue").await;
    chrome.wait_for_text("Is this your device?").await;
    let text = chrome.text().await;
    for shown in [
        "SN-8001",
        "TX-9000",
        user_code.as_str(),
        "127.0.0.1",
        "directly to Buyer C-100",
        "standing at this device",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    chrome.screenshot("11-confirm-device").await;
    app.advance(30);
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Approve").await;
    chrome
        .wait_for_text("Device SN-8001 joins your account")
        .await;
    chrome.screenshot("12-paired").await;

    // The device's next poll receives its tokens.
    app.advance(5);
    let res = app
        .poll(&device, started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 200);
    let tokens: serde_json::Value = res.json().await.unwrap();

    // It uploads the last hour's readings, one every five minutes; its page shows them as charts.
    let start = app.now() * 1000 - 3_600_000;
    let body = serde_json::json!({
        "readings": (0..12)
            .map(|i| serde_json::json!({
                "id": format!("r-{i}"),
                "ts": start + i * 300_000,
                "metrics": {
                    "pressure_bar": 4.0 + (i as f64 / 2.0).sin(),
                    "flow_lpm": 120 + 3 * i,
                },
            }))
            .collect::<Vec<_>>(),
    });
    let paired = crate::telemetry::Paired {
        device,
        tenant,
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
    };
    let res = crate::telemetry::upload(&app, &paired, &body).await;
    assert_eq!(crate::telemetry::accepted(res).await, (12, 0));
    chrome.goto(&app.url("/devices/SN-8001?window=1h")).await;
    chrome.wait_for_text("Telemetry").await;
    let text = chrome.text().await;
    for shown in ["pressure_bar", "flow_lpm", "153"] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    chrome.screenshot("14-device-telemetry").await;

    // A device sold to someone else: the page explains, and asking for a review opens a dispute.
    let other = app.device("SN-8002").await;
    let started = app.start_pairing(&other).await;
    chrome
        .goto(started["verification_uri_complete"].as_str().unwrap())
        .await;
    chrome.wait_for_path("/device").await;
    chrome.press("Continue").await;
    chrome.wait_for_text("sold to another customer").await;
    chrome.screenshot("13-refused").await;
    app.advance(30);
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Ask for a review").await;
    chrome.wait_for_text("was not paired").await;
    let disputes = app
        .ctx
        .store
        .read(|tx| pairgate::store::pairings::disputes_of(tx, &DeviceSerial::from("SN-8002")))
        .await
        .unwrap();
    assert_eq!(disputes.len(), 1);
    app.advance(5);
    let res = app
        .poll(&other, started["device_code"].as_str().unwrap())
        .await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "authorization_pending"
    );
    chrome.close().await;
}

/// Presses `button` and waits (up to 10 s) until the page it loads has replaced this one (the
/// next page may show the same text as this one).
pub async fn press_and_wait(chrome: &Chrome, button: &str) {
    chrome
        .client
        .execute("document.documentElement.dataset.left = 'yes'", vec![])
        .await
        .unwrap();
    chrome.press(button).await;
    for _ in 0..100 {
        let replaced = chrome
            .client
            .execute(
                "return document.readyState === 'complete' \
                 && !document.documentElement.dataset.left",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if replaced {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "pressing {button:?} loaded no new page: {}",
        chrome.text().await
    );
}

/// The HTTP status of the page the browser shows (Navigation Timing's `responseStatus`).
async fn page_status(chrome: &Chrome) -> u64 {
    chrome
        .client
        .execute(
            "return performance.getEntriesByType('navigation')[0].responseStatus",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

#[actix_web::test]
async fn a_wrong_code_storm_on_the_pairing_page_is_told_to_wait() {
    let Some(chrome) = Chrome::start().await else {
        return;
    };
    let app = TestApp::start(Backend::Sqlite).await;
    // Attempts are counted in ten-minute windows: start at the beginning of one, so the wait
    // the page names is the whole window.
    app.advance(600 - app.now().rem_euclid(600));
    let (_, secret) = acme_owner(&app, None).await;
    chrome.goto(&app.url("/device")).await;
    chrome.wait_for_path("/login").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Sign in").await;
    chrome.wait_for_path("/login/code").await;
    chrome
        .fill("Authentication code", &totp_code(&app, &secret))
        .await;
    chrome.press("Continue").await;
    chrome.wait_for_path("/device").await;

    // Someone types codes as fast as the page allows: twenty are answered, then the page says
    // to wait, with 429 and without a raw error.
    for i in 0..20 {
        chrome
            .fill("Code", &format!("ZZZZ-BBB{}", ["B", "C", "D", "F"][i % 4]))
            .await;
        press_and_wait(&chrome, "Continue").await;
        assert_eq!(page_status(&chrome).await, 422, "attempt {i}");
        assert!(
            chrome
                .text()
                .await
                .contains("no pending pairing request has this code"),
            "attempt {i}: {}",
            chrome.text().await
        );
    }
    chrome.fill("Code", "ZZZZ-BBBG").await;
    press_and_wait(&chrome, "Continue").await;
    assert_eq!(page_status(&chrome).await, 429);
    let text = chrome.text().await;
    assert!(
        text.contains("Too many codes have been tried")
            && text.contains("wait 10 minutes, then enter the code again"),
        "{text}"
    );
    assert!(
        text.contains("Pair a device")
            && text.contains("Enter the code shown on the device's screen"),
        "the form stays, for later: {text}"
    );
    chrome.screenshot("15-too-many-codes").await;
    chrome.close().await;
}
