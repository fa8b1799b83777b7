//! Security headers on every response. Handlers that render HTML set their own, looser
//! `Content-Security-Policy`; `DefaultHeaders` only fills in what a response did not set.

use actix_web::middleware::DefaultHeaders;

use crate::config::PublicUrl;

/// The default headers: nothing may frame, sniff, refer or load anything unless a page says so.
pub fn headers(public_url: &PublicUrl) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cross-Origin-Resource-Policy", "same-origin"))
        .add((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ));
    if public_url.is_https() {
        headers.add((
            "Strict-Transport-Security",
            "max-age=63072000; includeSubDomains",
        ))
    } else {
        headers
    }
}
