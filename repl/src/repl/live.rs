//! The rows of a `SELECT` over a stream, as they arrive. On a terminal, a
//! table redrawn in place: windows appear as they fire, and a window that
//! fires again (allowed lateness, early emission) replaces its row, found
//! by its key (group columns and window). Elsewhere (a pipe, `\o`), each
//! batch prints as it comes, a log that scripts can read.

use std::collections::HashMap;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use weir_engine::changelog::{self, RowKind};
use weir_engine::runtime::job::{JobHandle, JobStatus};

use crate::output::{self, Expanded, Layout};

use super::destination::Destination;

/// Lines kept free around the live table (prompt, status, borders).
const MARGIN: usize = 8;

/// The rows so far, one per key.
struct Rows {
    header: Vec<String>,
    key: Option<Vec<usize>>,
    rows: Vec<Vec<String>>,
    by_key: HashMap<Vec<String>, usize>,
    updated: u64,
}

impl Rows {
    fn new(schema: &SchemaRef, key: Option<Vec<usize>>) -> Self {
        Self {
            header: schema.fields().iter().map(|f| f.name().clone()).collect(),
            key,
            rows: Vec::new(),
            by_key: HashMap::new(),
            updated: 0,
        }
    }

    /// Adds the batch's rows; a row whose key is known replaces the old.
    /// A changelog's `-D` removes its key's row, and so does a `-U` whose
    /// `+U` does not follow in the batch (a filter dropped it); without a
    /// key, `-U` and `-D` remove an equal row.
    fn apply(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let (visible, kinds) = changelog::split(batch);
        let mut withdrawn: Vec<Vec<String>> = Vec::new();
        for (r, row) in output::rows_of(&visible)?.into_iter().enumerate() {
            let kind = kinds.as_ref().map_or(RowKind::Insert, |k| k.get(r));
            let Some(key) = &self.key else {
                if kind.retracts() {
                    if let Some(i) = self.rows.iter().rposition(|x| *x == row) {
                        self.rows.remove(i);
                        self.updated += 1;
                    }
                } else {
                    self.rows.push(row);
                }
                continue;
            };
            let k: Vec<String> = key.iter().filter_map(|i| row.get(*i).cloned()).collect();
            if kind.retracts() {
                withdrawn.push(k);
                continue;
            }
            withdrawn.retain(|w| *w != k);
            match self.by_key.get(&k) {
                Some(i) => {
                    self.rows[*i] = row;
                    self.updated += 1;
                }
                None => {
                    self.by_key.insert(k, self.rows.len());
                    self.rows.push(row);
                }
            }
        }
        for k in withdrawn {
            if let Some(i) = self.by_key.remove(&k) {
                self.rows.remove(i);
                for at in self.by_key.values_mut() {
                    if *at > i {
                        *at -= 1;
                    }
                }
                self.updated += 1;
            }
        }
        Ok(())
    }

    /// The newest rows that fit in `height` lines, and how many are left
    /// out above them.
    fn tail(&self, height: usize) -> (usize, &[Vec<String>]) {
        let shown = height.saturating_sub(MARGIN).max(1);
        let skipped = self.rows.len().saturating_sub(shown);
        (skipped, &self.rows[skipped..])
    }

    fn summary(&self) -> String {
        let n = self.rows.len();
        let mut s = format!("({n} row{})", if n == 1 { "" } else { "s" });
        if self.updated > 0 {
            s.push_str(&format!(", {} updated", self.updated));
        }
        s
    }
}

/// How a live query ended.
pub enum Ended {
    Finished,
    /// Ctrl-C: the job was cancelled.
    Cancelled,
    Failed(String),
}

