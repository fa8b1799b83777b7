//! The answer for a path no surface serves: a page inside the portal's layout for a browser
//! (it accepts `text/html`) on any path outside the APIs, JSON `{"error":"not_found"}` for
//! everything else, so API clients keep machine-readable errors whatever they accept.

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{errors, portal};
use crate::app::AppContext;

/// The prefixes of the machine surfaces (OAuth, the APIs, discovery, operations).
const API_PREFIXES: [&str; 7] = [
    "/oauth",
    "/api",
    "/erp",
    "/.well-known",
    "/metrics",
    "/healthz",
    "/readyz",
];

fn is_api(path: &str) -> bool {
    API_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// The default service.
pub async fn unknown_path(req: HttpRequest, ctx: web::Data<AppContext>) -> HttpResponse {
    if wants_html(&req) && !is_api(req.path()) {
        portal::no_such_page(&ctx)
    } else {
        errors::not_found().await
    }
}

#[cfg(test)]
mod tests {
    use super::is_api;

    #[test]
    fn api_paths_are_told_from_portal_paths() {
        for path in [
            "/oauth/token",
            "/api",
            "/api/erp/v1/x",
            "/.well-known/jwks.json",
            "/metrics",
        ] {
            assert!(is_api(path), "{path}");
        }
        for path in ["/", "/apiary", "/devices/x", "/oauthx", "/nope"] {
            assert!(!is_api(path), "{path}");
        }
    }
}
