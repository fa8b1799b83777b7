//! Accessibility: axe-core (the npm package, installed by `.ci/run`) run inside the page that a
//! browser test has open. Every screenshot a browser test takes runs it, so each page those tests
//! visit is checked at each size they visit it. A serious or critical violation fails the test.
//!
//! The script is read from `PAIRGATE_TEST_AXE_JS`, or from `target/axe/node_modules/axe-core/`
//! (where `npm install --prefix target/axe axe-core` puts it). When it is missing the check is
//! skipped with a message, unless `PAIRGATE_TEST_AXE_REQUIRED` is set (as in CI).

use std::path::PathBuf;
use std::sync::OnceLock;

use fantoccini::Client;
use serde_json::Value;

/// axe-core's source, or `None` when it is not installed (and not required).
fn source() -> Option<&'static str> {
    static SOURCE: OnceLock<Option<String>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let path = std::env::var_os("PAIRGATE_TEST_AXE_JS")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("target/axe/node_modules/axe-core/axe.min.js")
                });
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(text),
                Err(e) => {
                    assert!(
                        std::env::var_os("PAIRGATE_TEST_AXE_REQUIRED").is_none(),
                        "PAIRGATE_TEST_AXE_REQUIRED is set but {} cannot be read: {e}",
                        path.display()
                    );
                    eprintln!(
                        "axe-core not installed ({}): skipping the checks",
                        path.display()
                    );
                    None
                }
            }
        })
        .as_deref()
}

/// Runs axe-core on the open page (WCAG 2.x A and AA rules) and panics, naming the page, on any
/// serious or critical violation.
pub async fn check(client: &Client, page: &str) {
    let Some(source) = source() else {
        return;
    };
    // WebDriver scripts run outside the page's CSP, which forbids the page's own scripts.
    client
        .execute(&format!("{source}\n;return true;"), vec![])
        .await
        .expect("load axe-core into the page");
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {
                 runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
                 resultTypes: ['violations'],
             }).then(r => done(r.violations.map(v => ({
                 id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.map(n => n.target.join(' ')),
             }))), e => done({ error: String(e) }));",
            vec![],
        )
        .await
        .expect("run axe-core");
    if let Some(error) = result.get("error") {
        panic!("axe-core failed on {page}: {error}");
    }
    let grave: Vec<&Value> = result
        .as_array()
        .expect("axe-core's violations")
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(
        grave.is_empty(),
        "accessibility violations on {page}:\n{}",
        grave
            .iter()
            .map(|v| format!(
                "- {} ({}): {}; at {}",
                v["id"], v["impact"], v["help"], v["nodes"]
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
