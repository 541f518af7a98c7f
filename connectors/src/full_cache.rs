//! Flink's FULL lookup cache (`'lookup.cache' = 'FULL'`): a bounded table
//! read whole into memory at the first lookup, each subtask's client
//! indexing it by the join's key columns, and read again on the schedule
//! the `lookup.full-cache.*` options give — the practitioner's "preload the
//! small dimension table and refresh it on a timer". A filesystem table is
//! always looked up so; a `postgres` table when its options ask.
//!
//! The rows are read again on the first lookup after the reload is due
//! (not by a timer of its own), so an idle job reads nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use tokio::sync::Mutex;
use weir_engine::EngineError;
use weir_engine::duration::parse_duration;
use weir_engine::error::Result;
use weir_engine::lookup::{LookupClient, LookupOptions, LookupSource};

use crate::error::ConnectorError;
use crate::options::Options;
use crate::values::positive_integer;

/// The options of the FULL cache, Flink's names.
pub(crate) const OPTIONS: &[&str] = &[
    "lookup.cache",
    "lookup.full-cache.reload-strategy",
    "lookup.full-cache.periodic-reload.interval",
    "lookup.full-cache.periodic-reload.schedule-mode",
    "lookup.full-cache.timed-reload.at-time",
    "lookup.full-cache.timed-reload.interval-in-days",
];

/// Flink's default periodic reload interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60 * 60);

const DAY_SECS: u64 = 86_400;

/// When the rows are read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// `PERIODIC`: this long after the last read.
    Periodic(Duration),
    /// `TIMED`: at this second of the day (UTC, after the offset the option
    /// gave), every so many days.
    Timed { at: u64, every_days: u64 },
}

impl Reload {
    /// The instant the rows read at `read` (wall clock `wall`) are due again.
    fn due(self, read: Instant, wall: SystemTime) -> Instant {
        match self {
            Reload::Periodic(d) => read + d,
            Reload::Timed { at, every_days } => {
                let now = wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let today = now - now % DAY_SECS + at;
                let next = if today > now { today } else { today + DAY_SECS };
                read + Duration::from_secs(next - now + (every_days - 1) * DAY_SECS)
            }
        }
    }
}

impl std::fmt::Display for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reload::Periodic(d) => write!(f, "again every {d:?}"),
            Reload::Timed { at, every_days } => {
                write!(
                    f,
                    "again at {:02}:{:02}:{:02} UTC every {every_days} day(s)",
                    at / 3600,
                    at / 60 % 60,
                    at % 60
                )
            }
        }
    }
}

/// The reload of a table that is always looked up whole (a filesystem
/// table); `interval` is an older option's periodic interval.
pub(crate) fn reload(options: &Options, interval: Option<Duration>) -> Result<Reload, ConnectorError> {
    requested(options, true, interval).map(|r| r.unwrap_or(Reload::Periodic(interval.unwrap_or(DEFAULT_INTERVAL))))
}

/// The reload the table's options ask for, when they ask for the FULL
/// cache (`always`: the connector has no other, and `interval` is an older
/// option's periodic interval).
pub(crate) fn requested(
    options: &Options,
    always: bool,
    interval: Option<Duration>,
) -> Result<Option<Reload>, ConnectorError> {
    match (
        options.get("lookup.cache").map(str::to_ascii_uppercase).as_deref(),
        always,
    ) {
        (Some("FULL"), _) | (None, true) => {}
        (None | Some("NONE"), false) => return Ok(None),
        (Some(other), true) => {
            return Err(ConnectorError::invalid(
                "lookup.cache",
                other,
                format!("a {} table is looked up whole: 'FULL'", options.connector()),
            ));
        }
        (Some("PARTIAL"), false) => {
            return Err(ConnectorError::invalid(
                "lookup.cache",
                "PARTIAL",
                "Weir's partial cache is 'lookup.cache.max-rows' and 'lookup.cache.ttl'; 'FULL' reads the table whole",
            ));
        }
        (Some(other), false) => {
            return Err(ConnectorError::invalid(
                "lookup.cache",
                other,
                "expected 'NONE' or 'FULL'",
            ));
        }
    }
    let strategy = options
        .get("lookup.full-cache.reload-strategy")
        .map(str::to_ascii_uppercase);
    match strategy.as_deref() {
        None | Some("PERIODIC") => {
            if let Some(mode) = options.get("lookup.full-cache.periodic-reload.schedule-mode")
                && !matches!(mode.to_ascii_uppercase().as_str(), "FIXED_DELAY" | "FIXED_RATE")
            {
                return Err(ConnectorError::invalid(
                    "lookup.full-cache.periodic-reload.schedule-mode",
                    mode,
                    "expected 'FIXED_DELAY' or 'FIXED_RATE'",
                ));
            }
            let every = options.parse("lookup.full-cache.periodic-reload.interval", parse_duration)?;
            Ok(Some(Reload::Periodic(every.or(interval).unwrap_or(DEFAULT_INTERVAL))))
        }
        Some("TIMED") => {
            let at = options.required("lookup.full-cache.timed-reload.at-time")?;
            let at = time_of_day(at)
                .map_err(|why| ConnectorError::invalid("lookup.full-cache.timed-reload.at-time", at, why))?;
            let every_days = options
                .parse("lookup.full-cache.timed-reload.interval-in-days", positive_integer)?
                .unwrap_or(1);
            Ok(Some(Reload::Timed { at, every_days }))
        }
        Some(other) => Err(ConnectorError::invalid(
            "lookup.full-cache.reload-strategy",
            other,
            "expected 'PERIODIC' or 'TIMED'",
        )),
    }
}

