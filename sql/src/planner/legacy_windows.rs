//! Flink's legacy group windows, still in most production SQL:
//! `GROUP BY TUMBLE(ts, INTERVAL '1' HOUR), k` with `TUMBLE_START(…)`,
//! `TUMBLE_END(…)` and `TUMBLE_ROWTIME(…)` in the select list (and the
//! `HOP` and `SESSION` forms), rewritten into the window TVF query they
//! mean:
//!
//! ```sql
//! SELECT window_start, k, count(*)
//! FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' HOUR))
//! GROUP BY window_start, window_end, k
//! ```
//!
//! so that they run exactly as window TVFs do (late data, checkpoints,
//! EXPLAIN). `*_START` is the window's start, `*_END` its (exclusive) end,
//! `*_ROWTIME` its last millisecond (`window_time`), as Flink defines them.
//! The TVF is named with `window_tvf::LEGACY_PREFIX`, so that columns of its
//! input named like the window's (a view of an earlier window) are hidden
//! rather than refused: a group window adds no columns.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, Query, Select, SetExpr, Spanned,
    TableFactor, VisitMut, VisitorMut,
};

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{Position, Result, SqlError};
use crate::script::parse_script;
use crate::statement::WeirStatement;

/// The group window functions and the columns of their window.
const KINDS: [&str; 3] = ["TUMBLE", "HOP", "SESSION"];

/// Rewrites every select of `query` that groups by a legacy group window.
pub fn rewrite(query: &mut Query) -> Result<()> {
    let mut rewriter = Rewriter { error: None };
    let _ = query.visit(&mut rewriter);
    rewriter.error.map_or(Ok(()), Err)
}

struct Rewriter {
    error: Option<SqlError>,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut()
            && let Err(e) = rewrite_select(select)
        {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// The group window a GROUP BY item calls, if it is one: its kind and
/// arguments (not a window TVF, whose first argument is `TABLE t`).
fn group_window(e: &Expr) -> Option<(&'static str, Vec<&Expr>)> {
    let Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_uppercase();
    let kind = KINDS.iter().find(|k| **k == name)?;
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args: Vec<&Expr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!matches!(args.first(), Some(Expr::Prefixed { .. }))).then_some((*kind, args))
}

fn unsupported(what: String, at: &impl Spanned) -> SqlError {
    SqlError::unsupported(what, Position::of(at.span()))
}

fn rewrite_select(select: &mut Select) -> Result<()> {
    let GroupByExpr::Expressions(keys, _) = &select.group_by else {
        return Ok(());
    };
    let windows: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| group_window(k).is_some())
        .map(|(i, _)| i)
        .collect();
    let Some(&at) = windows.first() else { return Ok(()) };
    if windows.len() > 1 {
        return Err(unsupported(
            "more than one group window in a GROUP BY".into(),
            &keys[windows[1]],
        ));
    }
    let window = keys[at].clone();
    let (kind, args) = group_window(&window).expect("found above");
    let time = match args.first() {
        Some(Expr::Identifier(column)) => column.clone(),
        Some(Expr::CompoundIdentifier(parts)) if !parts.is_empty() => parts[parts.len() - 1].clone(),
        _ => {
            return Err(unsupported(
                format!("{kind}(…) whose first argument is not the rowtime column"),
                &window,
            ));
        }
    };
    let [from] = select.from.as_slice() else {
        return Err(unsupported(
            format!("a {kind} group window over more than one table"),
            &window,
        ));
    };
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &from.relation
    else {
        return Err(unsupported(
            format!("a {kind} group window over a subquery (use a window TVF over the table)"),
            &window,
        ));
    };
    if !from.joins.is_empty() {
        return Err(unsupported(format!("a {kind} group window over a join"), &window));
    }
    let others: Vec<Expr> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, k)| k.clone())
        .collect();
    let partition = match (kind, others.as_slice()) {
        ("SESSION", [key]) => format!(" PARTITION BY {key}"),
        ("SESSION", _) => {
            return Err(unsupported(
                "a SESSION group window grouped by other than exactly one key".into(),
                &window,
            ));
        }
        _ => String::new(),
    };
    let rest: Vec<String> = args[1..].iter().map(|a| a.to_string()).collect();
    let alias = alias.as_ref().map(|a| format!(" {a}")).unwrap_or_default();
    let tvf = format!(
        "SELECT 1 FROM TABLE({}{kind}(TABLE {name}{partition}, DESCRIPTOR({time}), {})){alias}",
        super::window_tvf::LEGACY_PREFIX,
        rest.join(", ")
    );
    let factor = match parse_script(&tvf)?.pop().map(|s| s.statement) {
        Some(WeirStatement::Query { query, .. }) => match *query.body {
            SetExpr::Select(s) => s.from.into_iter().next().map(|f| f.relation),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| SqlError::plan(format!("{kind} group window: cannot write it as a window TVF"), None))?;
    select.from[0].relation = factor;
    let mut columns = WindowColumns {
        kind,
        rowtime: false,
        error: None,
    };
    for item in &mut select.projection {
        let _ = item.visit(&mut columns);
    }
    if let Some(having) = &mut select.having {
        let _ = having.visit(&mut columns);
    }
    if let Some(e) = columns.error {
        return Err(e);
    }
    let mut keys = vec![
        Expr::Identifier(Ident::new("window_start")),
        Expr::Identifier(Ident::new("window_end")),
    ];
    // `*_ROWTIME` reads the window's time, a column of its own.
    if columns.rowtime {
        keys.push(Expr::Identifier(Ident::new("window_time")));
    }
    keys.extend(others);
    select.group_by = GroupByExpr::Expressions(keys, Vec::new());
    Ok(())
}

