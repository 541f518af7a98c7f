//! Window table-valued functions in FROM: `TABLE(TUMBLE(TABLE t,
//! DESCRIPTOR(ts), size [, offset]))` and `HOP(…, slide, size [, offset])`.
//!
//! DataFusion has no table functions over tables, so each call is replaced
//! in the AST by a reference to a relation that has the table's columns plus
//! `window_start`, `window_end` and `window_time`. The streaming planner
//! recognises that relation and plans the window operator for it.
//!
//! The table may be a view (Nexmark's `bid` is one): the TVF windows the
//! rows of the view's query, whose DESCRIPTOR column must carry its
//! table's rowtime unchanged (checked by the stream planner, which knows
//! where rowtimes go).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr as LExpr, LogicalPlan};
use datafusion::sql::sqlparser::ast::{
    Expr, ExprWithAlias, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Query, SetExpr, TableAlias, TableFactor, TableWithJoins, visit_expressions_mut,
};
use weir_engine::event_time::EventTimeValidity;
use weir_engine::window::spec::{WindowKind, WindowSpec};

use crate::catalog::{Catalog, TableDef};
use crate::dialect::TABLE_ARGUMENT;
use crate::error::{Result, SqlError};
use crate::planner::table::normalize;
use crate::statement::position_of;
use crate::time_zone::LocalZone;
use crate::types::TIMESTAMP_MS;

/// Names of the columns a window TVF adds.
pub const WINDOW_START: &str = "window_start";
pub const WINDOW_END: &str = "window_end";
pub const WINDOW_TIME: &str = "window_time";

/// The window table-valued functions.
const WINDOW_FUNCTIONS: &[&str] = &["TUMBLE", "HOP", "CUMULATE", "SESSION"];

/// The prefix of a window TVF written by `legacy_windows` for a group
/// window (`__LEGACY_TUMBLE(TABLE v, …)`). A group window adds no columns
/// to its input, so its input may have columns named `window_start` … (a
/// view of an earlier window: Flink's chained windows); those are hidden
/// behind the window's own, where a window TVF the user wrote refuses them.
pub const LEGACY_PREFIX: &str = "__LEGACY_";

/// The prefix of the name a window TVF's relation is planned under.
pub const WINDOW_RELATION: &str = "__window_";

/// Numbers the relations standing for TVF calls, unique in the process so
/// that plans never see each other's.
static NEXT_RELATION: AtomicUsize = AtomicUsize::new(0);

/// How a window TVF assigns windows.
#[derive(Debug, Clone)]
pub enum Windows {
    /// TUMBLE, HOP, CUMULATE: fixed windows, computed from each row alone.
    Sliced(WindowSpec),
    /// SESSION: windows that grow and merge per partition key.
    Session {
        gap: i64,
        /// `PARTITION BY` columns (normalised names).
        partition: Vec<String>,
    },
}

/// What a window TVF windows.
#[derive(Debug, Clone)]
pub enum WindowInput {
    /// A table's rows, straight from its source.
    Table(Arc<TableDef>),
    /// The rows of a view's query, as DataFusion planned it.
    View { name: String, plan: Arc<LogicalPlan> },
}

/// A window TVF call, replaced by the relation `name`.
#[derive(Debug, Clone)]
pub struct WindowRelation {
    pub name: String,
    pub input: WindowInput,
    pub windows: Windows,
    /// The input's row.
    pub row: SchemaRef,
    /// The DESCRIPTOR column in `row`.
    pub time_column: usize,
    /// Which times are valid (the table's watermark's; the defaults for a
    /// view).
    pub validity: EventTimeValidity,
    /// Windows over the table's `PROCTIME()` column: they fire by the wall
    /// clock, and the table's source emits it as its watermark.
    pub processing_time: bool,
    /// The input's row plus the three window columns.
    pub schema: SchemaRef,
}

impl WindowRelation {
    /// Index of the first window column: the input's columns come before.
    pub fn first_window_column(&self) -> usize {
        self.row.fields().len()
    }

    /// The table or view windowed, for messages and default aliases.
    pub fn input_name(&self) -> &str {
        self.input.name()
    }
}

