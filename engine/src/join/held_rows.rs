//! The rows one side of an updating join holds: per join key, each distinct
//! row with how many copies of it are held and how many rows of the other
//! side it meets (Flink's `OuterJoinRecordStateView`). The count of
//! partners is what an outer join needs: a row that meets none went out
//! padded with NULLs, and that row is taken back when its first partner
//! comes (and sent again when its last partner leaves).
//!
//! Rows and keys are kept in arrow's row format: a retraction finds its
//! row by comparing bytes, and a checkpoint copies them at the barrier and
//! converts them back into Arrow batches split by key group off the task
//! loop.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeBinaryArray, LargeBinaryBuilder, RecordBatch, UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_plan::PhysicalExpr;
use hashbrown::HashMap;
use std::hash::BuildHasher;
use std::time::Duration;

use crate::checkpoint::codec::{Decoder, Encoder};
use crate::error::{EngineError, Result, ResultExt};
use crate::partition_keys::PartitionKeys;
use crate::state_ttl::Expiry;

/// One distinct held row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// How many equal rows are held (a multiset: a changelog may insert a
    /// row twice).
    pub copies: u64,
    /// How many rows of the other side it meets (kept for every row; only
    /// an outer side reads it).
    pub partners: u64,
}

/// The rows held with one join key.
#[derive(Default)]
struct Bucket {
    /// Row → its copies and partners.
    rows: HashMap<Vec<u8>, Held>,
    /// Its slot under a state TTL.
    slot: u32,
}

/// Under a state TTL: the keys' slots and when each was last written
/// (`crate::state_ttl`). A key's rows expire together, when no row with
/// the key was written (added, taken back, or its partners changed) for
/// the TTL.
struct KeyTtl {
    expiry: Expiry,
    /// Per slot, the key it holds.
    keys: Vec<Vec<u8>>,
    free: Vec<u32>,
    now: i64,
}

/// The rows of one side, by join key.
pub(crate) struct HeldRows {
    /// Join key → its rows.
    by_key: HashMap<Vec<u8>, Bucket>,
    ttl: Option<KeyTtl>,
    rows: RowConverter,
    keys: PartitionKeys,
    schema: SchemaRef,
    name: String,
    /// About the memory the rows take, for `weir.memory`.
    bytes: usize,
}

/// A side's held rows as a barrier found them ([`HeldRows::capture`]).
pub(crate) struct CapturedSide {
    rows: LargeBinaryArray,
    copies: Vec<u64>,
    partners: Vec<u64>,
}

/// Writes a side's captured rows as Arrow batches split by key group, so
/// that a restore at another parallelism takes its own; what
/// [`HeldRows::decode_state`] reads.
pub(crate) struct SideEncoder {
    rows: RowConverter,
    keys: PartitionKeys,
    /// The side's columns, then `copies` and `partners`.
    schema: SchemaRef,
    name: String,
}

impl SideEncoder {
    pub fn encode(&self, captured: CapturedSide, e: &mut Encoder) -> Result<()> {
        let ctx = || format!("{}: snapshot", self.name);
        let parser = self.rows.parser();
        let rows = captured.rows.iter().flatten().map(|r| parser.parse(r));
        let mut columns = self.rows.convert_rows(rows).context(ctx)?;
        columns.push(Arc::new(UInt64Array::from(captured.copies)));
        columns.push(Arc::new(UInt64Array::from(captured.partners)));
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns).context(ctx)?;
        let keys = self.keys.columns(&batch)?;
        e.batches_by_key_group(&batch, &keys)
    }
}

/// What one distinct held row costs besides its bytes and key (two map
/// entries' share, the boxes' headers).
const ROW_OVERHEAD: usize = 64;

/// A batch's rows and join keys, encoded.
pub(crate) struct Encoded {
    pub rows: Rows,
    /// `None` when the join has no equi-keys: every row has the empty key.
    pub keys: Option<Rows>,
    /// Which rows have a NULL in their key (they meet nothing).
    pub null_keys: Option<NullBuffer>,
}

impl Encoded {
    pub fn key(&self, row: usize) -> &[u8] {
        self.keys.as_ref().map_or(&[], |k| k.row(row).data())
    }

    pub fn row(&self, row: usize) -> &[u8] {
        self.rows.row(row).data()
    }

    pub fn meets_nothing(&self, row: usize) -> bool {
        self.null_keys.as_ref().is_some_and(|n| n.is_null(row))
    }
}

