//! Decoded envelopes to the rows of their changes, a batch at a time: one
//! pass over the records picks, for each row made, whether it is a before
//! or an after image and which one; each column is then gathered with one
//! `interleave` (no row is built on its own).

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int8Array, RecordBatch, StringArray, StructArray, UInt32Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, interleave, take};
use datafusion::arrow::datatypes::{Field, Fields, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use weir_engine::changelog::{RowKind, op_field};

use super::metadata::MetadataKey;
use super::{ChangelogFormat, Protocol, envelope};

/// Which image a row is taken from.
const BEFORE: usize = 0;
const AFTER: usize = 1;

/// Turns envelopes of one format into changelog rows of a table.
#[derive(Debug)]
pub(crate) struct Expander {
    format: ChangelogFormat,
    /// The rows made: the table's columns (metadata ones included) and
    /// the changelog column.
    output: SchemaRef,
    /// What the JSON decoder reads each record into.
    envelope: SchemaRef,
    /// Per column of the table: `Ok(i)` the `i`-th physical column, or the
    /// metadata it holds.
    columns: Vec<Result<usize, MetadataKey>>,
}

/// The rows of a batch of envelopes.
pub(crate) struct Expanded {
    /// The rows, with their kinds in the changelog column.
    pub(crate) batch: RecordBatch,
    /// Per row, the envelope (row of the decoded batch) it comes from.
    pub(crate) envelopes: Vec<u32>,
    /// Envelopes that make no sense as a change, with why, in order.
    pub(crate) invalid: Vec<(usize, String)>,
}

impl Expander {
    /// For a table of columns `schema`, some of which `format.metadata`
    /// fills.
    pub(crate) fn new(format: ChangelogFormat, schema: &Schema) -> Self {
        let mut physical = Vec::new();
        let columns = (0..schema.fields().len())
            .map(|i| match format.metadata.iter().find(|(c, _)| *c == i) {
                Some((_, key)) => Err(*key),
                None => {
                    physical.push(schema.field(i).clone());
                    Ok(physical.len() - 1)
                }
            })
            .collect();
        let envelope = envelope::schema(&format, &Fields::from(physical));
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(op_field());
        Self {
            format,
            output: Arc::new(Schema::new(fields)),
            envelope,
            columns,
        }
    }

    /// The schema the JSON decoder reads records into.
    pub(crate) fn envelope_schema(&self) -> SchemaRef {
        Arc::clone(&self.envelope)
    }

    /// The rows of `envelopes` (decoded with [`Self::envelope_schema`]),
    /// whose raw records `raw` gives (Maxwell's explicit nulls need them).
    pub(crate) fn expand<'a>(
        &self,
        envelopes: &RecordBatch,
        raw: &dyn Fn(usize) -> &'a [u8],
    ) -> Result<Expanded, ArrowError> {
        let mut root = StructArray::from(envelopes.clone());
        if self.format.protocol == Protocol::Debezium && self.format.schema_include {
            root = child(&root, "payload")?.as_struct().clone();
        }
        let images = self.images(&root, raw)?;
        let mut plan = Plan::default();
        for r in 0..root.len() {
            if let Err(why) = self.plan_record(&root, &images, r, &mut plan) {
                plan.invalid.push((r, why));
            }
        }
        let envelopes = UInt32Array::from(plan.envelopes);
        let mut columns = Vec::with_capacity(self.output.fields().len());
        for (column, field) in self.columns.iter().zip(self.output.fields()) {
            let array = match column {
                Ok(i) => interleave(
                    &[images.before.column(*i).as_ref(), images.after.column(*i).as_ref()],
                    &plan.picks,
                )?,
                Err(key) => key.values(self.format.protocol, &root, &envelopes)?,
            };
            columns.push(match array.data_type() == field.data_type() {
                true => array,
                false => cast(&array, field.data_type())?,
            });
        }
        columns.push(Arc::new(Int8Array::from(plan.kinds)));
        let batch = RecordBatch::try_new(Arc::clone(&self.output), columns)?;
        Ok(Expanded {
            batch,
            envelopes: envelopes.values().to_vec(),
            invalid: plan.invalid,
        })
    }

    /// The before and after images of every row the envelopes hold, and
    /// which of them belong to each envelope.
    fn images<'a>(&self, root: &StructArray, raw: &dyn Fn(usize) -> &'a [u8]) -> Result<Images, ArrowError> {
        match self.format.protocol {
            Protocol::Debezium => Ok(Images {
                before: child(root, "before")?.as_struct().clone(),
                after: child(root, "after")?.as_struct().clone(),
                rows: None,
            }),
            // `old` holds the changed columns only: the others are the
            // after image's; one `old` sets to null was NULL (`old_nulls.rs`).
            Protocol::Maxwell => {
                let after = child(root, "data")?.as_struct().clone();
                let before = overlay(child(root, "old")?.as_struct(), &after)?;
                let updates = (0..root.len()).filter(|r| text(root, "type", *r) == Some("update"));
                let before = super::old_nulls::apply(before, updates, raw)?;
                Ok(Images {
                    before,
                    after,
                    rows: None,
                })
            }
            Protocol::Canal => {
                let data = child(root, "data")?.as_list::<i32>();
                let old = child(root, "old")?.as_list::<i32>();
                let after = data.values().as_struct().clone();
                // Row `j` of a record's `data` pairs with row `j` of its `old`.
                let mut pair = Vec::with_capacity(after.len());
                for r in 0..root.len() {
                    let rows = data.value_offsets()[r] as usize..data.value_offsets()[r + 1] as usize;
                    let olds = old.value_offsets()[r] as usize..old.value_offsets()[r + 1] as usize;
                    pair.resize(rows.start, None);
                    for (n, _) in rows.enumerate() {
                        let o = olds.start + n;
                        pair.push((old.is_valid(r) && o < olds.end).then_some(o as u32));
                    }
                }
                pair.resize(after.len(), None);
                let olds = take(old.values(), &UInt32Array::from(pair), None)?;
                let before = overlay(olds.as_struct(), &after)?;
                let offsets = data.value_offsets().iter().map(|o| *o as usize).collect();
                Ok(Images {
                    before,
                    after,
                    rows: Some(offsets),
                })
            }
        }
    }

    /// Adds the rows of envelope `r` to `plan`, or says why it is invalid.
    fn plan_record(&self, root: &StructArray, images: &Images, r: usize, plan: &mut Plan) -> Result<(), String> {
        if !root.is_valid(r) {
            return Err("no \"payload\" object".into());
        }
        match self.format.protocol {
            Protocol::Debezium => self.plan_debezium(root, images, r, plan),
            Protocol::Canal => self.plan_canal(root, images, r, plan),
            Protocol::Maxwell => plan_maxwell(root, images, r, plan),
        }
    }

    fn plan_debezium(&self, root: &StructArray, images: &Images, r: usize, plan: &mut Plan) -> Result<(), String> {
        let op = text(root, "op", r);
        let before = || match images.before.is_valid(r) {
            true => Ok(()),
            // Flink's advice: Postgres sends no before image without it.
            false => Err(format!(
                "the \"before\" field of an \"op\": \"{}\" record is null (a Debezium Postgres connector \
                 sends it only for tables with REPLICA IDENTITY FULL)",
                op.unwrap_or_default()
            )),
        };
        let after = || match images.after.is_valid(r) {
            true => Ok(()),
            false => Err(format!(
                "the \"after\" field of an \"op\": \"{}\" record is null",
                op.unwrap_or_default()
            )),
        };
        match op {
            Some("c" | "r") => {
                after()?;
                plan.push(AFTER, r, r, RowKind::Insert);
            }
            Some("u") => {
                before()?;
                after()?;
                plan.push(BEFORE, r, r, RowKind::UpdateBefore);
                plan.push(AFTER, r, r, RowKind::UpdateAfter);
            }
            Some("d") => {
                before()?;
                plan.push(BEFORE, r, r, RowKind::Delete);
            }
            Some(other) => return Err(format!("unknown \"op\" value \"{other}\" (expected c, r, u or d)")),
            None if !self.format.schema_include => {
                return Err(
                    "no \"op\" field (a record wrapped in {\"schema\": …, \"payload\": …} needs \
                     'debezium-json.schema-include' = 'true')"
                        .into(),
                );
            }
            None => return Err("no \"op\" field".into()),
        }
        Ok(())
    }

    fn plan_canal(&self, root: &StructArray, images: &Images, r: usize, plan: &mut Plan) -> Result<(), String> {
        // Records of other databases or tables are not this table's.
        for (pattern, field) in [(&self.format.database, "database"), (&self.format.table, "table")] {
            if let Some(p) = pattern
                && !text(root, field, r).is_some_and(|v| p.is_match(v))
            {
                return Ok(());
            }
        }
        // A DDL statement changes no row.
        let ddl = root.column_by_name("isDdl").map(|c| c.as_boolean());
        if ddl.is_some_and(|d| d.is_valid(r) && d.value(r)) {
            return Ok(());
        }
        let rows = images.rows_of(r);
        let data = child(root, "data").map_err(|e| e.to_string())?;
        let kind = text(root, "type", r);
        if matches!(kind, Some("INSERT" | "UPDATE" | "DELETE")) && data.is_null(r) {
            return Err(format!("no \"data\" in a \"{}\" record", kind.unwrap_or_default()));
        }
        match kind {
            Some("INSERT") => rows.for_each(|j| plan.push(AFTER, j, r, RowKind::Insert)),
            Some("UPDATE") => {
                let old = child(root, "old").map_err(|e| e.to_string())?.as_list::<i32>();
                if old.is_null(r) || (old.value_length(r) as usize) < rows.len() {
                    return Err("an UPDATE record needs \"old\" with an entry per row of \"data\"".into());
                }
                for j in rows {
                    plan.push(BEFORE, j, r, RowKind::UpdateBefore);
                    plan.push(AFTER, j, r, RowKind::UpdateAfter);
                }
            }
            Some("DELETE") => rows.for_each(|j| plan.push(AFTER, j, r, RowKind::Delete)),
            // A table created, without rows yet (Canal's DDL events).
            Some("CREATE") => {}
            Some(other) => {
                return Err(format!(
                    "unknown \"type\" value \"{other}\" (expected INSERT, UPDATE or DELETE)"
                ));
            }
            None => return Err("no \"type\" field".into()),
        }
        Ok(())
    }
}

