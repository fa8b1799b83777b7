//! The backup and restore of docs/operations.md, run as the page shows them: the shell blocks of
//! "Backups and restore" are read from the page and run with bash against a real `pairgate serve`
//! (SQLite, and PostgreSQL when configured); the restored pairgate must start, sign with the
//! restored key ring, and know exactly what was stored before the backup.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::support::clean_command;
use crate::support::{Backend, hex, postgres, rand_bytes};

/// The shell blocks under `### {engine}` of the "Backups and restore" section: (backup, restore).
fn documented(engine: &str) -> (String, String) {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"))
            .unwrap();
    let section = page
        .split("\n## Backups and restore\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has a Backups and restore section");
    let part = section
        .split(&format!("\n### {engine}\n"))
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .unwrap_or_else(|| panic!("the section has a {engine} part"));
    let blocks: Vec<String> = part
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        blocks.len(),
        2,
        "{engine}: a backup block and a restore block"
    );
    (blocks[0].clone(), blocks[1].clone())
}

/// A `pairgate` command in `dir`, with only the environment `env` sets.
fn pairgate(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_pairgate"));
    cmd.current_dir(dir).env("PAIRGATE_LOG__LEVEL", "warn");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{cmd:?}: {stdout}\n{stderr}");
    stdout.into_owned()
}

/// Runs a documented block with bash, stopping at the first failing line.
fn shell(dir: &Path, block: &str, env: &[(&str, String)]) {
    let mut cmd = Command::new("bash");
    cmd.current_dir(dir).args(["-euo", "pipefail", "-c", block]);
    for (key, value) in env {
        cmd.env(key, value);
    }
    run(&mut cmd);
}

/// `pairgate serve`, answering `/readyz` with 200.
async fn serve(dir: &Path, env: &[(&str, String)], base: &str) -> Child {
    let mut child = pairgate(dir, env)
        .arg("serve")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await
            && res.status() == 200
        {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pairgate serve exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    panic!("pairgate serve did not become ready");
}

fn stop(mut child: Child) {
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
}

/// The number of keys the JWKS publishes: the restored ring, decrypted with the restored key.
async fn published_keys(base: &str) -> usize {
    let jwks: serde_json::Value = reqwest::get(format!("{base}/oauth/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"].as_array().map_or(0, Vec::len)
}

/// An address for a server of this test, and its base URL.
fn address() -> (String, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = listener.local_addr().unwrap().to_string();
    (bind.clone(), format!("http://{bind}"))
}

#[actix_web::test]
async fn a_sqlite_backup_restores_as_documented() {
    let (backup, restore) = documented("SQLite");
    let dir = tempfile::tempdir().unwrap();
    let (bind, base) = address();
    let env = [
        ("PAIRGATE_BIND", bind),
        ("PAIRGATE_PUBLIC_URL", base.clone()),
    ];
    run(pairgate(dir.path(), &env).args(["tenant", "create", "--name", "Backed Up"]));
    let server = serve(dir.path(), &env, &base).await;
    let keys = published_keys(&base).await;
    assert!(keys > 0);
    // Online: the server keeps running while the backup is taken.
    shell(dir.path(), &backup, &[]);
    run(pairgate(dir.path(), &env).args(["tenant", "create", "--name", "After the backup"]));
    stop(server);

    std::fs::write(dir.path().join("data/master.key"), "not the key").unwrap();
    shell(dir.path(), &restore, &[]);
    let server = serve(dir.path(), &env, &base).await;
    assert_eq!(published_keys(&base).await, keys);
    stop(server);
    let names = run(Command::new("sqlite3")
        .current_dir(dir.path())
        .args(["data/pairgate.db", "SELECT name FROM tenants ORDER BY id"]));
    assert_eq!(
        names.trim(),
        "Backed Up",
        "the state of the backup, no more"
    );
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[actix_web::test]
async fn a_postgres_dump_restores_as_documented() {
    let Some(Backend::Postgres(admin)) = postgres() else {
        return;
    };
    let (backup, restore) = documented("PostgreSQL");
    let names = [0, 1].map(|_| format!("pairgate_backup_{}", hex(&rand_bytes())));
    let mut conn = PgConnection::establish(&admin).unwrap();
    for name in &names {
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .unwrap();
    }
    let url = |name: &str| {
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        url.to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    let (bind, base) = address();
    let master_key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rand::random::<[u8; 32]>(),
    );
    let on = |name: &str| {
        [
            ("PAIRGATE_BIND", bind.clone()),
            ("PAIRGATE_PUBLIC_URL", base.clone()),
            ("PAIRGATE_DATABASE_URL", url(name)),
            ("PAIRGATE_KEYS__MASTER_KEY", master_key.clone()),
        ]
    };
    let (original, restored) = (on(&names[0]), on(&names[1]));
    run(pairgate(dir.path(), &original).args(["tenant", "create", "--name", "Backed Up"]));
    let server = serve(dir.path(), &original, &base).await;
    let keys = published_keys(&base).await;
    shell(dir.path(), &backup, &original[2..3]);
    stop(server);

    shell(dir.path(), &restore, &restored[2..3]);
    let server = serve(dir.path(), &restored, &base).await;
    assert_eq!(published_keys(&base).await, keys);
    stop(server);
    let mut db = PgConnection::establish(&url(&names[1])).unwrap();
    let tenants: Vec<Name> = diesel::sql_query("SELECT name FROM tenants ORDER BY id")
        .load(&mut db)
        .unwrap();
    let tenants: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tenants, ["Backed Up"]);
    drop(db);
    for name in &names {
        diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .unwrap();
    }
}
