//! A table a job reads several times the same way is read once: one source
//! stage whose output every reading stage takes, as Flink reuses a source
//! (`table.optimizer.reuse-source-enabled`, on by default) — a self-join, a
//! `UNION ALL` of one table's rows, views over one table (Flink nexmark's
//! `person`, `auction` and `bid` over its one `datagen` table), or a
//! statement set's INSERTs. Besides generating or decoding the rows once,
//! this is what lets a named pipe or a Kafka partition be read by one
//! reader only. Only identical source plans are shared (same table, same
//! connector, same columns, watermark and computed columns, same
//! parallelism); a source reporting undecodable records to a `LATE DATA
//! INTO` table keeps its own.
//!
//! Barriers stay aligned: the shared source sends each barrier to every
//! reader before any row after it, so an operator that reads the table on
//! two paths (a self-join) receives the barrier on both while it drains
//! the path it has not blocked.

use std::sync::Arc;

use super::{Partitioning, Stage, StageInput, StreamPlan, Upstream};
use crate::spill::StateBackend;

/// `plan` with each group of sources that read alike as one stage, placed
/// before the first stage of the group.
pub fn reuse_sources(plan: StreamPlan) -> StreamPlan {
    let groups = shared_sources(&plan.stages);
    match groups.is_empty() {
        true => plan,
        false => share(plan.stages, &groups, plan.state),
    }
}

/// Source stages that read the same way, each group in stage order.
fn shared_sources(stages: &[Stage]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let StageInput::Source(plan) = &stage.input else {
            continue;
        };
        if plan.report_bad_records || plan.late_output.is_some() {
            continue;
        }
        let same = |group: &Vec<usize>| {
            let first = &stages[group[0]];
            matches!(&first.input, StageInput::Source(p) if p.same_reading(plan))
                && first.parallelism == stage.parallelism
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// `stages` with one source stage per group of `groups`: each member then
/// reads it forward, or, when the member only passed the source's rows on
/// to exchanges, is dropped and its readers read the shared stage.
fn share(stages: Vec<Stage>, groups: &[Vec<usize>], state: Arc<StateBackend>) -> StreamPlan {
    let mut out: Vec<Stage> = Vec::with_capacity(stages.len() + groups.len());
    // Where each stage of `stages` went (or the stage that replaces it).
    let mut moved = vec![0; stages.len()];
    let mut readers: Vec<Option<usize>> = vec![None; groups.len()];
    for (i, mut stage) in stages.into_iter().enumerate() {
        if let StageInput::Exchange(upstreams) = &mut stage.input {
            for u in upstreams {
                u.from = moved[u.from];
            }
        }
        let group = groups.iter().position(|g| g.contains(&i));
        let source = match &stage.input {
            StageInput::Source(source) => Some(Arc::clone(source)),
            StageInput::Exchange(_) => None,
        };
        let (Some(group), Some(source)) = (group, source) else {
            moved[i] = out.len();
            out.push(stage);
            continue;
        };
        let from = *readers[group].get_or_insert_with(|| {
            out.push(Stage {
                parallelism: stage.parallelism,
                input: StageInput::Source(source),
                chain: Vec::new(),
                sink: None,
                late_sink: None,
            });
            out.len() - 1
        });
        if stage.chain.is_empty() && stage.sink.is_none() && stage.late_sink.is_none() {
            moved[i] = from;
            continue;
        }
        stage.input = StageInput::Exchange(vec![Upstream { from, partitioning: Partitioning::Forward }]);
        moved[i] = out.len();
        out.push(stage);
    }
    StreamPlan { stages: out, state }
}
