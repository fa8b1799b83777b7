//! The client's address, the one every per-address limit and the request log use.
//!
//! It is the connection's peer, unless that peer is one of `server.trusted_proxies`. Then the
//! proxies' own account is read, from `Forwarded` (RFC 7239) or `X-Forwarded-For`, right to
//! left: each proxy appends the address it received the request from, so the rightmost entries
//! were written by proxies we trust and everything further left was written by whoever they
//! trusted, down to the client, who can write anything. The walk skips entries that are trusted
//! proxies and stops at the first that is not: that is the client. An entry there that is not
//! an address (`unknown`, an obfuscated RFC 7239 identifier, garbage) means the proxy would not
//! or could not say; the answer is then the nearest trusted proxy, the last address anyone we
//! believe vouched for.
//!
//! When a request carries both headers, a proxy in front of us manages at most one of them and
//! passes the other through from the client untouched, and nothing tells which is which. So both
//! are walked; when they name the same client, that is the answer, and when they disagree,
//! neither is believed and the answer is the peer itself. A client that forges the header its
//! proxy does not manage thus lands in the proxy's bucket, never in a fresh one of its choosing,
//! and never in another client's.

use std::fmt;
use std::net::IpAddr;

use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::{HttpMessage, HttpRequest, web};

use crate::app::AppContext;
use crate::config::Cidr;

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The request's client address, worked out once per request and kept in its extensions. None
/// only when the connection has no IP peer (as in some unit tests).
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    let cached = req.extensions().get::<ClientAddr>().copied();
    if let Some(ClientAddr(addr)) = cached {
        return addr;
    }
    let trusted = req
        .app_data::<web::Data<AppContext>>()
        .map(|ctx| ctx.settings.server.trusted_proxies.as_slice())
        .unwrap_or_default();
    let addr = req
        .peer_addr()
        .map(|peer| resolve(peer.ip(), req.headers(), trusted));
    req.extensions_mut().insert(ClientAddr(addr));
    addr
}

/// [`client_addr`] as text, the form the domain stores and counts.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    client_addr(req).map(|a| a.to_string())
}

/// For log fields: the address, or `-`.
pub struct Shown(pub Option<IpAddr>);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}

#[derive(Clone, Copy)]
struct ClientAddr(Option<IpAddr>);

/// The client address of a request from `peer` with `headers` (see the module comment).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|block| block.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded = hops(headers, &FORWARDED, forwarded_hops);
    let x_forwarded_for = hops(headers, &X_FORWARDED_FOR, x_forwarded_for_hops);
    let walk = |hops: Vec<Hop>| walk(peer, &hops, is_trusted);
    match (forwarded, x_forwarded_for) {
        (None, None) => peer,
        (Some(one), None) | (None, Some(one)) => walk(one),
        (Some(f), Some(x)) => {
            let (f, x) = (walk(f), walk(x));
            if f == x { f } else { peer }
        }
    }
}

/// One entry of a forwarding header: an address, or None for anything else.
type Hop = Option<IpAddr>;

/// Every line of header `name`, in order, as one list of hops (RFC 9110 §5.3: several lines
/// are one comma-separated list); None when the header is absent. A line that is not visible
/// ASCII is one unreadable hop.
fn hops(
    headers: &HeaderMap,
    name: &HeaderName,
    parse: fn(&str, &mut Vec<Hop>),
) -> Option<Vec<Hop>> {
    let mut lines = headers.get_all(name).peekable();
    lines.peek()?;
    let mut hops = Vec::new();
    for line in lines {
        match line.to_str() {
            Ok(text) => parse(text, &mut hops),
            Err(_) => hops.push(None),
        }
    }
    Some(hops)
}

