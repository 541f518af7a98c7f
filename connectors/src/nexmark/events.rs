//! Flink nexmark's one table of every event: `event_type` (0 person, 1
//! auction, 2 bid) and the ROW columns `person`, `auction` and `bid`, of
//! which only the event's own kind is set. Flink's queries read it through
//! three views (`CREATE VIEW bid AS SELECT bid.auction, … WHERE
//! event_type = 2`), so its DDL and views run in Weir as written.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, RecordBatch, RecordBatchOptions, StructArray, UInt32Array, new_null_array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Fields, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

use super::auction::AuctionColumns;
use super::bid::{BidColumns, Channels};
use super::config::{Config, Kind, columns};
use super::person::PersonColumns;
use super::random::Filler;
use super::timeline::Cursor;
use crate::error::ConnectorError;
use crate::types::sql_name;

/// One column of the events table.
#[derive(Debug, Clone)]
pub(crate) enum EventColumn {
    /// `event_type INT`.
    EventType,
    /// A kind's ROW: per declared field, its index in [`Kind::columns`].
    Row {
        kind: Kind,
        fields: Vec<usize>,
        declared: Fields,
    },
}

/// The kind of an `event_type` code.
pub(crate) fn kind_of(code: i64) -> Option<Kind> {
    match code {
        0 => Some(Kind::Person),
        1 => Some(Kind::Auction),
        2 => Some(Kind::Bid),
        _ => None,
    }
}

/// The `event_type` code of a kind, as Flink nexmark numbers them.
fn code(kind: Kind) -> i32 {
    match kind {
        Kind::Person => 0,
        Kind::Auction => 1,
        Kind::Bid => 2,
    }
}

/// The events table's declared columns, each checked: `event_type INT`,
/// and `person`, `auction`, `bid` ROWs of any of their kind's fields.
pub(crate) fn layout(schema: &Schema) -> Result<Vec<EventColumn>, ConnectorError> {
    let unsupported = |what: String| ConnectorError::Unsupported {
        connector: "nexmark".into(),
        what,
    };
    schema
        .fields()
        .iter()
        .map(|f| {
            let kind = match f.name().to_ascii_lowercase().as_str() {
                "event_type" if f.data_type() == &DataType::Int32 => return Ok(EventColumn::EventType),
                "event_type" => {
                    return Err(unsupported(format!(
                        "column 'event_type' must be INT (declared {})",
                        sql_name(f.data_type())
                    )));
                }
                "person" => Kind::Person,
                "auction" => Kind::Auction,
                "bid" => Kind::Bid,
                _ => {
                    return Err(unsupported(format!(
                        "the nexmark events table has no column '{}' (its columns: event_type INT, person ROW<…>, \
                         auction ROW<…>, bid ROW<…>; or set 'nexmark.table' to 'person', 'auction' or 'bid')",
                        f.name()
                    )));
                }
            };
            let DataType::Struct(declared) = f.data_type() else {
                return Err(unsupported(format!(
                    "column '{}' must be a ROW of {} fields (declared {})",
                    f.name(),
                    kind.name(),
                    sql_name(f.data_type())
                )));
            };
            let fields = columns(kind, &Schema::new(declared.clone()))?;
            Ok(EventColumn::Row {
                kind,
                fields,
                declared: declared.clone(),
            })
        })
        .collect()
}

/// Events `first`, `first + stride`, … (`count` of them) as rows of the
/// events table `columns`.
pub(crate) fn generate(
    config: &Config,
    columns: &[EventColumn],
    channels: &Channels,
    filler: &Filler,
    schema: &SchemaRef,
    (first, stride, count): (u64, u64, u64),
) -> Result<RecordBatch, ArrowError> {
    let p = &config.proportions;
    let wanted = |kind: Kind| config.only.is_none_or(|only| only == kind);
    let declares = |kind: Kind| {
        wanted(kind)
            && columns
                .iter()
                .any(|c| matches!(c, EventColumn::Row { kind: k, .. } if *k == kind))
    };
    let share = |kind: Kind| {
        let r = p.range(kind);
        (count * (r.end - r.start) / p.total + r.end) as usize
    };
    let mut people = declares(Kind::Person).then(|| PersonColumns::new(config, filler, share(Kind::Person)));
    let mut auctions = declares(Kind::Auction).then(|| AuctionColumns::new(config, filler, share(Kind::Auction)));
    let mut bids = declares(Kind::Bid).then(|| BidColumns::new(config, channels, filler, share(Kind::Bid)));
    let mut kinds = Vec::with_capacity(count as usize);
    let mut cursor = Cursor::new(config, first, stride);
    for _ in 0..count {
        let e = cursor.advance();
        let kind = p.kind(e.offset);
        if !wanted(kind) {
            continue;
        }
        kinds.push(code(kind));
        match kind {
            Kind::Person => people.as_mut().map(|b| b.push(&e)),
            Kind::Auction => auctions.as_mut().map(|b| b.push(&e)),
            Kind::Bid => bids.as_mut().map(|b| b.push(&e)),
        };
    }
    let mut built = [
        people.map(PersonColumns::finish),
        auctions.map(AuctionColumns::finish),
        bids.map(BidColumns::finish).transpose()?,
    ];
    let arrays = columns
        .iter()
        .map(|c| match c {
            EventColumn::EventType => Ok(Arc::new(Int32Array::from(kinds.clone())) as ArrayRef),
            EventColumn::Row { kind, declared, .. } if !wanted(*kind) => {
                Ok(new_null_array(&DataType::Struct(declared.clone()), kinds.len()))
            }
            EventColumn::Row { kind, fields, declared } => {
                let dense = built[code(*kind) as usize].as_mut().ok_or_else(|| missing(*kind))?;
                row(&kinds, code(*kind), dense, fields, declared)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(kinds.len()));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
}

/// A kind's ROW column over all events: its rows' fields where the event
/// is of that kind, NULL elsewhere.
fn row(
    kinds: &[i32],
    code: i32,
    dense: &mut [Option<ArrayRef>],
    fields: &[usize],
    declared: &Fields,
) -> Result<ArrayRef, ArrowError> {
    // Every event of this kind (a query of one kind's events): the
    // columns as they were made.
    if kinds.iter().all(|k| *k == code) {
        let children = fields
            .iter()
            .map(|&i| dense[i].clone().ok_or_else(|| missing_field(i)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Arc::new(StructArray::try_new(declared.clone(), children, None)?));
    }
    let mut next = 0u32;
    let indices: UInt32Array = kinds
        .iter()
        .map(|k| {
            (*k == code).then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let children = fields
        .iter()
        .map(|&i| {
            let column = dense[i].as_ref().ok_or_else(|| missing_field(i))?;
            take(column, &indices, None)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nulls = NullBuffer::from(kinds.iter().map(|k| *k == code).collect::<Vec<bool>>());
    Ok(Arc::new(StructArray::try_new(declared.clone(), children, Some(nulls))?))
}

fn missing(kind: Kind) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("nexmark: the {} columns were not built", kind.name()))
}

fn missing_field(i: usize) -> ArrowError {
    ArrowError::InvalidArgumentError(format!("nexmark: field {i} was not built"))
}
