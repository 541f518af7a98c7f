//! Unnest: each row once per element of its ARRAY columns, for Flink's
//! `CROSS JOIN UNNEST(…)` (and `LEFT JOIN UNNEST(…) ON TRUE`). Stateless:
//! one input row becomes zero or more output rows, the other columns
//! repeated.
//!
//! DataFusion's `UnnestExec` does the expanding (its kernels are private
//! to it): for every batch the operator runs a copy of one prepared
//! `UnnestExec` over that batch alone, which completes without waiting.
//! A batch's per-row watermarks ride along as one more column, so that
//! every output row keeps the watermark of the row it came from.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{NullHandling, UnnestOptions};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::unnest::{ListUnnest, UnnestExec};
use datafusion::physical_plan::{ChildrenPropertiesMode, ExecutionPlan, ReplaceChildrenOptions};
use futures::{FutureExt, TryStreamExt};

use crate::error::{EngineError, Result, ResultExt};
use crate::message::StreamBatch;
use crate::operator::{Collector, Operator};
use crate::plan::{OperatorContext, OperatorSpec};

/// The name of the column that carries per-row watermarks through the
/// expansion.
const ROW_WATERMARK: &str = "__weir_row_watermark";

/// Which columns an unnest expands, and into what.
#[derive(Debug)]
pub struct UnnestPlan {
    /// Input columns of ARRAY type: each element becomes a row, in the
    /// column's place. Several arrays expand side by side, the shorter
    /// padded with NULL, as in Flink's `UNNEST(a, b)`.
    pub lists: Vec<usize>,
    /// Input columns of ROW type whose fields become columns in their
    /// place.
    pub structs: Vec<usize>,
    /// Rows whose arrays are all NULL or empty are kept once, with NULL
    /// elements (`LEFT JOIN UNNEST … ON TRUE`), instead of dropped.
    pub keep_empty: bool,
    /// The rows it reads.
    pub input: SchemaRef,
    /// The rows it yields: the input's, expanded columns in their places.
    pub schema: SchemaRef,
}

impl UnnestPlan {
    /// DataFusion's unnest over rows of `input` producing `output`.
    fn exec(&self, input: SchemaRef, output: SchemaRef) -> datafusion::error::Result<Arc<UnnestExec>> {
        let lists = self.lists.iter().map(|i| ListUnnest { index_in_input_schema: *i, depth: 1 }).collect();
        let nulls = if self.keep_empty { NullHandling::PreserveAndExpandEmpty } else { NullHandling::Drop };
        let options = UnnestOptions::new().with_null_handling(nulls);
        let placeholder = Arc::new(EmptyExec::new(input));
        Ok(Arc::new(UnnestExec::new(placeholder, lists, self.structs.clone(), output, options)?))
    }
}

impl OperatorSpec for UnnestPlan {
    fn name(&self) -> String {
        "Unnest".into()
    }

    fn explain(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |i: &usize| match self.input.fields().get(*i) {
            Some(field) => format!("{}@{i}", field.name()),
            None => format!("@{i}"),
        };
        let lists: Vec<String> = self.lists.iter().map(name).collect();
        write!(f, "  Unnest: {}", lists.join(", "))?;
        if self.keep_empty {
            write!(f, " (rows without elements kept, with NULL)")?;
        }
        writeln!(f)?;
        if !self.structs.is_empty() {
            let structs: Vec<String> = self.structs.iter().map(name).collect();
            writeln!(f, "    rows into columns: {}", structs.join(", "))?;
        }
        Ok(())
    }

    fn instantiate(self: Arc<Self>, name: String, _cx: &OperatorContext) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Unnest::new(self, name)?))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The prepared expansion of batches of one shape.
struct Prepared {
    exec: Arc<UnnestExec>,
    input: SchemaRef,
}

/// An unnest subtask.
pub struct Unnest {
    plan: Arc<UnnestPlan>,
    name: String,
    task: Arc<TaskContext>,
    /// For batches without per-row watermarks.
    plain: Prepared,
    /// For batches with them: the watermark is the last column in and out.
    watermarked: Prepared,
}

impl Unnest {
    /// A subtask of `plan`, with DataFusion's unnest prepared for batches
    /// with and without per-row watermarks.
    pub fn new(plan: Arc<UnnestPlan>, name: String) -> Result<Self> {
        let context = || format!("{name}: preparing");
        let plain = Prepared {
            exec: plan.exec(Arc::clone(&plan.input), Arc::clone(&plan.schema)).context(context)?,
            input: Arc::clone(&plan.input),
        };
        let input = with_watermark(&plan.input);
        let watermarked =
            Prepared { exec: plan.exec(Arc::clone(&input), with_watermark(&plan.schema)).context(context)?, input };
        Ok(Self { plan, name, task: Arc::new(TaskContext::default()), plain, watermarked })
    }

