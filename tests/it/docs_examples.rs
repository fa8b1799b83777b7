//! The examples the documentation gives work as the documentation says:
//! - every request of `docs/erp-integration.md`, sent in the page's order to a real server,
//!   gets the answer the page shows (status and JSON, times aside);
//! - the installed-base files it links import without a rejected row, and a second import
//!   changes nothing.

use std::path::Path;

use pairgate::erp::import::{self, Format};
use serde_json::Value;

use crate::backend_tests;
use crate::erp::ErpClient;
use crate::support::{Backend, TestApp};

backend_tests!(
    the_erp_guide_requests_get_the_answers_it_shows,
    the_installed_base_examples_import_cleanly_and_idempotently,
);

fn page(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// A request of the guide: method, path, JSON body; and the answer shown after it, if any:
/// status and JSON.
struct Example {
    method: String,
    path: String,
    body: Option<Value>,
    answer: Option<(u16, Value)>,
}

/// The page's ```http blocks, each with the ```json block that follows it when that block starts
/// with a status line (`201 Created`).
fn examples(page: &str) -> Vec<Example> {
    let mut blocks = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let (lang, body) = after.split_once('\n').unwrap();
        let end = body.find("```").unwrap();
        blocks.push((lang.to_owned(), body[..end].to_owned()));
        rest = &body[end + 3..];
    }
    let mut examples = Vec::new();
    for (i, (lang, text)) in blocks.iter().enumerate() {
        if lang != "http" {
            continue;
        }
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut words = head.lines().next().unwrap().split_whitespace();
        let (method, path) = (words.next().unwrap(), words.next().unwrap());
        let body = (!body.trim().is_empty()).then(|| serde_json::from_str(body).unwrap());
        let answer = blocks.get(i + 1).and_then(|(lang, text)| {
            let (status, json) = text.split_once('\n')?;
            let status = status.split_whitespace().next()?.parse().ok()?;
            (lang == "json").then(|| (status, serde_json::from_str(json).unwrap()))
        });
        examples.push(Example {
            method: method.to_owned(),
            path: path.to_owned(),
            body,
            answer,
        });
    }
    examples
}