fn plan_maxwell(root: &StructArray, images: &Images, r: usize, plan: &mut Plan) -> Result<(), String> {
    let kind = text(root, "type", r);
    if matches!(kind, Some("insert" | "update" | "delete")) && images.after.is_null(r) {
        return Err(format!("no \"data\" in a \"{}\" record", kind.unwrap_or_default()));
    }
    match kind {
        Some("insert") => plan.push(AFTER, r, r, RowKind::Insert),
        Some("update") => {
            if child(root, "old").map_err(|e| e.to_string())?.is_null(r) {
                return Err("an update record needs \"old\"".into());
            }
            plan.push(BEFORE, r, r, RowKind::UpdateBefore);
            plan.push(AFTER, r, r, RowKind::UpdateAfter);
        }
        Some("delete") => plan.push(AFTER, r, r, RowKind::Delete),
        Some(other) => {
            return Err(format!(
                "unknown \"type\" value \"{other}\" (expected insert, update or delete)"
            ));
        }
        None => return Err("no \"type\" field".into()),
    }
    Ok(())
}

/// Every before and after image of a batch of envelopes.
struct Images {
    before: StructArray,
    after: StructArray,
    /// Canal: envelope `r` holds images `rows[r]..rows[r + 1]`; others
    /// hold image `r`.
    rows: Option<Vec<usize>>,
}

