//! The nexmark connector's options: which of Nexmark's tables a Weir table
//! is, the event rate and count, the first event's time and the seed —
//! under Weir's names or Flink nexmark's (`first-event.rate`, `events.num`,
//! `rate.limited`, …), so that Flink nexmark's `ddl_gen.sql` runs as written.

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMillisecondType};

use super::events::EventColumn;
use crate::error::ConnectorError;
use crate::options::Options;
use crate::types::sql_name;
use crate::values;

/// Every key the connector reads.
pub(crate) const KEYS: &[&str] = &[
    TABLE_KEY,
    "events-per-second",
    "number-of-events",
    "first-event-time",
    "rate-limited",
    "seed",
    "person.proportion",
    "auction.proportion",
    "bid.proportion",
    "first-event.rate",
    "next-event.rate",
    "events.num",
    "rate.limited",
    "rate.shape",
    "rate.period",
    "person.avg-size",
    "auction.avg-size",
    "bid.avg-size",
    "bid.hot-ratio.auctions",
    "bid.hot-ratio.bidders",
    "auction.hot-ratio.sellers",
    "keep-alive",
];

/// Which table: without it, Flink nexmark's one table of every event
/// (`event_type` and `person`, `auction`, `bid` ROWs, `events.rs`); with
/// it, one of the three views over it (`'person'`, `'auction'`, `'bid'`)
/// as a table of its own, generated from the same event sequence so that
/// ids agree across the three.
const TABLE_KEY: &str = "nexmark.table";

/// Flink nexmark's options Weir reads only at their defaults (it makes
/// Flink's default event sizes and hot ratios), with those defaults.
const FIXED_AT_DEFAULT: &[(&str, u64)] = &[
    ("person.avg-size", 200),
    ("auction.avg-size", 500),
    ("bid.avg-size", 100),
    ("bid.hot-ratio.auctions", 2),
    ("bid.hot-ratio.bidders", 4),
    ("auction.hot-ratio.sellers", 4),
];

/// Flink nexmark's default `firstEventRate`.
const DEFAULT_EVENTS_PER_SECOND: u64 = 10_000;

/// `'first-event-time'` in epoch milliseconds: Flink's TIMESTAMP(3), from
/// 0000-01-01 to 9999-12-31, so that event times stay far from the ends of
/// the 64-bit range their arithmetic works in.
const FIRST_EVENT_TIMES: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

/// Flink nexmark's default proportions of people, auctions and bids.
const DEFAULT_PROPORTIONS: (u64, u64, u64) = (1, 3, 46);

/// One of Flink nexmark's views `person`, `auction`, `bid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Person,
    Auction,
    Bid,
}

impl Kind {
    /// The view's columns as Flink's `ddl.sql` declares them (the bid's
    /// `channel` and `url` as in its newer versions).
    pub(crate) fn columns(self) -> &'static [(&'static str, Type)] {
        use Type::{Int, Text, Time};
        match self {
            Kind::Person => &[
                ("id", Int),
                ("name", Text),
                ("emailAddress", Text),
                ("creditCard", Text),
                ("city", Text),
                ("state", Text),
                ("dateTime", Time),
                ("extra", Text),
            ],
            Kind::Auction => &[
                ("id", Int),
                ("itemName", Text),
                ("description", Text),
                ("initialBid", Int),
                ("reserve", Int),
                ("dateTime", Time),
                ("expires", Time),
                ("seller", Int),
                ("category", Int),
                ("extra", Text),
            ],
            Kind::Bid => &[
                ("auction", Int),
                ("bidder", Int),
                ("price", Int),
                ("channel", Text),
                ("url", Text),
                ("dateTime", Time),
                ("extra", Text),
            ],
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Auction => "auction",
            Kind::Bid => "bid",
        }
    }
}

/// The SQL type of a Nexmark column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Int,
    Text,
    Time,
}

impl Type {
    fn accepts(self, dt: &DataType) -> bool {
        match self {
            Type::Int => dt == &DataType::Int64,
            Type::Text => dt == &DataType::Utf8,
            Type::Time => dt == &DataType::Timestamp(TimeUnit::Millisecond, None),
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Type::Int => "BIGINT",
            Type::Text => "VARCHAR",
            Type::Time => "TIMESTAMP(3)",
        }
    }
}

