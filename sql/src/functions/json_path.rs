//! What Flink's JSON functions read: JSON text (parsed here into a tree
//! that keeps objects' keys in their order and numbers as written, which
//! `serde_json` as built in this workspace does not) and SQL/JSON paths
//! (`$.a.b`, `$.a[0]`, `$['a b']`, `$.*`, `$[*]`, `$..name`, with an
//! optional `lax`/`strict` mode), evaluated as Flink's (Calcite's, Jayway
//! JsonPath's) evaluation does for the default `NULL ON EMPTY` / `NULL ON
//! ERROR` behaviour, where both modes give the same answers.

use std::borrow::Cow;
use std::fmt::Write;

/// A JSON value borrowing from its text.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json<'a> {
    Null,
    Bool(bool),
    /// The number as written (Flink returns `123456789.987654321` as is).
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in the text's order; a repeated key's last value wins on
    /// lookup, as in Jackson.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// How deep arrays and objects may nest: deeper text is not read (its
/// value is NULL) rather than overflowing the stack.
const MAX_DEPTH: usize = 512;

/// The JSON value of `text`, or `None` when it is not JSON (strictly: no
/// comments, single quotes, trailing commas or trailing text).
pub(super) fn parse(text: &str) -> Option<Json<'_>> {
    let mut p = Reader { text, pos: 0, depth: 0 };
    p.space();
    let value = p.value()?;
    p.space();
    (p.pos == text.len()).then_some(value)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        if found {
            self.pos += 1;
        }
        found
    }

    fn word(&mut self, w: &str, value: Json<'a>) -> Option<Json<'a>> {
        self.text[self.pos..].starts_with(w).then(|| {
            self.pos += w.len();
            value
        })
    }

    fn value(&mut self) -> Option<Json<'a>> {
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string().map(Json::String),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Option<Json<'a>>) -> Option<Json<'a>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn object(&mut self) -> Option<Json<'a>> {
        self.pos += 1;
        let mut members = Vec::new();
        self.space();
        if self.eat(b'}') {
            return Some(Json::Object(members));
        }
        loop {
            self.space();
            let key = self.string()?;
            self.space();
            if !self.eat(b':') {
                return None;
            }
            self.space();
            members.push((key, self.value()?));
            self.space();
            if self.eat(b'}') {
                return Some(Json::Object(members));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn array(&mut self) -> Option<Json<'a>> {
        self.pos += 1;
        let mut items = Vec::new();
        self.space();
        if self.eat(b']') {
            return Some(Json::Array(items));
        }
        loop {
            self.space();
            items.push(self.value()?);
            self.space();
            if self.eat(b']') {
                return Some(Json::Array(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.pos;
        self.eat(b'-');
        let digits = |r: &mut Self| {
            let from = r.pos;
            while matches!(r.peek(), Some(b'0'..=b'9')) {
                r.pos += 1;
            }
            r.pos > from
        };
        if self.eat(b'0') {
            if matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
        } else if !digits(self) {
            return None;
        }
        if self.eat(b'.') && !digits(self) {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return None;
            }
        }
        Some(Json::Number(&self.text[start..self.pos]))
    }

    /// A string, borrowed unless it has escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let bytes = self.text.as_bytes();
        // The plain run, up to the closing quote or the first escape.
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    self.pos += 1;
                    return Some(Cow::Borrowed(&self.text[start..self.pos - 1]));
                }
                b'\\' => break,
                0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let rest = &self.text[self.pos..];
            let c = rest.chars().next()?;
            self.pos += c.len_utf8();
            match c {
                '"' => return Some(Cow::Owned(out)),
                '\\' => {
                    let e = self.peek()?;
                    self.pos += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                c if c < ' ' => return None,
                c => out.push(c),
            }
        }
    }

    /// The character of `\uXXXX` (after the `u`), with a surrogate pair's
    /// second half; a lone surrogate is U+FFFD, as Java would print it.
    fn unicode_escape(&mut self) -> Option<char> {
        let unit = self.hex4()?;
        if (0xD800..0xDC00).contains(&unit) && self.text[self.pos..].starts_with("\\u") {
            let save = self.pos;
            self.pos += 2;
            let low = self.hex4()?;
            if (0xDC00..0xE000).contains(&low) {
                let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return char::from_u32(c);
            }
            self.pos = save;
        }
        Some(char::from_u32(unit).unwrap_or('\u{FFFD}'))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        let unit = u32::from_str_radix(digits, 16).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        Some(unit)
    }
}

impl Json<'_> {
    /// The text of a scalar as `JSON_VALUE` returns it (a string's content,
    /// a number as written, `true`/`false`); `None` for JSON null, arrays
    /// and objects.
    pub(super) fn scalar_text(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            Json::Number(n) => Some(n),
            Json::Bool(true) => Some("true"),
            Json::Bool(false) => Some("false"),
            Json::Null | Json::Array(_) | Json::Object(_) => None,
        }
    }

    /// Writes the value as compact JSON (Jackson's: no spaces, `"`, `\` and
    /// control characters escaped).
    pub(super) fn write(&self, out: &mut impl Write) -> std::fmt::Result {
        match self {
            Json::Null => out.write_str("null"),
            Json::Bool(b) => out.write_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.write_str(n),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.write_char(',')?;
                    }
                    item.write(out)?;
                }
                out.write_char(']')
            }
            Json::Object(members) => {
                out.write_char('{')?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.write_char(',')?;
                    }
                    write_string(key, out)?;
                    out.write_char(':')?;
                    value.write(out)?;
                }
                out.write_char('}')
            }
        }
    }
}

