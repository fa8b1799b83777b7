//! `docs/getting-started.md`, followed by hand as a newcomer would: its shell blocks run in order
//! in a fresh folder (with the built commands on the `PATH` instead of a release build, and the
//! test's port instead of 8080), each prints what the page shows after it, the ERP requests are
//! answered as the page says, the device pairs once a person approves with the page's account,
//! and it then uploads telemetry.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::ceremony::{Person, Running, after, lines_until, otpauth_secret, ready};
use crate::support::clean_command;

/// The page's fenced blocks in order: language and text.
fn blocks(page: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("```") {
        let (lang, body) = rest[start + 3..].split_once('\n').unwrap();
        let end = body.find("```").unwrap();
        blocks.push((lang.to_owned(), body[..end].to_owned()));
        rest = &body[end + 3..];
    }
    blocks
}

/// The page's reader: a shell in `dir` with the built commands first on the `PATH` and the
/// server's address in place of the default one.
struct Reader {
    dir: PathBuf,
    bind: String,
    env: Vec<(String, String)>,
}

impl Reader {
    fn shell(&self, script: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_pairgate")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut cmd = clean_command("bash");
        cmd.current_dir(&self.dir)
            .env("PATH", path)
            .env("PAIRGATE_BIND", &self.bind)
            .env("PAIRGATE_PUBLIC_URL", format!("http://{}", self.bind))
            .env("PAIRGATE_LOG__LEVEL", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-euo", "pipefail", "-c"])
            .arg(script.replace("127.0.0.1:8080", &self.bind));
        cmd
    }

    /// Runs a block to its end; it must succeed. Returns what it printed.
    fn run(&self, script: &str) -> String {
        let Output {
            status,
            stdout,
            stderr,
        } = self.shell(script).output().unwrap();
        let (out, err) = (
            String::from_utf8(stdout).unwrap(),
            String::from_utf8_lossy(&stderr),
        );
        assert!(status.success(), "{script}\nprinted:\n{out}\n{err}");
        out
    }

    /// Starts a block that keeps running, its output piped.
    fn start(&self, script: &str) -> (Running, BufReader<std::process::ChildStdout>) {
        let mut child = self
            .shell(&format!("exec {}", script.trim()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        (Running(child), out)
    }
}

/// The lines of `shown` and `printed` agree, except for the values the page says will differ
/// (the words after `varying` markers).
fn same_shape(shown: &str, printed: &str, varying: &[&str]) {
    let mask = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                let mut line = line.to_owned();
                for marker in varying {
                    if let Some(at) = line.find(marker) {
                        line.truncate(at + marker.len());
                    }
                }
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect()
    };
    assert_eq!(
        mask(shown),
        mask(printed),
        "shown:\n{shown}\nprinted:\n{printed}"
    );
}

/// The JSON values a block printed one after another.
fn answers(printed: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(printed)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

/// Reads `out` up to a line holding `last`, failing after `secs` instead of waiting forever.
async fn within(
    secs: u64,
    mut out: BufReader<std::process::ChildStdout>,
    last: &'static str,
) -> (BufReader<std::process::ChildStdout>, String) {
    let read = tokio::task::spawn_blocking(move || {
        let text = lines_until(&mut out, last);
        (out, text)
    });
    tokio::time::timeout(Duration::from_secs(secs), read)
        .await
        .unwrap_or_else(|_| panic!("no {last:?} within {secs} s"))
        .unwrap()
}

#[actix_web::test]
async fn the_getting_started_page_pairs_a_device_when_followed_by_hand() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/getting-started.md"),
    )
    .unwrap();
    let blocks = blocks(&page);
    let sh: Vec<&str> = blocks
        .iter()
        .filter(|(lang, _)| lang == "sh")
        .map(|(_, text)| text.as_str())
        .collect();
    let shown_after = |script: &str| -> &str {
        let at = blocks.iter().position(|(_, t)| t == script).unwrap();
        &blocks[at + 1].1
    };
    let [build, serve, people, keygen, client, erp, pair, run] = sh[..] else {
        panic!("the page's shell blocks changed: {sh:#?}");
    };
    // The build is the one step the test does not repeat: the commands it names are already
    // built, and put on the PATH the way the block puts them.
    assert!(build.contains("cargo build --release"), "{build}");
    assert!(
        build.contains("export PATH=\"$PWD/target/release:$PATH\""),
        "{build}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bind = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let base = format!("http://{bind}");
    let mut reader = Reader {
        dir: dir.path().to_owned(),
        bind,
        env: Vec::new(),
    };

    let _server = Running(
        reader
            .shell(&format!("exec {}", serve.trim()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    ready(&base).await;
    for made in ["data/pairgate.db", "data/master.key"] {
        assert!(dir.path().join(made).is_file(), "{made}");
    }

    let printed = reader.run(people);
    same_shape(shown_after(people), &printed, &["secret="]);
    let secret = otpauth_secret(&after(&printed, "\notpauth://"));
    let email = after(people, "--email ");
    let password = people.split('\'').nth(1).unwrap();

    reader.run(keygen);
    let jwk: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("dev.jwk")).unwrap()).unwrap();
    assert_eq!(jwk["kty"], "EC", "{jwk}");

    let printed = reader.run(client);
    same_shape(
        shown_after(client),
        &printed,
        &["client_id:", "client_secret:"],
    );
    reader.env = vec![
        ("CLIENT_ID".into(), after(&printed, "client_id:")),
        ("CLIENT_SECRET".into(), after(&printed, "client_secret:")),
    ];

    let said = answers(&reader.run(erp));
    assert_eq!(said.len(), 3, "{said:?}");
    assert_eq!(said[0]["change"], "created", "{said:?}");
    assert_eq!(said[1]["linked"], true, "{said:?}");
    assert_eq!(said[2]["created"], true, "{said:?}");

    // The device's default server is 127.0.0.1:8080; here the test's port is named.
    let at_server = |block: &str| format!("{} --server {base}", block.trim());
    let (mut device, shown) = reader.start(&at_server(pair));
    let (shown, screen) = within(60, shown, "enter the code:").await;
    assert!(screen.contains(&format!("open {base}/device")), "{screen}");
    let user_code = after(&screen, "enter the code:");
    Person::new(&base)
        .approve(
            (&email, password, &secret),
            &user_code,
            &["SN-0001", "TX-9000", "Acme Water"],
        )
        .await;
    let (_, done) = within(60, shown, "paired:").await;
    assert!(
        done.contains("paired: tokens stored in SN-0001.tokens.json"),
        "{done}"
    );
    assert!(device.0.wait().unwrap().success());

    let (_device, out) = reader.start(&at_server(run));
    let (_, uploaded) = within(60, out, "uploaded ").await;
    assert!(uploaded.contains(" new, 0 duplicates"), "{uploaded}");
}
