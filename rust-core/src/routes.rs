//! The server's routes: WebSocket routes by path, HTTP routes by path and method, the
//! per-route upgrade settings, and the static mounts. Added before start, fixed at
//! start. Both kinds of route take their ids from one sequence, so that an id names one
//! route whatever its kind.

use std::collections::HashMap;
use std::path::Path;

use crate::config::check_route_path;
use crate::error::{Error, Result};
use crate::static_files::StaticMounts;
use crate::upgrade_rules::Subprotocols;

#[derive(Debug)]
enum Route {
    WebSocket {
        path: Box<[u8]>,
        /// The consumer vets each upgrade (an UPGRADE_REQUEST event) before the 101.
        vet: bool,
        /// The subprotocols the route speaks, when it has some.
        subprotocols: Option<Subprotocols>,
    },
    Http,
}

/// What an HTTP request's method and path find.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HttpMatch {
    /// The route serving them.
    Route(u32),
    /// The path has HTTP routes, none for this method: their methods, for `Allow`.
    OtherMethods(String),
    /// No HTTP route has the path.
    None,
}

/// The HTTP methods served on one path, each with its route id, in the order added.
type Methods = Vec<(Box<[u8]>, u32)>;

/// Every route of a server.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// By id.
    routes: Vec<Route>,
    websocket: HashMap<Box<[u8]>, u32>,
    http: HashMap<Box<[u8]>, Methods>,
    /// Directories served by the core under URL prefixes.
    pub(crate) statics: StaticMounts,
}

impl Routes {
    fn next_id(&self) -> u32 {
        self.routes.len() as u32
    }

    /// Serves WebSocket upgrades on `path`; returns the route's id.
    pub(crate) fn add_websocket(&mut self, path: &str) -> Result<u32> {
        check_path(path)?;
        if self.websocket.contains_key(path.as_bytes()) {
            return Err(Error::InvalidArgument(format!("route {path:?} is already added")));
        }
        let id = self.next_id();
        self.websocket.insert(path.as_bytes().into(), id);
        self.routes.push(Route::WebSocket { path: path.as_bytes().into(), vet: false, subprotocols: None });
        Ok(id)
    }

    /// Serves HTTP requests for `method` on `path`; returns the route's id.
    pub(crate) fn add_http(&mut self, method: &str, path: &str) -> Result<u32> {
        check_method(method)?;
        check_path(path)?;
        let methods = self.http.entry(path.as_bytes().into()).or_default();
        if methods.iter().any(|(m, _)| **m == *method.as_bytes()) {
            return Err(Error::InvalidArgument(format!("HTTP route {method} {path:?} is already added")));
        }
        let id = self.routes.len() as u32;
        methods.push((method.as_bytes().into(), id));
        self.routes.push(Route::Http);
        Ok(id)
    }

    /// Makes the consumer vet (`vet` true) or not the upgrades of a WebSocket route.
    pub(crate) fn set_vet_upgrades(&mut self, route: u32, vet: bool) -> Result<()> {
        match self.routes.get_mut(route as usize) {
            Some(Route::WebSocket { vet: setting, .. }) => {
                *setting = vet;
                Ok(())
            }
            Some(Route::Http) => Err(Error::InvalidArgument(format!(
                "route {route} is an HTTP route; only WebSocket routes have upgrades to vet"
            ))),
            None => Err(Error::NotFound),
        }
    }

    /// Gives a WebSocket route its subprotocols.
    pub(crate) fn set_subprotocols(&mut self, route: u32, protocols: Subprotocols) -> Result<()> {
        match self.routes.get_mut(route as usize) {
            Some(Route::WebSocket { subprotocols, .. }) => {
                *subprotocols = Some(protocols);
                Ok(())
            }
            Some(Route::Http) => Err(Error::InvalidArgument(format!(
                "route {route} is an HTTP route; only WebSocket routes have subprotocols"
            ))),
            None => Err(Error::NotFound),
        }
    }

    /// The subprotocols of WebSocket route `route`, when it has some.
    pub(crate) fn subprotocols(&self, route: u32) -> Option<&Subprotocols> {
        match self.routes.get(route as usize) {
            Some(Route::WebSocket { subprotocols, .. }) => subprotocols.as_ref(),
            _ => None,
        }
    }

    /// Serves the files of `directory` under the URL prefix `prefix`.
    pub(crate) fn add_static(&mut self, prefix: &str, directory: &Path) -> Result<()> {
        self.statics.add(prefix, directory)
    }

