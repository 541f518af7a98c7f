//! Printing results and errors for people: aligned tables (comfy-table),
//! psql's expanded display for rows too wide for the terminal, and errors
//! with a caret under the offending token.

use comfy_table::{ContentArrangement, Table};
use console::{Alignment, measure_text_width, pad_str};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use weir_sql::SqlError;

/// The borders of arrow's pretty printer, which `weir run`, piped scripts
/// and files have always shown (and scripts may parse).
const ASCII: &str = "||--+-++|    ++++++";

/// Whether rows print as a table or one `column | value` line per column
/// (psql's `\x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expanded {
    Off,
    On,
    /// Expanded only when the table would be wider than the terminal.
    Auto,
}

/// How results are laid out where they are going.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Box-drawing borders on a terminal; ASCII elsewhere.
    pub unicode: bool,
    /// The terminal's width; `None` for pipes and files, never wrapped.
    pub width: Option<u16>,
    pub expanded: Expanded,
}

impl Layout {
    /// For `weir run`, pipes and files: ASCII, as wide as the rows.
    pub const PLAIN: Layout = Layout {
        unicode: false,
        width: None,
        expanded: Expanded::Off,
    };
}

/// Column names and every cell of `batches`, as arrow displays them.
pub fn cells(schema: &Schema, batches: &[RecordBatch]) -> Result<(Vec<String>, Vec<Vec<String>>), ArrowError> {
    let header = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = Vec::new();
    for batch in batches {
        rows.extend(rows_of(batch)?);
    }
    Ok((header, rows))
}

/// The cells of one batch, row by row.
pub fn rows_of(batch: &RecordBatch) -> Result<Vec<Vec<String>>, ArrowError> {
    let options = FormatOptions::default().with_display_error(true);
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..batch.num_rows())
        .map(|r| formatters.iter().map(|f| f.value(r).to_string()).collect())
        .collect())
}

/// Renders batches as an ASCII table (`weir run`).
pub fn table(batches: &[RecordBatch]) -> String {
    let Some(first) = batches.first() else {
        return String::new();
    };
    match cells(&first.schema(), batches) {
        Ok((header, rows)) => render(&header, &rows, &Layout::PLAIN),
        Err(e) => format!("(cannot display the result: {e})"),
    }
}

/// Renders rows under `header` as `layout` says.
pub fn render(header: &[String], rows: &[Vec<String>], layout: &Layout) -> String {
    match (layout.expanded, layout.width) {
        (Expanded::On, width) => expanded(header, rows, width),
        (Expanded::Auto, Some(width)) => {
            let natural = grid(header, rows, layout, None);
            let widest = natural.lines().map(measure_text_width).max().unwrap_or(0);
            if widest > usize::from(width) && !rows.is_empty() {
                expanded(header, rows, Some(width))
            } else {
                natural
            }
        }
        (_, width) => grid(header, rows, layout, width),
    }
}

/// A table, wrapped to `width` when given.
fn grid(header: &[String], rows: &[Vec<String>], layout: &Layout, width: Option<u16>) -> String {
    let mut t = Table::new();
    if layout.unicode {
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .apply_modifier(comfy_table::modifiers::UTF8_ROUND_CORNERS);
    } else {
        t.load_preset(ASCII);
    }
    if let Some(w) = width {
        t.set_width(w).set_content_arrangement(ContentArrangement::Dynamic);
    }
    t.set_header(header);
    t.add_rows(rows);
    t.to_string()
}

/// psql's expanded display: a `-[ RECORD n ]-` line, then `column | value`
/// for each column; the rule no wider than the terminal.
fn expanded(header: &[String], rows: &[Vec<String>], width: Option<u16>) -> String {
    let names = header.iter().map(|h| measure_text_width(h)).max().unwrap_or(0);
    let values = rows
        .iter()
        .flatten()
        .flat_map(|v| v.lines())
        .map(measure_text_width)
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let title = format!("-[ RECORD {} ]", i + 1);
        let full = (names + values + 3).min(width.map_or(usize::MAX, usize::from));
        let rule = full.saturating_sub(measure_text_width(&title));
        out.push(format!("{title}{}", "-".repeat(rule)));
        for (name, value) in header.iter().zip(row) {
            let mut lines = value.lines();
            let first = lines.next().unwrap_or_default();
            out.push(format!("{} | {first}", pad_str(name, names, Alignment::Left, None)));
            for more in lines {
                out.push(format!("{} | {more}", " ".repeat(names)));
            }
        }
    }
    out.join("\n")
}