/// Which rows a table has and how its columns are laid out.
#[derive(Debug, Clone)]
pub(crate) enum Table {
    /// One kind's rows. Per column of the table, its index in
    /// [`Kind::columns`]: a table may declare any of them, in any order.
    Kind { kind: Kind, columns: Vec<usize> },
    /// Every event, as Flink nexmark's one table.
    Events(Vec<EventColumn>),
}

/// Everything that decides the event sequence and its pace.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) table: Table,
    /// Events (of all three kinds) per second, over all subtasks: both the
    /// spacing of event times and, when rate limited, the pace.
    pub(crate) events_per_second: u64,
    /// Events of all three kinds; `None` when unbounded.
    pub(crate) number_of_events: Option<u64>,
    /// Event time of event 0, in epoch milliseconds.
    pub(crate) first_event_time: i64,
    /// Whether events are released when due rather than as fast as they
    /// can be made (Flink nexmark's `isRateLimited`).
    pub(crate) rate_limited: bool,
    pub(crate) seed: u64,
    pub(crate) proportions: Proportions,
    /// The events table made for a query that keeps one kind's events
    /// only (Flink nexmark's `bid` view filters `event_type = 2`): the
    /// others are skipped where they would be made, not made and dropped.
    pub(crate) only: Option<Kind>,
    /// Positions of the bid table's declared text columns the job does not
    /// read: left null rather than made (`SourceConnector::only_columns`).
    pub(crate) unread: Vec<usize>,
}

/// Flink nexmark's person, auction and bid proportions: in every run of
/// `total` event ids, the first `person` are people, the next `auction`
/// auctions, the rest bids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proportions {
    pub(crate) person: u64,
    pub(crate) auction: u64,
    pub(crate) total: u64,
}

impl Proportions {
    /// The kind of the event at `offset` (its id modulo `total`).
    #[inline]
    pub(crate) fn kind(&self, offset: u64) -> Kind {
        match offset {
            o if o < self.person => Kind::Person,
            o if o < self.person + self.auction => Kind::Auction,
            _ => Kind::Bid,
        }
    }

    /// The offsets (ids modulo `total`) of events of `kind`.
    pub(crate) fn range(&self, kind: Kind) -> std::ops::Range<u64> {
        match kind {
            Kind::Person => 0..self.person,
            Kind::Auction => self.person..self.person + self.auction,
            Kind::Bid => self.person + self.auction..self.total,
        }
    }
}

