//! What a sink subtask's checkpoint holds: its part files pending commit
//! (with their partition directories) and the partitions it still has to
//! commit, checked when read back so that damaged or foreign state cannot
//! make recovery rename or create arbitrary files.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use weir_engine::EngineError;
use weir_engine::error::Result;

use super::names::{Part, PartNames};
use crate::filesystem::partition::PartitionLayout;

/// Version of the state `prepare` returns for a partitioned table, checked
/// by `recover`: a checkpoint may be restored by a later Weir. An
/// unpartitioned table's state is still version 2 (no directories, no
/// partitions), which an earlier Weir reads too.
const STATE_VERSION: u64 = 3;
const UNPARTITIONED_VERSION: u64 = 2;

/// A part file pending commit: in `dir` (relative to the table's path,
/// empty when unpartitioned), prepared for `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PendingPart {
    pub(super) checkpoint: u64,
    pub(super) dir: String,
    pub(super) number: u64,
}

/// A subtask's prepared output, decoded.
#[derive(Debug, Default)]
pub(super) struct SinkState {
    pub(super) pending: Vec<PendingPart>,
    /// Partitions to commit, with when the committer first saw each.
    pub(super) partitions: BTreeMap<String, i64>,
}

/// The state of a checkpoint: every pending part, so that recovery can
/// commit those whose commit the crash prevented, and (`partitioned`) the
/// directory of each and the partitions still to commit.
pub(super) fn encode(
    names: &PartNames,
    pending: &[PendingPart],
    partitions: &BTreeMap<String, i64>,
    partitioned: bool,
) -> Vec<u8> {
    let pending: Vec<Value> = pending
        .iter()
        .map(|p| {
            let mut entry = json!({
                "checkpoint": p.checkpoint,
                "file": names.hidden(p.number),
                "final": names.visible(p.number, Some(p.checkpoint)),
            });
            if partitioned {
                entry["dir"] = json!(p.dir);
            }
            entry
        })
        .collect();
    if !partitioned {
        return json!({ "version": UNPARTITIONED_VERSION, "pending": pending })
            .to_string()
            .into_bytes();
    }
    let partitions: Vec<Value> = partitions
        .iter()
        .map(|(dir, created)| json!({ "dir": dir, "created": created }))
        .collect();
    json!({ "version": STATE_VERSION, "pending": pending, "partitions": partitions })
        .to_string()
        .into_bytes()
}

/// The state [`encode`] wrote, each part checked to be a part file of
/// `names`' subtask and each directory one of `layout`'s partitions.
pub(super) fn decode(bytes: &[u8], names: &PartNames, layout: Option<&PartitionLayout>) -> Result<SinkState> {
    let bad = |why: String| EngineError::State(format!("filesystem sink: {why}"));
    let state: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("prepared output is not JSON: {e}")))?;
    let version = state.get("version").and_then(Value::as_u64);
    if !matches!(version, Some(UNPARTITIONED_VERSION | STATE_VERSION)) {
        return Err(bad(format!(
            "prepared output has version {}, this Weir reads versions {UNPARTITIONED_VERSION} and {STATE_VERSION}",
            state.get("version").unwrap_or(&Value::Null)
        )));
    }
    let within = if layout.is_some() {
        " in a partition of the table"
    } else {
        ""
    };
    let dir_of = |entry: &Value| -> Option<String> {
        let dir = match entry.get("dir") {
            None => "",
            Some(d) => d.as_str()?,
        };
        let known = match layout {
            None => dir.is_empty(),
            Some(l) => l.values_of(dir).is_some(),
        };
        known.then(|| dir.to_string())
    };
    let pending = state
        .get("pending")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("prepared output has no 'pending' list".into()))?
        .iter()
        .map(|entry| {
            let field = |key: &str| entry.get(key).and_then(Value::as_str);
            let part = field("file").and_then(|file| names.parse(file));
            let checkpoint = entry.get("checkpoint").and_then(Value::as_u64);
            match (part, checkpoint, dir_of(entry)) {
                (
                    Some(Part {
                        number, hidden: true, ..
                    }),
                    Some(c),
                    Some(dir),
                ) if field("final") == Some(names.visible(number, Some(c)).as_str()) => Ok(PendingPart {
                    checkpoint: c,
                    dir,
                    number,
                }),
                _ => Err(bad(format!(
                    "prepared entry {entry} is not a part file of '{}*'{within}",
                    names.prefix
                ))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut partitions = BTreeMap::new();
    for entry in state.get("partitions").and_then(Value::as_array).into_iter().flatten() {
        match (dir_of(entry), entry.get("created").and_then(Value::as_i64)) {
            (Some(dir), Some(created)) if layout.is_some() => {
                partitions.insert(dir, created);
            }
            _ => {
                return Err(bad(format!(
                    "prepared partition {entry} is not a partition of the table"
                )));
            }
        }
    }
    Ok(SinkState { pending, partitions })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::filesystem::partition::DEFAULT_PARTITION_NAME;

    fn layout() -> PartitionLayout {
        let schema = Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, true),
        ]);
        PartitionLayout::new(&schema, &["dt".into()], DEFAULT_PARTITION_NAME.into()).unwrap()
    }

    #[test]
    fn round_trip_with_directories_and_partitions() {
        let names = PartNames::new("job", 1);
        let pending = vec![
            PendingPart {
                checkpoint: 3,
                dir: "dt=a".into(),
                number: 7,
            },
            PendingPart {
                checkpoint: 4,
                dir: "dt=b%2Fc".into(),
                number: 8,
            },
        ];
        let partitions = BTreeMap::from([("dt=a".to_string(), 5)]);
        let bytes = encode(&names, &pending, &partitions, true);
        let l = layout();
        let state = decode(&bytes, &names, Some(&l)).unwrap();
        assert_eq!(state.pending, pending);
        assert_eq!(state.partitions, partitions);
        // Another subtask's files, or directories outside the table's
        // partitions, are refused.
        assert!(decode(&bytes, &PartNames::new("job", 2), Some(&l)).is_err());
        assert!(decode(&bytes, &names, None).is_err());
        for dir in ["../x", "dt=a/../../x", "/etc", "other=a", ""] {
            let p = vec![PendingPart {
                checkpoint: 3,
                dir: dir.into(),
                number: 7,
            }];
            let bytes = encode(&names, &p, &BTreeMap::new(), true);
            assert!(decode(&bytes, &names, Some(&l)).is_err(), "{dir}");
        }
    }

    /// A checkpoint of the unpartitioned sink of the previous Weir.
    #[test]
    fn version_two_is_read() {
        let names = PartNames::new("job", 0);
        let v2 = br#"{"version":2,"pending":[{"checkpoint":2,"file":".part-job-0-5.inprogress","final":"part-job-0-5-ckpt2"}]}"#;
        let state = decode(v2, &names, None).unwrap();
        assert_eq!(
            state.pending,
            vec![PendingPart {
                checkpoint: 2,
                dir: String::new(),
                number: 5
            }]
        );
        assert!(decode(br#"{"version":9,"pending":[]}"#, &names, None).is_err());
    }
}
