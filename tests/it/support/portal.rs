//! A cookie-keeping HTTP client that uses the portal as a browser would: it reads the CSRF token
//! from each page's form and sends `Origin`, and it can compute TOTP codes from the enrolment page.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};

use super::TestApp;

pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub client: reqwest::Client,
    jar: Arc<Jar>,
    /// The CSRF token of the last page read.
    csrf: String,
    /// The TOTP secret read at enrolment, for computing codes.
    pub totp_secret: Option<Vec<u8>>,
}

/// A response as the tests look at it.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self::build(app, reqwest::header::HeaderMap::new(), None)
    }

    /// A browser whose every request carries `headers` (e.g. `X-Forwarded-For`).
    pub fn with_headers(app: &'a TestApp, headers: reqwest::header::HeaderMap) -> Self {
        Self::build(app, headers, None)
    }

    /// A browser whose connections come from `ip`, another loopback address such as
    /// `127.0.0.2` (Linux routes all of 127.0.0.0/8 to the loopback interface).
    pub fn from_address(app: &'a TestApp, ip: &str) -> Self {
        Self::build(
            app,
            reqwest::header::HeaderMap::new(),
            Some(ip.parse().unwrap()),
        )
    }

    fn build(
        app: &'a TestApp,
        headers: reqwest::header::HeaderMap,
        local: Option<std::net::IpAddr>,
    ) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .local_address(local)
            .build()
            .unwrap();
        Self {
            app,
            client,
            jar,
            csrf: String::new(),
            totp_secret: None,
        }
    }

    /// The session cookie's value, if any.
    pub fn session_cookie(&self) -> Option<String> {
        let url = self.app.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|kv| kv.strip_prefix("pairgate_session=").map(str::to_owned))
            .filter(|v| !v.is_empty())
    }

    /// Replaces the session cookie (to replay an old one).
    pub fn set_session_cookie(&self, value: &str) {
        let url = self.app.base.parse().unwrap();
        self.jar
            .add_cookie_str(&format!("pairgate_session={value}; Path=/"), &url);
    }

    async fn read(&mut self, res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = res.text().await.unwrap();
        if let Some(token) = extract(&body, "name=\"csrf\" value=\"") {
            self.csrf = token;
        }
        Page {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self.client.get(self.app.url(path)).send().await.unwrap();
        self.read(res).await
    }

    /// Submits a form with the last page's CSRF token, from the portal's own origin.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        self.post_raw(path, fields, Some(&csrf), Some(&self.app.base.clone()))
            .await
    }

    /// Submits a form with the given CSRF token and `Origin` (either may be left out).
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
        origin: Option<&str>,
    ) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let mut req = self.client.post(self.app.url(path)).form(&form);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let res = req.send().await.unwrap();
        self.read(res).await
    }

    /// GET then POST, the way a person fills a form.
    pub async fn submit(&mut self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(form_page).await;
        assert_eq!(page.status, 200, "{form_page}: {}", page.body);
        self.post(action, fields).await
    }

    pub async fn sign_up(
        &mut self,
        company: &str,
        name: &str,
        email: &str,
        password: &str,
    ) -> Page {
        self.submit(
            "/signup",
            "/signup",
            &[
                ("company", company),
                ("name", name),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password), ("next", "/")],
        )
        .await
    }

    /// Enrols TOTP from the enrolment page; returns the recovery codes shown.
    pub async fn enrol_totp(&mut self) -> Vec<String> {
        let page = self.get("/account/totp").await;
        assert_eq!(page.status, 200, "{}", page.body);
        // The key is shown in groups of four.
        let secret = extract(&page.body, "<p class=\"secret\" id=\"secret\">").unwrap();
        let secret = totp_rs::Secret::try_from_base32(secret.replace(' ', ""))
            .unwrap()
            .to_vec();
        self.totp_secret = Some(secret);
        let code = self.code();
        let page = self.post("/account/totp", &[("code", &code)]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body
            .split("<code>")
            .skip(1)
            .filter_map(|s| s.split("</code>").next().map(str::to_owned))
            .collect()
    }

    /// The current TOTP code (by the app's clock).
    pub fn code(&self) -> String {
        self.code_at(0)
    }

    /// The TOTP code `steps` 30-second steps from now.
    pub fn code_at(&self, steps: i64) -> String {
        pairgate::accounts::totp::code_at(
            self.totp_secret.as_ref().unwrap(),
            self.app.now() + steps * 30,
        )
        .unwrap()
    }

    /// Answers the page that holds an action for a step-up (`page`) with `code`: the form goes
    /// back to the action's own path with the sealed action.
    pub async fn confirm_pending(&mut self, page: &Page, code: &str) -> Page {
        let action = extract(&page.body, "<form method=\"post\" id=\"step-up\" action=\"")
            .unwrap_or_else(|| panic!("a step-up page: {}", page.body));
        let pending = extract(&page.body, "name=\"pending\" value=\"").unwrap();
        self.post(&action, &[("pending", &pending), ("step_up_code", code)])
            .await
    }

    pub async fn step_up(&mut self) -> Page {
        let code = self.code();
        self.submit("/step-up", "/step-up", &[("code", &code), ("next", "/")])
            .await
    }
}

/// The text after `marker` up to the next `"` or `<`.
pub fn extract(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    let rest = &body[start..];
    let end = rest.find(['"', '<'])?;
    Some(rest[..end].to_owned())
}
