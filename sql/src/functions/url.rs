//! Flink's `PARSE_URL(url, part[, key])`, which DataFusion lacks: a part of
//! a URL as Java's `java.net.URL` splits it (Flink's implementation), or
//! the value of one query parameter.
//!
//! Java's URL is not RFC 3986's (nor the `url` crate's, which normalizes
//! hosts and percent-encodes): the query is the text after the first `?`,
//! the reference after the first `#`, the authority what follows `//` up to
//! the next `/`; nothing is decoded or lowercased but the protocol. Only
//! the protocols a JVM knows (`http`, `https`, `ftp`, `file`, `jar`,
//! `mailto`) parse; any other URL is NULL, as Java's
//! `MalformedURLException` is in Flink.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::common::{DataFusionError, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::date_format::is_text;
use super::regexp::Texts;

/// The parts of a URL, as Java's `URL` getters return them.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    /// `getProtocol()`: the scheme (lowercased when written).
    protocol: &'a str,
    /// `getAuthority()`: what follows `//`, if the URL has one.
    authority: Option<&'a str>,
    /// `getUserInfo()`: the authority before its `@`.
    user_info: Option<&'a str>,
    /// `getHost()`: the authority's host ("" without one).
    host: &'a str,
    /// `getPath()`: "" when there is none.
    path: &'a str,
    /// `getQuery()`: after the first `?`.
    query: Option<&'a str>,
    /// `getRef()`: after the first `#`.
    reference: Option<&'a str>,
}

/// The protocols a JVM has handlers for.
const PROTOCOLS: [&str; 6] = ["http", "https", "ftp", "file", "jar", "mailto"];

/// Splits `text` as `new java.net.URL(text)` does; `None` where Java throws.
fn parse(text: &str) -> Option<Url<'_>> {
    let text = text.trim_matches(|c: char| c <= ' ');
    let text = text.strip_prefix("url:").unwrap_or(text);
    let colon = text.find(':')?;
    let protocol = &text[..colon];
    let mut chars = protocol.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || !PROTOCOLS.iter().any(|p| p.eq_ignore_ascii_case(protocol)) {
        return None;
    }
    let rest = &text[colon + 1..];
    let (rest, reference) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(slash) => (Some(&after[..slash]), &after[slash..]),
            None => (Some(after), ""),
        },
        None => (None, rest),
    };
    let (user_info, host) = match authority {
        None => (None, ""),
        Some(a) => {
            let (user_info, host_port) = match a.split_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, a),
            };
            (user_info, host_of(host_port)?)
        }
    };
    Some(Url { protocol, authority, user_info, host, path, query, reference })
}

