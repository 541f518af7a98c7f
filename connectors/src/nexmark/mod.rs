//! The `nexmark` connector: the Nexmark benchmark's generator of people,
//! auctions and bids (as Flink's nexmark repository makes them): Flink
//! nexmark's one table of every event with a ROW per kind (`events.rs`),
//! or one kind's rows as a table of its own, for benchmarks and examples.
//!
//! `config.rs` reads the options; `timeline.rs` holds the id and time
//! arithmetic; `random.rs` the per-event random draws; `person.rs`,
//! `auction.rs`, `bid.rs` build each kind's columns; `batch.rs` turns a run
//! of events into a batch; `reader.rs` paces a subtask's partitions.

mod auction;
mod batch;
mod bid;
mod config;
mod events;
mod person;
mod random;
mod reader;
mod text;
mod timeline;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use weir_engine::error::Result;
use weir_engine::source::{Assignment, PARTITION_ENDED, Positions, SourceConnector, SourceReader};

use crate::error::ConnectorError;
use crate::options::Options;
use bid::Channels;
use config::Config;
use random::Filler;

/// Builds the source of a nexmark table from its options; the first
/// event's time defaults to now.
pub(crate) fn create(options: &Options, schema: SchemaRef) -> Result<Arc<dyn SourceConnector>, ConnectorError> {
    let config = Config::from_options(options, &schema, weir_engine::message::now_ms())?;
    Ok(Arc::new(NexmarkSource {
        channels: Arc::new(Channels::new(config.seed)),
        filler: Arc::new(Filler::new(config.seed)),
        config: Arc::new(config),
        schema,
    }))
}

/// A Nexmark table: one partition per subtask, each making every
/// `parallelism`-th event.
#[derive(Debug)]
struct NexmarkSource {
    config: Arc<Config>,
    channels: Arc<Channels>,
    /// The letters `extra` columns are cut from.
    filler: Arc<Filler>,
    schema: SchemaRef,
}

impl SourceConnector for NexmarkSource {
    fn describe(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "nexmark table={} events-per-second={}",
            c.table_name(),
            c.events_per_second
        );
        if let Some(n) = c.number_of_events {
            s.push_str(&format!(" number-of-events={n}"));
        }
        if !c.rate_limited {
            s.push_str(" rate-limited=false");
        }
        if let Some(only) = c.only {
            s.push_str(&format!(" only={} events", only.name()));
        }
        if !c.unread.is_empty() {
            let names: Vec<&str> = c.unread.iter().map(|&p| self.schema.field(p).name().as_str()).collect();
            s.push_str(&format!(" unread={}", names.join(",")));
        }
        s
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn partitions(&self, parallelism: usize) -> Result<usize> {
        Ok(parallelism.max(1))
    }

    /// `event_type = k` over the events table: only kind `k`'s events are
    /// made (event numbers, times and positions are those of all events).
    fn only_rows_where(&self, column: usize, value: &ScalarValue) -> Option<Arc<dyn SourceConnector>> {
        if !matches!(self.config.table, config::Table::Events(_)) || self.config.only.is_some() {
            return None;
        }
        let field = self.schema.fields().get(column)?;
        if field.name() != "event_type" {
            return None;
        }
        let code = match value {
            ScalarValue::Int32(Some(v)) => i64::from(*v),
            ScalarValue::Int64(Some(v)) => *v,
            _ => return None,
        };
        let only = events::kind_of(code)?;
        Some(Arc::new(NexmarkSource {
            config: Arc::new(Config {
                only: Some(only),
                ..self.config.as_ref().clone()
            }),
            channels: Arc::clone(&self.channels),
            filler: Arc::clone(&self.filler),
            schema: self.schema.clone(),
        }))
    }

    /// A bid table leaves the text columns the job does not read null
    /// (`channel`, `url`, `extra`: the copies that are most of a bid's
    /// making); the random draws are made all the same, so each row's
    /// other columns are what they would be. People and auctions are 1 and
    /// 3 events in 50: their columns are always made.
    fn only_columns(&self, read: &[usize]) -> Option<Arc<dyn SourceConnector>> {
        let config::Table::Kind { kind: config::Kind::Bid, columns } = &self.config.table else {
            return None;
        };
        let all = config::Kind::Bid.columns();
        let unread: Vec<usize> = (0..columns.len())
            .filter(|p| !read.contains(p))
            .filter(|&p| matches!(all[columns[p]].1, config::Type::Text) && self.schema.field(p).is_nullable())
            .collect();
        if unread.is_empty() {
            return None;
        }
        Some(Arc::new(NexmarkSource {
            config: Arc::new(Config { unread, ..self.config.as_ref().clone() }),
            channels: Arc::clone(&self.channels),
            filler: Arc::clone(&self.filler),
            schema: self.schema.clone(),
        }))
    }

    /// A resumed partition continues right after the last event the
    /// checkpoint covered: events depend on their number only.
    fn open(
        &self,
        assignment: Assignment,
        _report_bad_records: bool,
        resume: &Positions,
    ) -> Result<Box<dyn SourceReader>> {
        let parts = assignment.parallelism.max(1);
        let partitions = assignment
            .partitions
            .into_iter()
            .filter_map(|p| {
                let position = resume.get(&p).copied().unwrap_or(0);
                (position != PARTITION_ENDED)
                    .then(|| reader::partition(p, parts, position, self.config.number_of_events))
            })
            .collect();
        Ok(Box::new(reader::reader(
            Arc::clone(&self.config),
            Arc::clone(&self.channels),
            Arc::clone(&self.filler),
            self.schema.clone(),
            parts,
            partitions,
        )))
    }
}
