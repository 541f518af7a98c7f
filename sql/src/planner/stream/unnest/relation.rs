//! `UNNEST(…)` in FROM as Flink means it, planned for DataFusion.
//!
//! DataFusion's own planning of the table factor gives an ARRAY of ROWs
//! one column (the ROW), refuses a MAP, and refuses `WITH ORDINALITY`.
//! Flink gives an ARRAY of scalars one column, an ARRAY of ROWs one column
//! per field, a MAP its key and value, and `WITH ORDINALITY` the element's
//! 1-based position after them; `AS t(a, b, …)` names those columns, one
//! name each. This planner builds that relation from DataFusion's own
//! nodes — the arguments projected over the one-row empty relation (the
//! outer row, for a lateral UNNEST), an `Unnest` of them, and a projection
//! naming the columns — so that the stream planner (`stream/unnest.rs`)
//! and DataFusion's batch executor both run it.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Fields};
use datafusion::common::{Column, DFSchema, DataFusionError, Diagnostic, NullHandling, Span, UnnestOptions};
use datafusion::execution::context::SessionContext;
use datafusion::functions::core::expr_fn::{get_field, greatest};
use datafusion::functions_nested::expr_fn::{cardinality, gen_series, map_entries};
use datafusion::logical_expr::planner::{PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlanBuilder, cast, col, lit};
use datafusion::sql::sqlparser::ast::{Spanned, TableAlias, TableFactor};
use datafusion::sql::sqlparser::tokenizer::Span as SqlSpan;

use crate::types::sql_name;

type DfResult<T> = datafusion::error::Result<T>;

/// The name of the ordinality column when `AS t(…)` does not name it
/// (Calcite's, which Flink plans with).
const ORDINALITY: &str = "ORDINALITY";

/// Registers the planner with `ctx`: every `UNNEST(…)` in FROM is planned
/// by it from then on.
pub fn register(ctx: &SessionContext) -> DfResult<()> {
    ctx.register_relation_planner(Arc::new(UnnestRelations))
}

/// Plans Flink's `UNNEST(…)` table factor (see the module's comment).
#[derive(Debug)]
pub struct UnnestRelations;

/// What one argument of UNNEST gives.
struct Argument {
    /// The list to expand (a MAP as its entries).
    list: Expr,
    /// The columns of each element: `None` for the element itself, else
    /// the fields of a ROW (a MAP's entry is a ROW of key and value).
    fields: Option<Fields>,
    /// Names of the columns when the alias does not name them.
    default_names: Vec<String>,
}

impl RelationPlanner for UnnestRelations {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DfResult<RelationPlanning> {
        // `WITH OFFSET` is BigQuery's: DataFusion refuses it by name.
        if !matches!(relation, TableFactor::UNNEST { with_offset: false, .. }) {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let span = relation.span();
        let TableFactor::UNNEST {
            alias,
            array_exprs,
            with_ordinality,
            ..
        } = relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        if array_exprs.is_empty() {
            return Err(error("UNNEST needs an ARRAY or a MAP to expand".into(), span));
        }
        let mut arguments = Vec::new();
        let mut texts = Vec::new();
        for (i, sql) in array_exprs.into_iter().enumerate() {
            let at = sql.span();
            let text = sql.to_string();
            let e = context.sql_expr_to_logical_expr(sql, &DFSchema::empty())?;
            arguments.push(argument(e, &text, i, at)?);
            texts.push(text);
        }
        let mut names: Vec<String> = arguments.iter().flat_map(|a| a.default_names.clone()).collect();
        if with_ordinality {
            names.push(ORDINALITY.into());
        }
        if let Some(alias) = &alias
            && !alias.columns.is_empty()
        {
            if alias.columns.len() != names.len() {
                let given: Vec<String> = alias.columns.iter().map(|c| c.name.to_string()).collect();
                let plural = |n: usize| if n == 1 { "" } else { "s" };
                return Err(error(
                    format!(
                        "UNNEST({}){} AS {}({}): the UNNEST gives {} column{} ({}) but {} name{} given",
                        texts.join(", "),
                        if with_ordinality { " WITH ORDINALITY" } else { "" },
                        alias.name,
                        given.join(", "),
                        names.len(),
                        plural(names.len()),
                        names.join(", "),
                        given.len(),
                        if given.len() == 1 { " is" } else { "s are" },
                    ),
                    alias_span(alias, span),
                ));
            }
            names = alias
                .columns
                .iter()
                .map(|c| context.normalize_ident(c.name.clone()))
                .collect();
        }
        let plan = expansion(arguments, with_ordinality, &names)?;
        let alias = alias.map(|mut a| {
            a.columns.clear();
            a
        });
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(plan, alias))))
    }
}

