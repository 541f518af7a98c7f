//! Which saved state belongs to which part of a job.
//!
//! Every part of a plan that keeps state — a source's positions, a window
//! or group aggregate, a join — has a [`StateId`]: the one the user set
//! with the `UID` hint, or else its kind and its ordinal among the parts of
//! that kind, in plan order (a part with a user-set id takes its ordinal
//! too, so setting one renumbers nothing else). Stateless operators
//! (projections, filters) take none, so a query or a Weir version that adds
//! one does not move any state. Each stateful part also has a *signature*:
//! the shape of what it stores (key and aggregate types, buffered rows'
//! columns, the window), without column positions.
//!
//! Every checkpoint records a [`Manifest`]: the Weir version, the state
//! format, the key hash version, a fingerprint of the plan, and the id and
//! signature of every stateful part. A restore compares it with the job's
//! own: a part that is missing on either side, or whose signature differs,
//! refuses the restore with [`EngineError::Incompatible`] naming the part —
//! state is never handed to another operator, nor silently dropped. A
//! savepoint restored into a changed query is looser (`evolution`).

use std::fmt;

use datafusion::arrow::datatypes::Schema;

use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result};
use crate::plan::{StageInput, StateShape, StreamPlan};
use crate::runtime::key_hash::KEY_HASH_VERSION;

/// The layout of saved state. Raised whenever a part's encoding, the
/// checkpoint layout or the key-group assignment changes; a checkpoint of
/// another format is refused, not misread. Format 1 is every checkpoint
/// written before state identity (operators named by position).
pub const STATE_FORMAT_VERSION: u64 = 2;

/// The name a stateful part's state is saved under, e.g. `WindowAggregate#0`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateId(String);

impl StateId {
    fn new(kind: &str, ordinal: usize) -> Self {
        Self(format!("{kind}#{ordinal}"))
    }

    /// An id the user set. Derived ids hold a `#`, which
    /// [`check_uid`] refuses in a user's, so the two never meet.
    fn user(uid: &str) -> Self {
        Self(uid.to_string())
    }

    /// An id as a test spells it.
    #[cfg(test)]
    pub(crate) fn parse(id: &str) -> Self {
        Self(id.to_string())
    }

    /// The id as a checkpoint part name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state ids of one stage: its source's, and each chained operator's
/// (`None` for a stateless one).
#[derive(Debug, Clone, Default)]
pub struct StageStates {
    pub source: Option<StateId>,
    pub operators: Vec<Option<StateId>>,
}

/// One stateful part: where it is, its id and what it stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulPart {
    pub id: StateId,
    pub signature: String,
}

/// The identity of a job's state, as recorded with every checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The Weir that wrote the checkpoint (for the messages; formats are
    /// what is compared).
    pub weir_version: String,
    pub format: u64,
    pub key_hash: u32,
    /// A hash of the plan's `EXPLAIN`: a changed plan is told apart at a
    /// glance, though only the stateful parts decide a restore.
    pub plan_fingerprint: String,
    pub parts: Vec<StatefulPart>,
    /// The job that wrote it (`None` in manifests written before Weir
    /// recorded it): a savepoint restored by another job (a changed query)
    /// hands its sinks' prepared output back to that job's names.
    pub job: Option<String>,
}

/// Column names and types, in order: how signatures name rows.
pub fn typed_columns(schema: &Schema) -> String {
    let fields: Vec<String> = schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
    format!("[{}]", fields.join(", "))
}

/// Refuses an id the user set that could be mistaken for another part's:
/// empty, longer than 128 bytes, or holding `#` (derived ids do).
pub fn check_uid(uid: &str) -> std::result::Result<(), String> {
    if uid.trim().is_empty() || uid.len() > 128 || uid.contains('#') {
        return Err(format!(
            "'{uid}' cannot be a state id: a UID is 1 to 128 characters without '#' (derived ids such as \
             'GroupAggregate#0' hold one)"
        ));
    }
    Ok(())
}

/// Refuses a plan in which two stateful parts were given one id: their
/// state would be saved under one name.
pub fn check_unique_ids(plan: &StreamPlan) -> Result<()> {
    let (_, parts) = state_ids(plan);
    let mut seen = std::collections::HashSet::new();
    for part in &parts {
        if !seen.insert(&part.id) {
            return Err(EngineError::Plan(format!(
                "the state id '{}' is given to two stateful operators of this job (UID hints must differ)",
                part.id
            )));
        }
    }
    Ok(())
}

