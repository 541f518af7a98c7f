//! Maxwell's `old` names the columns an update changed, with their values
//! before it: `"old": {"note": null}` says `note` was NULL. The JSON
//! decoder reads a column missing from `old` and one set to null alike,
//! so the before image would take `note` from `data`; Flink looks the key
//! up in `old`, and so does this, for the few records that need it: only
//! an update whose line holds a `null` is parsed again, and only its `old`
//! object's keys are kept.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StructArray};
use datafusion::arrow::compute::nullif;
use datafusion::arrow::error::ArrowError;

/// `before` (the overlaid before images of updates `updates`, envelope
/// rows whose raw records `raw` gives) with the columns each record's
/// `old` sets to null made NULL.
pub(super) fn apply<'a>(
    before: StructArray,
    updates: impl Iterator<Item = usize>,
    raw: &dyn Fn(usize) -> &'a [u8],
) -> Result<StructArray, ArrowError> {
    let mut nulled: Vec<(usize, HashSet<String>)> = Vec::new();
    for r in updates {
        let line = raw(r);
        if memchr::memmem::find(line, b"null").is_none() {
            continue;
        }
        // A record that does not parse decoded anyway: nothing to add.
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let Some(old) = record.get("old").and_then(|o| o.as_object()) else {
            continue;
        };
        let keys: HashSet<String> = old
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        if !keys.is_empty() {
            nulled.push((r, keys));
        }
    }
    if nulled.is_empty() {
        return Ok(before);
    }
    let (fields, mut columns, nulls) = before.into_parts();
    for (i, field) in fields.iter().enumerate() {
        let mut mask = vec![false; columns[i].len()];
        let mut any = false;
        for (r, keys) in &nulled {
            if keys.contains(field.name()) {
                mask[*r] = true;
                any = true;
            }
        }
        if any {
            columns[i] = nullif(&columns[i] as &ArrayRef, &BooleanArray::from(mask))?;
        }
    }
    StructArray::try_new(fields, columns, nulls)
}
