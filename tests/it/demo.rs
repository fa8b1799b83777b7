//! `pairgate demo` on a fresh folder, as a newcomer meets it: it prints what to run and open, the
//! device simulator pairs through those instructions once a person approves on the printed page
//! (signed in with the printed password and the printed second factor, through the ERP gate),
//! and a second run refuses the database it already filled.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use reqwest::cookie::Jar;

use crate::support::clean_command;
use crate::support::portal::extract;

/// A command of this crate's binaries in `dir`, with only the environment the test sets.
fn binary(path: &str, dir: &std::path::Path, bind: &str) -> Command {
    let mut cmd = clean_command(path);
    cmd.current_dir(dir)
        .env("PAIRGATE_BIND", bind)
        .env("PAIRGATE_PUBLIC_URL", format!("http://{bind}"))
        .env("PAIRGATE_LOG__LEVEL", "warn")
        .stdout(Stdio::piped());
    cmd
}

/// Lines of `out` up to and including the first that contains `last`.
fn lines_until(out: &mut BufReader<ChildStdout>, last: &str) -> String {
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
fn after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in:\n{text}"))
        + marker.len();
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// A person at the printed page: a browser's cookies and the last form's CSRF token.
struct Person {
    client: reqwest::Client,
    base: String,
    csrf: String,
}

impl Person {
    async fn get(&mut self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.read(res).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
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
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Waits until the server at `base` answers `/readyz` with 200.
async fn ready(base: &str) {
    for _ in 0..300 {
        if let Ok(res) = reqwest::get(format!("{base}/readyz")).await
            && res.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the demo's server did not become ready");
}

#[actix_web::test]
async fn the_demo_prints_a_ceremony_that_pairs_its_device() {
    let dir = tempfile::tempdir().unwrap();
    let bind = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let base = format!("http://{bind}");
    let mut demo = Running(
        binary(env!("CARGO_BIN_EXE_pairgate"), dir.path(), &bind)
            .arg("demo")
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(demo.0.stdout.take().unwrap());
    let printed = lines_until(&mut out, "Stop the server");
    assert!(printed.contains("created the database "), "{printed}");
    let otpauth = after(&printed, "\n   otpauth://");
    let secret = after(&otpauth, "secret=");
    let secret = secret.split('&').next().unwrap();
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap().to_vec();
    let password = after(&printed, " with the password ");
    let email = after(&printed, "sign in as ");
    let pair = after(&printed, "\n   pairgate-device pair ");
    assert_eq!(pair, "--serial");
    let key = after(&printed, " --key ");
    assert!(std::path::Path::new(&key).is_absolute(), "{key}");
    assert_eq!(
        after(&printed, &format!("{key} --server ")),
        base,
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Open {base}/device")),
        "{printed}"
    );

    // The device, as printed, once the server listens.
    ready(&base).await;
    let mut device = Running(
        binary(env!("CARGO_BIN_EXE_pairgate-device"), dir.path(), &bind)
            .args([
                "pair",
                "--serial",
                "SN-DEMO-1",
                "--key",
                &key,
                "--server",
                &base,
            ])
            .spawn()
            .unwrap(),
    );
    let mut shown = BufReader::new(device.0.stdout.take().unwrap());
    let screen = lines_until(&mut shown, "enter the code:");
    let user_code = after(&screen, "enter the code:");

    // The person, as printed: password, the app's code, the device's code, a fresh code.
    let jar = Arc::new(Jar::default());
    let mut person = Person {
        client: reqwest::Client::builder()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.clone(),
        csrf: String::new(),
    };
    // The demo runs on the system's clock, and so does the person's authenticator app.
    let now = || pairgate::clock::Clock::now(&pairgate::clock::SystemClock).timestamp();
    let code = |at: i64| pairgate::accounts::totp::code_at(&secret, at).unwrap();
    person.get("/login").await;
    let fields = [
        ("email", email.as_str()),
        ("password", &password),
        ("next", "/"),
    ];
    assert_eq!(person.post("/login", &fields).await.0, 303);
    person.get("/login/code?next=%2F").await;
    // The step before this one, so that the approval's code (this step) is a fresh one.
    let earlier = code(now() - 30);
    let (status, body) = person
        .post("/login/code", &[("code", &earlier), ("next", "/")])
        .await;
    assert_eq!(status, 303, "{body}");
    person.get(&format!("/device?user_code={user_code}")).await;
    let (status, page) = person.post("/device", &[("user_code", &user_code)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("SN-DEMO-1") && page.contains("Demo Water"),
        "{page}"
    );
    let proof = extract(&page, "name=\"shown\" value=\"").unwrap();
    let fresh = code(now());
    let decide = [
        ("user_code", user_code.as_str()),
        ("shown", &proof),
        ("group", ""),
        ("totp", &fresh),
        ("action", "approve"),
    ];
    let (status, page) = person.post("/device/decide", &decide).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("joins your account"), "{page}");

    // The device collects its tokens at its next poll.
    let done = lines_until(&mut shown, "paired:");
    assert!(done.contains("tokens stored in"), "{done}");
    let status = tokio::task::spawn_blocking(move || device.0.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    drop(demo);

    // Run again, the demo refuses the database it filled, and says what to do.
    let again = binary(env!("CARGO_BIN_EXE_pairgate"), dir.path(), &bind)
        .arg("demo")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("already holds") && said.contains("empty folder"),
        "{said}"
    );
}