impl Config {
    /// Reads the options of a table with columns `schema`; `now_ms` is the
    /// first event's time unless `'first-event-time'` says otherwise, as
    /// Flink nexmark's `baseTime` defaults to the current time.
    pub(crate) fn from_options(options: &Options, schema: &Schema, now_ms: i64) -> Result<Self, ConnectorError> {
        options.check_keys(KEYS)?;
        let table = match options.get(TABLE_KEY) {
            None => Table::Events(super::events::layout(schema)?),
            Some(name) => {
                let kind = match name.trim().to_ascii_lowercase().as_str() {
                    "person" => Kind::Person,
                    "auction" => Kind::Auction,
                    "bid" => Kind::Bid,
                    _ => {
                        return Err(ConnectorError::invalid(TABLE_KEY, name, "expected 'person', 'auction' or 'bid'"));
                    }
                };
                Table::Kind { kind, columns: columns(kind, schema)? }
            }
        };
        fixed_options(options)?;
        let proportion =
            |key: &str, default: u64| options.parse(key, values::non_negative_integer).map(|v| v.unwrap_or(default));
        let (person, auction, bid) = (
            proportion("person.proportion", DEFAULT_PROPORTIONS.0)?,
            proportion("auction.proportion", DEFAULT_PROPORTIONS.1)?,
            proportion("bid.proportion", DEFAULT_PROPORTIONS.2)?,
        );
        let total = person
            .checked_add(auction)
            .and_then(|t| t.checked_add(bid))
            .filter(|&t| t > 0 && t <= u64::from(u32::MAX))
            .ok_or_else(|| {
                ConnectorError::invalid(
                    "bid.proportion",
                    options.get("bid.proportion").unwrap_or_default(),
                    "the three proportions must add up to between 1 and 2^32 - 1",
                )
            })?;
        // Auctions need a person to sell them and bids an auction to bid
        // on, as the id arithmetic assumes.
        for (key, value, needed) in
            [("person.proportion", person, auction + bid > 0), ("auction.proportion", auction, bid > 0)]
        {
            if value == 0 && needed {
                return Err(ConnectorError::invalid(
                    key,
                    options.get(key).unwrap_or("0"),
                    "must be positive while later kinds of event are generated",
                ));
            }
        }
        if let Table::Kind { kind, .. } = &table {
            let own = match kind {
                Kind::Person => ("person.proportion", person),
                Kind::Auction => ("auction.proportion", auction),
                Kind::Bid => ("bid.proportion", bid),
            };
            if own.1 == 0 {
                return Err(ConnectorError::invalid(
                    own.0,
                    options.get(own.0).unwrap_or("0"),
                    format!("the {} table would never have a row", kind.name()),
                ));
            }
        }
        let first_event_time = options
            .parse("first-event-time", |v| match parse_timestamp(v) {
                Some(ms) if FIRST_EVENT_TIMES.contains(&ms) => Ok(ms),
                Some(_) => Err("expected a time from 0000-01-01 to 9999-12-31, the range of TIMESTAMP(3)".to_string()),
                None => Err("expected a timestamp such as '2026-01-01 00:00:00' or epoch milliseconds".to_string()),
            })?
            .unwrap_or(now_ms);
        let events_per_second = either(options, "events-per-second", "first-event.rate", values::positive_integer)?
            .unwrap_or(DEFAULT_EVENTS_PER_SECOND);
        if let Some(next) = options.parse("next-event.rate", values::positive_integer)?
            && next != events_per_second
        {
            return Err(ConnectorError::invalid(
                "next-event.rate",
                options.get("next-event.rate").unwrap_or_default(),
                format!("Weir's generator keeps one rate: set it equal to first-event.rate ({events_per_second})"),
            ));
        }
        // Flink nexmark's `events.num` = 0 means no end.
        let number_of_events = match options.get("events.num") {
            Some(_) => {
                either(options, "number-of-events", "events.num", values::non_negative_integer)?.filter(|n| *n > 0)
            }
            None => options.parse("number-of-events", values::non_negative_integer)?,
        };
        // Flink nexmark's table makes events as fast as it can unless told
        // otherwise; Weir's per-kind tables keep to their rate.
        let rate_limited = either(options, "rate-limited", "rate.limited", values::boolean)?
            .unwrap_or(matches!(table, Table::Kind { .. }));
        Ok(Self {
            table,
            events_per_second,
            number_of_events,
            first_event_time,
            rate_limited,
            seed: options.parse("seed", values::non_negative_integer)?.unwrap_or(0),
            proportions: Proportions { person, auction, total },
            only: None,
            unread: Vec::new(),
        })
    }

    /// Whether the table declares bid column `name` and the job reads it
    /// (the bid builder skips the text columns nobody reads).
    pub(crate) fn wants(&self, name: &str) -> bool {
        let all = Kind::Bid.columns();
        let declares = |columns: &[usize]| columns.iter().any(|&i| all[i].0 == name);
        match &self.table {
            Table::Kind { kind: Kind::Bid, columns } => columns
                .iter()
                .enumerate()
                .any(|(position, &i)| all[i].0 == name && !self.unread.contains(&position)),
            Table::Kind { .. } => false,
            Table::Events(columns) => columns.iter().any(|c| match c {
                EventColumn::Row { kind: Kind::Bid, fields, .. } => declares(fields),
                _ => false,
            }),
        }
    }

