//! The dashboard's HTML: every value from elsewhere escaped.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};

use crate::sign_in::Person;

/// The signed-in page: who, and each device with its newest reading.
pub(crate) fn dashboard(p: &Person) -> String {
    let mut html = format!(
        "<h1>Hello, {}</h1><p>Signed in with pairgate as {}. <a href=\"/logout\">Sign out</a></p>\
         <h2>Your devices</h2><p>{} of {} (as read when you signed in)</p><ul>",
        esc(&p.name),
        esc(&p.email),
        p.devices.len(),
        p.total
    );
    for d in &p.devices {
        let latest = match &d.latest {
            Some(r) => {
                let metrics = r["metrics"].as_object().into_iter().flatten();
                let values: Vec<String> = metrics
                    .map(|(name, v)| format!("{} = {}", esc(name), esc(&v.to_string())))
                    .collect();
                let ts = r["ts"].as_str().unwrap_or_default();
                format!("{} at {}", values.join(", "), esc(ts))
            }
            None => "no readings yet".to_owned(),
        };
        let (serial, model) = (esc(&d.serial), esc(&d.model));
        html.push_str(&format!(
            "<li><strong>{serial}</strong> ({model}): {latest}</li>"
        ));
    }
    html.push_str("</ul>");
    html
}

/// An HTML page: nothing from outside it runs, nothing is cached, no address leaks onward.
pub(crate) fn page(status: StatusCode, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
             <title>Acme dashboard</title><body>{body}</body></html>"
        ))
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