/// The host of `host[:port]` (an IPv6 host in brackets, kept), or `None`
/// when the port is not a number (Java's "invalid port").
fn host_of(host_port: &str) -> Option<&str> {
    let (host, port) = if host_port.starts_with('[') {
        let end = host_port.find(']')? + 1;
        let port = &host_port[end..];
        if !(port.is_empty() || port.starts_with(':')) {
            return None;
        }
        (&host_port[..end], port.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if port.is_some_and(|p| !p.chars().all(|c| c.is_ascii_digit())) {
        return None;
    }
    Some(host)
}

/// The value of parameter `key` in `query`: the first `key=value` after the
/// start or an `&` (Flink's `(&|^)key=([^&]*)`).
fn parameter<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// `PARSE_URL(url, part[, key])`: `part` is `HOST`, `PATH`, `QUERY`, `REF`,
/// `PROTOCOL`, `AUTHORITY`, `FILE` (path and query) or `USERINFO`, in
/// capitals as Flink compares it; any other part, a URL Java does not
/// parse, a part the URL lacks or an argument that is NULL gives NULL. With
/// a key, the part must be `QUERY` and the result is that parameter's
/// value.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct ParseUrl {
    signature: Signature,
}

impl ParseUrl {
    pub(super) fn new() -> Self {
        Self { signature: Signature::one_of(vec![TypeSignature::Any(2), TypeSignature::Any(3)], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for ParseUrl {
    fn name(&self) -> &str {
        "parse_url"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(
        &self,
        args: &[datafusion::arrow::datatypes::DataType],
    ) -> Result<datafusion::arrow::datatypes::DataType> {
        for (i, t) in args.iter().enumerate() {
            if !is_text(t) {
                return plan_err!("PARSE_URL takes a string (argument {}), not {t}", i + 1);
            }
        }
        Ok(datafusion::arrow::datatypes::DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let urls = Texts::new(&args.args[0])?;
        let parts = Texts::new(&args.args[1])?;
        let keys = args.args.get(2).map(Texts::new).transpose()?;
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        for row in 0..rows {
            let (Some(url), Some(part)) = (urls.get(row), parts.get(row)) else {
                out.append_null();
                continue;
            };
            let Some(url) = parse(url) else {
                out.append_null();
                continue;
            };
            if let Some(keys) = &keys {
                let value = match (part, keys.get(row)) {
                    ("QUERY", Some(key)) => url.query.and_then(|q| parameter(q, key)),
                    _ => None,
                };
                out.append_option(value);
                continue;
            }
            let value = match part {
                "HOST" => Some(url.host),
                "PATH" => Some(url.path),
                "QUERY" => url.query,
                "REF" => url.reference,
                "AUTHORITY" => url.authority,
                "USERINFO" => url.user_info,
                "PROTOCOL" | "FILE" => {
                    let written = if part == "PROTOCOL" {
                        url.protocol.chars().try_for_each(|c| out.write_char(c.to_ascii_lowercase()))
                    } else {
                        out.write_str(url.path).and_then(|()| match url.query {
                            Some(q) => write!(out, "?{q}"),
                            None => Ok(()),
                        })
                    };
                    written.map_err(|e| DataFusionError::Execution(format!("PARSE_URL: {e}")))?;
                    Some("")
                }
                _ => None,
            };
            out.append_option(value);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{query, query_err};
    use super::{Url, parse};

    const FACEBOOK: &str = "http://facebook.com/path1/p.php?k1=v1&k2=v2#Ref1";

    /// Flink's docs: "parse_url('http://facebook.com/path1/p.php?k1=v1&k2=v2#Ref1',
    /// 'HOST'), returns 'facebook.com'" and "… 'QUERY', 'k1') returns 'v1'".
    #[tokio::test]
    async fn parts_as_flinks_docs_say() {
        let part = |p: &str| format!("SELECT PARSE_URL('{FACEBOOK}', '{p}')");
        assert_eq!(query(&part("HOST")).await, ["facebook.com"]);
        assert_eq!(query(&format!("SELECT PARSE_URL('{FACEBOOK}', 'QUERY', 'k1')")).await, ["v1"]);
        assert_eq!(query(&format!("SELECT PARSE_URL('{FACEBOOK}', 'QUERY', 'k2')")).await, ["v2"]);
        assert_eq!(query(&format!("SELECT PARSE_URL('{FACEBOOK}', 'QUERY', 'k3')")).await, ["NULL"]);
        assert_eq!(query(&format!("SELECT PARSE_URL('{FACEBOOK}', 'HOST', 'k1')")).await, ["NULL"]);
        assert_eq!(query(&part("PATH")).await, ["/path1/p.php"]);
        assert_eq!(query(&part("QUERY")).await, ["k1=v1&k2=v2"]);
        assert_eq!(query(&part("REF")).await, ["Ref1"]);
        assert_eq!(query(&part("PROTOCOL")).await, ["http"]);
        assert_eq!(query(&part("FILE")).await, ["/path1/p.php?k1=v1&k2=v2"]);
        assert_eq!(query(&part("AUTHORITY")).await, ["facebook.com"]);
        assert_eq!(query(&part("USERINFO")).await, ["NULL"]);
        // Parts are compared in capitals, as Flink does.
        assert_eq!(query(&part("host")).await, ["NULL"]);
        assert_eq!(
            query("SELECT PARSE_URL(u, 'HOST') FROM (VALUES ('https://user:pw@Example.com:8080/x'), ('not a url'), ('foo://bar/'), (NULL)) t(u)")
                .await,
            ["Example.com", "NULL", "NULL", "NULL"]
        );
        assert_eq!(query("SELECT PARSE_URL('https://user:pw@example.com:8080/x', 'USERINFO')").await, ["user:pw"]);
        assert_eq!(
            query("SELECT PARSE_URL('https://user:pw@example.com:8080/x', 'AUTHORITY')").await,
            ["user:pw@example.com:8080"]
        );
        let e = query_err("SELECT PARSE_URL(1, 'HOST')").await;
        assert!(e.contains("PARSE_URL") && e.contains("argument 1"), "{e}");
    }

    #[test]
    fn splits_as_javas_url() {
        assert_eq!(
            parse("HTTP://h/p?q#r"),
            Some(Url {
                protocol: "HTTP",
                authority: Some("h"),
                user_info: None,
                host: "h",
                path: "/p",
                query: Some("q"),
                reference: Some("r")
            })
        );
        let url = parse("file:/tmp/x").unwrap();
        assert_eq!((url.host, url.path, url.authority), ("", "/tmp/x", None));
        let url = parse("http://[::1]:80/x").unwrap();
        assert_eq!(url.host, "[::1]");
        assert_eq!(parse("http://h:8x/"), None);
        assert_eq!(parse("http://h?a=1").unwrap().path, "");
    }
}
