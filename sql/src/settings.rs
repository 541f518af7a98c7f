//! `SET`/`RESET`: the session's settings, with Flink's keys.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_engine::checkpoint::coordinator::CheckpointMode;
use weir_engine::checkpoint::store::Location;
use weir_engine::duration::parse_duration;

use crate::error::{Result, SqlError};

mod flink_only;
pub mod restart;

/// A setting Weir knows: its key, default and how its value is checked.
struct Known {
    key: &'static str,
    default: &'static str,
    check: fn(&str) -> std::result::Result<(), String>,
}

fn positive_int(v: &str) -> std::result::Result<(), String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=weir_engine::runtime::exchange::KEY_GROUPS).contains(&n) => Ok(()),
        _ => Err(format!("expected an integer from 1 to {}", weir_engine::runtime::exchange::KEY_GROUPS)),
    }
}

fn duration(v: &str) -> std::result::Result<(), String> {
    parse_duration(v).map(|_| ())
}

/// Flink's least checkpoint interval and timeout
/// (`CheckpointCoordinatorConfiguration.MINIMAL_CHECKPOINT_TIME`): a
/// checkpoint writes and syncs every task's state, so more often than this
/// the job would do little but checkpoint, and a shorter timeout would
/// abort every checkpoint. A Flink job's settings are accepted unchanged.
pub const MIN_CHECKPOINT_TIME: Duration = Duration::from_millis(10);

fn checkpoint_interval(v: &str) -> std::result::Result<(), String> {
    match parse_duration(v)? {
        d if d.is_zero() || d >= MIN_CHECKPOINT_TIME => Ok(()),
        _ => Err(format!(
            "expected 0 (checkpointing off) or at least {} ms, Flink's minimum",
            MIN_CHECKPOINT_TIME.as_millis()
        )),
    }
}

fn checkpoint_timeout(v: &str) -> std::result::Result<(), String> {
    match parse_duration(v)? {
        d if d >= MIN_CHECKPOINT_TIME => Ok(()),
        _ => Err(format!("expected at least {} ms, Flink's minimum", MIN_CHECKPOINT_TIME.as_millis())),
    }
}

fn any(_: &str) -> std::result::Result<(), String> {
    Ok(())
}

fn boolean(v: &str) -> std::result::Result<(), String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "false" => Ok(()),
        _ => Err("expected 'true' or 'false'".into()),
    }
}

/// How deep an expression or query may nest: planning recurses over it,
/// and a limit turns a stack overflow (which would end the process) into
/// an error.
fn expression_depth(v: &str) -> std::result::Result<(), String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_EXPRESSION_DEPTH).contains(&n) => Ok(()),
        _ => Err(format!("expected an integer from 1 to {MAX_EXPRESSION_DEPTH}")),
    }
}

/// The deepest `table.planner.max-expression-depth` may allow: what the
/// stacks Weir runs on hold (`crate::depth::THREAD_STACK`).
pub const MAX_EXPRESSION_DEPTH: usize = 5_000;

/// A savepoint's place: a local path or an object store's URL.
fn state_location(v: &str) -> std::result::Result<(), String> {
    match v {
        "" => Ok(()),
        v => Location::parse(v).map(|_| ()),
    }
}

/// Checkpoints on object storage: a URL (empty: sled under `state.dir`).
fn checkpoints_dir(v: &str) -> std::result::Result<(), String> {
    match v {
        "" => Ok(()),
        v => weir_engine::checkpoint::store::location::parse_url(v).map(|_| ()),
    }
}

fn checkpoint_mode(v: &str) -> std::result::Result<(), String> {
    match v {
        "EXACTLY_ONCE" | "AT_LEAST_ONCE" => Ok(()),
        _ => Err("expected EXACTLY_ONCE or AT_LEAST_ONCE".into()),
    }
}

fn runtime_mode(v: &str) -> std::result::Result<(), String> {
    match v.to_ascii_lowercase().as_str() {
        "streaming" => Ok(()),
        _ => Err("Weir runs in streaming mode only ('streaming')".into()),
    }
}

/// Flink's state backends: `hashmap` keeps keyed state in memory;
/// `rocksdb` and `forst`, Flink's disk-backed ones, select Weir's spilling
/// backend (`weir_engine::spill`), so a Flink job's setting runs unchanged.
fn state_backend(v: &str) -> std::result::Result<(), String> {
    match v.to_ascii_lowercase().as_str() {
        "hashmap" | "rocksdb" | "forst" => Ok(()),
        _ => Err("expected 'hashmap' (state in memory) or 'rocksdb' / 'forst' (state spills to local disk \
                  beyond state.memory.budget)"
            .into()),
    }
}