/// The tables and views a TVF may window: views by name with the plan of
/// their rows.
pub struct Inputs<'a> {
    pub catalog: &'a Catalog,
    pub views: &'a HashMap<String, Arc<LogicalPlan>>,
    /// The session's zone: windows over a `TIMESTAMP_LTZ` rowtime align
    /// to its clock.
    pub zone: &'a LocalZone,
}

/// Rewrites every window TVF in `query`, returning the relations to register.
pub fn rewrite(
    query: &mut Query,
    inputs: &Inputs<'_>,
    state: &SessionState,
) -> Result<HashMap<String, WindowRelation>> {
    let mut found = HashMap::new();
    rewrite_query(query, inputs, state, &mut found)?;
    Ok(found)
}

fn rewrite_query(
    q: &mut Query,
    inputs: &Inputs<'_>,
    state: &SessionState,
    found: &mut HashMap<String, WindowRelation>,
) -> Result<()> {
    if let Some(with) = &mut q.with {
        for cte in &mut with.cte_tables {
            rewrite_query(&mut cte.query, inputs, state, found)?;
        }
    }
    rewrite_set_expr(&mut q.body, inputs, state, found)
}

fn rewrite_set_expr(
    s: &mut SetExpr,
    inputs: &Inputs<'_>,
    state: &SessionState,
    found: &mut HashMap<String, WindowRelation>,
) -> Result<()> {
    match s {
        SetExpr::Select(select) => {
            for twj in &mut select.from {
                rewrite_table_with_joins(twj, inputs, state, found)?;
            }
            // Subqueries in WHERE (`IN` / `EXISTS` over a window TVF: Flink's
            // window semi and anti joins).
            if let Some(selection) = &mut select.selection {
                let mut failed = None;
                let _ = visit_expressions_mut(selection, |e| {
                    let query = match e {
                        Expr::InSubquery { subquery, .. } => subquery.as_mut(),
                        Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => subquery.as_mut(),
                        _ => return ControlFlow::Continue(()),
                    };
                    match rewrite_query(query, inputs, state, found) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(err) => {
                            failed = Some(err);
                            ControlFlow::Break(())
                        }
                    }
                });
                if let Some(err) = failed {
                    return Err(err);
                }
            }
            Ok(())
        }
        SetExpr::Query(q) => rewrite_query(q, inputs, state, found),
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left, inputs, state, found)?;
            rewrite_set_expr(right, inputs, state, found)
        }
        _ => Ok(()),
    }
}

fn rewrite_table_with_joins(
    t: &mut TableWithJoins,
    inputs: &Inputs<'_>,
    state: &SessionState,
    found: &mut HashMap<String, WindowRelation>,
) -> Result<()> {
    rewrite_factor(&mut t.relation, inputs, state, found)?;
    for j in &mut t.joins {
        rewrite_factor(&mut j.relation, inputs, state, found)?;
    }
    Ok(())
}

fn rewrite_factor(
    f: &mut TableFactor,
    inputs: &Inputs<'_>,
    state: &SessionState,
    found: &mut HashMap<String, WindowRelation>,
) -> Result<()> {
    match f {
        TableFactor::Derived { subquery, .. } => rewrite_query(subquery, inputs, state, found),
        TableFactor::NestedJoin { table_with_joins, .. } => {
            rewrite_table_with_joins(table_with_joins, inputs, state, found)
        }
        // Flink's newer form, without `TABLE(…)` around the call:
        // `FROM TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES)`.
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } if name.0.last().and_then(|p| p.as_ident()).is_some_and(|i| {
            i.quote_style.is_none() && WINDOW_FUNCTIONS.contains(&i.value.to_uppercase().as_str())
        }) =>
        {
            let call = Expr::Function(Function {
                name: name.clone(),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: args.args.clone(),
                    clauses: vec![],
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: vec![],
            });
            *f = TableFactor::TableFunction {
                expr: call,
                alias: alias.take(),
            };
            rewrite_factor(f, inputs, state, found)
        }
        TableFactor::TableFunction { expr, alias } => {
            let name = format!("{WINDOW_RELATION}{}", NEXT_RELATION.fetch_add(1, Ordering::Relaxed));
            let rel = window_call(expr, &name, inputs, state)?;
            // Without an alias, columns are named after the table, not the
            // internal relation: `max(bids.price)`.
            let alias = alias.take().or_else(|| {
                Some(TableAlias {
                    explicit: true,
                    name: Ident::new(rel.input_name()),
                    columns: vec![],
                    at: None,
                })
            });
            found.insert(name.clone(), rel);
            *f = TableFactor::Table {
                name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
                alias,
                args: None,
                with_hints: vec![],
                version: None,
                with_ordinality: false,
                partitions: vec![],
                json_path: None,
                sample: None,
                index_hints: vec![],
            };
            Ok(())
        }
        _ => Ok(()),
    }
}