/// The argument `e` (written `text`, the `i`th) as a list to expand.
fn argument(e: Expr, text: &str, i: usize, at: SqlSpan) -> DfResult<Argument> {
    let ordinal = || format!("EXPR${i}");
    let ty = e.get_type(&DFSchema::empty())?;
    Ok(match &ty {
        DataType::List(element) | DataType::LargeList(element) | DataType::FixedSizeList(element, _) => {
            match element.data_type() {
                DataType::Struct(fields) => Argument {
                    list: e,
                    default_names: fields.iter().map(|f| f.name().clone()).collect(),
                    fields: Some(fields.clone()),
                },
                _ => Argument {
                    list: e,
                    fields: None,
                    default_names: vec![ordinal()],
                },
            }
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(fields) = entries.data_type() else {
                return Err(error(format!("UNNEST({text}): a MAP without key and value"), at));
            };
            Argument {
                list: map_entries(e),
                fields: Some(fields.clone()),
                default_names: vec!["KEY".into(), "VALUE".into()],
            }
        }
        other => {
            let what = match other {
                DataType::Null => "NULL".to_string(),
                other => sql_name(other),
            };
            return Err(error(
                format!("UNNEST({text}): the argument is {what}, but UNNEST expands an ARRAY or a MAP"),
                at,
            ));
        }
    })
}

/// The plan of the relation: the lists projected over one empty row, the
/// `Unnest` of them (dropping rows whose lists are all NULL or empty, as
/// Flink's CROSS JOIN UNNEST does; the stream planner keeps them for a
/// LEFT JOIN), and the columns named `names`.
fn expansion(
    arguments: Vec<Argument>,
    with_ordinality: bool,
    names: &[String],
) -> DfResult<datafusion::logical_expr::LogicalPlan> {
    let list_name = |i: usize| format!("__weir_unnest_{i}");
    let mut lists: Vec<Expr> = arguments
        .iter()
        .enumerate()
        .map(|(i, a)| a.list.clone().alias(list_name(i)))
        .collect();
    let ordinality = list_name(arguments.len());
    if with_ordinality {
        // Positions 1‥n of the longest list, expanded beside the lists.
        let lengths: Vec<Expr> = arguments.iter().map(|a| cardinality(a.list.clone())).collect();
        let longest = match lengths.len() {
            1 => lengths.into_iter().next().unwrap_or_else(|| lit(0i64)),
            _ => greatest(lengths),
        };
        lists.push(gen_series(lit(1i64), cast(longest, DataType::Int64), lit(1i64)).alias(ordinality.as_str()));
    }
    let columns: Vec<Column> = (0..lists.len()).map(|i| Column::from_name(list_name(i))).collect();
    let mut outputs = Vec::new();
    for (i, a) in arguments.iter().enumerate() {
        match &a.fields {
            None => outputs.push(col(Column::from_name(list_name(i)))),
            Some(fields) => {
                for f in fields.iter() {
                    outputs.push(get_field(col(Column::from_name(list_name(i))), f.name().as_str()));
                }
            }
        }
    }
    if with_ordinality {
        outputs.push(cast(col(Column::from_name(ordinality)), DataType::Int32));
    }
    let named = outputs.into_iter().zip(names).map(|(e, n)| e.alias(n.as_str()));
    let options = UnnestOptions::new().with_null_handling(NullHandling::Drop);
    LogicalPlanBuilder::empty(true)
        .project(lists)?
        .unnest_columns_with_options(columns, options)?
        .project(named)?
        .build()
}

/// Where the alias is, else the whole UNNEST.
fn alias_span(alias: &TableAlias, whole: SqlSpan) -> SqlSpan {
    let s = alias.name.span;
    if s.start.line > 0 { s } else { whole }
}

/// A planning error at `at`.
fn error(message: String, at: SqlSpan) -> DataFusionError {
    let diagnostic = Diagnostic::new_error(message.clone(), Span::try_from_sqlparser_span(at));
    DataFusionError::Plan(message).with_diagnostic(diagnostic)
}
