//! Flink's partition commit options: when a partition is complete
//! (`'sink.partition-commit.trigger'` and `.delay`, the partition's time
//! from `'partition.time-extractor.timestamp-pattern'`), and what committing
//! it does (`'sink.partition-commit.policy.kind'`: Weir writes Flink's
//! success file; a metastore is Hive's and custom policies are Java
//! classes, so both are refused).

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use weir_engine::duration::parse_duration;
use weir_engine::message::EventTime;

use crate::error::ConnectorError;
use crate::options::Options;

/// The options this module reads (accepted on any filesystem table; as in
/// Flink they do nothing on an unpartitioned one).
pub(crate) const COMMIT_OPTIONS: &[&str] = &[
    TRIGGER,
    DELAY,
    POLICY_KIND,
    POLICY_CLASS,
    SUCCESS_FILE_NAME,
    WATERMARK_TIME_ZONE,
    EXTRACTOR_KIND,
    EXTRACTOR_CLASS,
    EXTRACTOR_PATTERN,
    EXTRACTOR_FORMATTER,
];

const TRIGGER: &str = "sink.partition-commit.trigger";
const DELAY: &str = "sink.partition-commit.delay";
const POLICY_KIND: &str = "sink.partition-commit.policy.kind";
const POLICY_CLASS: &str = "sink.partition-commit.policy.class";
const SUCCESS_FILE_NAME: &str = "sink.partition-commit.success-file.name";
const WATERMARK_TIME_ZONE: &str = "sink.partition-commit.watermark-time-zone";
const EXTRACTOR_KIND: &str = "partition.time-extractor.kind";
const EXTRACTOR_CLASS: &str = "partition.time-extractor.class";
const EXTRACTOR_PATTERN: &str = "partition.time-extractor.timestamp-pattern";
const EXTRACTOR_FORMATTER: &str = "partition.time-extractor.timestamp-formatter";

/// Flink's default success file name.
const DEFAULT_SUCCESS_FILE: &str = "_SUCCESS";

/// When a partition is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// `process-time` (Flink's default): once the machine's time passes
    /// the time the committer first saw the partition plus the delay (a
    /// delay of 0: at the first checkpoint that commits its files).
    ProcessTime,
    /// `partition-time`: once the watermark passes the time extracted from
    /// the partition's values plus the delay.
    PartitionTime,
}

/// How a partitioned table's partitions are committed: present when
/// `'sink.partition-commit.policy.kind'` is set (as in Flink, without a
/// policy there is nothing to commit).
#[derive(Debug)]
pub(crate) struct CommitPolicy {
    pub(crate) trigger: Trigger,
    /// `'sink.partition-commit.delay'`, in milliseconds.
    pub(crate) delay_ms: i64,
    /// `'sink.partition-commit.success-file.name'`: the empty file written
    /// into a committed partition's directory.
    pub(crate) success_file: String,
    /// `'partition.time-extractor.timestamp-pattern'`: `$key`s replaced by
    /// the partition's values; without it, the first value.
    pattern: Option<String>,
    /// `'sink.partition-commit.watermark-time-zone'`: the zone a
    /// partition's time is in, to compare it with the watermark.
    zone: Zone,
}

/// A watermark time zone.
#[derive(Debug, Clone, Copy)]
enum Zone {
    /// `UTC` (Flink's default): a TIMESTAMP rowtime's watermark.
    Utc,
    Named(Tz),
}