fn write_string(s: &str, out: &mut impl Write) -> std::fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if c < ' ' => write!(out, "\\u{:04X}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `.name`, `['name']`: an object's member.
    Member(String),
    /// `[n]`: an array's element, from the end when negative.
    Element(i64),
    /// `.*`, `[*]`: every member or element.
    Any,
    /// `..`: the value and everything under it (the next step selects).
    Descendants,
}

/// A SQL/JSON path, read once and evaluated against many documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonPath {
    steps: Vec<Step>,
    /// `strict` mode (Calcite's default when the path names no mode): a
    /// step that finds nothing is an error, not an empty result.
    pub(super) strict: bool,
}

impl JsonPath {
    /// Reads `text`: an optional `lax` or `strict`, then `$` and steps. The
    /// error says what is wrong (the caller names the function).
    pub(super) fn new(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid JSON path '{text}': {why}");
        let trimmed = text.trim_start();
        let mut path = trimmed;
        let mut strict = true;
        for mode in ["lax", "strict"] {
            if trimmed.len() > mode.len()
                && trimmed[..mode.len()].eq_ignore_ascii_case(mode)
                && trimmed[mode.len()..].starts_with(char::is_whitespace)
            {
                path = trimmed[mode.len()..].trim_start();
                strict = mode == "strict";
            }
        }
        let path = path.trim_end();
        let Some(mut rest) = path.strip_prefix('$') else {
            return Err(bad("it must start with '$'"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("..") {
                if after.is_empty() || after.starts_with('.') {
                    return Err(bad("'..' must be followed by a name, '*' or '['"));
                }
                steps.push(Step::Descendants);
                rest = if after.starts_with('[') { after } else { &rest[1..] };
            } else if let Some(after) = rest.strip_prefix('.') {
                if after.starts_with('[') {
                    // `$.['a b']`, as Flink's docs write it.
                    rest = after;
                } else if let Some(after) = after.strip_prefix('*') {
                    steps.push(Step::Any);
                    rest = after;
                } else {
                    let end = after.find(['.', '[']).unwrap_or(after.len());
                    let name = after[..end].trim();
                    if name.is_empty() {
                        return Err(bad("a '.' must be followed by a name or '*'"));
                    }
                    steps.push(Step::Member(name.to_string()));
                    rest = &after[end..];
                }
            } else if let Some(after) = rest.strip_prefix('[') {
                let (step, after) = bracket(after.trim_start()).map_err(|why| bad(&why))?;
                steps.push(step);
                rest = after;
            } else {
                return Err(bad(&format!("unexpected '{rest}'")));
            }
        }
        Ok(Self { steps, strict })
    }

    /// The one value a definite path (no wildcard, no `..`) selects, or
    /// `None` when a step finds nothing: a missing member, an index past
    /// the end, a member of a non-object or an element of a non-array.
    pub(super) fn find<'v, 'a>(&self, doc: &'v Json<'a>) -> Option<&'v Json<'a>> {
        let mut current = doc;
        for step in &self.steps {
            current = match (step, current) {
                (Step::Member(name), Json::Object(members)) => {
                    members.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v)?
                }
                (Step::Element(i), Json::Array(items)) => {
                    let len = items.len() as i64;
                    let at = if *i < 0 { len + i } else { *i };
                    usize::try_from(at).ok().and_then(|at| items.get(at))?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    /// Whether the path can select more than one value (a wildcard or
    /// `..`): its result is then always an array of what it found.
    pub(super) fn is_indefinite(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Any | Step::Descendants))
    }

    /// The values the path selects in `doc`, in document order.
    pub(super) fn select<'v, 'a>(&self, doc: &'v Json<'a>) -> Vec<&'v Json<'a>> {
        let mut current = vec![doc];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match (step, value) {
                    (Step::Member(name), Json::Object(members)) => {
                        if let Some((_, v)) = members.iter().rev().find(|(k, _)| k == name) {
                            next.push(v);
                        }
                    }
                    (Step::Element(i), Json::Array(items)) => {
                        let len = items.len() as i64;
                        let at = if *i < 0 { len + i } else { *i };
                        if let Some(v) = usize::try_from(at).ok().and_then(|at| items.get(at)) {
                            next.push(v);
                        }
                    }
                    (Step::Any, Json::Array(items)) => next.extend(items.iter()),
                    (Step::Any, Json::Object(members)) => next.extend(members.iter().map(|(_, v)| v)),
                    (Step::Descendants, v) => descendants(v, &mut next),
                    _ => {}
                }
            }
            current = next;
        }
        current
    }
}

/// `value` and every value under it, in document order.
fn descendants<'v, 'a>(value: &'v Json<'a>, out: &mut Vec<&'v Json<'a>>) {
    out.push(value);
    match value {
        Json::Array(items) => items.iter().for_each(|v| descendants(v, out)),
        Json::Object(members) => members.iter().for_each(|(_, v)| descendants(v, out)),
        _ => {}
    }
}

/// The step of a bracket (after its `[`) and the text after its `]`.
fn bracket(text: &str) -> Result<(Step, &str), String> {
    let close = |rest: &str| -> Result<usize, String> {
        let trimmed = rest.trim_start();
        if trimmed.starts_with(']') {
            Ok(rest.len() - trimmed.len() + 1)
        } else {
            Err("a '[' must be closed by ']'".into())
        }
    };
    if let Some(after) = text.strip_prefix('*') {
        let end = close(after)?;
        return Ok((Step::Any, &after[end..]));
    }
    if let Some(quote) = text.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let body = &text[1..];
        let mut name = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some((_, e)) => name.push(e),
                    None => break,
                }
            } else if c == quote {
                let after = &body[i + 1..];
                let end = close(after).map_err(|_| "only one quoted name may be in brackets".to_string())?;
                return Ok((Step::Member(name), &after[end..]));
            } else {
                name.push(c);
            }
        }
        return Err("an unterminated quoted name".into());
    }
    let end = text.find(']').ok_or("a '[' must be closed by ']'")?;
    let inside = text[..end].trim();
    match inside.parse::<i64>() {
        Ok(i) => Ok((Step::Element(i), &text[end + 1..])),
        Err(_) => Err(format!(
            "'[{inside}]' is not supported (an index, '*' or a quoted name)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(doc: &str, path: &str) -> Vec<String> {
        let doc = parse(doc).expect("json");
        JsonPath::new(path)
            .expect("path")
            .select(&doc)
            .into_iter()
            .map(|v| {
                let mut s = String::new();
                v.write(&mut s).unwrap();
                s
            })
            .collect()
    }

    #[test]
    fn parses_json_keeping_order_and_numbers() {
        let doc = r#" {"b": [1, 2.50, -3e2], "a": {"x": "y\"\u00e9\n"}, "t": true, "n": null} "#;
        let mut s = String::new();
        parse(doc).unwrap().write(&mut s).unwrap();
        assert_eq!(s, r#"{"b":[1,2.50,-3e2],"a":{"x":"y\"é\n"},"t":true,"n":null}"#);
        for bad in [
            "",
            "{",
            "[1,]",
            "{'a': 1}",
            "01",
            "1.",
            "\"a\u{1}\"",
            "[1] x",
            "tru",
            "{\"a\" 1}",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse("\"\\ud83d\\ude00\""), Some(Json::String("😀".into())));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep), None);
    }

    #[test]
    fn paths_select_as_jsonpath_does() {
        let doc = r#"{"a": {"b": [10, {"c": "x"}, [7]]}, "k l": 1, "a.b": [0.998, 0.996], "d": null}"#;
        assert_eq!(select(doc, "$.a.b[0]"), ["10"]);
        assert_eq!(select(doc, "lax $.a.b[1].c"), ["\"x\""]);
        assert_eq!(select(doc, "strict $.a.b[-1]"), ["[7]"]);
        assert_eq!(select(doc, "$['k l']"), ["1"]);
        assert_eq!(select(doc, "$.[\"a.b\"][0]"), ["0.998"]);
        assert_eq!(select(doc, "$.a.b[*]"), ["10", "{\"c\":\"x\"}", "[7]"]);
        assert_eq!(select(doc, "$..c"), ["\"x\""]);
        assert_eq!(select(doc, "$.d"), ["null"]);
        assert!(select(doc, "$.a.x").is_empty());
        assert!(select(doc, "$.a.b[9]").is_empty());
        assert!(select(doc, "$.a.b.c").is_empty());
        assert!(JsonPath::new("$.a[*]").unwrap().is_indefinite());
        assert!(!JsonPath::new("$.a[0]").unwrap().is_indefinite());
        for bad in ["a.b", "$.", "$[", "$[1:2]", "$[?(@.a)]", "$..", "$['a'"] {
            assert!(JsonPath::new(bad).is_err(), "{bad}");
        }
    }
}