fn window_call(expr: &Expr, name: &str, inputs: &Inputs<'_>, state: &SessionState) -> Result<WindowRelation> {
    let pos = position_of(expr);
    let Expr::Function(func) = expr else {
        return Err(SqlError::unsupported(format!("table function {expr}"), pos));
    };
    let fname = func.name.to_string().to_uppercase();
    let (fname, legacy) = match fname.strip_prefix(LEGACY_PREFIX) {
        Some(kind) => (kind.to_string(), true),
        None => (fname, false),
    };
    let usage = match fname.as_str() {
        "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset])",
        "HOP" => "HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset])",
        "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(ts), step, max_size [, offset [, emitOnlyOnUpdate]])",
        "SESSION" => "SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)",
        _ => return Err(SqlError::unsupported(format!("table function {fname}"), pos)),
    };
    let args = arguments(func, &fname, usage, pos)?;
    let (min, max) = match fname.as_str() {
        "TUMBLE" => (3, 4),
        "SESSION" => (3, 3),
        "CUMULATE" => (4, 6),
        _ => (4, 5),
    };
    if args.len() < min || args.len() > max {
        return Err(SqlError::plan(
            format!("{fname} takes {min} to {max} arguments: {usage}"),
            pos,
        ));
    }
    let (input, partition) = table_argument(args[0], inputs, usage)?;
    if !partition.is_empty() && fname != "SESSION" {
        return Err(SqlError::plan(
            format!("PARTITION BY is for SESSION windows, not {fname}"),
            position_of(args[0]),
        ));
    }
    let time_col = descriptor_argument(args[1], usage)?;
    let mut processing_time = false;
    let (row, time_column, validity) = match &input {
        WindowInput::Table(table)
            if table.proctime() == Some(time_col.as_str()) && table.rowtime() != Some(time_col.as_str()) =>
        {
            processing_time = true;
            let idx = table
                .schema
                .index_of(&time_col)
                .map_err(|e| SqlError::plan(e.to_string(), pos))?;
            (Arc::clone(&table.schema), idx, EventTimeValidity::default())
        }
        WindowInput::Table(table) => {
            let rowtime = table.rowtime().ok_or_else(|| {
                SqlError::plan(
                    format!(
                        "table '{}' has no time attribute: declare WATERMARK FOR {time_col} AS … (event time) or a column AS PROCTIME() (processing time) in its CREATE TABLE",
                        table.name
                    ),
                    position_of(args[1]),
                )
            })?;
            if rowtime != time_col {
                return Err(SqlError::plan(
                    format!(
                        "DESCRIPTOR({time_col}) must name a time attribute of '{}': its rowtime column '{rowtime}'{}",
                        table.name,
                        table
                            .proctime()
                            .map(|p| format!(" or its PROCTIME() column '{p}'"))
                            .unwrap_or_default()
                    ),
                    position_of(args[1]),
                ));
            }
            let watermark = table
                .watermark
                .as_ref()
                .ok_or_else(|| SqlError::plan(format!("table '{}' has no watermark", table.name), pos))?;
            (Arc::clone(&table.schema), watermark.time_column, watermark.validity)
        }
        WindowInput::View { name, plan } => {
            let row: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
            let time_column = row.index_of(&time_col).map_err(|_| {
                SqlError::plan(
                    format!("DESCRIPTOR({time_col}): view '{name}' has no such column"),
                    position_of(args[1]),
                )
            })?;
            if super::proctime_view::is_proctime(plan, time_column, inputs.catalog) {
                if let Some(node) = super::proctime_view::event_time_node(plan) {
                    return Err(SqlError::unsupported(
                        format!("a window over the PROCTIME() column '{time_col}' of view '{name}', which has {node}"),
                        position_of(args[1]),
                    ));
                }
                processing_time = true;
            }
            (row, time_column, EventTimeValidity::default())
        }
    };
    let ms = |i: usize| interval_ms(args[i], state);
    let windows = match fname.as_str() {
        "SESSION" => {
            let gap = ms(2)?;
            if gap <= 0 {
                return Err(SqlError::plan("SESSION gap must be positive", position_of(args[2])));
            }
            for p in &partition {
                if row.index_of(p).is_err() {
                    return Err(SqlError::plan(
                        format!("PARTITION BY {p}: no such column in '{}'", input.name()),
                        position_of(args[0]),
                    ));
                }
            }
            Windows::Session { gap, partition }
        }
        _ => {
            let (kind, offset) = if fname == "TUMBLE" {
                let size = ms(2)?;
                (WindowKind::Tumble { size }, if args.len() == 4 { ms(3)? } else { 0 })
            } else if fname == "HOP" {
                let slide = ms(2)?;
                let size = ms(3)?;
                (
                    WindowKind::Hop { slide, size },
                    if args.len() == 5 { ms(4)? } else { 0 },
                )
            } else {
                let step = ms(2)?;
                let max_size = ms(3)?;
                (
                    WindowKind::Cumulate { step, max_size },
                    if args.len() >= 5 { ms(4)? } else { 0 },
                )
            };
            let spec = WindowSpec::new(kind, offset).map_err(|m| SqlError::plan(m, pos))?;
            match args.get(5) {
                Some(flag) if emit_only_on_update(flag)? => Windows::Sliced(spec.emitting_only_updates()),
                _ => Windows::Sliced(spec),
            }
        }
    };
    let rowtime_type = row.field(time_column).data_type().clone();
    let windows = match (windows, zone_offset(&rowtime_type, inputs.zone, pos)?) {
        (Windows::Sliced(spec), Some(offset)) => Windows::Sliced(spec.in_zone(offset)),
        (Windows::Session { .. }, Some(_)) => {
            return Err(SqlError::unsupported(
                format!(
                    "SESSION windows over a TIMESTAMP_LTZ rowtime in time zone '{}' (only in UTC)",
                    inputs.zone.name()
                ),
                pos,
            ));
        }
        (windows, _) => windows,
    };
    let mut fields: Vec<Field> = row.fields().iter().map(|f| f.as_ref().clone()).collect();
    for c in [WINDOW_START, WINDOW_END, WINDOW_TIME] {
        if legacy && let Some(shadowed) = fields.iter_mut().find(|f| f.name() == c) {
            *shadowed = shadowed.clone().with_name(format!("{c}$shadowed"));
        }
        if fields.iter().any(|f| f.name() == c) {
            return Err(SqlError::plan(
                format!("'{}' already has a column named {c}, which {fname} adds", input.name()),
                pos,
            ));
        }
        // Bounds are wall-clock times; the window's time is an instant
        // when its rowtime is one (Flink's types).
        let data_type = if c == WINDOW_TIME {
            rowtime_type.clone()
        } else {
            TIMESTAMP_MS
        };
        fields.push(Field::new(c, data_type, false));
    }
    Ok(WindowRelation {
        name: name.to_string(),
        input,
        windows,
        row,
        time_column,
        validity,
        processing_time,
        schema: Arc::new(Schema::new(fields)),
    })
}