/// Replaces `TUMBLE_START(…)` and the like with the window's columns.
struct WindowColumns {
    kind: &'static str,
    /// Whether `*_ROWTIME` was read.
    rowtime: bool,
    error: Option<SqlError>,
}

impl VisitorMut for WindowColumns {
    type Break = ();

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = &*e else {
            return ControlFlow::Continue(());
        };
        let Some(name) = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_uppercase())
        else {
            return ControlFlow::Continue(());
        };
        let Some(suffix) = KINDS
            .iter()
            .find_map(|k| name.strip_prefix(k).and_then(|s| s.strip_prefix('_')))
        else {
            return ControlFlow::Continue(());
        };
        if !name.starts_with(self.kind) {
            self.error = Some(unsupported(format!("{name}(…) with a {} group window", self.kind), &*e));
            return ControlFlow::Break(());
        }
        let column = match suffix {
            "START" => "window_start",
            "END" => "window_end",
            "ROWTIME" => {
                self.rowtime = true;
                "window_time"
            }
            // A processing-time attribute of the window's rows (Flink's
            // `*_PROCTIME`): the wall clock when the window fires.
            "PROCTIME" => {
                let clock = Parser::new(&GenericDialect {})
                    .try_with_sql("PROCTIME()")
                    .and_then(|mut p| p.parse_expr());
                match clock {
                    Ok(clock) => *e = clock,
                    Err(err) => {
                        self.error = Some(SqlError::plan(format!("{name}: {err}"), None));
                        return ControlFlow::Break(());
                    }
                }
                return ControlFlow::Continue(());
            }
            _ => {
                self.error = Some(unsupported(format!("{name}(…) (processing-time windows)"), &*e));
                return ControlFlow::Break(());
            }
        };
        *e = Expr::Identifier(Ident::new(column));
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> Result<String> {
        let WeirStatement::Query { mut query, .. } = parse_script(sql).unwrap().remove(0).statement else {
            panic!()
        };
        rewrite(&mut query)?;
        Ok(query.to_string())
    }

    #[test]
    fn group_windows_become_window_tvfs() {
        assert_eq!(
            rewritten(
                "SELECT k, TUMBLE_START(ts, INTERVAL '1' HOUR) AS ws, TUMBLE_END(ts, INTERVAL '1' HOUR), count(*) \
                 FROM t WHERE v > 1 GROUP BY TUMBLE(ts, INTERVAL '1' HOUR), k HAVING count(*) > 2"
            )
            .unwrap(),
            "SELECT k, window_start AS ws, window_end, count(*) \
             FROM TABLE(__LEGACY_TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' HOUR)) WHERE v > 1 \
             GROUP BY window_start, window_end, k HAVING count(*) > 2"
        );
        assert_eq!(
            rewritten("SELECT HOP_ROWTIME(b.ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE), sum(v) FROM bids b GROUP BY HOP(b.ts, INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)").unwrap(),
            "SELECT window_time, sum(v) FROM TABLE(__LEGACY_HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE)) b GROUP BY window_start, window_end, window_time"
        );
        assert_eq!(
            rewritten(
                "SELECT k, SESSION_END(ts, INTERVAL '10' SECOND) FROM t GROUP BY SESSION(ts, INTERVAL '10' SECOND), k"
            )
            .unwrap(),
            // (`TABLE t PARTITION BY k` is held, and shown, as a tuple.)
            "SELECT k, window_end FROM TABLE(__LEGACY_SESSION(TABLE (t, k), DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k"
        );
        // Window TVFs and plain GROUP BYs are left as they are.
        let tvf = "SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end";
        assert_eq!(rewritten(tvf).unwrap(), tvf);
        assert_eq!(
            rewritten("SELECT k, count(*) FROM t GROUP BY k").unwrap(),
            "SELECT k, count(*) FROM t GROUP BY k"
        );
    }

    /// `TUMBLE_PROCTIME` is the wall clock when the window fires.
    #[test]
    fn proctime_of_a_window_is_the_clock() {
        assert_eq!(
            rewritten("SELECT TUMBLE_PROCTIME(pt, INTERVAL '1' MINUTE), count(*) FROM t GROUP BY TUMBLE(pt, INTERVAL '1' MINUTE)")
                .unwrap(),
            "SELECT PROCTIME(), count(*) FROM TABLE(__LEGACY_TUMBLE(TABLE t, DESCRIPTOR(pt), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end"
        );
    }

    #[test]
    fn what_cannot_be_rewritten_is_refused() {
        for (sql, why) in [
            (
                "SELECT count(*) FROM a, b GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)",
                "over more than one table",
            ),
            (
                "SELECT count(*) FROM a JOIN b ON a.k = b.k GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)",
                "over a join",
            ),
            (
                "SELECT HOP_START(ts, INTERVAL '1' HOUR, INTERVAL '2' HOUR) FROM t GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)",
                "with a TUMBLE group window",
            ),
            (
                "SELECT count(*) FROM t GROUP BY SESSION(ts, INTERVAL '1' HOUR), a, b",
                "exactly one key",
            ),
        ] {
            let e = rewritten(sql).unwrap_err().to_string();
            assert!(e.contains(why), "{sql}: {e}");
        }
    }
}
