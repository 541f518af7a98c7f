//! Fault injection for tests of isolation: with `FAILPOINTS` set in the
//! environment (the `fail` crate's syntax, `name=action;…`), a named point
//! in the engine misbehaves on purpose. Points are inert otherwise; each
//! costs a lookup in an empty registry.
//!
//! - `weir::sink::write=return(t)`: writing a batch to table `t` panics, so
//!   that tests can check that a panic in one job stops that job alone;
//!   `return(error:t)` fails it with a connector error instead (a system
//!   outside Weir failing), so that tests can check that a job restarts
//!   from its checkpoint and ends exact.
//! - `weir::sink::barrier=return(t)`: the sink of table `t` fails with a
//!   connector error when a checkpoint's barrier reaches it, before it
//!   prepares its output: with counts (`4*off->1*return(t)->…`) the job
//!   fails between checkpoints that complete, whatever the speed of the
//!   machine, so restarts resume from a checkpoint. `return(panic:t)`
//!   panics there instead.
//! - `weir::checkpoint::write=return`: a task's asynchronous snapshot
//!   writer (`checkpoint::snapshot`) fails before it encodes and writes its
//!   part of a checkpoint, so that tests can check that a failed write
//!   abandons that checkpoint alone; `return(s1-0)` fails task `s1-0`'s
//!   only. `sleep(ms)` there makes the write slow instead.
//! - `weir::job::finish=return`: the process aborts (as under `kill -9`)
//!   when a finished job has recorded that it is finishing, before it
//!   deletes its checkpoints, so that tests can check that the next run
//!   completes the finish (`runtime::recovery::finish`).
//! - `weir::job::ended=return`: the process aborts when every task of a
//!   finished job ended (its sinks committed their last output), before
//!   it records that it is finishing, so that tests can check that the
//!   next run writes none of that output again.
//! - `weir::pgwire::query=return(s)`: `weir serve` panics while answering
//!   a simple query whose text contains `s` (`repl/src/serve/handler.rs`),
//!   so that tests can check that the panic fails that statement alone.

/// Configures the points `FAILPOINTS` names; an error says which entry is
/// malformed. (`fail::FailScenario::setup` would panic instead.)
pub fn configure_from_env() -> Result<(), String> {
    let Ok(spec) = std::env::var("FAILPOINTS") else {
        return Ok(());
    };
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, actions) =
            entry.split_once('=').ok_or_else(|| format!("FAILPOINTS: '{entry}' is not name=action"))?;
        fail::cfg(name.trim(), actions.trim()).map_err(|e| format!("FAILPOINTS: '{entry}': {e}"))?;
    }
    Ok(())
}

/// What a sink failpoint does to its table.
#[derive(Debug, PartialEq, Eq)]
enum Injected {
    Panic,
    Error,
}

/// What a sink point's `return(…)` value asks of the sink operator named
/// `sink` (`Sink: <table>`): `<table>` itself means `plain`,
/// `panic:<table>` and `error:<table>` say which; another table, nothing.
fn injected(victim: Option<String>, sink: &str, plain: Injected) -> Option<Injected> {
    let table = sink.strip_prefix("Sink: ").unwrap_or(sink);
    let victim = victim?;
    match victim.split_once(':') {
        _ if victim == table => Some(plain),
        Some(("panic", t)) if t == table => Some(Injected::Panic),
        Some(("error", t)) if t == table => Some(Injected::Error),
        _ => None,
    }
}

/// The point `weir::sink::write`, passed before a batch goes to the sink
/// operator named `sink`: a panic, or a connector error, for that table.
pub(crate) fn sink_write(sink: &str) -> crate::error::Result<()> {
    let victim = || -> Option<String> {
        fail::fail_point!("weir::sink::write", |victim| victim);
        None
    };
    inject(injected(victim(), sink, Injected::Panic), sink, "weir::sink::write", "")
}

/// The point `weir::sink::barrier`, passed when checkpoint `id`'s barrier
/// reaches the sink operator named `sink`.
pub(crate) fn sink_barrier(sink: &str, id: u64) -> crate::error::Result<()> {
    let victim = || -> Option<String> {
        fail::fail_point!("weir::sink::barrier", |victim| victim);
        None
    };
    inject(injected(victim(), sink, Injected::Error), sink, "weir::sink::barrier", &format!(" at checkpoint {id}"))
}

/// The point `weir::checkpoint::write`, passed by task `task`'s writer
/// before it encodes its part of checkpoint `id`.
pub(crate) fn snapshot_write(task: &str, id: u64) -> crate::error::Result<()> {
    let victim = || -> Option<Option<String>> {
        fail::fail_point!("weir::checkpoint::write", Some);
        None
    };
    match victim() {
        Some(v) if v.as_deref().is_none_or(|v| v == task) => Err(crate::error::EngineError::State(format!(
            "failpoint weir::checkpoint::write: writing {task}'s part of checkpoint {id} failed"
        ))),
        _ => Ok(()),
    }
}

/// The point `weir::job::finish`, passed once a finished job has recorded
/// that it is finishing: `return` aborts the process there.
pub(crate) fn job_finish() {
    fail::fail_point!("weir::job::finish", |_| std::process::abort());
}

/// The point `weir::job::ended`, passed once every task of a finished
/// job ended: `return` aborts the process there.
pub(crate) fn job_ended() {
    fail::fail_point!("weir::job::ended", |_| std::process::abort());
}

/// Carries out what `point` asked of `sink` (`at` says when, for the
/// message).
fn inject(what: Option<Injected>, sink: &str, point: &str, at: &str) -> crate::error::Result<()> {
    let table = sink.strip_prefix("Sink: ").unwrap_or(sink);
    match what {
        Some(Injected::Panic) => panic!("failpoint {point}: a panic injected into the sink of table '{table}'{at}"),
        Some(Injected::Error) => Err(crate::error::EngineError::Connector(format!(
            "failpoint {point}: an error injected into the sink of table '{table}'{at}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_point_names_its_table_and_what_to_do() {
        let named = |v: &str, plain| injected(Some(v.to_string()), "Sink: out", plain);
        assert_eq!(named("out", Injected::Panic), Some(Injected::Panic));
        assert_eq!(named("out", Injected::Error), Some(Injected::Error));
        assert_eq!(named("error:out", Injected::Panic), Some(Injected::Error));
        assert_eq!(named("panic:out", Injected::Error), Some(Injected::Panic));
        assert_eq!(named("other", Injected::Panic), None);
        assert_eq!(named("error:other", Injected::Panic), None);
        assert_eq!(injected(None, "Sink: out", Injected::Panic), None);
    }
}