/// ISO-8601 `HH:mm[:ss][(+|-)HH:mm|Z]` as the UTC second of the day (no
/// offset: UTC).
fn time_of_day(s: &str) -> std::result::Result<u64, String> {
    let err = || "expected an ISO-8601 time such as '10:15' or '10:15+08:00'".to_string();
    let s = s.trim();
    let (time, offset) = match s.find(['+', '-']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s.trim_end_matches('Z'), None),
    };
    let at = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S")
        .or_else(|_| chrono::NaiveTime::parse_from_str(time, "%H:%M"))
        .map_err(|_| err())?;
    let offset = match offset {
        None => 0,
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (h, m) = o[1..].split_once(':').ok_or_else(err)?;
            let (h, m): (i64, i64) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
            sign * (h * 3600 + m * 60)
        }
    };
    use chrono::Timelike;
    Ok((at.num_seconds_from_midnight() as i64 - offset).rem_euclid(DAY_SECS as i64) as u64)
}

/// Reads a table whole.
#[async_trait::async_trait]
pub(crate) trait Loader: Send + Sync + std::fmt::Debug {
    fn describe(&self) -> String;
    fn schema(&self) -> SchemaRef;
    /// Every row, in one batch.
    async fn load(&self) -> Result<RecordBatch>;
}

/// The rows as last read, and until when they are used.
struct Loaded {
    due: Instant,
    rows: RecordBatch,
}

/// A table looked up from memory.
pub(crate) struct FullCache {
    loader: Arc<dyn Loader>,
    reload: Reload,
    options: LookupOptions,
    /// Shared by every subtask's client: one copy of the rows.
    loaded: Arc<Mutex<Option<Arc<Loaded>>>>,
}

impl std::fmt::Debug for FullCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullCache")
            .field("loader", &self.loader)
            .field("reload", &self.reload)
            .finish()
    }
}

/// Lookups a subtask has in flight: each is a hash probe once the rows are
/// in memory.
const MAX_CONCURRENT: usize = 64;

impl FullCache {
    pub(crate) fn new(loader: Arc<dyn Loader>, reload: Reload) -> Self {
        Self {
            loader,
            reload,
            // Answers come from memory: the operator's own cache would only
            // copy them.
            options: LookupOptions {
                max_concurrent: MAX_CONCURRENT,
                ordered: true,
                cache_max_rows: 0,
                cache_ttl: None,
            },
            loaded: Arc::new(Mutex::new(None)),
        }
    }
}

impl LookupSource for FullCache {
    fn describe(&self) -> String {
        format!("{} (read whole, {})", self.loader.describe(), self.reload)
    }

    fn schema(&self) -> SchemaRef {
        self.loader.schema()
    }

    fn options(&self) -> &LookupOptions {
        &self.options
    }

    fn open(&self, keys: &[usize]) -> Result<Arc<dyn LookupClient>> {
        Ok(Arc::new(Client {
            loader: Arc::clone(&self.loader),
            reload: self.reload,
            loaded: Arc::clone(&self.loaded),
            keys: keys.to_vec(),
            index: Mutex::new(None),
        }))
    }
}

/// The rows of each key, by row number in [`Loaded::rows`].
type Index = HashMap<Vec<ScalarValue>, Vec<u32>>;

