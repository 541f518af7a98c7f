//! Flink's `FLOOR(ts TO unit)` and `CEIL(ts TO unit)` (`unit` SECOND …
//! YEAR), which DataFusion parses but does not plan: the floor is
//! `date_trunc`, the ceiling the floor plus one unit unless the value is
//! already on it. (Of a DATE the result is a TIMESTAMP, where Flink's is a
//! DATE.)

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{CeilFloorKind, DateTimeField, Expr, Query, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::parser::Parser;

use crate::dialect::WeirDialect;

/// Rewrites every `FLOOR/CEIL(… TO unit)` in `query`.
pub fn rewrite(query: &mut Query) {
    let _ = query.visit(&mut FloorCeil);
}

struct FloorCeil;

/// DataFusion's name of a unit Flink floors and ceils to.
fn unit(field: &DateTimeField) -> Option<&'static str> {
    Some(match field {
        DateTimeField::Second | DateTimeField::Seconds => "SECOND",
        DateTimeField::Minute | DateTimeField::Minutes => "MINUTE",
        DateTimeField::Hour | DateTimeField::Hours => "HOUR",
        DateTimeField::Day | DateTimeField::Days => "DAY",
        DateTimeField::Month | DateTimeField::Months => "MONTH",
        DateTimeField::Quarter => "QUARTER",
        DateTimeField::Year | DateTimeField::Years => "YEAR",
        _ => return None,
    })
}

impl VisitorMut for FloorCeil {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let (inner, field, ceil) = match expr {
            Expr::Floor {
                expr: inner,
                field: CeilFloorKind::DateTimeField(f),
            } => (inner, f, false),
            Expr::Ceil {
                expr: inner,
                field: CeilFloorKind::DateTimeField(f),
            } => (inner, f, true),
            _ => return ControlFlow::Continue(()),
        };
        let Some(unit) = unit(field) else {
            return ControlFlow::Continue(());
        };
        // A quarter is three months: INTERVAL '1' QUARTER is not SQL.
        let (n, step) = if unit == "QUARTER" { (3, "MONTH") } else { (1, unit) };
        let floor = format!("date_trunc('{}', {inner})", unit.to_lowercase());
        let text = match ceil {
            false => floor,
            true => format!("CASE WHEN {floor} = {inner} THEN {inner} ELSE {floor} + INTERVAL '{n}' {step} END"),
        };
        if let Ok(new) = Parser::new(&WeirDialect::default())
            .try_with_sql(&text)
            .and_then(|mut p| p.parse_expr())
        {
            *expr = new;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use crate::script::parse_script;
    use crate::session::{Outcome, Session};

    /// Flink's documented examples (`FLOOR(TIME '12:44:31' TO MINUTE)` is
    /// `12:44:00`), on timestamps.
    #[tokio::test]
    async fn floors_and_ceilings_of_times() {
        let mut s = Session::new();
        let sql = "SELECT CAST(FLOOR(TIMESTAMP '2024-05-17 12:44:31.500' TO MINUTE) AS STRING) AS a, \
                   CAST(CEIL(TIMESTAMP '2024-05-17 12:44:31' TO HOUR) AS STRING) AS b, \
                   CAST(CEIL(TIMESTAMP '2024-05-17 12:00:00' TO HOUR) AS STRING) AS c, \
                   CAST(FLOOR(TIMESTAMP '2024-05-17 12:44:31' TO QUARTER) AS STRING) AS d, \
                   CAST(CEIL(TIMESTAMP '2024-05-17 12:44:31' TO YEAR) AS STRING) AS e";
        let statement = parse_script(sql).unwrap().remove(0);
        let Outcome::Table(batches) = s.execute(&statement).await.unwrap() else {
            panic!("not a table")
        };
        let b = &batches[0];
        let got: Vec<String> = (0..b.num_columns())
            .map(|i| {
                let options = datafusion::arrow::util::display::FormatOptions::default();
                datafusion::arrow::util::display::ArrayFormatter::try_new(b.column(i).as_ref(), &options)
                    .unwrap()
                    .value(0)
                    .to_string()
            })
            .collect();
        assert_eq!(
            got,
            [
                "2024-05-17 12:44:00.000",
                "2024-05-17 13:00:00.000",
                "2024-05-17 12:00:00.000",
                "2024-04-01 00:00:00.000",
                "2025-01-01 00:00:00.000"
            ]
        );
    }
}