impl CommitPolicy {
    /// Reads and checks the commit options; `None` without a policy.
    pub(crate) fn from_options(options: &Options) -> Result<Option<Self>, ConnectorError> {
        let unsupported = |what: &str| ConnectorError::Unsupported {
            connector: options.connector().to_string(),
            what: what.into(),
        };
        let trigger = match options.get(TRIGGER) {
            None | Some("process-time") => Trigger::ProcessTime,
            Some("partition-time") => Trigger::PartitionTime,
            Some(other) => {
                return Err(ConnectorError::invalid(
                    TRIGGER,
                    other,
                    "expected 'process-time' or 'partition-time'",
                ));
            }
        };
        let delay = options.parse(DELAY, parse_duration)?.unwrap_or_default();
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        if options.get(POLICY_CLASS).is_some() {
            return Err(unsupported(&format!(
                "'{POLICY_CLASS}': a custom commit policy is a Java class, which Weir cannot load"
            )));
        }
        match options.get(EXTRACTOR_KIND) {
            None | Some("default") => {}
            Some("custom") => {
                return Err(unsupported(&format!(
                    "'{EXTRACTOR_KIND}' = 'custom': a custom time extractor is a Java class, which Weir cannot load"
                )));
            }
            Some(other) => return Err(ConnectorError::invalid(EXTRACTOR_KIND, other, "expected 'default'")),
        }
        if options.get(EXTRACTOR_CLASS).is_some() {
            return Err(unsupported(&format!(
                "'{EXTRACTOR_CLASS}': a custom time extractor is a Java class, which Weir cannot load"
            )));
        }
        if options.get(EXTRACTOR_FORMATTER).is_some() {
            return Err(unsupported(&format!(
                "'{EXTRACTOR_FORMATTER}' is not supported yet: the partition time must read as 'yyyy-MM-dd[ HH:mm:ss[.S…]]' \
                 (write '{EXTRACTOR_PATTERN}' to build it from the partition values)"
            )));
        }
        let success_file = match options.get(SUCCESS_FILE_NAME) {
            None => DEFAULT_SUCCESS_FILE.to_string(),
            Some(name) if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) => {
                return Err(ConnectorError::invalid(SUCCESS_FILE_NAME, name, "expected a file name"));
            }
            Some(name) => name.to_string(),
        };
        let zone = match options.get(WATERMARK_TIME_ZONE) {
            None => Zone::Utc,
            Some(z) => parse_zone(z).ok_or_else(|| {
                ConnectorError::invalid(
                    WATERMARK_TIME_ZONE,
                    z,
                    "expected a zone such as 'UTC', 'Asia/Shanghai' or 'GMT-08:00'",
                )
            })?,
        };
        let pattern = options.get(EXTRACTOR_PATTERN).map(str::to_string);
        let Some(kinds) = options.get(POLICY_KIND) else {
            return Ok(None);
        };
        let mut success = false;
        for kind in kinds.split(',').map(str::trim) {
            match kind {
                "success-file" => success = true,
                "metastore" => {
                    return Err(unsupported(
                        "the 'metastore' partition commit policy: only Hive tables have a metastore (Flink refuses it for filesystem tables too)",
                    ));
                }
                "custom" => {
                    return Err(unsupported(&format!(
                        "the 'custom' partition commit policy ('{POLICY_CLASS}' is a Java class)"
                    )));
                }
                _ => return Err(ConnectorError::invalid(POLICY_KIND, kinds, "expected 'success-file'")),
            }
        }
        if !success {
            return Err(ConnectorError::invalid(POLICY_KIND, kinds, "expected 'success-file'"));
        }
        Ok(Some(Self {
            trigger,
            delay_ms,
            success_file,
            pattern,
            zone,
        }))
    }

    /// The time of a partition (epoch milliseconds of the watermark's
    /// zone), as Flink's default extractor finds it: the pattern with each
    /// `$key` replaced by the key's value (keys in `PARTITIONED BY` order),
    /// or the first value without a pattern, read as `yyyy-MM-dd
    /// HH:mm:ss[.S…]` or `yyyy-MM-dd` (midnight).
    pub(crate) fn partition_time(&self, keys: &[&str], values: &[String]) -> Result<EventTime, String> {
        let text = match &self.pattern {
            Some(pattern) => keys
                .iter()
                .zip(values)
                .fold(pattern.clone(), |t, (k, v)| t.replace(&format!("${k}"), v)),
            None => values.first().cloned().unwrap_or_default(),
        };
        let local = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
            .or_else(|_| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map(|d| d.and_time(chrono::NaiveTime::MIN)))
            .map_err(|_| format!("'{text}' is not a time 'yyyy-MM-dd[ HH:mm:ss]'"))?;
        match self.zone {
            Zone::Utc => Ok(local.and_utc().timestamp_millis()),
            Zone::Named(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| format!("'{text}' does not exist in the watermark's time zone")),
        }
    }
}