    /// `columns` expanded by the prepared unnest, as the batches it yields.
    fn expand(&self, prepared: &Prepared, columns: Vec<ArrayRef>, rows: usize) -> Result<Vec<RecordBatch>> {
        let context = || format!("{}: unnesting", self.name);
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let data =
            RecordBatch::try_new_with_options(Arc::clone(&prepared.input), columns, &options).context(context)?;
        let input =
            MemorySourceConfig::try_new_exec(&[vec![data]], Arc::clone(&prepared.input), None).context(context)?;
        let exec = Arc::clone(&prepared.exec)
            .replace_children(
                vec![input as Arc<dyn ExecutionPlan>],
                ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
            )
            .context(context)?;
        let stream = exec.execute(0, Arc::clone(&self.task)).context(context)?;
        // A batch in memory never makes the stream wait.
        match stream.try_collect::<Vec<_>>().now_or_never() {
            Some(batches) => batches.context(context),
            None => Err(EngineError::Plan(format!("{}: the unnest of a batch in memory did not complete", self.name))),
        }
    }
}

/// `schema` with the per-row watermark column after its own.
fn with_watermark(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(ROW_WATERMARK, DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

impl Operator for Unnest {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_batch(&mut self, batch: StreamBatch, out: &mut Collector) -> Result<()> {
        let rows = batch.num_rows();
        let mut columns = batch.data.columns().to_vec();
        let Some(watermarks) = batch.row_watermarks else {
            for data in self.expand(&self.plain, columns, rows)? {
                out.batch(StreamBatch::new(data));
            }
            return Ok(());
        };
        columns.push(Arc::new(watermarks) as ArrayRef);
        for expanded in self.expand(&self.watermarked, columns, rows)? {
            let mut columns = expanded.columns().to_vec();
            let watermarks = columns
                .pop()
                .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
                .ok_or_else(|| EngineError::Plan(format!("{}: row watermarks lost in the unnest", self.name)))?;
            let options = RecordBatchOptions::new().with_row_count(Some(expanded.num_rows()));
            let data = RecordBatch::try_new_with_options(Arc::clone(&self.plan.schema), columns, &options)
                .context(|| format!("{}: building batch", self.name))?;
            out.batch(StreamBatch { data, row_watermarks: Some(watermarks) });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int32Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;
    use crate::operator::Emitted;

    /// Rows `id`, `tags`: `[1, 2]`, NULL, `[]`, `[3, NULL]`, with per-row
    /// watermarks 10‥40, through an unnest of `tags`.
    fn run(keep_empty: bool) -> (Vec<i64>, Vec<Option<i32>>, Vec<i64>) {
        let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![]),
            Some(vec![Some(3), None]),
        ]);
        let input = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", tags.data_type().clone(), true),
        ]));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tag", DataType::Int32, true),
        ]));
        let plan =
            Arc::new(UnnestPlan { lists: vec![1], structs: vec![], keep_empty, input: Arc::clone(&input), schema });
        let mut op = Unnest::new(plan, "unnest".into()).expect("prepared");
        let data = RecordBatch::try_new(input, vec![Arc::new(Int64Array::from(vec![0, 1, 2, 3])), Arc::new(tags)])
            .expect("batch");
        let batch = StreamBatch { data, row_watermarks: Some(Int64Array::from(vec![10, 20, 30, 40])) };
        let mut out = Collector::default();
        op.on_batch(batch, &mut out).expect("unnested");
        let (mut ids, mut tags, mut watermarks) = (Vec::new(), Vec::new(), Vec::new());
        for e in out.out {
            let Emitted::Data(b) = e else { continue };
            ids.extend(b.data.column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>().values());
            let t = b.data.column(1).as_any().downcast_ref::<Int32Array>().expect("INT tags");
            tags.extend(t.iter());
            watermarks.extend(b.row_watermarks.expect("watermarks kept").values().iter().copied());
        }
        (ids, tags, watermarks)
    }

    #[test]
    fn elements_become_rows_with_their_rows_watermark() {
        let (ids, tags, watermarks) = run(false);
        assert_eq!(ids, vec![0, 0, 3, 3]);
        assert_eq!(tags, vec![Some(1), Some(2), Some(3), None]);
        assert_eq!(watermarks, vec![10, 10, 40, 40]);
    }

    #[test]
    fn rows_without_elements_stay_once_when_kept() {
        let (ids, tags, watermarks) = run(true);
        assert_eq!(ids, vec![0, 0, 1, 2, 3, 3]);
        assert_eq!(tags, vec![Some(1), Some(2), None, None, Some(3), None]);
        assert_eq!(watermarks, vec![10, 10, 20, 30, 40, 40]);
    }
}
