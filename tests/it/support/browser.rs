//! A real headless Chromium (Debian's chromium + chromium-driver) driven over WebDriver, with a
//! phone-sized viewport. Tests skip when chromedriver is missing, unless
//! `PAIRGATE_TEST_BROWSER_REQUIRED` is set (as `.ci/run` does), which makes its absence a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub struct Chrome {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl Chrome {
    /// Starts chromedriver and a phone-sized headless Chromium; `None` to skip.
    pub async fn start() -> Option<Chrome> {
        Self::start_at(390, 844).await
    }

    /// Starts chromedriver and a headless Chromium whose viewport is `width` × `height` CSS
    /// pixels: a phone (touch, 3× pixels) up to 600 wide, a desk screen beyond.
    pub async fn start_at(width: u32, height: u32) -> Option<Chrome> {
        let Some(driver_path) = chromedriver() else {
            assert!(
                std::env::var_os("PAIRGATE_TEST_BROWSER_REQUIRED").is_none(),
                "PAIRGATE_TEST_BROWSER_REQUIRED is set but chromedriver is not installed"
            );
            eprintln!("chromedriver not installed: skipping the browser test");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                // An iPhone-sized screen by default: the pages must work where devices are
                // approved.
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": width, "height": height,
                        "pixelRatio": if width <= 600 { 3.0 } else { 1.0 },
                        "touch": width <= 600, "mobile": width <= 600,
                    }
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        for _ in 0..50 {
            let mut builder =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(caps.clone());
            match builder.connect(&url).await {
                Ok(client) => {
                    return Some(Chrome {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => last_error = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("could not start a browser session: {last_error:?}");
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Fills the input whose `<label>` has this text (as a person finds it).
    pub async fn fill(&self, label: &str, value: &str) {
        let xpath = format!("//label[normalize-space(text())='{label}']");
        let label_el = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no label {label:?}: {e}"));
        let id = label_el
            .attr("for")
            .await
            .unwrap()
            .expect("label has a for attribute");
        let input = self.client.find(Locator::Id(&id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Picks an option of the `<select>` whose label has this text.
    pub async fn select(&self, label: &str, value: &str) {
        let xpath = format!("//label[normalize-space(text())='{label}']");
        let id = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap()
            .attr("for")
            .await
            .unwrap()
            .unwrap();
        let select = self.client.find(Locator::Id(&id)).await.unwrap();
        select.select_by_value(value).await.unwrap();
    }

    /// Clicks the button with this text.
    pub async fn press(&self, text: &str) {
        let xpath = format!("//button[normalize-space(text())='{text}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// The page's visible text (read by script, so a navigation in flight is no error).
    pub async fn text(&self) -> String {
        self.client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits (up to 10 s) until the browser is at `path`: a click returns before the navigation
    /// it starts has finished.
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path && self.ready().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected to reach {path}, still at {}: {}",
            self.path().await,
            self.text().await
        );
    }

    /// Waits (up to 10 s) until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str) {
        for _ in 0..100 {
            if self.ready().await && self.text().await.contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected the page to show {text:?}: {}", self.text().await);
    }

    async fn ready(&self) -> bool {
        self.client
            .execute("return document.readyState", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(|s| s == "complete"))
            .unwrap_or(false)
    }

    /// Saves a screenshot under target/screenshots/ (a test artefact), then checks the page
    /// with axe-core: every page a test shows a person is also checked for accessibility.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        super::axe::check(&self.client, name).await;
    }

    /// Adds one of Chromium's virtual WebAuthn authenticators (CTAP2, platform, with resident
    /// keys and user verification, always consenting and verified), so a page's passkey
    /// ceremonies complete without a person; returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = self
            .webauthn(reqwest::Method::POST, "", Some(options))
            .await;
        id.as_str().expect("an authenticator id").to_owned()
    }

    /// The credentials `authenticator` holds (WebDriver's JSON: `credentialId`, `rpId`,
    /// `isResidentCredential`, `userHandle`, `signCount`, …), to check what a page registered.
    pub async fn passkey_credentials(&self, authenticator: &str) -> Vec<serde_json::Value> {
        let path = format!("/{authenticator}/credentials");
        match self.webauthn(reqwest::Method::GET, &path, None).await {
            serde_json::Value::Array(credentials) => credentials,
            other => panic!("credentials are a list: {other}"),
        }
    }

    /// Sets whether `authenticator` verifies its user from now on: `false` makes a ceremony
    /// that requires user verification fail, as a wrong PIN or fingerprint would.
    pub async fn set_user_verified(&self, authenticator: &str, verified: bool) {
        let path = format!("/{authenticator}/uv");
        let body = json!({ "isUserVerified": verified });
        self.webauthn(reqwest::Method::POST, &path, Some(body))
            .await;
    }

    /// Removes `authenticator` with its credentials, as unplugging a security key would.
    pub async fn remove_virtual_authenticator(&self, authenticator: &str) {
        let path = format!("/{authenticator}");
        self.webauthn(reqwest::Method::DELETE, &path, None).await;
    }

    /// Sends a WebAuthn extension command for `/webauthn/authenticator{path}`; its `value`.
    async fn webauthn(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let command = WebAuthn {
            method,
            path: format!("webauthn/authenticator{path}"),
            body,
        };
        let what = format!("{command:?}");
        self.client
            .issue_cmd(command)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A command of the W3C WebAuthn extension to WebDriver (virtual authenticators), which
/// fantoccini does not know: `path` is relative to `/session/{id}/`.
#[derive(Debug)]
struct WebAuthn {
    method: reqwest::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a WebDriver session");
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(ToString::to_string),
        )
    }
}
