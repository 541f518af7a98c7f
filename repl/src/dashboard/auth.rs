//! Who may use the dashboard: pgwire's rules (`serve::auth`) over HTTP.
//! With a password, every request carries it as HTTP Basic credentials of
//! `--user`; a wrong one is answered after pgwire's delay and logged with
//! the client's address. Without one, only loopback clients are served.
//!
//! A browser is the client here, which pgwire never had to consider:
//! another site's page can make it send requests. Without a password the
//! `Host` must be an address or `localhost`, so that a name re-pointed at
//! 127.0.0.1 (DNS rebinding) is refused; requests that change something
//! (POST: run SQL, stop a job) must be JSON from the dashboard's own
//! origin, which a cross-site form cannot send and a cross-site script may
//! send only after a CORS preflight the dashboard never grants.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::serve::auth::{FAILED_LOGIN_DELAY, is_loopback};

/// The credentials the dashboard asks for, if any.
pub struct Rules {
    pub user: String,
    pub password: Option<String>,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No credentials yet: ask for them (the browser's first request).
    Challenge,
    /// Credentials that are not the user's: the user they named.
    Wrong(String),
    /// Refused whatever the credentials: why.
    Forbidden(String),
}

impl Rules {
    /// Whether a request from `peer` with `method` and `headers` is served.
    pub fn decide(&self, peer: IpAddr, method: &Method, headers: &HeaderMap) -> Decision {
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text(header::HOST).unwrap_or_default();
        match &self.password {
            None => {
                if !is_loopback(peer) {
                    return Decision::Forbidden(format!(
                        "connection from {peer} refused: without a password (--password or WEIR_PG_PASSWORD) weir serve accepts only loopback clients"
                    ));
                }
                if !is_address_or_localhost(host) {
                    return Decision::Forbidden(format!(
                        "Host {host:?} refused: without a password the dashboard answers only to an address or localhost"
                    ));
                }
            }
            Some(password) => match text(header::AUTHORIZATION).and_then(basic) {
                None => return Decision::Challenge,
                Some((user, given)) => {
                    // Both compared whole, so the time taken does not say
                    // which was wrong or how much of it was right.
                    let right =
                        same(user.as_bytes(), self.user.as_bytes()) & same(given.as_bytes(), password.as_bytes());
                    if !right {
                        return Decision::Wrong(user);
                    }
                }
            },
        }
        if method != Method::GET && method != Method::HEAD {
            let json = text(header::CONTENT_TYPE)
                .and_then(|t| t.split(';').next())
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Decision::Forbidden("requests that change something must be sent as application/json".into());
            }
            if let Some(origin) = text(header::ORIGIN)
                && origin != format!("http://{host}")
            {
                return Decision::Forbidden(format!(
                    "origin {origin:?} refused: only the dashboard's own page may send this"
                ));
            }
            if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
                && site != "same-origin"
                && site != "none"
            {
                return Decision::Forbidden(format!(
                    "a {site} request refused: only the dashboard's own page may send this"
                ));
            }
        }
        Decision::Allow
    }
}

/// The user and password of a `Basic` Authorization header.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Byte strings compared in time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `Host` header naming an IP address or `localhost` (with or without a
/// port): names that no DNS answer can re-point.
fn is_address_or_localhost(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => return v6.split(']').next().is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

/// The middleware in front of every route.
pub async fn guard(
    State(rules): State<Arc<Rules>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let challenge = || {
        let mut r = (StatusCode::UNAUTHORIZED, "the dashboard needs the server's user and password\n").into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"weir\", charset=\"UTF-8\""));
        r
    };
    match rules.decide(peer.ip(), request.method(), request.headers()) {
        Decision::Allow => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            // Never framed by another page (its buttons stop jobs), never
            // sniffed into another type, never cached.
            headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                ),
            );
            response
        }
        Decision::Challenge => challenge(),
        Decision::Wrong(user) => {
            // The name as Debug: it is the client's text, and must not
            // forge log lines. The password is never logged.
            tracing::warn!(client = %peer, user = ?user, "dashboard: failed login: wrong password or unknown user");
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            challenge()
        }
        Decision::Forbidden(why) => {
            tracing::warn!(client = %peer, "dashboard: {why}");
            (StatusCode::FORBIDDEN, format!("{why}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn auth(user: &str, password: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn with_a_password_the_user_and_password_are_needed() {
        let rules = Rules { user: "weir".into(), password: Some("secret".into()) };
        let far: IpAddr = "10.1.2.3".parse().unwrap();
        let get = |h: &[(&'static str, &str)]| rules.decide(far, &Method::GET, &headers(h));
        assert_eq!(get(&[("host", "weir.example:8080")]), Decision::Challenge);
        assert_eq!(get(&[("authorization", "Bearer x")]), Decision::Challenge);
        assert_eq!(get(&[("authorization", "Basic !!!")]), Decision::Challenge);
        assert_eq!(get(&[("authorization", &auth("weir", "secret"))]), Decision::Allow);
        assert_eq!(get(&[("authorization", &auth("weir", "secreT"))]), Decision::Wrong("weir".into()));
        assert_eq!(get(&[("authorization", &auth("root", "secret"))]), Decision::Wrong("root".into()));
        // A password holding ':' is split at the first one, as RFC 7617 says.
        let colon = Rules { user: "weir".into(), password: Some("a:b".into()) };
        assert_eq!(
            colon.decide(far, &Method::GET, &headers(&[("authorization", &auth("weir", "a:b"))])),
            Decision::Allow
        );
    }

    #[test]
    fn without_a_password_only_loopback_and_unforgeable_hosts() {
        let rules = Rules { user: "weir".into(), password: None };
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        for host in ["127.0.0.1:8081", "localhost:8081", "LOCALHOST", "[::1]:8081", "10.0.0.5:80"] {
            assert_eq!(rules.decide(local, &Method::GET, &headers(&[("host", host)])), Decision::Allow, "{host}");
        }
        for host in ["attacker.example:8081", "localhost.attacker.example", "[evil]:1", ""] {
            assert!(
                matches!(rules.decide(local, &Method::GET, &headers(&[("host", host)])), Decision::Forbidden(_)),
                "{host}"
            );
        }
        let far = rules.decide("::ffff:10.0.0.1".parse().unwrap(), &Method::GET, &headers(&[("host", "10.0.0.2")]));
        assert!(matches!(far, Decision::Forbidden(why) if why.contains("only loopback clients")));
    }

    #[test]
    fn changes_come_as_json_from_the_dashboards_own_page() {
        let rules = Rules { user: "weir".into(), password: None };
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let post = |h: &[(&'static str, &str)]| rules.decide(local, &Method::POST, &headers(h));
        let host = ("host", "127.0.0.1:8081");
        assert_eq!(post(&[host, ("content-type", "application/json")]), Decision::Allow);
        assert_eq!(
            post(&[
                host,
                ("content-type", "application/json; charset=utf-8"),
                ("origin", "http://127.0.0.1:8081"),
                ("sec-fetch-site", "same-origin")
            ]),
            Decision::Allow
        );
        for refused in [
            vec![host],
            vec![host, ("content-type", "text/plain")],
            vec![host, ("content-type", "application/x-www-form-urlencoded")],
            vec![host, ("content-type", "application/json"), ("origin", "http://evil.example")],
            vec![host, ("content-type", "application/json"), ("sec-fetch-site", "cross-site")],
        ] {
            assert!(matches!(post(&refused), Decision::Forbidden(_)), "{refused:?}");
        }
    }
}
