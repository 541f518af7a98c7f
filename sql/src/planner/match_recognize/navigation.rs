//! `DEFINE` and `MEASURES` expressions compiled for the engine: every part
//! that reads the matched rows — a variable's column (`A.price`, or an
//! unqualified column: every row of the match), `FIRST`/`LAST`/`PREV`,
//! `MATCH_ROWTIME()`, an aggregate over a variable's rows — becomes a
//! [`Navigation`] and, in the expression, a column `__nav_<i>` of its type,
//! over which DataFusion plans the rest.
//!
//! A column of a variable reads its last row, so that in `DEFINE` of `A`
//! (where the row being tried counts as `A`'s last) `A.price` is that
//! row's price, and in `MEASURES` it is the last `A` row's, as in Flink.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, ExprWithAlias, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Visit,
    VisitMut, Visitor, VisitorMut, visit_expressions_mut,
};
use weir_engine::cep::{Condition, Navigation};

use crate::error::{Position, Result, SqlError};
use crate::statement::position_of;

/// The aggregates a pattern variable's rows may be summarised by.
const AGGREGATES: &[&str] = &["COUNT", "SUM", "AVG", "MIN", "MAX"];

/// Compiles the expressions of one clause over its input's columns.
pub(super) struct Compiler<'a> {
    state: &'a SessionState,
    input: &'a DFSchema,
    variables: &'a [String],
    time_column: usize,
    /// Values computed per row for navigations over expressions (slots
    /// after the input's columns), each once.
    pub derived: Vec<Arc<dyn PhysicalExpr>>,
    derived_types: Vec<DataType>,
}

impl<'a> Compiler<'a> {
    pub(super) fn new(
        state: &'a SessionState,
        input: &'a DFSchema,
        variables: &'a [String],
        time_column: usize,
    ) -> Self {
        Self {
            state,
            input,
            variables,
            time_column,
            derived: Vec::new(),
            derived_types: Vec::new(),
        }
    }

