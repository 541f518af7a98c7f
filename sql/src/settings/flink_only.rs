//! Flink settings that a Flink job's script sets and that change nothing in
//! Weir, each with why — so that the script runs unchanged and `SET` says
//! what it did — and those Weir cannot honour yet, refused with the reason
//! rather than as unknown keys.

/// A Flink setting Weir accepts without effect.
pub(super) struct NoEffect {
    pub key: &'static str,
    /// The values Flink takes (empty: any).
    pub values: &'static [&'static str],
    pub why: &'static str,
}

const DISPLAY: &str = "it is a display setting of Flink's SQL client; Weir's REPL and `weir run` show tables";
const BATCHES: &str = "Weir always processes whole batches of rows";
const PLANNER: &str = "Weir's planner decides how aggregations run";
const INCREMENTAL: &str = "Weir's checkpoints are always incremental: state a completed checkpoint stored is \
     referenced by the next ones, not written again (docs/checkpoints.md)";

pub(super) const NO_EFFECT: &[NoEffect] = &[
    NoEffect { key: "sql-client.execution.result-mode", values: &["table", "changelog", "tableau"], why: DISPLAY },
    NoEffect { key: "sql-client.execution.max-table-result.rows", values: &[], why: DISPLAY },
    NoEffect { key: "sql-client.display.max-column-width", values: &[], why: DISPLAY },
    NoEffect { key: "sql-client.verbose", values: &["true", "false"], why: DISPLAY },
    NoEffect { key: "table.display.max-column-width", values: &[], why: DISPLAY },
    NoEffect { key: "table.exec.mini-batch.enabled", values: &["true", "false"], why: BATCHES },
    NoEffect { key: "table.exec.mini-batch.allow-latency", values: &[], why: BATCHES },
    NoEffect { key: "table.exec.mini-batch.size", values: &[], why: BATCHES },
    NoEffect { key: "table.optimizer.agg-phase-strategy", values: &["AUTO", "ONE_PHASE", "TWO_PHASE"], why: PLANNER },
    NoEffect { key: "table.optimizer.distinct-agg.split.enabled", values: &["true", "false"], why: PLANNER },
    NoEffect { key: "table.optimizer.distinct-agg.split.bucket-num", values: &[], why: PLANNER },
    NoEffect { key: "pipeline.name", values: &[], why: "Weir names a job by its id and its statement (SHOW JOBS)" },
    NoEffect { key: "state.backend.incremental", values: &["true", "false"], why: INCREMENTAL },
    NoEffect { key: "execution.checkpointing.incremental", values: &["true", "false"], why: INCREMENTAL },
    NoEffect {
        key: "execution.checkpointing.externalized-checkpoint-retention",
        values: &["RETAIN_ON_CANCELLATION", "DELETE_ON_CANCELLATION", "NO_EXTERNALIZED_CHECKPOINTS"],
        why: "Weir keeps each job's latest checkpoint under state.dir",
    },
];

/// Flink settings whose meaning Weir does not have yet, with why.
pub(super) const NOT_YET: &[(&str, &str)] = &[
    ("table.exec.emit.early-fire.enabled", "a window emits once, when it closes (no early firing)"),
    ("table.exec.emit.late-fire.enabled", "Weir takes late rows with ALLOWED LATENESS and LATE DATA INTO (docs)"),
];

/// The no-effect setting `key`, if it is one.
pub(super) fn no_effect(key: &str) -> Option<&'static NoEffect> {
    NO_EFFECT.iter().find(|s| s.key == key)
}

/// Why `key` is refused, if Weir knows it as Flink's.
pub(super) fn not_yet(key: &str) -> Option<&'static str> {
    NOT_YET.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}