    /// Whether nothing was added: no route, no static mount.
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.statics.is_empty()
    }

    /// The WebSocket route serving `path`.
    pub(crate) fn websocket_route(&self, path: &[u8]) -> Option<u32> {
        self.websocket.get(path).copied()
    }

    /// Whether `route` is a WebSocket route.
    pub(crate) fn is_websocket(&self, route: u32) -> bool {
        matches!(self.routes.get(route as usize), Some(Route::WebSocket { .. }))
    }

    /// Whether the consumer vets the upgrades of `route`.
    pub(crate) fn vets_upgrades(&self, route: u32) -> bool {
        matches!(self.routes.get(route as usize), Some(Route::WebSocket { vet: true, .. }))
    }

    /// The WebSocket routes' paths, by route id.
    pub(crate) fn websocket_paths(&self) -> HashMap<u32, Box<[u8]>> {
        let paths = self.routes.iter().enumerate();
        paths
            .filter_map(|(id, route)| match route {
                Route::WebSocket { path, .. } => Some((id as u32, path.clone())),
                Route::Http => None,
            })
            .collect()
    }

    /// The HTTP route for `method` on `path`. A HEAD request is served by the path's
    /// GET route when the path has no HEAD route of its own.
    pub(crate) fn http_route(&self, method: &[u8], path: &[u8]) -> HttpMatch {
        let Some(methods) = self.http.get(path) else { return HttpMatch::None };
        let find = |wanted: &[u8]| methods.iter().find(|(m, _)| **m == *wanted).map(|(_, id)| *id);
        if let Some(id) = find(method).or_else(|| if method == b"HEAD" { find(b"GET") } else { None }) {
            return HttpMatch::Route(id);
        }
        let mut allowed: Vec<&[u8]> = methods.iter().map(|(m, _)| &**m).collect();
        if allowed.contains(&&b"GET"[..]) && !allowed.contains(&&b"HEAD"[..]) {
            allowed.push(b"HEAD");
        }
        let allowed: Vec<String> = allowed.iter().map(|m| String::from_utf8_lossy(m).into_owned()).collect();
        HttpMatch::OtherMethods(allowed.join(", "))
    }
}

/// Whether `b` may be part of an RFC 9110 token (a method, a header name).
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a route's path.
pub(crate) fn check_path(path: &str) -> Result<()> {
    check_route_path(path).map_err(|why| Error::InvalidArgument(format!("route path {why}")))
}

/// A method is an RFC 9110 token. Methods are case-sensitive and every standard one is
/// upper case: a lower-case letter is far more likely a mistake (a route for "get"
/// that no client's GET would ever reach) than a method of its own, and is refused.
pub(crate) fn check_method(method: &str) -> Result<()> {
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Error::InvalidArgument(format!("method {method:?} is not an HTTP method (a token)")));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(Error::InvalidArgument(format!(
            "method {method:?} has lower-case letters; methods are case-sensitive: use {:?}",
            method.to_ascii_uppercase()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_and_http_routes_share_one_id_sequence_and_a_path() {
        let mut routes = Routes::default();
        assert_eq!(routes.add_websocket("/ws").unwrap(), 0);
        assert_eq!(routes.add_http("GET", "/ws").unwrap(), 1);
        assert_eq!(routes.add_http("POST", "/items").unwrap(), 2);
        assert_eq!(routes.websocket_route(b"/ws"), Some(0));
        assert_eq!(routes.http_route(b"GET", b"/ws"), HttpMatch::Route(1));
        assert_eq!(routes.http_route(b"HEAD", b"/ws"), HttpMatch::Route(1));
        assert_eq!(routes.http_route(b"GET", b"/items"), HttpMatch::OtherMethods("POST".into()));
        assert_eq!(routes.http_route(b"DELETE", b"/ws"), HttpMatch::OtherMethods("GET, HEAD".into()));
        assert_eq!(routes.http_route(b"GET", b"/none"), HttpMatch::None);
        assert!(routes.is_websocket(0) && !routes.is_websocket(1) && !routes.is_websocket(9));
        assert_eq!(routes.websocket_paths(), HashMap::from([(0, b"/ws"[..].into())]));
    }

    #[test]
    fn methods_are_upper_case_tokens_and_a_method_and_path_are_added_once() {
        let mut routes = Routes::default();
        routes.add_http("PURGE", "/cache").unwrap();
        assert!(matches!(routes.add_http("PURGE", "/cache"), Err(Error::InvalidArgument(_))));
        for bad in ["", "get", "GE T", "GET\r\n", "{}"] {
            assert!(matches!(routes.add_http(bad, "/x"), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
        assert!(matches!(routes.add_http("GET", "x"), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn only_websocket_routes_are_vetted() {
        let mut routes = Routes::default();
        let ws = routes.add_websocket("/ws").unwrap();
        let http = routes.add_http("GET", "/").unwrap();
        routes.set_vet_upgrades(ws, true).unwrap();
        assert!(routes.vets_upgrades(ws));
        assert!(matches!(routes.set_vet_upgrades(http, true), Err(Error::InvalidArgument(_))));
        assert!(matches!(routes.set_vet_upgrades(7, true), Err(Error::NotFound)));
    }
}