/// The zone's offset when windows over a rowtime of type `rowtime` align
/// to its clock: a `TIMESTAMP_LTZ` rowtime in a zone other than UTC.
fn zone_offset(
    rowtime: &datafusion::arrow::datatypes::DataType,
    zone: &LocalZone,
    pos: Option<crate::error::Position>,
) -> Result<Option<i64>> {
    if !crate::time_zone::is_ltz(rowtime) {
        return Ok(None);
    }
    match zone.fixed_offset_ms() {
        Some(0) => Ok(None),
        Some(offset) => Ok(Some(offset)),
        None => Err(SqlError::unsupported(
            format!(
                "windows over a TIMESTAMP_LTZ rowtime in time zone '{}', which has daylight saving time; set 'table.local-time-zone' to its fixed offset (such as 'GMT-08:00')",
                zone.name()
            ),
            pos,
        )),
    }
}

impl WindowInput {
    /// The table's or view's name.
    pub fn name(&self) -> &str {
        match self {
            WindowInput::Table(t) => &t.name,
            WindowInput::View { name, .. } => name,
        }
    }
}

/// CUMULATE's `emitOnlyOnUpdate` argument: TRUE or FALSE.
fn emit_only_on_update(e: &Expr) -> Result<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            datafusion::sql::sqlparser::ast::Value::Boolean(b) => Ok(*b),
            _ => Err(SqlError::plan(
                format!("CUMULATE: emitOnlyOnUpdate is TRUE or FALSE, not {e}"),
                position_of(e),
            )),
        },
        _ => Err(SqlError::plan(
            format!("CUMULATE: emitOnlyOnUpdate is TRUE or FALSE, not {e}"),
            position_of(e),
        )),
    }
}

