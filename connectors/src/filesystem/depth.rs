//! How deep a JSON record nests, found before arrow's decoder sees it.
//!
//! Arrow's JSON decoder walks nested values iteratively, but when a nested
//! value stands where a column wants a scalar it writes the value into its
//! error message recursively: a record of a few megabytes of `[` overflows
//! the thread's stack and aborts the process. Such records are refused
//! first, at the depth Jackson (Flink's JSON parser) refuses by default.

/// Jackson's default `StreamReadConstraints` maximum nesting depth.
pub(crate) const MAX_JSON_DEPTH: usize = 1000;

/// Whether the JSON text `record` opens more than [`MAX_JSON_DEPTH`]
/// arrays or objects inside one another (brackets inside strings do not
/// count). A record shorter than the limit cannot, and is not scanned.
pub(crate) fn too_deep(record: &[u8]) -> bool {
    if record.len() <= MAX_JSON_DEPTH {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in record {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!(r#"{{"a": {}1{}}}"#, "[".repeat(depth - 1), "]".repeat(depth - 1))
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert!(!too_deep(nested(MAX_JSON_DEPTH).as_bytes()));
        assert!(too_deep(nested(MAX_JSON_DEPTH + 1).as_bytes()));
        // Brackets in strings, escaped quotes included, are text.
        let text = format!(r#"{{"a": "\"{}"}}"#, "[".repeat(5000));
        assert!(!too_deep(text.as_bytes()));
        // Siblings do not add up.
        let wide = format!(r#"{{"a": [{}]}}"#, vec!["[1]"; 5000].join(","));
        assert!(!too_deep(wide.as_bytes()));
    }
}
