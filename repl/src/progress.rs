//! `weir run`'s progress on a terminal: for each job, the rows its sources
//! have read, out of the rows its bounded inputs hold when that is known
//! (a datagen row count or sequence, the lines of a file source), and the
//! rate. Nothing is drawn when standard error is not a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use weir_engine::runtime::job::JobHandle;
use weir_sql::Session;
use weir_sql::catalog::TableDef;

/// How often the bars read the jobs' counters.
const TICK: Duration = Duration::from_millis(200);

/// Bars that follow the session's jobs until dropped.
pub struct Progress {
    bars: MultiProgress,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts a bar per job of `session`; `None` off a terminal.
    pub fn start(session: &Session) -> Option<Self> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let mut followed = Vec::new();
        for job in session.jobs() {
            let tables: Vec<TableDef> = job
                .metrics
                .source_tables()
                .iter()
                .filter_map(|t| session.catalog().get(t).map(|d| d.as_ref().clone()))
                .collect();
            let bar = bars.add(ProgressBar::no_length());
            bar.set_style(style(false));
            bar.set_prefix(job.id.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            let sized = bar.clone();
            // Counting a file's lines reads it: not on the runtime's threads.
            tokio::task::spawn_blocking(move || {
                if let Some(total) = total_rows(&tables) {
                    sized.set_length(total);
                    sized.set_style(style(true));
                }
            });
            followed.push((job.clone(), bar));
        }
        let ticker = tokio::spawn(follow(followed));
        Some(Self { bars, ticker })
    }

    /// Prints a line above the bars.
    pub fn println(&self, line: &str) {
        self.bars.suspend(|| eprintln!("{line}"));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        let _ = self.bars.clear();
    }
}

fn style(sized: bool) -> ProgressStyle {
    let template = if sized {
        "{spinner:.green} job {prefix} [{bar:30.cyan/blue}] {human_pos}/{human_len} rows ({rate}, {eta} left)"
    } else {
        "{spinner:.green} job {prefix} {human_pos} rows ({rate})"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{} rows/s", HumanCount(state.per_sec() as u64));
        })
        .progress_chars("=> ")
}

/// Moves each bar to the rows its job has read; ends a bar with its job.
async fn follow(jobs: Vec<(JobHandle, ProgressBar)>) {
    loop {
        for (job, bar) in &jobs {
            if bar.is_finished() {
                continue;
            }
            bar.set_position(job.metrics.totals().rows_from_sources);
            if job.status().is_done() {
                bar.finish_and_clear();
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Rows the tables hold, if every one is bounded and its size known.
fn total_rows(tables: &[TableDef]) -> Option<u64> {
    tables.iter().map(rows_of).sum()
}

fn rows_of(table: &TableDef) -> Option<u64> {
    let option = |k: &str| table.options.get(k).map(String::as_str);
    match table.connector.connector.as_str() {
        "datagen" => {
            let mut limit = option("number-of-rows").and_then(|n| n.parse::<u64>().ok());
            for f in table.schema.fields() {
                let key = |o: &str| option(&format!("fields.{}.{o}", f.name()));
                if key("kind").is_some_and(|k| k.eq_ignore_ascii_case("sequence")) {
                    let start: i128 = key("start")?.parse().ok()?;
                    let end: i128 = key("end")?.parse().ok()?;
                    let n = u64::try_from(end - start + 1).unwrap_or(0);
                    limit = Some(limit.map_or(n, |l| l.min(n)));
                }
            }
            limit
        }
        "filesystem" => {
            // As the source lists them: visible files; a named pipe has no
            // end to count to.
            let path = Path::new(option("path")?);
            if !path.is_dir() {
                return lines(path);
            }
            std::fs::read_dir(path)
                .ok()?
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with(['.', '_']))
                .map(|e| lines(&e.path()))
                .sum()
        }
        _ => None,
    }
}

/// Records in a file of JSON lines or CSV: its non-empty lines; `None`
/// for anything but a regular file.
fn lines(path: &Path) -> Option<u64> {
    use std::io::BufRead;
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let mut n = 0;
    for line in file.split(b'\n') {
        if !line.ok()?.trim_ascii().is_empty() {
            n += 1;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use weir_sql::parse_script;

    use super::*;

    async fn table(session: &mut Session, ddl: &str, name: &str) -> TableDef {
        for s in parse_script(ddl).expect("parse") {
            session.execute(&s).await.map_err(|e| e.to_string()).expect("create");
        }
        session.catalog().get(name).expect("declared").as_ref().clone()
    }

    #[tokio::test]
    async fn totals_of_bounded_sources() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a.json"), "{\"n\": 1}\n\n{\"n\": 2}\n{\"n\": 3}").expect("a");
        std::fs::write(dir.path().join("b.json"), "{\"n\": 4}\n").expect("b");
        std::fs::write(dir.path().join(".hidden"), "{\"n\": 5}\n").expect("hidden");
        let mut s = Session::new();
        let files = table(
            &mut s,
            &format!(
                "CREATE TABLE f (n BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
                dir.path().display()
            ),
            "f",
        )
        .await;
        assert_eq!(rows_of(&files), Some(4));
        let counted = table(
            &mut s,
            "CREATE TABLE g (n BIGINT, m BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100',
               'fields.n.kind' = 'sequence', 'fields.n.start' = '10', 'fields.n.end' = '39');",
            "g",
        )
        .await;
        assert_eq!(rows_of(&counted), Some(30));
        let endless = table(&mut s, "CREATE TABLE h (n BIGINT) WITH ('connector' = 'datagen');", "h").await;
        assert_eq!(rows_of(&endless), None);
        assert_eq!(total_rows(&[files, counted]), Some(34));
    }
}