/// From the nearest hop leftwards, past trusted proxies, to the first hop that is not one.
fn walk(peer: IpAddr, hops: &[Hop], is_trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match *hop {
            Some(ip) if is_trusted(ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    // Every hop was a trusted proxy: the request started inside the proxies' own network.
    nearest
}

/// `X-Forwarded-For: client, proxy1, proxy2` (de-facto; entries sometimes carry a port).
fn x_forwarded_for_hops(line: &str, hops: &mut Vec<Hop>) {
    hops.extend(line.split(',').map(|entry| node(entry.trim())));
}

/// `Forwarded: for=192.0.2.60;proto=https, for="[2001:db8::17]:4711"` (RFC 7239 §4): one hop
/// per element, its `for` parameter. An element without exactly one readable `for` is a hop
/// nobody can vouch for.
fn forwarded_hops(line: &str, hops: &mut Vec<Hop>) {
    for element in split_outside_quotes(line, ',') {
        let mut client = None;
        let mut fors = 0;
        let mut readable = true;
        for pair in split_outside_quotes(element, ';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let Some((name, value)) = pair.split_once('=') else {
                readable = false;
                continue;
            };
            if name.trim().eq_ignore_ascii_case("for") {
                fors += 1;
                match unquote(value.trim()) {
                    Some(value) => client = node(&value),
                    None => readable = false,
                }
            }
        }
        hops.push(client.filter(|_| readable && fors == 1));
    }
}

/// Splits on `sep` where it is not inside a quoted string (RFC 9110 §5.6.4, with `\` escapes).
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A parameter value: a token as it is, or a quoted string without its quotes and escapes.
/// None for an unterminated quoted string.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

/// A node (RFC 7239 §6): `192.0.2.43`, `192.0.2.43:8080`, `[2001:db8::1]`, `[2001:db8::1]:80`,
/// also a bare IPv6 address as some proxies write it. `unknown`, obfuscated identifiers (`_x`)
/// and anything else are None.
fn node(text: &str) -> Hop {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let host = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(port)) {
            return None;
        }
        host.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)?
    } else {
        let (host, after) = text.split_once(':')?;
        if !port(after) {
            return None;
        }
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)?
    };
    Some(host.to_canonical())
}