    /// `e` over the matched rows.
    pub(super) fn condition(&mut self, e: &Expr) -> Result<Condition> {
        struct Cut<'c, 'a> {
            compiler: &'c mut Compiler<'a>,
            navigations: Vec<Navigation>,
            fields: Vec<Field>,
            failed: Option<SqlError>,
        }
        impl VisitorMut for Cut<'_, '_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                match self.compiler.navigation(e) {
                    Ok(Some((navigation, data_type))) => {
                        let name = format!("__nav_{}", self.navigations.len());
                        self.navigations.push(navigation);
                        self.fields.push(Field::new(name.clone(), data_type, true));
                        *e = Expr::Identifier(Ident::new(name));
                        ControlFlow::Continue(())
                    }
                    Ok(None) => ControlFlow::Continue(()),
                    Err(err) => {
                        self.failed = Some(err);
                        ControlFlow::Break(())
                    }
                }
            }
        }
        let mut expr = e.clone();
        let mut cut = Cut {
            compiler: self,
            navigations: Vec::new(),
            fields: Vec::new(),
            failed: None,
        };
        let _ = VisitMut::visit(&mut expr, &mut cut);
        if let Some(err) = cut.failed {
            return Err(err);
        }
        let (navigations, fields) = (cut.navigations, cut.fields);
        let schema = Arc::new(Schema::new(fields));
        let at = |err: datafusion::error::DataFusionError| SqlError::from(err).or_at(position_of(e));
        let over = DFSchema::try_from(schema.as_ref().clone()).map_err(at)?;
        let logical = self
            .state
            .create_logical_expr_from_sql_expr(ExprWithAlias { expr, alias: None }, &over)
            .map_err(at)?;
        let expr = self.state.create_physical_expr(logical, &over).map_err(at)?;
        Ok(Condition {
            navigations,
            schema,
            expr,
            text: e.to_string(),
        })
    }

    /// The navigation `e` is, with its type; `None` when it is not one.
    fn navigation(&mut self, e: &Expr) -> Result<Option<(Navigation, DataType)>> {
        let nav = match e {
            Expr::Identifier(column) => {
                let slot = self.column(column)?;
                (
                    Navigation::Last {
                        var: None,
                        slot,
                        offset: 0,
                    },
                    self.slot_type(slot),
                )
            }
            Expr::CompoundIdentifier(parts) => {
                let [var, column] = parts.as_slice() else {
                    return Err(SqlError::unsupported(
                        format!("{e} in MATCH_RECOGNIZE (write <pattern variable>.<column>)"),
                        position_of(e),
                    ));
                };
                let var = Some(self.variable(var)?);
                let slot = self.column(column)?;
                (Navigation::Last { var, slot, offset: 0 }, self.slot_type(slot))
            }
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_uppercase();
                match name.as_str() {
                    "LAST" | "FIRST" | "PREV" => self.offset_navigation(f, &name)?,
                    "MATCH_ROWTIME" => {
                        let slot = self.time_column;
                        (
                            Navigation::Last {
                                var: None,
                                slot,
                                offset: 0,
                            },
                            self.slot_type(slot),
                        )
                    }
                    "NEXT" | "CLASSIFIER" | "MATCH_PROCTIME" | "RUNNING" | "FINAL" => {
                        return Err(SqlError::unsupported(
                            format!("{name} in MATCH_RECOGNIZE"),
                            position_of(e),
                        ));
                    }
                    _ if AGGREGATES.contains(&name.as_str()) => self.aggregate(f, &name)?,
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(nav))
    }

    /// `LAST(v.x [, n])`, `FIRST(v.x [, n])`, `PREV(x [, n])`.
    fn offset_navigation(&mut self, f: &Function, name: &str) -> Result<(Navigation, DataType)> {
        let usage = || {
            SqlError::plan(
                format!("{name} takes a value and an optional row offset: {f}"),
                position_of(f),
            )
        };
        let args = plain_arguments(f).ok_or_else(usage)?;
        let (value, offset) = match args.as_slice() {
            // PREV(x) is the row before; LAST(v.x) and FIRST(v.x) the row itself.
            [value] => (*value, usize::from(name == "PREV")),
            [value, n] => {
                let n = n.to_string().parse::<usize>().map_err(|_| {
                    SqlError::plan(
                        format!("{name}'s offset must be a non-negative integer, not {n}"),
                        position_of(*n),
                    )
                })?;
                (*value, n)
            }
            _ => return Err(usage()),
        };
        let (var, slot, data_type) = self.value(value)?;
        let nav = match name {
            "LAST" => Navigation::Last { var, slot, offset },
            "FIRST" => Navigation::First { var, slot, offset },
            _ => Navigation::Prev { slot, offset },
        };
        Ok((nav, data_type))
    }

    /// `COUNT`, `SUM`, `AVG`, `MIN` or `MAX` over one variable's rows (or
    /// all rows of the match).
    fn aggregate(&mut self, f: &Function, name: &str) -> Result<(Navigation, DataType)> {
        let FunctionArguments::List(list) = &f.args else {
            return Err(SqlError::plan(format!("{name} needs an argument: {f}"), position_of(f)));
        };
        if list.duplicate_treatment == Some(DuplicateTreatment::Distinct) || f.filter.is_some() || f.over.is_some() {
            return Err(SqlError::unsupported(
                format!("{f} in MATCH_RECOGNIZE (DISTINCT, FILTER and OVER are not supported there)"),
                position_of(f),
            ));
        }
        let arg = match list.args.as_slice() {
            [FunctionArg::Unnamed(a)] => a,
            _ => {
                return Err(SqlError::plan(
                    format!("{name} takes one argument: {f}"),
                    position_of(f),
                ));
            }
        };
        let time = self.time_column;
        let (var, slot, input) = match arg {
            FunctionArgExpr::Wildcard if name == "COUNT" => (None, time, self.slot_type(time)),
            FunctionArgExpr::QualifiedWildcard(v) if name == "COUNT" => {
                let var =
                    v.0.last()
                        .and_then(|p| p.as_ident())
                        .ok_or_else(|| SqlError::plan(format!("{f}: name a pattern variable"), position_of(f)))?;
                (Some(self.variable(var)?), time, self.slot_type(time))
            }
            FunctionArgExpr::Expr(e) => self.value(e)?,
            _ => {
                return Err(SqlError::plan(
                    format!("{name} of {arg} is not supported"),
                    position_of(f),
                ));
            }
        };
        let udaf = self
            .state
            .aggregate_functions()
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| SqlError::plan(format!("no aggregate function {name}"), position_of(f)))?;
        let over = Arc::new(Schema::new(vec![Field::new("v", input.clone(), true)]));
        let function = AggregateExprBuilder::new(udaf, vec![Arc::new(Column::new("v", 0)) as Arc<dyn PhysicalExpr>])
            .schema(over)
            .alias(f.to_string())
            .build()
            .map_err(|e| SqlError::from(e).or_at(position_of(f)))?;
        let data_type = function.field().data_type().clone();
        Ok((
            Navigation::Aggregate {
                var,
                slot,
                input,
                function: Arc::new(function),
            },
            data_type,
        ))
    }

    /// A value read from a row: its variable (the one its columns are
    /// qualified by, if any), its slot, and its type. A plain column is
    /// read as it is; an expression is computed per row (a derived slot).
    fn value(&mut self, e: &Expr) -> Result<(Option<usize>, usize, DataType)> {
        let var = self.single_variable(e)?;
        let slot = match e {
            Expr::Identifier(c) => self.column(c)?,
            Expr::CompoundIdentifier(parts) if let [_, c] = parts.as_slice() => self.column(c)?,
            _ => self.derived_slot(e)?,
        };
        Ok((var, slot, self.slot_type(slot)))
    }

    /// The one pattern variable `e`'s columns are qualified by (Flink's
    /// rule: `SUM(A.price * A.tax)`, not `AVG(A.price * B.tax)`).
    fn single_variable(&self, e: &Expr) -> Result<Option<usize>> {
        struct Qualifiers(Vec<Ident>);
        impl Visitor for Qualifiers {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                if let Expr::CompoundIdentifier(parts) = e
                    && let Some(first) = parts.first()
                {
                    self.0.push(first.clone());
                }
                ControlFlow::Continue(())
            }
        }
        let mut q = Qualifiers(Vec::new());
        let _ = e.visit(&mut q);
        let mut vars = HashSet::new();
        for ident in &q.0 {
            vars.insert(self.variable(ident)?);
        }
        match vars.len() {
            0 | 1 => Ok(vars.into_iter().next()),
            _ => Err(SqlError::plan(
                format!("{e} reads more than one pattern variable: a navigation or aggregate reads one"),
                position_of(e),
            )),
        }
    }

    /// The slot of `e` (its columns unqualified) computed per row.
    fn derived_slot(&mut self, e: &Expr) -> Result<usize> {
        let mut stripped = e.clone();
        let _ = visit_expressions_mut(&mut stripped, |x| {
            if let Expr::CompoundIdentifier(parts) = x
                && let [_, c] = parts.as_slice()
            {
                *x = Expr::Identifier(c.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        let at = |err: datafusion::error::DataFusionError| SqlError::from(err).or_at(position_of(e));
        let logical = self
            .state
            .create_logical_expr_from_sql_expr(
                ExprWithAlias {
                    expr: stripped,
                    alias: None,
                },
                self.input,
            )
            .map_err(at)?;
        let physical = self.state.create_physical_expr(logical, self.input).map_err(at)?;
        let data_type = physical.data_type(self.input.as_arrow()).map_err(at)?;
        let text = physical.to_string();
        let at = match self.derived.iter().position(|d| d.to_string() == text) {
            Some(i) => i,
            None => {
                self.derived.push(physical);
                self.derived_types.push(data_type);
                self.derived.len() - 1
            }
        };
        Ok(self.input.fields().len() + at)
    }

    fn slot_type(&self, slot: usize) -> DataType {
        let n = self.input.fields().len();
        match slot.checked_sub(n) {
            None => self.input.field(slot).data_type().clone(),
            Some(d) => self.derived_types[d].clone(),
        }
    }

    fn column(&self, c: &Ident) -> Result<usize> {
        self.input.as_arrow().index_of(&c.value).map_err(|_| {
            SqlError::plan(
                format!("column '{}' not found in MATCH_RECOGNIZE's input", c.value),
                Position::of(c.span),
            )
        })
    }

    fn variable(&self, v: &Ident) -> Result<usize> {
        self.variables.iter().position(|x| *x == v.value).ok_or_else(|| {
            SqlError::plan(
                format!(
                    "'{}' is not a pattern variable: the PATTERN has {}",
                    v.value,
                    self.variables.join(", ")
                ),
                Position::of(v.span),
            )
        })
    }
}

/// A call's arguments when they are all plain expressions.
fn plain_arguments(f: &Function) -> Option<Vec<&Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}
