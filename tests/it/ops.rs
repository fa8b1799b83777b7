//! The operations surface and the cross-cutting HTTP behaviour: health, readiness, metrics,
//! request ids, security headers, unknown routes.

use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    healthz_and_readyz_answer,
    metrics_count_requests_per_route,
    every_response_has_security_headers_and_a_request_id,
    unknown_paths_are_404_json,
);

async fn healthz_and_readyz_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ready"})
    );
}

async fn metrics_count_requests_per_route(backend: Backend) {
    let app = TestApp::start(backend).await;
    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
    assert_eq!(app.get("/no/such/page?user_code=ABCD").await.status(), 404);
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            "pairgate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"(unmatched)\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "pairgate_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} 3"
        ),
        "{text}"
    );
    // Raw paths and query strings never become labels.
    assert!(!text.contains("ABCD"));
    assert!(text.contains("pairgate_db_pool_connections "));
}

async fn every_response_has_security_headers_and_a_request_id(backend: Backend) {
    let app = TestApp::start(backend).await;
    for path in ["/healthz", "/nope"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let id = h["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        // Plain-http development URL: no HSTS.
        assert!(h.get("strict-transport-security").is_none());
    }

    // A well-formed incoming id is kept (so a proxy's id follows the request); others are replaced.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "edge-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "edge-42.a_b");
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id\twith spaces");
}

async fn unknown_paths_are_404_json(backend: Backend) {
    let app = TestApp::start(backend).await;
    let res = app.get("/definitely/not/here").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"error": "not_found"})
    );
}

/// Every series `docs/operations.md` names (its table and its alerting rules) is one that
/// `/metrics` serves, with the type the table gives it: the monitoring advice cannot drift.
#[actix_web::test]
async fn the_series_the_operations_guide_names_are_served() {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .unwrap();
    let app = TestApp::start(Backend::Sqlite).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let text = app.get("/metrics").await.text().await.unwrap();
    let served: std::collections::HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_once(' '))
        .collect();
    let mut named = 0;
    for (at, _) in page.match_indices("pairgate_") {
        let name: String = page[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let series = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| served.get(base) == Some(&"histogram"))
            .unwrap_or(&name);
        assert!(served.contains_key(series), "{name} is not served:\n{text}");
        named += 1;
    }
    assert!(named >= 10, "{named}");
    for row in page.lines().filter(|l| l.starts_with("| `pairgate_")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for name in cells[1].split(", ") {
            let name = name.trim_matches('`');
            assert_eq!(served.get(name), Some(&cells[2]), "{row}");
        }
    }
}