    /// The offsets (event ids modulo the proportions' total) of the events
    /// that are rows of this table.
    pub(crate) fn rows(&self) -> std::ops::Range<u64> {
        match &self.table {
            Table::Kind { kind, .. } => self.proportions.range(*kind),
            Table::Events(_) => 0..self.proportions.total,
        }
    }

    /// The table's name in `EXPLAIN`.
    pub(crate) fn table_name(&self) -> &'static str {
        match &self.table {
            Table::Kind { kind, .. } => kind.name(),
            Table::Events(_) => "events",
        }
    }
}

/// `weir` or `flink`, the same option under Weir's and Flink nexmark's
/// names; giving both is an error.
fn either<T>(
    options: &Options,
    weir: &str,
    flink: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConnectorError> {
    match (options.get(weir), options.get(flink)) {
        (Some(_), Some(v)) => Err(ConnectorError::invalid(flink, v, format!("'{weir}' is set too: give one of them"))),
        (Some(_), None) => options.parse(weir, parse),
        (None, _) => options.parse(flink, parse),
    }
}

/// Flink nexmark's options Weir accepts only as Flink's defaults behave:
/// sizes and hot ratios at their defaults, a rate shape and period (they
/// change nothing while the rate is one), and `keep-alive` off.
fn fixed_options(options: &Options) -> Result<(), ConnectorError> {
    for (key, default) in FIXED_AT_DEFAULT {
        let parse = if key.ends_with("avg-size") {
            weir_engine::memory_size::parse_memory_size
        } else {
            values::positive_integer
        };
        if let Some(v) = options.parse(key, parse)?
            && v != *default
        {
            return Err(ConnectorError::invalid(
                key,
                options.get(key).unwrap_or_default(),
                format!("Weir's generator makes Flink nexmark's default ({default}) only"),
            ));
        }
    }
    options.parse("rate.shape", |v| match v.trim().to_ascii_lowercase().as_str() {
        "square" | "sine" => Ok(()),
        _ => Err("expected 'square' or 'sine'".to_string()),
    })?;
    options.parse("rate.period", weir_engine::duration::parse_duration)?;
    if options.parse("keep-alive", values::boolean)? == Some(true) {
        return Err(ConnectorError::invalid(
            "keep-alive",
            options.get("keep-alive").unwrap_or_default(),
            "a nexmark table ends after its events in Weir; leave 'events.num' unset for an unbounded one",
        ));
    }
    Ok(())
}

/// Maps each declared column to the kind's column of that name (ignoring
/// case, as unquoted identifiers may have been folded), checking its type.
pub(crate) fn columns(kind: Kind, schema: &Schema) -> Result<Vec<usize>, ConnectorError> {
    let all = kind.columns();
    let names = || all.iter().map(|(n, t)| format!("{n} {}", t.sql())).collect::<Vec<_>>().join(", ");
    schema
        .fields()
        .iter()
        .map(|f| {
            let index = all.iter().position(|(n, _)| n.eq_ignore_ascii_case(f.name())).ok_or_else(|| {
                ConnectorError::Unsupported {
                    connector: "nexmark".into(),
                    what: format!("the {} table has no column '{}' (its columns: {})", kind.name(), f.name(), names()),
                }
            })?;
            let (name, ty) = all[index];
            if !ty.accepts(f.data_type()) {
                return Err(ConnectorError::Unsupported {
                    connector: "nexmark".into(),
                    what: format!("column '{}' must be {} (declared {})", name, ty.sql(), sql_name(f.data_type())),
                });
            }
            Ok(index)
        })
        .collect()
}

/// Epoch milliseconds of `2026-01-01 00:00:00[.SSS]`, the ISO form, or a
/// number of milliseconds, parsed by arrow's cast as table timestamps are.
fn parse_timestamp(v: &str) -> Option<i64> {
    if let Ok(ms) = v.trim().parse::<i64>() {
        return Some(ms);
    }
    let text = StringArray::from(vec![v.trim()]);
    let t = cast(&text, &DataType::Timestamp(TimeUnit::Millisecond, None)).ok()?;
    let t = t.as_primitive_opt::<TimestampMillisecondType>()?;
    t.is_valid(0).then(|| t.value(0))
}
