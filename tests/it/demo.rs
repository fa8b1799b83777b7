//! `pairgate demo` on a fresh folder, as a newcomer meets it: it prints what to run and open, the
//! device simulator pairs through those instructions once a person approves on the printed page
//! (signed in with the printed password and the printed second factor, through the ERP gate),
//! and a second run refuses the database it already filled.

use std::io::BufReader;
use std::process::{Command, Stdio};

use crate::support::ceremony::{Person, Running, after, lines_until, otpauth_secret, ready};
use crate::support::clean_command;

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
    let secret = otpauth_secret(&after(&printed, "\n   otpauth://"));
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
    let mut person = Person::new(&base);
    person
        .approve(
            (&email, &password, &secret),
            &user_code,
            &["SN-DEMO-1", "Demo Water"],
        )
        .await;

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