/// `actual` says what `shown` says; a time (`occurred_at`) need only be there.
fn same(shown: &Value, actual: &Value, at: &str) {
    match (shown, actual) {
        (Value::Object(s), Value::Object(a)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(s), keys(a), "{at}: the fields");
            for (key, value) in s {
                if key != "occurred_at" {
                    same(value, &a[key], &format!("{at}.{key}"));
                }
            }
        }
        (Value::Array(s), Value::Array(a)) => {
            assert_eq!(s.len(), a.len(), "{at}: the length");
            for (i, (s, a)) in s.iter().zip(a).enumerate() {
                same(s, a, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(shown, actual, "{at}"),
    }
}

async fn the_erp_guide_requests_get_the_answers_it_shows(backend: Backend) {
    let app = TestApp::start(backend).await;
    let erp = ErpClient::new(&app).await;
    let examples = examples(&page("docs/erp-integration.md"));
    assert!(examples.len() >= 6, "the guide shows its requests");
    let mut checked = 0;
    for e in examples {
        let url = app.url(&e.path);
        let req = match e.method.as_str() {
            "GET" => app.client.get(url),
            "PUT" => app.client.put(url),
            "POST" => app.client.post(url),
            "DELETE" => app.client.delete(url),
            other => panic!("a method the test does not send: {other}"),
        };
        let req = req.bearer_auth(&erp.token);
        let req = match &e.body {
            Some(body) => req.json(body),
            None => req,
        };
        let res = req.send().await.unwrap();
        let Some((status, shown)) = e.answer else {
            continue;
        };
        let at = format!("{} {}", e.method, e.path);
        assert_eq!(res.status().as_u16(), status, "{at}");
        same(&shown, &res.json().await.unwrap(), &at);
        checked += 1;
    }
    assert!(checked >= 6, "{checked} answers checked");
}

async fn the_installed_base_examples_import_cleanly_and_idempotently(backend: Backend) {
    let app = TestApp::start(backend).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/erp-integration.md")).unwrap();
    for (name, devices, sales) in [("installed-base.csv", 2, 2), ("installed-base.jsonl", 1, 1)] {
        assert!(
            guide.contains(&format!("(../examples/{name})")),
            "the guide links {name}"
        );
        let path = root.join("examples").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let format = Format::from_path(&path).unwrap();
        let (rows, bad) = import::parse(&text, format).unwrap();
        assert!(bad.is_empty(), "{name}: {bad:?}");
        let first = app
            .ctx
            .erp
            .import(rows.clone(), 500, &|_| ())
            .await
            .unwrap();
        assert_eq!(
            (first.devices.created, first.sales.created),
            (devices, sales),
            "{name}"
        );
        assert!(first.refused.is_empty(), "{name}: {:?}", first.refused);
        let again = app.ctx.erp.import(rows, 500, &|_| ()).await.unwrap();
        assert_eq!(
            (again.devices.unchanged, again.sales.unchanged),
            (devices, sales),
            "{name}: a second run changes nothing"
        );
    }
}

/// Shell words of `line` (quotes and backslashes as a shell reads them), split into the commands
/// of a pipeline or a list (`|`, `&&`, `;`); an unquoted `#` ends the line.
fn commands(line: &str) -> Vec<Vec<String>> {
    let (mut all, mut words, mut word) = (Vec::new(), Vec::new(), None::<String>);
    let mut chars = line.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut Option<String>| {
        if let Some(w) = word.take() {
            words.push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            '#' if word.is_none() => break,
            '|' | ';' | '&' => {
                end_word(&mut words, &mut word);
                if !words.is_empty() {
                    all.push(std::mem::take(&mut words));
                }
            }
            c if c.is_whitespace() => end_word(&mut words, &mut word),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut words, &mut word);
    if !words.is_empty() {
        all.push(words);
    }
    all
}

/// Every `pairgate` and `pairgate-device` command line of the shell blocks of `page`.
fn documented_commands(page: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for block in page.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap().replace("\\\n", " ");
        for line in block.lines() {
            for words in commands(line) {
                let start = words
                    .iter()
                    .position(|w| !w.contains('=') || w.starts_with('-'))
                    .unwrap_or(words.len());
                let command = &words[start..];
                // Redirections (`> dev.jwk`, `2>/dev/null`) are the shell's, not arguments.
                let args = command
                    .iter()
                    .position(|w| w.starts_with(['>', '<']) || w.starts_with("2>"))
                    .unwrap_or(command.len());
                let command = &command[..args];
                if matches!(
                    command.first().map(String::as_str),
                    Some("pairgate" | "pairgate-device")
                ) {
                    found.push(command.to_vec());
                }
            }
        }
    }
    found
}

#[test]
fn the_shell_splitter_reads_pipes_quotes_and_comments() {
    assert_eq!(
        commands("echo 'a b' | pairgate user create --name \"Ann E\" # a comment"),
        [
            vec!["echo", "a b"],
            vec!["pairgate", "user", "create", "--name", "Ann E"]
        ]
    );
    assert_eq!(
        commands("X=1 pairgate serve && ls"),
        [vec!["X=1", "pairgate", "serve"], vec!["ls"]]
    );
}

/// Every command the README and the docs show is one the binaries accept: its arguments, with
/// `--help` after them, parse (a wrong subcommand or option fails), so the pages cannot drift
/// from the CLI.
#[test]
fn every_command_in_the_docs_is_one_the_cli_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for dir in ["docs", "docs/decisions"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let mut checked = 0;
    for page in &pages {
        for command in documented_commands(&std::fs::read_to_string(page).unwrap()) {
            let binary = match command[0].as_str() {
                "pairgate" => env!("CARGO_BIN_EXE_pairgate"),
                _ => env!("CARGO_BIN_EXE_pairgate-device"),
            };
            let out = std::process::Command::new(binary)
                .args(&command[1..])
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: `{}` is not a command the CLI accepts:\n{}",
                page.display(),
                command.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} commands found in the docs");
}