/// Shows the rows of a streaming query until it ends or Ctrl-C stops it;
/// then prints them all (on a terminal) and cancels the job if it runs.
pub async fn show(
    job: &JobHandle,
    schema: &SchemaRef,
    key: Option<Vec<usize>>,
    mut batches: mpsc::Receiver<RecordBatch>,
    dest: &mut Destination,
    expanded: Expanded,
) -> Ended {
    let mut rows = Rows::new(schema, key);
    let layout = dest.layout(expanded);
    let bar = dest.is_terminal().then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{msg}\n{spinner:.green} {prefix} [{elapsed}] Ctrl-C stops the query")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut cancelled = false;
    loop {
        tokio::select! {
            batch = batches.recv() => match batch {
                Some(b) => {
                    if let Err(e) = rows.apply(&b) {
                        eprintln!("error: cannot display the rows: {e}");
                        continue;
                    }
                    match &bar {
                        Some(bar) => redraw(bar, &rows, job, &layout),
                        None => {
                            let (header, fresh) = log_rows(&rows.header, &b);
                            if let Err(e) = dest.line(&output::render(&header, &fresh, &layout)) {
                                eprintln!("error: cannot write the results: {e}");
                            }
                        }
                    }
                }
                None => break,
            },
            _ = &mut ctrl_c => {
                job.cancel();
                cancelled = true;
                break;
            }
        }
    }
    let status = job.wait().await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
        let table = output::render(&rows.header, &rows.rows, &layout);
        if let Err(e) = dest.line(&format!("{table}\n{}", rows.summary())) {
            eprintln!("error: cannot write the results: {e}");
        }
    }
    match status {
        _ if cancelled => Ended::Cancelled,
        JobStatus::Failed(why) => Ended::Failed(why.message),
        JobStatus::Cancelled => Ended::Cancelled,
        JobStatus::Finished | JobStatus::Running | JobStatus::Restarting => Ended::Finished,
    }
}

/// The rows of a batch as a log prints them: a changelog's with their kind
/// (`+I`, `-U`, `+U`, `-D`) in a first column `op`, as Flink's SQL client
/// shows changes.
fn log_rows(header: &[String], batch: &RecordBatch) -> (Vec<String>, Vec<Vec<String>>) {
    let (visible, kinds) = changelog::split(batch);
    let rows = output::rows_of(&visible).unwrap_or_default();
    let Some(kinds) = kinds else {
        return (header.to_vec(), rows);
    };
    let header = std::iter::once("op".to_string()).chain(header.iter().cloned()).collect();
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(r, row)| std::iter::once(kinds.get(r).short().to_string()).chain(row).collect())
        .collect();
    (header, rows)
}

/// Redraws the newest rows and the status line.
fn redraw(bar: &ProgressBar, rows: &Rows, job: &JobHandle, layout: &Layout) {
    let height = console::Term::stdout().size_checked().map_or(24, |(h, _)| usize::from(h));
    let (skipped, tail) = rows.tail(height);
    let mut msg = String::new();
    if skipped > 0 {
        msg.push_str(&format!("… {skipped} earlier rows\n"));
    }
    msg.push_str(&output::render(&rows.header, tail, layout));
    bar.set_message(msg);
    let watermark = job
        .metrics
        .watermark()
        .and_then(timestamp_ms_to_datetime)
        .map(|t| format!(", watermark {}", t.format("%Y-%m-%dT%H:%M:%S%.3f")))
        .unwrap_or_default();
    bar.set_prefix(format!("{}{watermark}", rows.summary()));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(schema: &SchemaRef, keys: &[&str], counts: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::clone(schema),
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(counts.to_vec())),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn a_window_that_fires_again_replaces_its_row() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("window_start", DataType::Utf8, false),
            Field::new("c", DataType::Int64, false),
        ]));
        let mut rows = Rows::new(&schema, Some(vec![0]));
        rows.apply(&batch(&schema, &["00:00", "00:10"], &[10, 10])).expect("apply");
        rows.apply(&batch(&schema, &["00:00", "00:20"], &[11, 3])).expect("apply");
        assert_eq!(
            rows.rows,
            vec![vec!["00:00".to_string(), "11".into()], vec!["00:10".into(), "10".into()], vec!["00:20".into(), "3".into()]]
        );
        assert_eq!(rows.updated, 1);
        let mut log = Rows::new(&schema, None);
        log.apply(&batch(&schema, &["00:00", "00:00"], &[1, 2])).expect("apply");
        assert_eq!(log.rows.len(), 2);
        assert_eq!(log.tail(MARGIN + 1), (1, &log.rows[1..]));
    }
}
