//! The newcomer's ceremony, shared by the tests that follow the docs and the demo: reading a
//! process's printed lines, a person at the portal who signs in with a password and an
//! authenticator app and approves a device's code, and processes stopped when a test ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command};
use std::sync::Arc;

use reqwest::cookie::Jar;

use super::portal::extract;

/// Lines of `out` up to and including the first that contains `last`.
pub fn lines_until(out: &mut BufReader<ChildStdout>, last: &str) -> String {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "ended early:\n{text}"
        );
        text.push_str(&line);
        if line.contains(last) {
            return text;
        }
    }
}

/// The word after `marker` in `text`.
pub fn after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in:\n{text}"))
        + marker.len();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// A person at the printed page: a browser's cookies and the last form's CSRF token.
pub struct Person {
    client: reqwest::Client,
    base: String,
    csrf: String,
}

impl Person {
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.read(res).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form = fields.to_vec();
        let csrf = self.csrf.clone();
        form.push(("csrf", &csrf));
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Origin", &self.base)
            .form(&form)
            .send()
            .await
            .unwrap();
        self.read(res).await
    }

    async fn read(&mut self, res: reqwest::Response) -> (u16, String) {
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        if let Some(token) = extract(&body, "name=\"csrf\" value=\"") {
            self.csrf = token;
        }
        (status, body)
    }
}

/// A process of the test, stopped (SIGTERM) when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        }
        let _ = self.0.wait();
    }
}

/// Waits until the server at `base` answers `/readyz` with 200.
pub async fn ready(base: &str) {
    for _ in 0..300 {
        if let Ok(res) = reqwest::get(format!("{base}/readyz")).await
            && res.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server at {base} did not become ready");
}

impl Person {
    /// A fresh browser at `base`: no cookies, redirects not followed.
    pub fn new(base: &str) -> Self {
        Person {
            client: reqwest::Client::builder()
                .cookie_provider(Arc::new(Jar::default()))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            csrf: String::new(),
        }
    }

    /// Signs in with `password` and the authenticator app holding `secret` (on the system's
    /// clock, as the server's), then approves `user_code` with a fresh code after checking that
    /// the page shows each of `shown`. Returns the approval's answer.
    pub async fn approve(
        &mut self,
        (email, password, secret): (&str, &str, &[u8]),
        user_code: &str,
        shown: &[&str],
    ) -> String {
        let now = || pairgate::clock::Clock::now(&pairgate::clock::SystemClock).timestamp();
        let code = |at: i64| pairgate::accounts::totp::code_at(secret, at).unwrap();
        self.get("/login").await;
        let fields = [("email", email), ("password", password), ("next", "/")];
        assert_eq!(self.post("/login", &fields).await.0, 303);
        self.get("/login/code?next=%2F").await;
        // The step before this one, so that the approval's code (this step) is a fresh one.
        let earlier = code(now() - 30);
        let (status, body) = self
            .post("/login/code", &[("code", &earlier), ("next", "/")])
            .await;
        assert_eq!(status, 303, "{body}");
        self.get(&format!("/device?user_code={user_code}")).await;
        let (status, page) = self.post("/device", &[("user_code", user_code)]).await;
        assert_eq!(status, 200, "{page}");
        for text in shown {
            assert!(page.contains(text), "{text:?} in:\n{page}");
        }
        let proof = extract(&page, "name=\"shown\" value=\"").unwrap();
        let fresh = code(now());
        let decide = [
            ("user_code", user_code),
            ("shown", &proof),
            ("group", ""),
            ("totp", &fresh),
            ("action", "approve"),
        ];
        let (status, page) = self.post("/device/decide", &decide).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("joins your account"), "{page}");
        page
    }
}

/// The base32 secret of an `otpauth://` URI, decoded.
pub fn otpauth_secret(uri: &str) -> Vec<u8> {
    let secret = after(uri, "secret=");
    let secret = secret.split('&').next().unwrap();
    totp_rs::Secret::try_from_base32(secret).unwrap().to_vec()
}