/// The state ids of every stage of `plan`, and its stateful parts in plan
/// order. A part with a user-set id still takes its ordinal, so that
/// setting one renumbers no other part.
pub fn state_ids(plan: &StreamPlan) -> (Vec<StageStates>, Vec<StatefulPart>) {
    let mut ordinals = std::collections::HashMap::<&'static str, usize>::new();
    let mut next = |kind: &'static str| {
        let n = ordinals.entry(kind).or_default();
        *n += 1;
        StateId::new(kind, *n - 1)
    };
    let mut parts = Vec::new();
    let stages = plan
        .stages
        .iter()
        .map(|stage| {
            let source = match &stage.input {
                StageInput::Source(s) => {
                    let id = next("Source");
                    let mut signature = format!("table {}; columns {}", s.table, typed_columns(&s.schema));
                    if let Some(positions) = s.connector.positions() {
                        signature.push_str(&format!("; positions {positions}"));
                    }
                    parts.push(StatefulPart { id: id.clone(), signature });
                    Some(id)
                }
                StageInput::Exchange(_) => None,
            };
            let operators = stage
                .chain
                .iter()
                .map(|op| {
                    let StateShape { kind, signature, .. } = op.state()?;
                    let derived = next(kind);
                    let id = op.uid().map_or(derived, StateId::user);
                    parts.push(StatefulPart { id: id.clone(), signature });
                    Some(id)
                })
                .collect();
            StageStates { source, operators }
        })
        .collect();
    (stages, parts)
}

impl Manifest {
    /// The manifest of the job running `plan`.
    pub fn of(plan: &StreamPlan) -> Self {
        let explain = plan.to_string();
        Self {
            weir_version: env!("CARGO_PKG_VERSION").to_string(),
            format: STATE_FORMAT_VERSION,
            key_hash: KEY_HASH_VERSION,
            plan_fingerprint: format!("{:08x}", crc32fast::hash(explain.as_bytes())),
            parts: state_ids(plan).1,
            job: None,
        }
    }

    /// The manifest job `job` writes with its checkpoints.
    pub fn of_job(plan: &StreamPlan, job: &str) -> Self {
        Self { job: Some(job.to_string()), ..Self::of(plan) }
    }

