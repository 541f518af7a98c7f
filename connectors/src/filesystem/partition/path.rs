//! Hive-style partition directory names, as Flink writes and reads them
//! (its `PartitionPathUtils`): one `key=value` directory per partition
//! column, with the characters a path or Hive cannot hold in a name written
//! as `%XX`, so that any value makes one directory, and reading the name
//! back gives the value again.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is written as `%XX` in a partition directory's name: ASCII
/// control characters, DEL, and `"#%'*/:=?\{[]^` (Hive's and Flink's set;
/// other characters, non-ASCII ones included, are kept as they are).
fn needs_escaping(c: char) -> bool {
    matches!(
        c,
        '\u{0}'
            ..='\u{1f}'
                | '"'
                | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7f}'
                | '{'
                | '['
                | ']'
                | '^'
    )
}

/// `s` with each character that [`needs_escaping`] written as `%` and two
/// upper-case hex digits; borrowed when nothing needs it (the usual case).
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escaping) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escaping(c) {
            // Infallible: writing to a String.
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The value an escaped name stands for: each `%` followed by two hex
/// digits is the character of that code (as Flink reads it); any other
/// `%` is kept.
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3).and_then(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit())
                .then(|| u8::from_str_radix(hex, 16).ok())
                .flatten()
        });
        match code {
            Some(code) => {
                out.push(char::from(code));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The key and value of one `key=value` directory name, unescaped; `None`
/// for a name of another form. As Flink's pattern `([^/]+)=([^/]+)`, the
/// name is cut at its last `=` (an escaped name has no other).
pub(crate) fn parse_component(name: &str) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    let (key, value) = name.rsplit_once('=')?;
    (!key.is_empty() && !value.is_empty() && !name.contains('/')).then(|| (unescape(key), unescape(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flink's escaping: its set of characters, `%XX` in upper case, other
    /// characters (multi-byte ones too) as they are.
    #[test]
    fn escapes_as_flink_does() {
        assert_eq!(escape("2024-01-01"), "2024-01-01");
        assert_eq!(escape("10:05"), "10%3A05");
        assert_eq!(escape("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape("50% #1?"), "50%25 %231%3F");
        assert_eq!(escape("\"'*\\{[]^"), "%22%27%2A%5C%7B%5B%5D%5E");
        assert_eq!(escape("tab\there\n\u{7f}"), "tab%09here%0A%7F");
        assert_eq!(escape("été ünï € x}y|z"), "été ünï € x}y|z");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn unescaping_inverts_escaping() {
        for s in [
            "10:05",
            "a/b=c",
            "50% #1?",
            "%",
            "%%41",
            "x%2",
            "%zz",
            "é/€",
            "\u{1}\u{1f}",
            "",
            "a%",
        ] {
            assert_eq!(unescape(&escape(s)), s, "{s:?}");
        }
        // A `%` without two hex digits after it stays.
        assert_eq!(unescape("50%"), "50%");
        assert_eq!(unescape("%4g%41"), "%4gA");
        assert_eq!(unescape("%e9"), "é");
    }

    #[test]
    fn components_split_at_the_last_equals_sign() {
        let (k, v) = parse_component("hm=10%3A05").unwrap();
        assert_eq!((k.as_ref(), v.as_ref()), ("hm", "10:05"));
        let (k, v) = parse_component("a=b=c").unwrap();
        assert_eq!((k.as_ref(), v.as_ref()), ("a=b", "c"));
        for bad in ["dt", "=x", "dt=", "part-0.json"] {
            assert!(parse_component(bad).is_none(), "{bad}");
        }
    }
}
