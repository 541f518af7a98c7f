//! One batch: a run of a partition's events turned into the table's
//! columns, by the builder of the table's kind.

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;

use super::auction::AuctionColumns;
use super::bid::{BidColumns, Channels};
use super::config::{Config, Kind, Table};
use super::events;
use super::person::PersonColumns;
use super::random::Filler;
use super::timeline::Cursor;

/// The table's rows among `count` events of a partition's share, starting
/// at event number `first` and `stride` apart, with the table's declared
/// columns in its order (null where the job reads none, `Config::unread`).
pub(crate) fn generate(
    config: &Config,
    channels: &Channels,
    filler: &Filler,
    schema: &SchemaRef,
    first: u64,
    stride: u64,
    count: u64,
) -> Result<RecordBatch, ArrowError> {
    let (kind, declared) = match &config.table {
        Table::Kind { kind, columns } => (*kind, columns),
        Table::Events(columns) => {
            return events::generate(config, columns, channels, filler, schema, (first, stride, count));
        }
    };
    let p = &config.proportions;
    let range = p.range(kind);
    // Rows expected, plus one run's worth for rounding.
    let rows = (count * (range.end - range.start) / p.total + range.end) as usize;
    let mut cursor = Cursor::new(config, first, stride);
    // The kind is matched once per batch, so that each row loop is a
    // straight call to one builder.
    let columns = match kind {
        Kind::Bid => {
            let mut b = BidColumns::new(config, channels, filler, rows);
            for _ in 0..count {
                let e = cursor.advance();
                if range.contains(&e.offset) {
                    b.push(&e);
                }
            }
            b.finish()?
        }
        Kind::Auction => {
            let mut b = AuctionColumns::new(config, filler, rows);
            for _ in 0..count {
                let e = cursor.advance();
                if range.contains(&e.offset) {
                    b.push(&e);
                }
            }
            b.finish()
        }
        Kind::Person => {
            let mut b = PersonColumns::new(config, filler, rows);
            for _ in 0..count {
                let e = cursor.advance();
                if range.contains(&e.offset) {
                    b.push(&e);
                }
            }
            b.finish()
        }
    };
    let mut columns: Vec<Option<ArrayRef>> = columns;
    // The numbers and times are always built.
    let num_rows = columns.iter().flatten().next().map_or(0, |c| c.len());
    let declared = declared
        .iter()
        .enumerate()
        .map(|(position, &i)| match config.unread.contains(&position) {
            true => Ok(new_null_array(schema.field(position).data_type(), num_rows)),
            false => columns[i].take().ok_or_else(|| {
                ArrowError::InvalidArgumentError(format!(
                    "nexmark: column {} declared twice or not built",
                    kind.columns()[i].0
                ))
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(num_rows));
    RecordBatch::try_new_with_options(schema.clone(), declared, &options)
}
