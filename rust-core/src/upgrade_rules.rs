//! What a server asks of an upgrade beyond RFC 6455: that a browser's page comes from
//! an allowed origin (`Config::allowed_origins`), and that client and route agree on a
//! subprotocol (`Server::route_subprotocols`). The rules themselves, checked when they
//! are set, and how a request is held to them; `handshake` applies them in its order.

use crate::error::{Error, Result};

/// Checks one entry of `Config::allowed_origins`: an origin as a browser sends it,
/// `scheme://host` or `scheme://host:port` (RFC 6454), with no path, query, fragment or
/// user part, so that the exact comparison with a request's `Origin` header can match.
pub(crate) fn check_origin(origin: &str) -> std::result::Result<(), String> {
    let refuse =
        |why: &str| Err(format!("allowed origin {origin:?} {why}; write it as scheme://host[:port]"));
    let Some((scheme, authority)) = origin.split_once("://") else {
        return refuse("has no scheme");
    };
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return refuse("has no valid scheme");
    }
    if authority.contains(['/', '?', '#']) {
        return refuse("has a path, query or fragment (browsers send none)");
    }
    if authority.contains('@') {
        return refuse("has a user part (browsers send none)");
    }
    // An IPv6 host is bracketed, and its colons are not the port's.
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, "")) => (address, None),
            Some((address, after)) => match after.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return refuse("has no valid port"),
            },
            None => return refuse("has an unclosed '['"),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic() && b != b'[' && b != b']') {
        return refuse("has no valid host");
    }
    if let Some(port) = port {
        let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u32>().map_or(true, |p| p > 65535) {
            return refuse("has no valid port");
        }
    }
    Ok(())
}

/// Whether a request's `Origin` header value is one of `allowed` (exact, ASCII case
/// insensitive: scheme and host are case-insensitive, and a browser sends the port
/// only when it is not the scheme's default, so the list names origins as browsers
/// send them). An empty list allows every origin.
pub(crate) fn origin_allowed(allowed: &[String], origin: &[u8]) -> bool {
    let origin = origin.trim_ascii();
    allowed.is_empty() || allowed.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
}

/// A route's subprotocols, in the server's order of preference, and whether a client
/// must agree on one to be upgraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subprotocols {
    preferred: Box<[Box<str>]>,
    required: bool,
}

impl Subprotocols {
    /// Checks and keeps `preferred`: at least one, each an RFC 6455 token (printable
    /// ASCII without separators), none twice.
    pub(crate) fn new(preferred: &[&str], required: bool) -> Result<Subprotocols> {
        if preferred.is_empty() {
            return Err(Error::InvalidArgument("a route's subprotocol list must name at least one".into()));
        }
        for (i, protocol) in preferred.iter().enumerate() {
            if !is_token(protocol.as_bytes()) {
                return Err(Error::InvalidArgument(format!(
                    "subprotocol {protocol:?} is not a token (printable ASCII without spaces or any of \
                     ()<>@,;:\\\"/[]?={{}})"
                )));
            }
            if preferred[..i].contains(protocol) {
                return Err(Error::InvalidArgument(format!("subprotocol {protocol:?} is listed twice")));
            }
        }
        Ok(Subprotocols { preferred: preferred.iter().map(|&p| p.into()).collect(), required })
    }

    /// Whether a client that agrees on none is refused.
    pub(crate) fn required(&self) -> bool {
        self.required
    }

    /// The first of the server's protocols that the client offers in any of `offers`
    /// (the values of its `Sec-WebSocket-Protocol` headers, each a comma separated
    /// list), as the client wrote it. Protocol names compare case-sensitively (RFC
    /// 6455 4.1); the client's order does not matter, the server's does.
    pub(crate) fn select<'h>(&self, offers: impl Iterator<Item = &'h [u8]> + Clone) -> Option<&'h [u8]> {
        self.preferred.iter().find_map(|wanted| {
            offers
                .clone()
                .flat_map(|value| value.split(|&b| b == b','))
                .map(<[u8]>::trim_ascii)
                .find(|offered| *offered == wanted.as_bytes())
        })
    }
}

/// An HTTP token (RFC 9110 5.6.2), which RFC 6455 asks subprotocol names to be.
fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in
            ["http://localhost:8080", "https://example.com", "app://x", "http://[::1]:3000", "http://[::1]"]
        {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "example.com",
            "http://",
            "http://example.com/",
            "http://example.com/app",
            "http://example.com?x",
            "http://user@example.com",
            "http://example.com:",
            "http://example.com:99999",
            "http://example.com:8o",
            "http://exa mple.com",
            "1http://example.com",
            "http://[::1",
            "http://[::1]x",
            "null",
        ] {
            assert!(check_origin(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn origins_compare_exactly_but_for_ascii_case() {
        let allowed = ["http://localhost:8080".to_string(), "https://Example.com".to_string()];
        assert!(origin_allowed(&allowed, b"http://localhost:8080"));
        assert!(origin_allowed(&allowed, b"HTTPS://example.COM"));
        assert!(!origin_allowed(&allowed, b"http://localhost:8081"));
        assert!(!origin_allowed(&allowed, b"http://localhost"));
        assert!(!origin_allowed(&allowed, b"http://localhost:8080/"));
        assert!(!origin_allowed(&allowed, b"null"));
        assert!(origin_allowed(&[], b"null"), "no list allows any origin");
    }

    #[test]
    fn the_servers_preference_wins_over_the_clients_order() {
        let protocols = Subprotocols::new(&["v2.chat", "v1.chat"], false).unwrap();
        let offers: [&[u8]; 2] = [b"v1.chat, other", b" v2.chat "];
        assert_eq!(protocols.select(offers.iter().copied()), Some(&b"v2.chat"[..]));
        let offers: [&[u8]; 1] = [b"V2.chat,v1.chat"];
        assert_eq!(protocols.select(offers.iter().copied()), Some(&b"v1.chat"[..]), "case matters");
        let offers: [&[u8]; 1] = [b"graphql-ws"];
        assert_eq!(protocols.select(offers.iter().copied()), None);
        assert_eq!(protocols.select(std::iter::empty()), None);
    }

    #[test]
    fn subprotocol_lists_are_checked() {
        assert!(Subprotocols::new(&[], false).is_err());
        assert!(Subprotocols::new(&[""], false).is_err());
        assert!(Subprotocols::new(&["a b"], false).is_err());
        assert!(Subprotocols::new(&["a,b"], false).is_err());
        assert!(Subprotocols::new(&["caf\u{e9}"], false).is_err());
        assert!(Subprotocols::new(&["x", "x"], false).is_err());
        assert!(Subprotocols::new(&["graphql-transport-ws", "mqtt"], true).unwrap().required());
    }
}