fn memory_size(v: &str) -> std::result::Result<(), String> {
    weir_engine::memory_size::parse_memory_size(v).map(|_| ())
}

fn time_zone(v: &str) -> std::result::Result<(), String> {
    crate::time_zone::LocalZone::parse(v).map(|_| ())
}

const KNOWN: &[Known] = &[
    Known { key: "parallelism.default", default: "1", check: positive_int },
    Known { key: "pipeline.auto-watermark-interval", default: "200 ms", check: duration },
    Known { key: "execution.runtime-mode", default: "streaming", check: runtime_mode },
    Known { key: "execution.checkpointing.interval", default: "10 s", check: checkpoint_interval },
    Known { key: "execution.checkpointing.mode", default: "EXACTLY_ONCE", check: checkpoint_mode },
    Known { key: "execution.checkpointing.timeout", default: "2 min", check: checkpoint_timeout },
    Known { key: "execution.checkpointing.min-pause", default: "0 ms", check: duration },
    Known { key: "execution.savepoint.path", default: "", check: state_location },
    Known { key: "state.checkpoints.dir", default: "", check: checkpoints_dir },
    Known { key: "state.savepoints.dir", default: "", check: state_location },
    Known { key: "execution.savepoint.ignore-unclaimed-state", default: "false", check: boolean },
    Known { key: "execution.state-recovery.allow-fresh-start", default: "false", check: boolean },
    Known { key: "table.planner.max-expression-depth", default: "1000", check: expression_depth },
    Known { key: "state.dir", default: "./weir-state", check: any },
    Known { key: STATE_BACKEND, default: "hashmap", check: state_backend },
    Known { key: STATE_MEMORY_BUDGET, default: "1 gb", check: memory_size },
    Known { key: "table.dml-sync", default: "false", check: boolean },
    Known { key: LOCAL_TIME_ZONE, default: "UTC", check: time_zone },
    Known { key: SOURCE_IDLE_TIMEOUT, default: "0 ms", check: duration },
    Known { key: STATE_TTL, default: "0 ms", check: duration },
    Known { key: TABLE_PARALLELISM, default: "-1", check: table_parallelism },
    // Unset: exponential-delay for a job with checkpoints (Flink 2).
    Known { key: restart::TYPE, default: "", check: restart_type },
    Known { key: restart::FIXED_ATTEMPTS, default: "1", check: restart::check_count },
    Known { key: restart::FIXED_DELAY, default: "1 s", check: duration },
    Known { key: restart::RATE_MAX_FAILURES, default: "1", check: restart::check_count },
    Known { key: restart::RATE_INTERVAL, default: "1 min", check: duration },
    Known { key: restart::RATE_DELAY, default: "1 s", check: duration },
    Known { key: restart::EXP_INITIAL, default: "1 s", check: duration },
    Known { key: restart::EXP_MAX, default: "1 min", check: duration },
    Known { key: restart::EXP_MULTIPLIER, default: "1.5", check: restart::check_multiplier },
    Known { key: restart::EXP_RESET, default: "1 h", check: duration },
    Known { key: restart::EXP_JITTER, default: "0.1", check: restart::check_jitter },
    Known { key: restart::EXP_ATTEMPTS, default: "2147483647", check: restart::check_count },
];

/// `restart-strategy.type`; empty is the default's own value.
fn restart_type(v: &str) -> std::result::Result<(), String> {
    match v.is_empty() {
        true => Ok(()),
        false => restart::check_type(v),
    }
}

/// Flink's idle timeout of every source without its own
/// `'source.idle-timeout'`: `0 ms` is none.
pub const SOURCE_IDLE_TIMEOUT: &str = "table.exec.source.idle-timeout";

/// Flink's state TTL: keyed state of a GROUP BY, a regular join, a Top-N
/// or a deduplication that nothing wrote for this long is dropped (`0 ms`
/// keeps it for good).
pub const STATE_TTL: &str = "table.exec.state.ttl";

/// Flink's choice of state backend (`state_backend`).
pub const STATE_BACKEND: &str = "state.backend.type";

/// How much keyed state a job with the spilling backend holds in memory,
/// over all its operators and subtasks (Weir's own key).
pub const STATE_MEMORY_BUDGET: &str = "state.memory.budget";

