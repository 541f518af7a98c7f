//! A statement set's plans joined into one job's: each INSERT's stages
//! follow the earlier INSERTs', and a table that several INSERTs read with
//! the same source plan is read once, by one source stage whose output
//! every one of them reads (as Flink reuses a source its INSERTs share).
//! Only identical source plans are shared (same table, same connector,
//! same columns, watermark and computed columns); a source reporting
//! undecodable records to a `LATE DATA INTO` table stays its INSERT's own.

use std::sync::Arc;

use super::{Partitioning, Stage, StageInput, StreamPlan, Upstream};

/// The plans of a statement set's INSERTs, in order, as one plan. Without
/// a source two INSERTs share, the stages are the plans' one after the
/// other, exchanges renumbered; a shared source becomes one stage placed
/// before the first INSERT's stages that read it.
pub fn join(plans: Vec<StreamPlan>) -> StreamPlan {
    let mut stages = Vec::new();
    let mut insert_of = Vec::new();
    for (insert, plan) in plans.into_iter().enumerate() {
        let offset = stages.len();
        for mut stage in plan.stages {
            if let StageInput::Exchange(upstreams) = &mut stage.input {
                for u in upstreams {
                    u.from += offset;
                }
            }
            stages.push(stage);
            insert_of.push(insert);
        }
    }
    let groups = shared_sources(&stages, &insert_of);
    match groups.is_empty() {
        true => StreamPlan { stages },
        false => share(stages, &groups),
    }
}

/// Source stages of several INSERTs that read the same way, each group in
/// stage order: of each INSERT, only the first stage reading so (a second
/// read in one INSERT, as a self-join's, keeps its own source, as it does
/// outside a statement set).
fn shared_sources(stages: &[Stage], insert_of: &[usize]) -> Vec<Vec<usize>> {
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
            Some(group) if group.iter().all(|m| insert_of[*m] != insert_of[i]) => group.push(i),
            Some(_) => {}
            None => groups.push(vec![i]),
        }
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// `stages` with one source stage per group of `groups`: each member then
/// reads it forward, or, when the member only passed the source's rows on
/// to exchanges, is dropped and its readers read the shared stage.
fn share(stages: Vec<Stage>, groups: &[Vec<usize>]) -> StreamPlan {
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
        stage.input = StageInput::Exchange(vec![Upstream {
            from,
            partitioning: Partitioning::Forward,
        }]);
        moved[i] = out.len();
        out.push(stage);
    }
    StreamPlan { stages: out }
}
