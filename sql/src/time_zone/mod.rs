//! The session's time zone, `table.local-time-zone`, and what Flink does
//! with it.
//!
//! Flink's `TIMESTAMP_LTZ` is an instant: Weir stores it as milliseconds
//! since the epoch, typed `Timestamp(ms, "UTC")` whatever the session's
//! zone, so a table's schema and a job's state do not change with a `SET`.
//! The zone applies where Flink applies it: when an instant becomes a
//! wall-clock time (a cast to `TIMESTAMP`, `DATE` or `STRING`, a field
//! such as `HOUR`, `DATE_FORMAT`, a result shown to the user), when a
//! wall-clock time becomes an instant (a cast to `TIMESTAMP_LTZ`), in
//! `LOCALTIMESTAMP` and `CURRENT_DATE`, and in windows over a
//! `TIMESTAMP_LTZ` rowtime, which align to the zone's days.

pub mod convert;
pub mod display;
pub mod rewrite;

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// The label of every `TIMESTAMP_LTZ` value's type: instants are UTC.
pub const LTZ_LABEL: &str = "UTC";

/// Flink's `TIMESTAMP_LTZ(3)`.
pub fn ltz_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from(LTZ_LABEL)))
}

/// Is `dt` an instant (`TIMESTAMP_LTZ`) rather than a wall-clock time?
pub fn is_ltz(dt: &DataType) -> bool {
    matches!(dt, DataType::Timestamp(_, Some(_)))
}

/// Registers the functions that read the zone: the conversions the
/// planner inserts, the wall clock, `FROM_UNIXTIME` and `UNIX_TIMESTAMP`. Registering again (after a `SET`)
/// replaces them; jobs already planned keep the zone they were planned in.
pub fn register(ctx: &SessionContext, zone: &LocalZone) {
    for f in convert::functions(zone)
        .into_iter()
        .chain(crate::functions::wall_clock::functions(zone))
    {
        ctx.register_udf(f);
    }
    ctx.register_udf(ScalarUDF::from(crate::functions::date_format::FromUnixtime::new(zone)));
    ctx.register_udf(ScalarUDF::from(crate::functions::unix_timestamp::UnixTimestamp::new(
        zone,
    )));
}

/// A session's time zone: an IANA name (`Asia/Shanghai`) or a fixed
/// offset (`GMT+08:00`, `+08:00`), as Flink's `table.local-time-zone`.
#[derive(Debug, Clone)]
pub struct LocalZone {
    name: String,
    tz: Tz,
    /// The zone's offset when it has only one (no daylight saving time
    /// in the years data comes from), for the fast path and windows.
    fixed: Option<i64>,
}

impl PartialEq for LocalZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for LocalZone {}

impl std::hash::Hash for LocalZone {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl Default for LocalZone {
    fn default() -> Self {
        Self::parse("UTC").unwrap_or_else(|_| unreachable!("UTC is a time zone"))
    }
}

impl LocalZone {
    /// Reads a zone as Flink's `ZoneId.of` does for the forms Flink
    /// documents: a full name, `UTC`/`Z`, or an offset after `GMT`, `UTC`
    /// or `UT` (`GMT+8`, `UTC-05:30`). `default` is UTC, Weir's servers'
    /// zone. Abbreviations such as `PST` are refused, as in Flink.
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        let expected = || {
            format!(
                "unknown time zone '{value}': expected a full name such as 'Asia/Shanghai' or 'UTC', or an offset such as 'GMT+08:00'"
            )
        };
        let tz = if v.eq_ignore_ascii_case("default") || v == "Z" || v == "UTC" || v == "GMT" || v == "UT" {
            Tz::from_str("+00:00").map_err(|_| expected())?
        } else if let Some(offset) = offset_after_prefix(v) {
            Tz::from_str(&offset).map_err(|_| expected())?
        } else if v.contains('/') {
            Tz::from_str(v).map_err(|_| expected())?
        } else {
            return Err(expected());
        };
        let fixed = fixed_offset(&tz);
        Ok(Self {
            name: v.to_string(),
            tz,
            fixed,
        })
    }

    /// Reads a zone as Java's `TimeZone.getTimeZone` does, for functions
    /// that take a zone as an argument (`CONVERT_TZ`): what [`Self::parse`]
    /// reads, any tz database name (`EST`, `Japan`), and Java's three-letter
    /// IDs (`PST` is Los Angeles), which Flink's session zone refuses but its
    /// functions take. Java reads an unknown ID as GMT; Weir refuses it.
    pub fn java_id(value: &str) -> Result<Self, String> {
        if let Ok(zone) = Self::parse(value) {
            return Ok(zone);
        }
        let v = value.trim();
        let name = JAVA_SHORT_IDS
            .iter()
            .find(|(id, _)| *id == v)
            .map_or(v, |(_, name)| *name);
        let tz = Tz::from_str(name).map_err(|_| {
            format!(
                "unknown time zone '{value}': expected a full name such as 'America/Los_Angeles', an abbreviation such as 'PST', or an offset such as 'GMT-08:00'"
            )
        })?;
        Ok(Self {
            name: v.to_string(),
            fixed: fixed_offset(&tz),
            tz,
        })
    }

    /// The zone as the user wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone's only offset in milliseconds, if it has one.
    pub fn fixed_offset_ms(&self) -> Option<i64> {
        self.fixed
    }

