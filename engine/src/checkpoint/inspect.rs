//! What a savepoint or a job's checkpoint store holds, for `weir_savepoint`:
//! each stateful part's id, kind, signature and size, and — for a window
//! or group aggregate, whose state is split into chunks by key group — its
//! size per key group; and, for `weir_savepoint_rows`, a window or group
//! aggregate's state as rows ([`state_rows`]). Reading never creates a
//! store (a path with no state is an error naming it) and holds the store
//! only while it reads: a running job's sled lock is taken for the time of
//! one read, then let go.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::checkpoint::store::{Checkpoint, Location, StateStore};
use crate::error::{EngineError, Result};
use crate::group_aggregate::{KeyGroupState, read_key_groups};
use crate::window::aggregate::SavedWindowState;

mod grouping;
mod rows;

pub use grouping::AggregateLookup;
pub use rows::state_rows;

/// How long reading a store on object storage may take.
const READ_DEADLINE: Duration = Duration::from_secs(60);

/// The kinds whose state [`key_group_sizes`] splits by key group.
const WINDOW_AGGREGATE: &str = "WindowAggregate";
const GROUP_AGGREGATE: &str = "GroupAggregate";

/// The size of one part of a checkpoint, or of one key group of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSize {
    pub checkpoint: u64,
    /// The part name: a state id (`WindowAggregate#0`, a user's `UID`) or a
    /// sink's prepared output.
    pub state_id: String,
    /// The kind of a derived state id; `None` for a user-set id or a
    /// part the manifest does not name (the manifest records no kind).
    pub kind: Option<String>,
    /// The part's signature in the manifest; `None` for a part it does not
    /// name (a sink's prepared output, a checkpoint of state format 1).
    pub signature: Option<String>,
    /// `None` for the whole part; `Some(g)` for key group `g` of it.
    pub key_group: Option<usize>,
    /// State bytes plus the bytes of the chunks referenced (for a key
    /// group: the bytes of its chunks, or of its groups inline in the
    /// state, in a group aggregate's layout before chunks).
    pub bytes: u64,
    /// How many task states hold the part (or the key group).
    pub tasks: usize,
}

/// The newest complete checkpoint at `path`: a savepoint directory, a job's
/// checkpoint directory, or an object-storage URL. A local path without
/// Weir state is refused rather than turned into an empty store.
pub fn read_latest(path: &str) -> Result<Checkpoint> {
    let location = Location::from_path(Path::new(path))?;
    if let Location::Local(dir) = &location
        && !dir.join("db").is_file()
    {
        return Err(EngineError::State(format!("no Weir state at {path}: it is not a savepoint or checkpoint store")));
    }
    // The store (and a sled lock) lives only for this read.
    let store = StateStore::open_at(&location, READ_DEADLINE)?;
    let recovery = store.restore()?;
    recovery.checkpoint.ok_or_else(|| {
        let damaged =
            if recovery.damaged.is_empty() { String::new() } else { format!(" (damaged: {:?})", recovery.damaged) };
        EngineError::State(format!("no complete checkpoint at {path}{damaged}"))
    })
}

/// The parts of `cp`, in name order, each followed by its key groups where
/// its state is split by key group. Parts the manifest names but no task
/// holds are listed with 0 bytes and 0 tasks.
pub fn part_sizes(cp: &Checkpoint) -> Result<Vec<PartSize>> {
    let signatures: BTreeMap<&str, &str> =
        cp.manifest.iter().flat_map(|m| m.parts.iter()).map(|p| (p.id.as_str(), p.signature.as_str())).collect();
    let mut names: BTreeSet<&str> = signatures.keys().copied().collect();
    names.extend(cp.tasks.values().flat_map(|t| t.parts.iter().map(|(n, _)| n.as_str())));
    let mut out = Vec::new();
    for name in names {
        let signature = signatures.get(name).map(|s| s.to_string());
        let kind = signature.as_ref().and(name.split_once('#')).map(|(k, _)| k.to_string());
        let mut whole = PartSize {
            checkpoint: cp.id,
            state_id: name.to_string(),
            kind: kind.clone(),
            signature: signature.clone(),
            key_group: None,
            bytes: 0,
            tasks: 0,
        };
        let mut groups = BTreeMap::<usize, (u64, usize)>::new();
        for task in cp.tasks.values() {
            let Some((_, state)) = task.parts.iter().find(|(n, _)| n == name) else {
                continue;
            };
            whole.tasks += 1;
            whole.bytes += state.len() as u64;
            for (group, bytes, in_state) in key_group_sizes(kind.as_deref(), name, state, cp)? {
                if !in_state {
                    whole.bytes += bytes;
                }
                let g = groups.entry(group).or_default();
                g.0 += bytes;
                g.1 += 1;
            }
        }
        out.push(whole);
        out.extend(groups.into_iter().map(|(group, (bytes, tasks))| PartSize {
            checkpoint: cp.id,
            state_id: name.to_string(),
            kind: kind.clone(),
            signature: signature.clone(),
            key_group: Some(group),
            bytes,
            tasks,
        }));
    }
    Ok(out)
}

/// The bytes of each key group of one task's state of a part of `kind`,
/// read by the operator's own reader of its layout, and whether they are
/// part of the state itself (a group aggregate's layout before chunks)
/// rather than chunks it references. Other kinds: none.
fn key_group_sizes(kind: Option<&str>, name: &str, state: &[u8], cp: &Checkpoint) -> Result<Vec<(usize, u64, bool)>> {
    let damaged = |e: EngineError| EngineError::State(format!("state of {name} in checkpoint {}: {e}", cp.id));
    let chunk_size = |id| cp.chunks.size(id).map_err(damaged);
    let mut sizes = BTreeMap::<usize, (u64, bool)>::new();
    match kind {
        Some(WINDOW_AGGREGATE) => {
            let saved = SavedWindowState::decode(state).map_err(damaged)?;
            for (group, id) in saved.slices.into_iter().flat_map(|(_, refs)| refs) {
                sizes.entry(group).or_default().0 += chunk_size(id)?;
            }
        }
        Some(GROUP_AGGREGATE) => {
            for (group, stored) in read_key_groups(name, state).map_err(damaged)? {
                let size = match stored {
                    KeyGroupState::Chunk { id, .. } => (chunk_size(id)?, false),
                    KeyGroupState::Inline(bytes) => (bytes.len() as u64, true),
                };
                let entry = sizes.entry(group).or_default();
                *entry = (entry.0 + size.0, size.1);
            }
        }
        _ => {}
    }
    Ok(sizes.into_iter().map(|(group, (bytes, in_state))| (group, bytes, in_state)).collect())
}

#[cfg(test)]
mod tests;
