//! Enrolment and the account page in a real headless Chromium, on a phone (390 × 844) and at a
//! desk (1280 × 800): the `otpauth://` link is there and big enough to tap, the key reads in
//! groups of four, the recovery codes left and the sessions are listed, and "sign out the others"
//! signs the other browser out. Screenshots go to target/screenshots/.

use fantoccini::Locator;
use reqwest::header::{HeaderMap, HeaderValue, USER_AGENT};

use crate::portal::PASSWORD;
use crate::support::browser::Chrome;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};

/// The width of the page's content beyond the viewport, scroll bar aside (0: nothing scrolls
/// sideways).
async fn overflow(chrome: &Chrome) -> i64 {
    chrome
        .client
        .execute(
            "const d = document.documentElement; return d.scrollWidth - d.clientWidth;",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap()
}

/// Signs up Acme Water in `chrome` and checks the enrolment page; returns the TOTP key.
async fn sign_up_and_check_enrolment(chrome: &Chrome, app: &TestApp, size: &str) -> Vec<u8> {
    chrome.goto(&app.url("/signup")).await;
    chrome.fill("Company", "Acme Water").await;
    chrome.fill("Your name", "Olivia Owner").await;
    chrome.fill("Email", "olivia@example.com").await;
    chrome.fill("Password", PASSWORD).await;
    chrome.press("Create account").await;
    chrome.wait_for_path("/account/totp").await;

    // The key, in groups of four.
    let key = chrome
        .client
        .find(Locator::Css("p.secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let groups: Vec<&str> = key.split_whitespace().collect();
    assert_eq!(groups.len(), 8, "{key}");
    assert!(groups.iter().all(|g| g.len() == 4), "{key}");
    let plain = groups.concat();

    // The link an authenticator app on this phone opens: shown, in view, big enough to tap.
    let link = chrome
        .client
        .find(Locator::XPath(
            "//a[normalize-space(text())='Open in authenticator app']",
        ))
        .await
        .expect("the otpauth link is on the page");
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("otpauth://totp/"), "{href}");
    assert!(href.contains(&format!("secret={plain}")), "{href}");
    assert!(link.is_displayed().await.unwrap());
    let (x, _, w, h) = link.rectangle().await.unwrap();
    assert!(h >= 44.0 && w >= 44.0, "a tap target of {w} × {h}");
    let width: f64 = size.split('x').next().unwrap().parse().unwrap();
    assert!(x >= 0.0 && x + w <= width, "the link is in view at {size}");
    assert_eq!(
        overflow(chrome).await,
        0,
        "nothing scrolls sideways at {size}"
    );
    chrome
        .screenshot(&format!("account-enrolment-{size}"))
        .await;

    let secret = totp_rs::Secret::try_from_base32(plain).unwrap().to_vec();
    let code = pairgate::accounts::totp::code_at(&secret, app.now()).unwrap();
    chrome.fill("Authentication code", &code).await;
    chrome.press("Turn on").await;
    chrome.wait_for_text("Save your recovery codes").await;
    secret
}

async fn sessions_listed(chrome: &Chrome) -> usize {
    chrome
        .client
        .find_all(Locator::Css("ul.sessions li"))
        .await
        .unwrap()
        .len()
}

#[actix_web::test]
async fn enrolment_and_the_account_page_on_a_phone_and_a_desk() {
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
            let secret = sign_up_and_check_enrolment(&chrome, &app, &size).await;

            // Olivia is signed in on a laptop too.
            let mut headers = HeaderMap::new();
            headers.insert(
                USER_AGENT,
                HeaderValue::from_static(
                    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                ),
            );
            let mut laptop = Browser::with_headers(&app, headers);
            laptop.totp_secret = Some(secret);
            laptop.sign_in("olivia@example.com", PASSWORD).await;
            app.advance(30);
            let code = laptop.code();
            let page = laptop
                .submit(
                    "/login/code",
                    "/login/code",
                    &[("code", &code), ("next", "/")],
                )
                .await;
            assert_eq!(page.status, 303, "{}", page.body);

            // The account page: codes left, both sessions, this one marked.
            chrome.goto(&app.url("/account")).await;
            chrome.wait_for_text("Your account").await;
            let text = chrome.text().await;
            assert!(text.contains("10 of 10 recovery codes left"), "{text}");
            assert!(text.contains("this session"), "{text}");
            assert!(text.contains("Firefox on Linux"), "{text}");
            assert_eq!(sessions_listed(&chrome).await, 2);
            assert_eq!(
                overflow(&chrome).await,
                0,
                "nothing scrolls sideways at {size}"
            );
            chrome.screenshot(&format!("account-{size}")).await;
            chrome
                .client
                .execute(
                    "document.querySelector('ul.sessions').scrollIntoView();",
                    vec![],
                )
                .await
                .unwrap();
            chrome.screenshot(&format!("account-sessions-{size}")).await;

            // A save says what happened.
            chrome.fill("Name", "Olivia O. Owner").await;
            chrome.press("Save name").await;
            chrome.wait_for_text("Your name has been saved.").await;

            // Sign out the others: the page says how many, and the laptop is signed out.
            chrome.press("Sign out the others").await;
            chrome.wait_for_text("Signed out 1 other session.").await;
            assert_eq!(sessions_listed(&chrome).await, 1);
            let text = chrome.text().await;
            assert!(!text.contains("Firefox on Linux"), "{text}");
            chrome
                .screenshot(&format!("account-signed-out-others-{size}"))
                .await;
            let page = laptop.get("/devices").await;
            assert_eq!(page.status, 303, "the laptop is signed out");
            chrome.close().await;
        }
    }
}