/// One subtask's lookups.
struct Client {
    loader: Arc<dyn Loader>,
    reload: Reload,
    loaded: Arc<Mutex<Option<Arc<Loaded>>>>,
    keys: Vec<usize>,
    /// The index of the rows read, with when they are due (which tells
    /// reads apart).
    index: Mutex<Option<(Instant, Arc<Index>)>>,
}

impl Client {
    /// The rows, read now if never read or due again.
    async fn rows(&self) -> Result<Arc<Loaded>> {
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = loaded.as_ref().filter(|l| Instant::now() < l.due) {
            return Ok(Arc::clone(l));
        }
        let rows = self.loader.load().await?;
        tracing::debug!(table = %self.loader.describe(), rows = rows.num_rows(), "lookup table read");
        let fresh = Arc::new(Loaded {
            due: self.reload.due(Instant::now(), SystemTime::now()),
            rows,
        });
        *loaded = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// The index of `loaded` by this client's key columns.
    async fn index(&self, loaded: &Loaded) -> Result<Arc<Index>> {
        let mut index = self.index.lock().await;
        if let Some((due, built)) = index.as_ref()
            && *due == loaded.due
        {
            return Ok(Arc::clone(built));
        }
        let built = Arc::new(build_index(&loaded.rows, &self.keys)?);
        *index = Some((loaded.due, Arc::clone(&built)));
        Ok(built)
    }
}

#[async_trait::async_trait]
impl LookupClient for Client {
    async fn lookup(&self, key: Vec<ScalarValue>) -> Result<RecordBatch> {
        let loaded = self.rows().await?;
        // SQL's `=` never matches a NULL key.
        if key.iter().any(ScalarValue::is_null) {
            return Ok(RecordBatch::new_empty(loaded.rows.schema()));
        }
        let index = self.index(&loaded).await?;
        let rows = index.get(&key).map_or(&[][..], Vec::as_slice);
        take_record_batch(&loaded.rows, &UInt32Array::from(rows.to_vec()))
            .map_err(|e| EngineError::Connector(format!("lookup in {}: {e}", self.loader.describe())))
    }
}

/// Row numbers of `rows` by their values in the columns `keys`; rows with a
/// NULL key are left out (they match nothing).
fn build_index(rows: &RecordBatch, keys: &[usize]) -> Result<Index> {
    let mut index = Index::new();
    for row in 0..rows.num_rows() {
        let key = keys
            .iter()
            .map(|&k| ScalarValue::try_from_array(rows.column(k), row))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Connector(format!("indexing a lookup table: {e}")))?;
        if key.iter().any(ScalarValue::is_null) {
            continue;
        }
        let row = u32::try_from(row)
            .map_err(|_| EngineError::Connector(format!("a lookup table of more than {} rows", u32::MAX)))?;
        index.entry(key).or_default().push(row);
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn the_index_finds_every_row_of_a_key_and_no_null_key() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(1)])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap();
        let index = build_index(&rows, &[0]).unwrap();
        assert_eq!(index[&vec![ScalarValue::Int64(Some(1))]], vec![0, 3]);
        assert_eq!(index[&vec![ScalarValue::Int64(Some(2))]], vec![1]);
        assert_eq!(index.len(), 2, "the NULL key is not indexed");
    }

    #[test]
    fn times_of_day_are_utc_seconds_after_their_offset() {
        assert_eq!(time_of_day("10:15"), Ok(10 * 3600 + 15 * 60));
        assert_eq!(time_of_day("10:15:30Z"), Ok(10 * 3600 + 15 * 60 + 30));
        assert_eq!(time_of_day("10:15+08:00"), Ok(2 * 3600 + 15 * 60));
        assert_eq!(time_of_day("01:00+02:00"), Ok(23 * 3600));
        assert!(time_of_day("25:00").is_err());
    }

    #[test]
    fn a_timed_reload_is_due_at_the_next_time_of_day() {
        let read = Instant::now();
        // 2026-01-01 09:00:00 UTC; due at 10:15 the same day, or a day later
        // every two days.
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 9 * 3600);
        let due = Reload::Timed {
            at: 10 * 3600 + 15 * 60,
            every_days: 1,
        }
        .due(read, wall);
        assert_eq!(due - read, Duration::from_secs(75 * 60));
        let due = Reload::Timed {
            at: 8 * 3600,
            every_days: 2,
        }
        .due(read, wall);
        assert_eq!(due - read, Duration::from_secs(23 * 3600 + DAY_SECS));
    }
}