/// An error about a statement: `where: error: message`, then the offending
/// line with a caret under the position, when known.
pub fn error(origin: &str, script: &str, e: &SqlError) -> String {
    match e.position() {
        Some(p) => {
            let mut s = format!("{origin}:{}:{}: error: {e}", p.line, p.column);
            let line = usize::try_from(p.line).ok().and_then(|l| script.lines().nth(l.checked_sub(1)?));
            if let Some(line) = line {
                let (shown, caret) = around(line, usize::try_from(p.column).unwrap_or(1).saturating_sub(1));
                let indent: String = shown.chars().take(caret).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                s.push_str(&format!("\n  {shown}\n  {indent}^"));
            }
            s
        }
        None => format!("{origin}: error: {e}"),
    }
}

/// Characters of a quoted line shown on each side of the caret: a
/// generated statement can be one line of megabytes.
const QUOTED_CHARS: usize = 60;

/// The part of `line` shown under an error, `…` where cut, and the
/// caret's character position in it.
fn around(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let from = column.saturating_sub(QUOTED_CHARS);
    let to = chars.len().min(column.saturating_add(QUOTED_CHARS));
    let mut shown: String = chars.get(from..to).unwrap_or_default().iter().collect();
    let mut caret = column - from;
    if from > 0 {
        shown.insert(0, '…');
        caret += 1;
    }
    if to < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> (Vec<String>, Vec<Vec<String>>) {
        (
            vec!["channel".into(), "total".into()],
            vec![vec!["web".into(), "250".into()], vec!["store".into(), "1000".into()]],
        )
    }

    #[test]
    fn errors_quote_a_window_of_long_lines() {
        let line = format!("{}x{}", "a".repeat(1000), "b".repeat(1000));
        let (shown, caret) = around(&line, 1000);
        assert_eq!(shown.chars().nth(caret), Some('x'));
        assert_eq!(shown.chars().count(), 2 * QUOTED_CHARS + 2);
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        let (shown, caret) = around("SELECT x", 7);
        assert_eq!((shown.as_str(), caret), ("SELECT x", 7));
    }

    #[test]
    fn plain_tables_keep_arrow_s_ascii_borders() {
        let (h, r) = rows();
        let t = render(&h, &r, &Layout::PLAIN);
        assert_eq!(
            t,
            "+---------+-------+\n| channel | total |\n+---------+-------+\n| web     | 250   |\n| store   | 1000  |\n+---------+-------+"
        );
    }

    #[test]
    fn auto_expands_rows_wider_than_the_terminal() {
        let (h, r) = rows();
        let narrow = Layout {
            unicode: true,
            width: Some(10),
            expanded: Expanded::Auto,
        };
        let t = render(&h, &r, &narrow);
        assert!(t.starts_with("-[ RECORD 1 ]"), "{t}");
        assert!(t.contains("channel | store\ntotal   | 1000"), "{t}");
        let wide = Layout { width: Some(80), ..narrow };
        assert!(render(&h, &r, &wide).contains("│ store   ┆ 1000  │"));
    }

    #[test]
    fn wide_tables_wrap_when_not_expanded() {
        let h = vec!["statement".to_string()];
        let r = vec![vec!["SELECT a, b, c, d FROM a_rather_long_table_name".to_string()]];
        let layout = Layout {
            unicode: false,
            width: Some(30),
            expanded: Expanded::Off,
        };
        let t = render(&h, &r, &layout);
        assert!(t.lines().all(|l| measure_text_width(l) <= 30), "{t}");
        assert!(t.lines().count() > 5, "{t}");
    }
}