/// Flink's parallelism of a query's operators, over
/// `parallelism.default` unless -1.
const TABLE_PARALLELISM: &str = "table.exec.resource.default-parallelism";

fn table_parallelism(v: &str) -> std::result::Result<(), String> {
    match v {
        "-1" => Ok(()),
        _ => positive_int(v).map_err(|e| format!("{e}, or -1 for parallelism.default")),
    }
}

/// Flink's key of the session's time zone.
pub const LOCAL_TIME_ZONE: &str = "table.local-time-zone";

/// The current settings of a session.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    overrides: BTreeMap<String, String>,
}

impl Settings {
    /// Sets `key`, checking both the key and the value. A Flink setting
    /// that changes nothing in Weir is taken, and why it changes nothing
    /// returned.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Option<&'static str>> {
        if let Some(setting) = flink_only::no_effect(key) {
            if !setting.values.is_empty() && !setting.values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                return Err(SqlError::plan(
                    format!(
                        "invalid value '{value}' for '{key}': expected one of {} ({})",
                        setting.values.join(", "),
                        setting.why
                    ),
                    None,
                ));
            }
            self.overrides.insert(key.to_string(), value.to_string());
            return Ok(Some(setting.why));
        }
        let known = find(key)?;
        (known.check)(value)
            .map_err(|why| SqlError::plan(format!("invalid value '{value}' for '{key}': {why}"), None))?;
        self.overrides.insert(key.to_string(), value.to_string());
        Ok(None)
    }

    /// Resets one key (or all) to the default.
    pub fn reset(&mut self, key: Option<&str>) -> Result<()> {
        match key {
            Some(k) => {
                if flink_only::no_effect(k).is_none() {
                    find(k)?;
                }
                self.overrides.remove(k);
            }
            None => self.overrides.clear(),
        }
        Ok(())
    }

    /// Every key with its current value, and the no-effect ones set.
    pub fn all(&self) -> Vec<(String, String)> {
        let set =
            flink_only::NO_EFFECT.iter().filter_map(|s| Some((s.key.to_string(), self.overrides.get(s.key)?.clone())));
        KNOWN.iter().map(|k| (k.key.to_string(), self.get(k.key))).chain(set).collect()
    }

    fn get(&self, key: &str) -> String {
        self.overrides
            .get(key)
            .cloned()
            .unwrap_or_else(|| KNOWN.iter().find(|k| k.key == key).map(|k| k.default.to_string()).unwrap_or_default())
    }

    /// Checkpointing as set: `None` when `execution.checkpointing.interval`
    /// is 0 (off).
    pub fn checkpointing(&self) -> Option<(Duration, Duration, Duration)> {
        let d = |k: &str| parse_duration(&self.get(k)).unwrap_or_default();
        let interval = d("execution.checkpointing.interval");
        (!interval.is_zero())
            .then(|| (interval, d("execution.checkpointing.timeout"), d("execution.checkpointing.min-pause")))
    }

    /// The state budget in bytes when keyed state spills to disk
    /// (`state.backend.type` 'rocksdb' or 'forst'); `None` when it stays
    /// in memory.
    pub fn state_budget(&self) -> Option<u64> {
        match self.get(STATE_BACKEND).to_ascii_lowercase().as_str() {
            "rocksdb" | "forst" => weir_engine::memory_size::parse_memory_size(&self.get(STATE_MEMORY_BUDGET)).ok(),
            _ => None,
        }
    }

    /// `execution.checkpointing.mode`.
    pub fn checkpoint_mode(&self) -> CheckpointMode {
        match self.get("execution.checkpointing.mode").as_str() {
            "AT_LEAST_ONCE" => CheckpointMode::AtLeastOnce,
            _ => CheckpointMode::ExactlyOnce,
        }
    }

    /// `execution.savepoint.path`, when set.
    pub fn savepoint_path(&self) -> Option<std::path::PathBuf> {
        let p = self.get("execution.savepoint.path");
        (!p.is_empty()).then(|| std::path::PathBuf::from(p))
    }

    /// `execution.savepoint.ignore-unclaimed-state`: whether a savepoint's
    /// state that no operator of the restoring query claims is dropped
    /// (rather than the restore refused).
    pub fn ignore_unclaimed_state(&self) -> bool {
        self.get("execution.savepoint.ignore-unclaimed-state").eq_ignore_ascii_case("true")
    }

    /// `state.checkpoints.dir`: where durable jobs checkpoint, when on
    /// object storage (`None`: sled under `state.dir`).
    pub fn checkpoints_dir(&self) -> Option<Location> {
        Location::parse(&self.get("state.checkpoints.dir")).ok().filter(Location::is_url)
    }

    /// `state.savepoints.dir`: where `STOP JOB … WITH SAVEPOINT` writes,
    /// when set.
    pub fn savepoints_dir(&self) -> Option<Location> {
        let v = self.get("state.savepoints.dir");
        (!v.is_empty()).then(|| Location::parse(&v).ok()).flatten()
    }

    /// `execution.state-recovery.allow-fresh-start`: whether a job whose
    /// state is lost or unreadable, while its sinks hold output it
    /// committed, may start again from nothing.
    pub fn allow_fresh_start(&self) -> bool {
        self.get("execution.state-recovery.allow-fresh-start").eq_ignore_ascii_case("true")
    }

    /// `restart-strategy.*`: what a durable job does when a task fails.
    pub fn restart_strategy(&self) -> weir_engine::runtime::restart::RestartStrategy {
        restart::strategy(|k| self.get(k))
    }

    /// `table.planner.max-expression-depth`.
    pub fn max_expression_depth(&self) -> usize {
        self.get("table.planner.max-expression-depth").parse().unwrap_or(crate::depth::DEFAULT_EXPRESSION_DEPTH)
    }

    /// `table.local-time-zone`: where instants become wall-clock times.
    pub fn local_zone(&self) -> crate::time_zone::LocalZone {
        crate::time_zone::LocalZone::parse(&self.get(LOCAL_TIME_ZONE)).unwrap_or_default()
    }

    /// `state.dir`.
    pub fn state_dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(self.get("state.dir"))
    }

    /// `table.exec.resource.default-parallelism`, or else
    /// `parallelism.default`.
    pub fn parallelism(&self) -> usize {
        match self.get(TABLE_PARALLELISM).parse::<usize>() {
            Ok(n) => n,
            Err(_) => self.get("parallelism.default").parse().unwrap_or(1),
        }
    }

    /// `table.exec.source.idle-timeout`, when set (not 0).
    pub fn source_idle_timeout(&self) -> Option<Duration> {
        parse_duration(&self.get(SOURCE_IDLE_TIMEOUT)).ok().filter(|d| !d.is_zero())
    }

    /// `table.exec.state.ttl`, when set (not 0).
    pub fn state_ttl(&self) -> Option<Duration> {
        parse_duration(&self.get(STATE_TTL)).ok().filter(|d| !d.is_zero())
    }

    /// `table.dml-sync`: whether `INSERT INTO` waits for its job to end
    /// (Flink's option; useful in scripts that read what a job wrote).
    pub fn dml_sync(&self) -> bool {
        self.get("table.dml-sync").eq_ignore_ascii_case("true")
    }

    /// `pipeline.auto-watermark-interval`.
    pub fn watermark_interval(&self) -> Duration {
        parse_duration(&self.get("pipeline.auto-watermark-interval")).unwrap_or(Duration::from_millis(200))
    }
}