/// The OFFSET of a call that names a later parameter but not it.
static NO_OFFSET: std::sync::LazyLock<Expr> = std::sync::LazyLock::new(|| {
    Expr::Interval(datafusion::sql::sqlparser::ast::Interval {
        value: Box::new(Expr::Value(
            datafusion::sql::sqlparser::ast::Value::SingleQuotedString("0".into()).into(),
        )),
        leading_field: Some(datafusion::sql::sqlparser::ast::DateTimeField::Second),
        leading_precision: None,
        last_field: None,
        fractional_seconds_precision: None,
    })
});

/// Flink's parameter names of each window TVF, in position order.
fn parameters(fname: &str) -> &'static [&'static str] {
    match fname {
        "TUMBLE" => &["DATA", "TIMECOL", "SIZE", "OFFSET"],
        "HOP" => &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"],
        "CUMULATE" => &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET", "EMITONLYONUPDATE"],
        _ => &["DATA", "TIMECOL", "GAP"],
    }
}

/// The call's arguments in position order: given by position, or all by
/// Flink's names (`TUMBLE(DATA => TABLE t, TIMECOL => DESCRIPTOR(ts), SIZE
/// => INTERVAL '1' MINUTE)`), in any order.
fn arguments<'f>(
    func: &'f datafusion::sql::sqlparser::ast::Function,
    fname: &str,
    usage: &str,
    pos: Option<crate::error::Position>,
) -> Result<Vec<&'f Expr>> {
    let FunctionArguments::List(list) = &func.args else {
        return Ok(vec![]);
    };
    let names = parameters(fname);
    let named = list
        .args
        .iter()
        .any(|a| matches!(a, FunctionArg::Named { .. } | FunctionArg::ExprNamed { .. }));
    if !named {
        return list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
                other => Err(SqlError::unsupported(
                    format!("argument {other} of {fname}: {usage}"),
                    pos,
                )),
            })
            .collect();
    }
    let mut by_place: Vec<Option<&Expr>> = vec![None; names.len()];
    for a in &list.args {
        let FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(e),
            ..
        } = a
        else {
            return Err(SqlError::plan(
                format!("{fname}: pass every argument by name or none (found {a}): {usage}"),
                pos,
            ));
        };
        let place = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(&name.value))
            .ok_or_else(|| {
                SqlError::plan(
                    format!(
                        "{fname} has no parameter {}; its parameters are {}",
                        name.value,
                        names.join(", ")
                    ),
                    pos,
                )
            })?;
        if by_place[place].replace(e).is_some() {
            return Err(SqlError::plan(
                format!("{fname}: parameter {} given twice", names[place]),
                pos,
            ));
        }
    }
    // The optional OFFSET and what follows it may be left out; nothing
    // before it may. A missing OFFSET before a given later parameter is 0.
    let required = names.iter().position(|n| *n == "OFFSET").unwrap_or(names.len());
    let given = by_place
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |i| i + 1)
        .max(required);
    by_place[..given]
        .iter()
        .zip(names)
        .map(|(e, n)| match (e, *n) {
            (Some(e), _) => Ok(*e),
            (None, "OFFSET") => Ok(&*NO_OFFSET),
            (None, n) => Err(SqlError::plan(
                format!("{fname}: parameter {n} is missing: {usage}"),
                pos,
            )),
        })
        .collect()
}

