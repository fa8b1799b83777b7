//! Clear outcomes: a browser that asks for a page that does not exist, or that its role may not
//! open, gets a page inside the layout; API clients keep JSON on their paths whatever they accept.

use super::{invited, owner};
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    unknown_paths_answer_browsers_with_a_page_and_apis_with_json,
    forbidden_pages_say_so_inside_the_layout,
);

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn fetch(app: &TestApp, path: &str, accept: &str) -> (u16, String, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    (status, kind, res.text().await.unwrap())
}

async fn unknown_paths_answer_browsers_with_a_page_and_apis_with_json(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, kind, body) = fetch(&app, "/no/such/page", BROWSER_ACCEPT).await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("<h1>Page not found</h1>"), "{body}");
    assert!(body.contains("There is no page at this address."));
    assert!(
        body.contains("href=\"/static/app.css\""),
        "inside the layout"
    );
    assert!(body.contains("<a href=\"/\">Back to the start</a>"));
    // API paths answer JSON to the same browser; other clients get JSON everywhere.
    for (path, accept) in [
        ("/oauth/nothing", BROWSER_ACCEPT),
        ("/api/erp/v1/nothing", BROWSER_ACCEPT),
        ("/.well-known/nothing", BROWSER_ACCEPT),
        ("/no/such/page", "application/json"),
        ("/no/such/page", "*/*"),
    ] {
        let (status, kind, body) = fetch(&app, path, accept).await;
        assert_eq!(status, 404, "{path}");
        assert!(kind.contains("json"), "{path} {accept}: {kind}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        // The ERP's scope answers its own problem+json.
        if !path.starts_with("/api/erp/") {
            assert_eq!(json, serde_json::json!({"error": "not_found"}));
        }
    }
}

async fn forbidden_pages_say_so_inside_the_layout(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut olivia = owner(&app, "olivia@example.com").await;
    let mut viewer = invited(&app, &mut olivia, "victor@example.com", "viewer").await;
    for path in ["/audit", "/users", "/staff"] {
        let page = viewer.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.contains("<h1>Not allowed</h1>"), "{}", page.body);
        assert!(page.contains("Your role does not allow this."));
        assert!(page.contains("href=\"/static/app.css\""));
    }
}