    /// The manifest as the completion record of a checkpoint holds it.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.u64(self.format);
        e.bytes(self.weir_version.as_bytes());
        e.u64(u64::from(self.key_hash));
        e.bytes(self.plan_fingerprint.as_bytes());
        e.u64(self.parts.len() as u64);
        for part in &self.parts {
            e.bytes(part.id.0.as_bytes());
            e.bytes(part.signature.as_bytes());
        }
        // Last, so that a manifest without it reads as before.
        if let Some(job) = &self.job {
            e.bytes(job.as_bytes());
        }
        e.bytes
    }

    /// Reads what [`Manifest::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(bytes);
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| EngineError::State("a checkpoint manifest is not UTF-8".into()))
        };
        let format = d.u64()?;
        let weir_version = text(d.bytes()?)?;
        let key_hash =
            u32::try_from(d.u64()?).map_err(|_| EngineError::State("a checkpoint manifest is damaged".into()))?;
        let plan_fingerprint = text(d.bytes()?)?;
        let mut parts = Vec::new();
        for _ in 0..d.u64()? {
            let id = StateId(text(d.bytes()?)?);
            parts.push(StatefulPart { id, signature: text(d.bytes()?)? });
        }
        let job = match d.finish() {
            Ok(()) => None,
            Err(_) => Some(text(d.bytes()?)?),
        };
        d.finish()?;
        Ok(Self { weir_version, format, key_hash, plan_fingerprint, parts, job })
    }

    /// Whether this job's state can be restored from checkpoint
    /// `checkpoint`, whose manifest is `saved` (`None`: a checkpoint of
    /// format 1, from before manifests). Refused with
    /// [`EngineError::Incompatible`], naming the first part that differs.
    pub fn check_restore(&self, checkpoint: u64, saved: Option<&Manifest>) -> Result<()> {
        let refuse = |why: String| {
            Err(EngineError::Incompatible(format!(
                "checkpoint {checkpoint} cannot be restored by this job: {why}. The state was left as it is: run the \
                 query it was taken from, or run this one under another job name or 'state.dir'"
            )))
        };
        let Some(saved) = saved else {
            return refuse(format!(
                "it was written by a Weir before {} (state format 1, which named operators by position)",
                self.weir_version
            ));
        };
        let written = format!("written by Weir {} for plan {}", saved.weir_version, saved.plan_fingerprint);
        if saved.format != self.format {
            return refuse(format!(
                "it has state format {}, this Weir reads format {} ({written})",
                saved.format, self.format
            ));
        }
        if saved.key_hash != self.key_hash {
            return refuse(format!(
                "its keys were spread with key hash version {}, this Weir uses version {} ({written})",
                saved.key_hash, self.key_hash
            ));
        }
        for part in &saved.parts {
            match self.parts.iter().find(|p| p.id == part.id) {
                None => {
                    return refuse(format!(
                        "it holds state of {} ({}), which this query does not have ({written}, this plan {})",
                        part.id, part.signature, self.plan_fingerprint
                    ));
                }
                Some(mine) if mine.signature != part.signature => {
                    return refuse(format!(
                        "the state of {} was saved as {}, and this query's {} keeps {} ({written}, this plan {})",
                        part.id, part.signature, part.id, mine.signature, self.plan_fingerprint
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(new) = self.parts.iter().find(|p| !saved.parts.iter().any(|s| s.id == p.id)) {
            return refuse(format!(
                "this query's {} ({}) has no state in it, and would start empty ({written}, this plan {})",
                new.id, new.signature, self.plan_fingerprint
            ));
        }
        Ok(())
    }
}

/// A manifest of `parts` (id, signature) as the current Weir writes it,
/// for the tests of restores.
#[cfg(test)]
pub(crate) fn test_manifest(parts: &[(&str, &str)]) -> Manifest {
    Manifest {
        weir_version: "0.1.0".into(),
        format: STATE_FORMAT_VERSION,
        key_hash: KEY_HASH_VERSION,
        plan_fingerprint: "0000abcd".into(),
        parts: parts
            .iter()
            .map(|(id, signature)| StatefulPart { id: StateId(id.to_string()), signature: signature.to_string() })
            .collect(),
        job: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use test_manifest as manifest;

    fn refusal(job: &Manifest, saved: Option<&Manifest>) -> String {
        match job.check_restore(7, saved) {
            Err(EngineError::Incompatible(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Stateless operators take no id: a projection or filter put before
    /// an aggregate (as a Weir upgrade or a narrowing may) moves no state.
    #[test]
    fn stateless_operators_move_no_state() {
        use datafusion::physical_expr::expressions::lit;

        use crate::plan::{OperatorPlan, Stage};

        let aggregate = || OperatorPlan::new(crate::fuzzing::window_aggregate().unwrap());
        let plan = |chain: Vec<OperatorPlan>| {
            StreamPlan::new(vec![Stage {
                parallelism: 1,
                input: StageInput::Exchange(Vec::new()),
                chain,
                sink: None,
                late_sink: None,
            }])
        };
        let (before, parts) = state_ids(&plan(vec![aggregate()]));
        let filter = OperatorPlan::new(crate::operators::filter::FilterPlan { predicate: lit(true) });
        let (after, moved) = state_ids(&plan(vec![filter, aggregate()]));
        assert_eq!(parts, moved);
        assert_eq!(parts[0].id.as_str(), "WindowAggregate#0");
        assert!(
            parts[0].signature.contains("TUMBLE") && parts[0].signature.contains("avg(UInt64, Float64)"),
            "{}",
            parts[0].signature
        );
        assert_eq!(before[0].operators, vec![Some(parts[0].id.clone())]);
        assert_eq!(after[0].operators, vec![None, Some(parts[0].id.clone())]);
        let (_, two) = state_ids(&plan(vec![aggregate(), aggregate()]));
        let ids: Vec<&str> = two.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["WindowAggregate#0", "WindowAggregate#1"]);
    }

    #[test]
    fn manifests_read_back_as_written() {
        let m =
            manifest(&[("Source#0", "table t; columns [k Utf8]"), ("WindowAggregate#0", "TUMBLE(1 s); keys [k Utf8]")]);
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let of_job = Manifest { job: Some("4c12eb18877ec942".into()), ..m.clone() };
        assert_eq!(Manifest::decode(&of_job.encode()).unwrap(), of_job);
        let mut bytes = m.encode();
        bytes.truncate(bytes.len() - 3);
        assert!(Manifest::decode(&bytes).is_err(), "a cut manifest is damaged");
    }

    /// The same parts restore; any other shape is refused naming the part
    /// that differs — moved, changed, dropped or new — never started empty.
    #[test]
    fn a_restore_is_refused_naming_the_part_that_does_not_fit() {
        let saved = manifest(&[("Source#0", "table t"), ("WindowAggregate#0", "sum(Int64)")]);
        saved.check_restore(7, Some(&saved)).unwrap();

        let changed = manifest(&[("Source#0", "table t"), ("WindowAggregate#0", "max(Int64)")]);
        let m = refusal(&changed, Some(&saved));
        assert!(
            m.contains("checkpoint 7")
                && m.contains("WindowAggregate#0 was saved as sum(Int64)")
                && m.contains("keeps max(Int64)"),
            "{m}"
        );

        let dropped = manifest(&[("Source#0", "table t")]);
        let m = refusal(&dropped, Some(&saved));
        assert!(m.contains("holds state of WindowAggregate#0 (sum(Int64)), which this query does not have"), "{m}");

        let added =
            manifest(&[("Source#0", "table t"), ("WindowAggregate#0", "sum(Int64)"), ("GroupAggregate#0", "count")]);
        let m = refusal(&added, Some(&saved));
        assert!(m.contains("GroupAggregate#0 (count) has no state in it, and would start empty"), "{m}");

        let mut hash = saved.clone();
        hash.key_hash += 1;
        assert!(refusal(&hash, Some(&saved)).contains("key hash version"));
        let mut format = saved.clone();
        format.format += 1;
        assert!(refusal(&format, Some(&saved)).contains("state format"));
        assert!(refusal(&saved, None).contains("state format 1"), "a checkpoint without a manifest");
    }
}