impl HeldRows {
    /// The rows of a side with columns `schema`, joined on `keys`, kept
    /// while written within `ttl` (if any).
    pub fn new(schema: &SchemaRef, keys: &[Arc<dyn PhysicalExpr>], ttl: Option<Duration>, name: &str) -> Result<Self> {
        let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(Self {
            by_key: HashMap::new(),
            ttl: ttl.map(|t| KeyTtl { expiry: Expiry::new(t), keys: Vec::new(), free: Vec::new(), now: 0 }),
            rows: RowConverter::new(fields).context(|| format!("{name}: join rows"))?,
            keys: PartitionKeys::new(keys, schema, name)?,
            schema: Arc::clone(schema),
            name: name.to_string(),
            bytes: 0,
        })
    }

    /// Encodes the rows and keys of `batch` (rows of this side).
    pub fn encode(&self, batch: &RecordBatch) -> Result<Encoded> {
        let key_columns = self.keys.columns(batch)?;
        let null_keys =
            key_columns.iter().fold(None, |acc, k| NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref()));
        Ok(Encoded {
            rows: self.rows.convert_columns(batch.columns()).context(|| format!("{}: join rows", self.name))?,
            keys: self.keys.encode_columns(&key_columns)?,
            null_keys,
        })
    }

    /// The distinct rows held with `key`.
    pub fn with_key(&self, key: &[u8]) -> impl Iterator<Item = (&[u8], &Held)> {
        self.by_key.get(key).into_iter().flat_map(|b| b.rows.iter().map(|(r, h)| (r.as_ref(), h)))
    }

    /// The held row `row` with `key`, to change its partners (a write).
    pub fn get_mut(&mut self, key: &[u8], row: &[u8]) -> Option<&mut Held> {
        let bucket = self.by_key.get_mut(key)?;
        if let Some(t) = &mut self.ttl {
            t.expiry.touch(bucket.slot, t.now);
        }
        bucket.rows.get_mut(row)
    }

    /// Holds one more copy of `row`, which meets `partners` rows of the
    /// other side.
    pub fn add(&mut self, key: &[u8], row: &[u8], partners: u64) {
        self.add_copies(key, row, Held { copies: 1, partners });
    }

    fn add_copies(&mut self, key: &[u8], row: &[u8], held: Held) {
        let bucket = self.by_key.entry_ref(key).or_insert_with(|| {
            let slot = match &mut self.ttl {
                Some(t) => match t.free.pop() {
                    Some(s) => {
                        t.keys[s as usize] = key.to_vec();
                        s
                    }
                    None => {
                        t.keys.push(key.to_vec());
                        (t.keys.len() - 1) as u32
                    }
                },
                None => 0,
            };
            Bucket { rows: HashMap::new(), slot }
        });
        if let Some(t) = &mut self.ttl {
            t.expiry.touch(bucket.slot, t.now);
        }
        let entry = bucket.rows.entry_ref(row).or_insert_with(|| {
            self.bytes += key.len() + row.len() + ROW_OVERHEAD;
            Held { copies: 0, partners: held.partners }
        });
        entry.copies += held.copies;
        entry.partners = held.partners;
    }

    /// Takes back one copy of `row`; `false` when none is held.
    pub fn retract(&mut self, key: &[u8], row: &[u8]) -> bool {
        let Some(bucket) = self.by_key.get_mut(key) else {
            return false;
        };
        let Some(held) = bucket.rows.get_mut(row) else {
            return false;
        };
        held.copies -= 1;
        if let Some(t) = &mut self.ttl {
            t.expiry.touch(bucket.slot, t.now);
        }
        if held.copies == 0 {
            bucket.rows.remove(row);
            self.bytes -= key.len() + row.len() + ROW_OVERHEAD;
            if bucket.rows.is_empty() {
                let slot = bucket.slot;
                self.by_key.remove(key);
                if let Some(t) = &mut self.ttl {
                    t.expiry.vacate(slot);
                    t.free.push(slot);
                }
            }
        }
        true
    }

    /// Reads the clock for the writes of a batch; `None` without a TTL.
    pub fn start_batch(&mut self) -> Option<i64> {
        let t = self.ttl.as_mut()?;
        t.now = t.expiry.now();
        Some(t.now)
    }

    /// Tests set the TTL's clock by hand.
    #[cfg(test)]
    pub(crate) fn set_clock(&mut self, clock: std::sync::Arc<std::sync::atomic::AtomicI64>) {
        if let Some(t) = self.ttl.take() {
            self.ttl = Some(KeyTtl { expiry: t.expiry.with_clock(clock), ..t });
        }
    }

    /// How often to look for expired keys, under a TTL.
    pub fn check_every(&self) -> Option<Duration> {
        self.ttl.as_ref().map(|t| t.expiry.check_every())
    }

    /// Whether `key`'s rows were dropped by the TTL lately (a row meeting
    /// them is counted, once).
    pub fn met_expired(&mut self, key: &[u8]) -> bool {
        let hash = self.by_key.hasher().hash_one(key);
        self.ttl.as_mut().is_some_and(|t| t.expiry.met_expired(hash))
    }

    /// Drops the rows of keys nothing wrote for the TTL.
    pub fn expire(&mut self) {
        let Some(t) = &mut self.ttl else {
            return;
        };
        let now = t.expiry.now();
        for slot in t.expiry.due(now) {
            let key = std::mem::take(&mut t.keys[slot as usize]);
            if let Some(bucket) = self.by_key.remove(&key) {
                let freed: usize = bucket.rows.keys().map(|r| key.len() + r.len() + ROW_OVERHEAD).sum();
                self.bytes -= freed;
                t.expiry.dropped(self.by_key.hasher().hash_one(&key[..]));
            }
            t.free.push(slot);
        }
    }

    /// About the memory the held rows take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Distinct keys held.
    pub fn keys(&self) -> usize {
        self.by_key.len()
    }

    /// Rows in row format as columns of this side.
    pub fn columns<'r>(&self, rows: impl Iterator<Item = &'r [u8]>) -> Result<Vec<ArrayRef>> {
        let parser = self.rows.parser();
        self.rows.convert_rows(rows.map(|r| parser.parse(r))).context(|| format!("{}: join rows", self.name))
    }

    /// The side's columns, then `copies` and `partners`.
    fn stored_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("copies", DataType::UInt64, false));
        fields.push(Field::new("partners", DataType::UInt64, false));
        Arc::new(Schema::new(fields))
    }

    /// Every held row with its copies and partners, taken at a barrier for
    /// [`SideEncoder::encode`] to write off the task loop: the rows' bytes
    /// copied end to end (one copy, no conversion).
    pub fn capture(&self) -> CapturedSide {
        let (mut rows, mut copies, mut partners) = (LargeBinaryBuilder::new(), Vec::new(), Vec::new());
        for (row, held) in self.by_key.values().flat_map(|b| b.rows.iter()) {
            rows.append_value(row);
            copies.push(held.copies);
            partners.push(held.partners);
        }
        CapturedSide { rows: rows.finish(), copies, partners }
    }

    /// What writes this side's captured rows off the task loop.
    pub fn encoder(&self) -> Result<SideEncoder> {
        let fields = self.schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
        Ok(SideEncoder {
            rows: RowConverter::new(fields).context(|| format!("{}: join rows", self.name))?,
            keys: self.keys.again(&self.schema)?,
            schema: self.stored_schema(),
            name: self.name.clone(),
        })
    }

    /// Adds the rows [`SideEncoder::encode`] wrote for the key groups
    /// `owns` keeps.
    pub fn decode_state(&mut self, d: &mut Decoder, owns: &dyn Fn(usize) -> bool) -> Result<()> {
        // Restored rows' idle time starts again.
        self.start_batch();
        let schema = self.stored_schema();
        for _ in 0..d.u64()? {
            let group = d.u64()? as usize;
            let batch = d.batch()?;
            if !owns(group) {
                continue;
            }
            if batch.num_columns() != schema.fields().len()
                || !schema
                    .fields()
                    .iter()
                    .zip(batch.columns())
                    .all(|(f, c)| f.data_type().equals_datatype(c.data_type()))
            {
                return Err(EngineError::State(format!(
                    "{}: held join rows have other columns than the query's",
                    self.name
                )));
            }
            let width = self.schema.fields().len();
            let visible =
                batch.project(&(0..width).collect::<Vec<_>>()).context(|| format!("{}: restore", self.name))?;
            let encoded = self.encode(&visible)?;
            let copies = batch.column(width).as_primitive::<UInt64Type>();
            let partners = batch.column(width + 1).as_primitive::<UInt64Type>();
            if copies.null_count() > 0 || partners.null_count() > 0 || copies.values().contains(&0) {
                return Err(EngineError::State(format!("{}: held join rows without copies", self.name)));
            }
            for i in 0..batch.num_rows() {
                let held = Held { copies: copies.value(i), partners: partners.value(i) };
                self.add_copies(encoded.key(i), encoded.row(i), held);
            }
        }
        Ok(())
    }
}
