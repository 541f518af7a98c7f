//! The state TTL of each stateful operator of a query: Flink's
//! `STATE_TTL('t' = '1d')` hint for the regular joins and group
//! aggregations reading table (or alias, or view) `t`, else
//! `table.exec.state.ttl` (`engine/src/state_ttl.rs` says what expires).

use std::time::Duration;

use datafusion::logical_expr::LogicalPlan;

use crate::error::{Position, Result, SqlError};
use crate::hints::StateTtlHint;

/// The TTLs a query asks for.
#[derive(Debug)]
pub(crate) struct StateTtls {
    /// Per name from hints: its TTL, where the hint is, and whether an
    /// operator's input had the name.
    named: Vec<(String, Duration, Option<Position>, bool)>,
    default: Option<Duration>,
    /// Refuse names no input has (not in a statement set, whose hints may
    /// name the tables of another INSERT).
    check_unused: bool,
}

impl StateTtls {
    /// `table.exec.state.ttl` (`None`: state is kept for good).
    pub(crate) fn new(default: Option<Duration>) -> Self {
        Self {
            named: Vec::new(),
            default,
            check_unused: false,
        }
    }

    /// The `STATE_TTL` hints of the statement.
    pub(crate) fn set_hints(&mut self, hints: &[StateTtlHint], check_unused: bool) {
        self.named = hints
            .iter()
            .flat_map(|h| h.ttls.iter().map(|(name, ttl)| (name.clone(), *ttl, h.position, false)))
            .collect();
        self.check_unused = check_unused;
    }

    /// The TTL of state an operator keeps of rows of `input`: its name's
    /// hint (exactly as written, else ignoring case), else the default. A
    /// TTL of 0 keeps state for good.
    pub(crate) fn of_input(&mut self, input: &LogicalPlan) -> Option<Duration> {
        let hinted = input_name(input).and_then(|name| {
            let at = self
                .named
                .iter()
                .position(|(n, ..)| n == &name)
                .or_else(|| self.named.iter().position(|(n, ..)| n.eq_ignore_ascii_case(&name)))?;
            self.named[at].3 = true;
            Some(self.named[at].1)
        });
        hinted.or(self.default).filter(|d| !d.is_zero())
    }

    /// `table.exec.state.ttl`, for operators no hint reaches (Top-N,
    /// deduplication).
    pub(crate) fn unhinted(&self) -> Option<Duration> {
        self.default.filter(|d| !d.is_zero())
    }

    /// Refuses hint names that no join or aggregation input had, as Flink
    /// does.
    pub(crate) fn check_used(&self) -> Result<()> {
        let unused: Vec<&(String, Duration, Option<Position>, bool)> =
            self.named.iter().filter(|(.., used)| !used).collect();
        match (self.check_unused, unused.first()) {
            (true, Some((_, _, position, _))) => {
                let names: Vec<String> = unused.iter().map(|(n, ..)| format!("'{n}'")).collect();
                Err(SqlError::plan(
                    format!(
                        "STATE_TTL: {} is not the name or alias of an input of a regular join or a GROUP BY of the query",
                        names.join(", ")
                    ),
                    *position,
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The table, alias or view an input reads, through the projections and
/// filters over it.
fn input_name(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => Some(a.alias.table().to_string()),
        LogicalPlan::TableScan(s) => Some(s.table_name.table().to_string()),
        LogicalPlan::Projection(p) => input_name(&p.input),
        LogicalPlan::Filter(f) => input_name(&f.input),
        _ => None,
    }
}