/// A zone name as Flink's `ZoneId.of` takes it: `UTC`, a region
/// (`Asia/Shanghai`), an offset (`+08:00`) or `GMT`/`UTC` with one.
fn parse_zone(z: &str) -> Option<Zone> {
    if matches!(z, "UTC" | "GMT" | "Z" | "Etc/UTC") {
        return Some(Zone::Utc);
    }
    let offset = z
        .strip_prefix("GMT")
        .or_else(|| z.strip_prefix("UTC"))
        .filter(|o| o.starts_with(['+', '-']));
    Tz::from_str(offset.unwrap_or(z)).ok().map(Zone::Named)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn policy(pairs: &[(&str, &str)]) -> Result<Option<CommitPolicy>, ConnectorError> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CommitPolicy::from_options(&Options::new("filesystem", &map))
    }

    /// Nexmark q10's options.
    #[test]
    fn q10_commits_a_minute_after_the_partition_time() {
        let p = policy(&[
            (TRIGGER, "partition-time"),
            (DELAY, "1 min"),
            (POLICY_KIND, "success-file"),
            (EXTRACTOR_PATTERN, "$dt $hm:00"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(p.trigger, Trigger::PartitionTime);
        assert_eq!(p.delay_ms, 60_000);
        assert_eq!(p.success_file, "_SUCCESS");
        let t = p
            .partition_time(&["dt", "hm"], &["2026-01-01".into(), "10:05".into()])
            .unwrap();
        assert_eq!(t, 1_767_225_600_000 + (10 * 60 + 5) * 60_000);
    }

    #[test]
    fn defaults_first_value_dates_and_zones() {
        assert!(
            policy(&[(TRIGGER, "partition-time")]).unwrap().is_none(),
            "no policy, nothing to commit"
        );
        let p = policy(&[(POLICY_KIND, "success-file")]).unwrap().unwrap();
        assert_eq!(p.trigger, Trigger::ProcessTime);
        assert_eq!(p.delay_ms, 0);
        assert_eq!(p.partition_time(&["dt"], &["2026-01-01".into()]), Ok(1_767_225_600_000));
        assert_eq!(
            p.partition_time(&["dt"], &["2026-01-01 00:00:01.5".into()]),
            Ok(1_767_225_601_500)
        );
        assert!(p.partition_time(&["dt"], &["__DEFAULT_PARTITION__".into()]).is_err());
        let p = policy(&[(POLICY_KIND, "success-file"), (WATERMARK_TIME_ZONE, "Asia/Shanghai")])
            .unwrap()
            .unwrap();
        assert_eq!(
            p.partition_time(&["dt"], &["2026-01-01 08:00:00".into()]),
            Ok(1_767_225_600_000)
        );
        let p = policy(&[(POLICY_KIND, "success-file"), (WATERMARK_TIME_ZONE, "GMT-08:00")])
            .unwrap()
            .unwrap();
        assert_eq!(
            p.partition_time(&["dt"], &["2025-12-31 16:00:00".into()]),
            Ok(1_767_225_600_000)
        );
    }

    #[test]
    fn what_weir_cannot_do_is_refused_by_name() {
        for (pairs, needle) in [
            (vec![(POLICY_KIND, "metastore,success-file")], "metastore"),
            (vec![(POLICY_KIND, "custom"), (POLICY_CLASS, "a.B")], POLICY_CLASS),
            (vec![(POLICY_KIND, "custom")], "custom"),
            (vec![(POLICY_KIND, "succes-file")], "succes-file"),
            (vec![(TRIGGER, "event-time")], "event-time"),
            (vec![(DELAY, "soon")], "soon"),
            (vec![(EXTRACTOR_KIND, "custom")], EXTRACTOR_KIND),
            (vec![(EXTRACTOR_FORMATTER, "yyyyMMdd")], EXTRACTOR_FORMATTER),
            (vec![(SUCCESS_FILE_NAME, "a/b")], "a/b"),
            (vec![(WATERMARK_TIME_ZONE, "Mars/Olympus")], "Mars/Olympus"),
        ] {
            let e = policy(&pairs).unwrap_err().to_string();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }
}