fn find(key: &str) -> Result<&'static Known> {
    if let Some(why) = flink_only::not_yet(key) {
        return Err(SqlError::plan(format!("setting '{key}' is not supported: {why}"), None));
    }
    KNOWN.iter().find(|k| k.key == key).ok_or_else(|| {
        let keys: Vec<&str> = KNOWN.iter().map(|k| k.key).collect();
        SqlError::plan(format!("unknown setting '{key}' (known: {})", keys.join(", ")), None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checks_keys_and_values() {
        let mut s = Settings::default();
        assert_eq!(s.parallelism(), 1);
        s.set("parallelism.default", "4").unwrap();
        assert_eq!(s.parallelism(), 4);
        assert!(s.set("parallelism.default", "0").is_err());
        assert!(s.set("parallelism.default", "many").is_err());
        let e = s.set("parallelism.defualt", "2").unwrap_err().to_string();
        assert!(e.contains("unknown setting 'parallelism.defualt'"), "{e}");
        s.set("pipeline.auto-watermark-interval", "50 ms").unwrap();
        assert_eq!(s.watermark_interval(), Duration::from_millis(50));
        s.reset(None).unwrap();
        assert_eq!(s.parallelism(), 1);
    }

    #[test]
    fn flinks_state_backends_choose_memory_or_spilling() {
        let mut s = Settings::default();
        assert_eq!(s.state_budget(), None, "hashmap (memory) by default");
        s.set("state.memory.budget", "64 kb").unwrap();
        assert_eq!(s.state_budget(), None, "a budget alone does not spill");
        for backend in ["rocksdb", "ForSt"] {
            s.set("state.backend.type", backend).unwrap();
            assert_eq!(s.state_budget(), Some(64 << 10));
        }
        s.reset(Some("state.memory.budget")).unwrap();
        assert_eq!(s.state_budget(), Some(1 << 30), "1 gb by default");
        s.set("state.backend.type", "HashMap").unwrap();
        assert_eq!(s.state_budget(), None);
        let e = s.set("state.backend.type", "redis").unwrap_err().to_string();
        assert!(e.contains("expected 'hashmap' (state in memory) or 'rocksdb' / 'forst'"), "{e}");
        let e = s.set("state.memory.budget", "lots").unwrap_err().to_string();
        assert!(e.contains("invalid value 'lots' for 'state.memory.budget': expected a size like '128MB'"), "{e}");
    }

    #[test]
    fn flinks_settings_without_effect_are_taken_and_say_why() {
        let mut s = Settings::default();
        let why = s.set("table.exec.mini-batch.enabled", "true").unwrap();
        assert!(why.is_some_and(|w| w.contains("whole batches")), "{why:?}");
        assert!(s.all().contains(&("table.exec.mini-batch.enabled".into(), "true".into())));
        let e = s.set("sql-client.execution.result-mode", "pretty").unwrap_err().to_string();
        assert!(e.contains("expected one of table, changelog, tableau"), "{e}");
        assert!(s.set("sql-client.execution.result-mode", "TABLEAU").unwrap().is_some());
        for key in ["state.backend.incremental", "execution.checkpointing.incremental"] {
            assert!(s.set(key, "false").unwrap().is_some_and(|w| w.contains("always incremental")));
            assert!(s.set(key, "sometimes").is_err());
        }
        let e = s.set("table.exec.emit.early-fire.enabled", "true").unwrap_err().to_string();
        assert!(
            e.contains("setting 'table.exec.emit.early-fire.enabled' is not supported: a window emits once"),
            "{e}"
        );
        assert_eq!(s.state_ttl(), None);
        s.set("table.exec.state.ttl", "1 h").unwrap();
        assert_eq!(s.state_ttl(), Some(Duration::from_secs(3600)));
        assert!(s.set("table.exec.state.ttl", "soon").is_err());
        s.reset(Some("table.exec.mini-batch.enabled")).unwrap();
        assert!(!s.all().iter().any(|(k, _)| k == "table.exec.mini-batch.enabled"));
    }

    #[test]
    fn table_parallelism_and_idle_timeout_are_flinks() {
        let mut s = Settings::default();
        s.set("parallelism.default", "2").unwrap();
        s.set("table.exec.resource.default-parallelism", "3").unwrap();
        assert_eq!(s.parallelism(), 3);
        s.set("table.exec.resource.default-parallelism", "-1").unwrap();
        assert_eq!(s.parallelism(), 2);
        assert!(s.set("table.exec.resource.default-parallelism", "0").is_err());
        assert_eq!(s.source_idle_timeout(), None);
        s.set("table.exec.source.idle-timeout", "5 s").unwrap();
        assert_eq!(s.source_idle_timeout(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn checkpoint_times_have_flinks_minimum_and_durations_do_not_overflow() {
        let mut s = Settings::default();
        for (key, value) in [
            ("execution.checkpointing.interval", "9 ms"),
            ("execution.checkpointing.interval", "1 ns"),
            ("execution.checkpointing.timeout", "0"),
        ] {
            let e = s.set(key, value).unwrap_err().to_string();
            assert!(e.contains("at least 10 ms"), "{e}");
        }
        s.set("execution.checkpointing.interval", "0").unwrap();
        assert_eq!(s.checkpointing(), None);
        s.set("execution.checkpointing.interval", "10 ms").unwrap();
        assert_eq!(s.checkpointing().map(|c| c.0), Some(MIN_CHECKPOINT_TIME));
        let e = s.set("execution.checkpointing.interval", "999999999999 d").unwrap_err().to_string();
        assert!(e.contains("too long"), "{e}");
        assert_eq!(s.checkpointing().map(|c| c.0), Some(MIN_CHECKPOINT_TIME));
    }
}