/// `TABLE t [PARTITION BY k | (k1, k2)]`: the table or view and the
/// partition columns.
fn table_argument(e: &Expr, inputs: &Inputs<'_>, usage: &str) -> Result<(WindowInput, Vec<String>)> {
    let bad = || {
        SqlError::plan(
            format!("the first argument must be TABLE name, found {e}: {usage}"),
            position_of(e),
        )
    };
    let Expr::Prefixed { prefix, value } = e else {
        return Err(bad());
    };
    if prefix.value != TABLE_ARGUMENT {
        return Err(bad());
    }
    let (table, partition) = match value.as_ref() {
        Expr::Tuple(parts) if parts.len() == 2 => (&parts[0], Some(&parts[1])),
        other => (other, None),
    };
    let Expr::CompoundIdentifier(parts) = table else {
        return Err(bad());
    };
    let name = parts.last().map(normalize).unwrap_or_default();
    let def = match (inputs.catalog.get(&name), inputs.views.get(&name)) {
        (Some(table), _) => WindowInput::Table(Arc::clone(table)),
        (None, Some(plan)) => WindowInput::View {
            name,
            plan: Arc::clone(plan),
        },
        (None, None) => return Err(SqlError::unknown_table(name, position_of(e))),
    };
    // A column, or one qualified by the table (`t.k`, as Flink's legacy
    // SESSION group windows write it).
    let column = |c: &Expr| match c {
        Expr::Identifier(c) => Ok(normalize(c)),
        Expr::CompoundIdentifier(parts) if let Some(c) = parts.last() => Ok(normalize(c)),
        other => Err(SqlError::unsupported(
            format!("PARTITION BY {other} (partition by columns)"),
            position_of(e),
        )),
    };
    let columns = match partition {
        None => vec![],
        Some(Expr::Nested(inner)) => vec![column(inner)?],
        Some(Expr::Tuple(cols)) => cols.iter().map(column).collect::<Result<_>>()?,
        Some(other) => vec![column(other)?],
    };
    Ok((def, columns))
}

fn descriptor_argument(e: &Expr, usage: &str) -> Result<String> {
    if let Expr::Function(f) = e
        && f.name.to_string().eq_ignore_ascii_case("DESCRIPTOR")
        && let FunctionArguments::List(list) = &f.args
        && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Identifier(col)))] = list.args.as_slice()
    {
        return Ok(normalize(col));
    }
    Err(SqlError::plan(
        format!("the second argument must be DESCRIPTOR(column), found {e}: {usage}"),
        position_of(e),
    ))
}

/// A literal interval of DataFusion's in milliseconds; `None` for other
/// expressions and for intervals with months (they have no fixed length).
pub fn literal_interval_ms(e: &LExpr) -> Option<i64> {
    i64::try_from(crate::planner::day_time::literal_nanos(e)? / 1_000_000).ok()
}

/// A constant `INTERVAL …` in milliseconds (months are refused: they have
/// no fixed length).
pub fn interval_ms(e: &Expr, state: &SessionState) -> Result<i64> {
    let pos = position_of(e);
    let logical = state
        .create_logical_expr_from_sql_expr(
            ExprWithAlias {
                expr: e.clone(),
                alias: None,
            },
            &DFSchema::empty(),
        )
        .map_err(|err| SqlError::plan(format!("expected an INTERVAL, found {e}: {err}"), pos))?;
    literal_interval_ms(&logical).ok_or_else(|| {
        SqlError::plan(
            format!("expected a constant INTERVAL of days, hours, minutes, seconds or milliseconds, found {e}"),
            pos,
        )
    })
}
