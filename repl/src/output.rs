//! Printing results and errors for people.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use weir_sql::SqlError;

/// Renders batches as an aligned table.
pub fn table(batches: &[RecordBatch]) -> String {
    match pretty_format_batches(batches) {
        Ok(t) => t.to_string(),
        Err(e) => format!("(cannot display the result: {e})"),
    }
}

/// An error about a statement: `where: error: message`, then the offending
/// line with a caret under the position, when known.
pub fn error(origin: &str, script: &str, e: &SqlError) -> String {
    match e.position() {
        Some(p) => {
            let mut s = format!("{origin}:{}:{}: error: {e}", p.line, p.column);
            if let Some(line) = script.lines().nth(p.line as usize - 1) {
                let indent: String = line
                    .chars()
                    .take(p.column as usize - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                s.push_str(&format!("\n  {line}\n  {indent}^"));
            }
            s
        }
        None => format!("{origin}: error: {e}"),
    }
}