    /// The wall-clock time (milliseconds since the local epoch) of the
    /// instant `utc_ms`.
    #[inline]
    pub fn to_local(&self, utc_ms: i64) -> i64 {
        match self.fixed {
            Some(offset) => utc_ms.saturating_add(offset),
            None => match DateTime::from_timestamp_millis(utc_ms) {
                Some(t) => {
                    utc_ms + i64::from(self.tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()) * 1000
                }
                None => utc_ms,
            },
        }
    }

    /// The instant of the wall-clock time `local_ms`. A time the clocks
    /// skipped (spring forward) is read with the offset before the jump,
    /// one repeated (fall back) as its first occurrence, as Java's
    /// `ZonedDateTime.of` does.
    #[inline]
    pub fn to_utc(&self, local_ms: i64) -> i64 {
        if let Some(offset) = self.fixed {
            return local_ms.saturating_sub(offset);
        }
        let Some(local) = DateTime::from_timestamp_millis(local_ms).map(|t| t.naive_utc()) else {
            return local_ms;
        };
        let offset_ms = |n: &NaiveDateTime| match self.tz.offset_from_local_datetime(n) {
            LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => Some(i64::from(o.fix().local_minus_utc()) * 1000),
            LocalResult::None => None,
        };
        match offset_ms(&local) {
            Some(o) => local_ms - o,
            // In a gap: the offset in force an hour before.
            None => {
                let before = local - chrono::Duration::hours(1);
                local_ms - offset_ms(&before).unwrap_or(0)
            }
        }
    }
}

/// Java's three-letter zone IDs (`java.time.ZoneId.SHORT_IDS`, which
/// `java.util.TimeZone` also reads) that are not tz database names.
const JAVA_SHORT_IDS: [(&str, &str); 25] = [
    ("ACT", "Australia/Darwin"),
    ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"),
    ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"),
    ("BET", "America/Sao_Paulo"),
    ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"),
    ("CNT", "America/St_Johns"),
    ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"),
    ("EAT", "Africa/Addis_Ababa"),
    ("ECT", "Europe/Paris"),
    ("IET", "America/Indiana/Indianapolis"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"),
    ("NET", "Asia/Yerevan"),
    ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"),
    ("PNT", "America/Phoenix"),
    ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"),
    ("SST", "Pacific/Guadalcanal"),
    ("VST", "Asia/Ho_Chi_Minh"),
];

/// `+08:00` out of `GMT+8`, `UTC+08:00`, `UT-0530` or `+08:00`.
fn offset_after_prefix(v: &str) -> Option<String> {
    let rest = ["GMT", "UTC", "UT", ""].iter().find_map(|p| {
        let r = v.strip_prefix(p)?;
        r.starts_with(['+', '-']).then_some(r)
    })?;
    let (sign, digits) = rest.split_at(1);
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() <= 2 => (digits, "0"),
        None if digits.len() == 4 => digits.split_at(2),
        None => return None,
    };
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 18 && m < 60 && !h.to_string().is_empty()).then(|| format!("{sign}{h:02}:{m:02}"))
}

/// The zone's offset if it is the same in January and July of every year
/// from 2000 to 2040 (the years streams' data comes from).
fn fixed_offset(tz: &Tz) -> Option<i64> {
    let offset_at = |year: i32, month: u32| {
        let t = chrono::NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(12, 0, 0)?;
        Some(i64::from(tz.offset_from_utc_datetime(&t).fix().local_minus_utc()) * 1000)
    };
    let first = offset_at(2000, 1)?;
    (2000..=2040)
        .flat_map(|y| [(y, 1), (y, 7)])
        .all(|(y, m)| offset_at(y, m) == Some(first))
        .then_some(first)
}

#[cfg(test)]
mod zone_tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn flink_zone_forms_are_read() {
        for (name, offset) in [
            ("UTC", Some(0)),
            ("default", Some(0)),
            ("Asia/Shanghai", Some(8 * HOUR)),
            ("GMT+08:00", Some(8 * HOUR)),
            ("GMT-8", Some(-8 * HOUR)),
            ("UTC+05:30", Some(5 * HOUR + HOUR / 2)),
            ("+09:00", Some(9 * HOUR)),
            ("America/Los_Angeles", None),
        ] {
            let z = LocalZone::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(z.fixed_offset_ms(), offset, "{name}");
        }
        for bad in ["PST", "Mars/Olympus", "GMT+25:00", ""] {
            assert!(LocalZone::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    /// Java's `ZonedDateTime` gives these for Los Angeles around the 2024
    /// switches (10 March 02:00 skipped, 3 November 01:00 repeated).
    #[test]
    fn daylight_saving_follows_java() {
        let la = LocalZone::parse("America/Los_Angeles").unwrap();
        let ms = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp_millis()
        };
        // Winter: UTC-8; summer: UTC-7.
        assert_eq!(la.to_local(ms("2024-01-15 12:00:00")), ms("2024-01-15 04:00:00"));
        assert_eq!(la.to_local(ms("2024-07-15 12:00:00")), ms("2024-07-15 05:00:00"));
        assert_eq!(la.to_utc(ms("2024-07-15 05:00:00")), ms("2024-07-15 12:00:00"));
        // 02:30 on 10 March does not exist: read with the offset before (-8).
        assert_eq!(la.to_utc(ms("2024-03-10 02:30:00")), ms("2024-03-10 10:30:00"));
        // 01:30 on 3 November happens twice: the first (-7).
        assert_eq!(la.to_utc(ms("2024-11-03 01:30:00")), ms("2024-11-03 08:30:00"));
        let sh = LocalZone::parse("Asia/Shanghai").unwrap();
        assert_eq!(sh.to_local(0), 8 * HOUR);
        assert_eq!(sh.to_utc(8 * HOUR), 0);
    }
}

#[cfg(test)]
mod tests;