/// A node port (RFC 7239 §6): digits, or an obfuscated `_` identifier.
fn port(text: &str) -> bool {
    !text.is_empty()
        && (text.bytes().all(|b| b.is_ascii_digit())
            || (text.starts_with('_')
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn blocks(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|b| Cidr::try_from((*b).to_owned()).unwrap())
            .collect()
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The client of a request from `peer`, with proxies 10.0.0.0/8 and fd00::/8 trusted.
    fn client(peer: &str, lines: &[(&str, &str)]) -> String {
        resolve(
            ip(peer),
            &headers(lines),
            &blocks(&["10.0.0.0/8", "fd00::/8"]),
        )
        .to_string()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let lines = [
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.7"),
        ];
        assert_eq!(client("203.0.113.5", &lines), "203.0.113.5");
        assert_eq!(client("203.0.113.5", &lines[..1]), "203.0.113.5");
        // Without trusted proxies nobody is believed, not even loopback.
        let none = resolve(ip("127.0.0.1"), &headers(&lines[..1]), &[]);
        assert_eq!(none.to_string(), "127.0.0.1");
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        assert_eq!(client("10.0.0.2", &[]), "10.0.0.2");
    }

    #[test]
    fn x_forwarded_for_is_read_right_to_left_past_trusted_proxies() {
        // The client forged the first entry; the edge proxy appended the client's real address,
        // an inner proxy appended the edge's.
        let xff = [("x-forwarded-for", "192.0.2.66, 203.0.113.5, 10.1.1.1")];
        assert_eq!(client("10.0.0.2", &xff), "203.0.113.5");
        // Ports and brackets, spaces and tabs, several lines as one list.
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "203.0.113.5:4711")]),
            "203.0.113.5"
        );
        assert_eq!(
            client(
                "10.0.0.2",
                &[("x-forwarded-for", "[2001:db8::7]:80,\t10.3.3.3")]
            ),
            "2001:db8::7"
        );
        assert_eq!(
            client(
                "10.0.0.2",
                &[
                    ("x-forwarded-for", "192.0.2.66"),
                    ("x-forwarded-for", "203.0.113.5")
                ]
            ),
            "203.0.113.5"
        );
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "2001:db8::9")]),
            "2001:db8::9"
        );
    }

    #[test]
    fn forwarded_follows_rfc_7239() {
        let cases = [
            ("for=203.0.113.5", "203.0.113.5"),
            ("For=\"203.0.113.5:8080\";proto=https", "203.0.113.5"),
            ("for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            (
                "for=\"[2001:db8:cafe::17]\";by=10.0.0.2",
                "2001:db8:cafe::17",
            ),
            (
                "for=192.0.2.66, for=203.0.113.5;proto=https, for=10.9.9.9",
                "203.0.113.5",
            ),
            (
                "proto=https;for=203.0.113.5;host=example.com",
                "203.0.113.5",
            ),
            // A quoted comma does not split elements.
            ("for=203.0.113.5;ext=\"a,for=10.6.6.6\"", "203.0.113.5"),
            ("for=\"[fd00::1]\", for=10.2.2.2", "fd00::1"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                client("10.0.0.2", &[("forwarded", value)]),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn an_unusable_hop_stops_the_walk_at_the_proxy_that_wrote_it() {
        // Each value's last element was written by 10.5.5.5, which we trust; the hop before it
        // is not an address, so the nearest address we can vouch for is 10.5.5.5's.
        for value in [
            "for=unknown, for=10.5.5.5",
            "for=_hidden, for=10.5.5.5",
            "for=\"_gazonk:_port\", for=10.5.5.5",
            "for=\"[2001:db8::1\", for=10.5.5.5",
            "by=10.0.0.2, for=10.5.5.5",
            "for=1.2.3.4;for=5.6.7.8, for=10.5.5.5",
            "garbage, for=10.5.5.5",
            "for=300.1.1.1, for=10.5.5.5",
            "for=\"203.0.113.5:http\", for=10.5.5.5",
        ] {
            assert_eq!(
                client("10.0.0.2", &[("forwarded", value)]),
                "10.5.5.5",
                "{value}"
            );
        }
        for value in [
            "unknown, 10.5.5.5",
            "not-an-ip, 10.5.5.5",
            ", 10.5.5.5",
            "1.2.3.4:x, 10.5.5.5",
        ] {
            assert_eq!(
                client("10.0.0.2", &[("x-forwarded-for", value)]),
                "10.5.5.5",
                "{value}"
            );
        }
        // The nearest hop itself unusable: the peer.
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "garbage")]),
            "10.0.0.2"
        );
        assert_eq!(client("10.0.0.2", &[("x-forwarded-for", "")]), "10.0.0.2");
        assert_eq!(
            client("10.0.0.2", &[("forwarded", "for=unknown")]),
            "10.0.0.2"
        );
        // An unterminated quote swallows the rest of the line: nothing there is readable.
        let open = [("forwarded", "for=\"unterminated, for=10.5.5.5")];
        assert_eq!(client("10.0.0.2", &open), "10.0.0.2");
        // Bytes outside visible ASCII make that line one unusable hop.
        let mut map = headers(&[("x-forwarded-for", "203.0.113.5")]);
        map.append(X_FORWARDED_FOR, HeaderValue::from_bytes(b"\xff").unwrap());
        let got = resolve(ip("10.0.0.2"), &map, &blocks(&["10.0.0.0/8"]));
        assert_eq!(got.to_string(), "10.0.0.2");
    }

    #[test]
    fn only_trusted_proxies_are_walked_past() {
        // 10.x is trusted: the request came from 203.0.113.5 through two proxies.
        assert_eq!(
            client(
                "10.0.0.2",
                &[("x-forwarded-for", "203.0.113.5, 10.7.7.7, 10.8.8.8")]
            ),
            "203.0.113.5"
        );
        // 192.168.1.1 is not trusted, so what it says about 203.0.113.5 is not believed.
        assert_eq!(
            client(
                "10.0.0.2",
                &[("x-forwarded-for", "203.0.113.5, 192.168.1.1")]
            ),
            "192.168.1.1"
        );
        // All trusted: the leftmost, a machine inside the proxies' network.
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "10.4.4.4, 10.8.8.8")]),
            "10.4.4.4"
        );
    }

    #[test]
    fn both_headers_count_only_when_they_agree() {
        let agree = [
            ("forwarded", "for=203.0.113.5"),
            ("x-forwarded-for", "203.0.113.5"),
        ];
        assert_eq!(client("10.0.0.2", &agree), "203.0.113.5");
        // The proxy manages X-Forwarded-For; the client sent its own Forwarded.
        let forged = [
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "203.0.113.5"),
        ];
        assert_eq!(client("10.0.0.2", &forged), "10.0.0.2");
    }

    #[test]
    fn ipv4_mapped_addresses_are_plain_ipv4() {
        assert_eq!(
            client(
                "::ffff:10.0.0.2",
                &[("x-forwarded-for", "::ffff:203.0.113.5")]
            ),
            "203.0.113.5"
        );
        assert_eq!(client("::ffff:203.0.113.9", &[]), "203.0.113.9");
    }
}
