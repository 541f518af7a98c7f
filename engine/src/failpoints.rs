//! Fault injection for tests of isolation: with `FAILPOINTS` set in the
//! environment (the `fail` crate's syntax, `name=action;…`), a named point
//! in the engine misbehaves on purpose. Points are inert otherwise; each
//! costs a lookup in an empty registry.
//!
//! - `weir::sink::write=return(t)`: writing a batch to table `t` panics, so
//!   that tests can check that a panic in one job stops that job alone.
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