impl Images {
    fn rows_of(&self, r: usize) -> Range<usize> {
        match &self.rows {
            Some(offsets) => offsets[r]..offsets[r + 1],
            None => r..r + 1,
        }
    }
}

/// The rows to make, in order.
#[derive(Default)]
struct Plan {
    /// (image: [`BEFORE`] or [`AFTER`], its index) per row.
    picks: Vec<(usize, usize)>,
    kinds: Vec<i8>,
    envelopes: Vec<u32>,
    invalid: Vec<(usize, String)>,
}

impl Plan {
    fn push(&mut self, image: usize, index: usize, envelope: usize, kind: RowKind) {
        self.picks.push((image, index));
        self.kinds.push(kind as i8);
        self.envelopes.push(envelope as u32);
    }
}

fn child<'a>(root: &'a StructArray, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    root.column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("the envelope has no field '{name}'")))
}

/// The text field `name` of envelope `r`, if set.
fn text<'a>(root: &'a StructArray, name: &str, r: usize) -> Option<&'a str> {
    let column: &StringArray = root.column_by_name(name)?.as_string();
    column.is_valid(r).then(|| column.value(r))
}

/// `after` with every column `old` sets (not null) taken from `old`.
fn overlay(old: &StructArray, after: &StructArray) -> Result<StructArray, ArrowError> {
    let columns = (0..after.num_columns())
        .map(|i| {
            let set = NullBuffer::union(old.nulls(), old.column(i).logical_nulls().as_ref());
            match set {
                None => Ok(Arc::clone(old.column(i))),
                Some(set) => zip(
                    &BooleanArray::new(set.into_inner(), None),
                    old.column(i),
                    after.column(i),
                ),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    StructArray::try_new(after.fields().clone(), columns, after.nulls().cloned())
}
