//! Fault injection for tests of isolation: with `FAILPOINTS` set in the
//! environment (the `fail` crate's syntax, `name=action;…`), a named point
//! in the engine misbehaves on purpose. Points are inert otherwise; each
//! costs a lookup in an empty registry.
//!
//! - `weir::sink::write=return(t)`: writing a batch to table `t` panics, so
//!   that tests can check that a panic in one job stops that job alone.
//! - `weir::sink::error=return(t)`: writing a batch to table `t` fails
//!   with a connector error (a system outside Weir failing), so that tests
//!   can check that a job restarts from its checkpoint and ends exact.
//!   With `fail`'s counts (`20*off->1*return(t)->…`) it fails now and then.
//! - `weir::sink::barrier=return(t)`: the sink of table `t` fails with a
//!   connector error when a checkpoint's barrier reaches it, before it
//!   prepares its output: with counts (`4*off->1*return(t)->…`) the job
//!   fails between checkpoints that complete, whatever the speed of the
//!   machine, so restarts resume from a checkpoint. `return(panic:t)`
//!   panics there instead.
//! - `weir::pgwire::query=return(s)`: `weir serve` panics while answering
//!   a simple query whose text contains `s` (`repl/src/serve/handler.rs`),
//!   so that tests can check that the panic fails that statement alone.

/// Configures the points `FAILPOINTS` names; an error says which entry is
/// malformed. (`fail::FailScenario::setup` would panic instead.)
pub fn configure_from_env() -> Result<(), String> {
    let Ok(spec) = std::env::var("FAILPOINTS") else { return Ok(()) };
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, actions) = entry
            .split_once('=')
            .ok_or_else(|| format!("FAILPOINTS: '{entry}' is not name=action"))?;
        fail::cfg(name.trim(), actions.trim()).map_err(|e| format!("FAILPOINTS: '{entry}': {e}"))?;
    }
    Ok(())
}

/// The point `weir::sink::write`, passed before a batch goes to the sink
/// operator named `sink` (`Sink: <table>`).
pub(crate) fn sink_write(sink: &str) {
    let table = sink.strip_prefix("Sink: ").unwrap_or(sink);
    let victim = || -> Option<String> {
        fail::fail_point!("weir::sink::write", |victim| victim);
        None
    };
    if victim().as_deref() == Some(table) {
        panic!("failpoint weir::sink::write: a panic injected into the sink of table '{table}'");
    }
}

/// The point `weir::sink::error`, passed before a batch goes to the sink
/// operator named `sink`: an injected connector error for that table.
pub(crate) fn sink_error(sink: &str) -> crate::error::Result<()> {
    let table = sink.strip_prefix("Sink: ").unwrap_or(sink);
    let victim = || -> Option<String> {
        fail::fail_point!("weir::sink::error", |victim| victim);
        None
    };
    match victim().as_deref() == Some(table) {
        true => Err(crate::error::EngineError::Connector(format!(
            "failpoint weir::sink::error: an error injected into the sink of table '{table}'"
        ))),
        false => Ok(()),
    }
}

/// The point `weir::sink::barrier`, passed when checkpoint `id`'s barrier
/// reaches the sink operator named `sink`.
pub(crate) fn sink_barrier(sink: &str, id: u64) -> crate::error::Result<()> {
    let table = sink.strip_prefix("Sink: ").unwrap_or(sink);
    let victim = || -> Option<String> {
        fail::fail_point!("weir::sink::barrier", |victim| victim);
        None
    };
    let victim = victim();
    if victim.as_deref().and_then(|v| v.strip_prefix("panic:")) == Some(table) {
        panic!("failpoint weir::sink::barrier: a panic injected into the sink of table '{table}' at a checkpoint");
    }
    match victim.as_deref() == Some(table) {
        true => Err(crate::error::EngineError::Connector(format!(
            "failpoint weir::sink::barrier: an error injected into the sink of table '{table}' at checkpoint {id}"
        ))),
        false => Ok(()),
    }
}
