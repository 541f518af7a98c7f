//! `MATCH_RECOGNIZE` in FROM (Flink's pattern recognition).
//!
//! DataFusion does not plan it, so each clause is replaced in the AST by a
//! placeholder relation whose columns are the partition columns then the
//! measures (`ONE ROW PER MATCH`). Its input, `SELECT * FROM <table>`, is
//! planned first (as a view under a window TVF is), and the clause is
//! compiled against the input's columns into the engine's
//! [`MatchPlan`]; the placeholder carries it, and the stream planner
//! (`stream/match_recognize.rs`) puts the operator over the planned input.
//!
//! Flink's `WITHIN INTERVAL …` after `PATTERN (…)` is not read by
//! sqlparser: [`move_within`] moves it into `DEFINE` as a definition of a
//! reserved name before parsing.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::catalog::empty::EmptyTable;
use datafusion::datasource::{TableProvider, TableType, source_as_provider};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr as LExpr, LogicalPlan, TableScan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::ast::{
    AfterMatchSkip, Expr, Ident, MatchRecognizePattern, MatchRecognizeSymbol, Measure, ObjectName, ObjectNamePart,
    OrderByExpr, Query, RepetitionQuantifier, RowsPerMatch, SetExpr, SymbolDefinition, TableFactor, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use weir_engine::cep::{AfterMatch, MatchPlan, Nfa, Pattern};

use crate::error::{Position, Result, SqlError};
use crate::statement::position_of;

mod navigation;

/// The name `WITHIN`'s interval is defined under in `DEFINE` (no pattern
/// variable can take it: it is not a valid unquoted Flink identifier).
pub const WITHIN_SYMBOL: &str = "__weir_within";

/// The prefix of the relations standing for `MATCH_RECOGNIZE` clauses.
pub const MATCH_RELATION: &str = "__match_";

/// Numbers the relations, unique in the process so that plans never see
/// each other's.
static NEXT_RELATION: AtomicUsize = AtomicUsize::new(0);

/// Moves each `WITHIN <interval>` that follows `PATTERN (…)` to the start
/// of its `DEFINE`, as `__weir_within AS <interval>,` (the tokens keep
/// their places, so errors in the interval point at it).
pub fn move_within(tokens: &mut Vec<TokenWithSpan>) {
    let word = |t: &TokenWithSpan, w: &str| matches!(&t.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    let significant = |tokens: &[TokenWithSpan], from: usize| {
        (from..tokens.len()).find(|i| !matches!(tokens[*i].token, Token::Whitespace(_)))
    };
    let mut i = 0;
    while i < tokens.len() {
        if !word(&tokens[i], "PATTERN") {
            i += 1;
            continue;
        }
        i += 1;
        let Some(open) = significant(tokens, i).filter(|o| tokens[*o].token == Token::LParen) else {
            continue;
        };
        // The pattern's closing parenthesis.
        let mut depth = 0usize;
        let mut close = None;
        for (j, t) in tokens.iter().enumerate().skip(open) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { return };
        let Some(within) = significant(tokens, close + 1).filter(|w| word(&tokens[*w], "WITHIN")) else {
            continue;
        };
        let Some(define) = (within..tokens.len()).find(|d| word(&tokens[*d], "DEFINE")) else {
            return;
        };
        let interval: Vec<TokenWithSpan> = tokens.drain(within..define).skip(1).collect();
        let span = tokens[within].span;
        let at = |token: Token| TokenWithSpan { token, span };
        let mut moved = vec![
            at(Token::Whitespace(
                datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
            )),
            at(Token::make_word(WITHIN_SYMBOL, None)),
            at(Token::Whitespace(
                datafusion::sql::sqlparser::tokenizer::Whitespace::Space,
            )),
            at(Token::make_keyword("AS")),
        ];
        moved.extend(interval);
        moved.push(at(Token::Comma));
        let after_define = within + 1;
        tokens.splice(after_define..after_define, moved);
        i = after_define;
    }
}

/// A `MATCH_RECOGNIZE` clause cut out of a query, its input still to plan.
pub struct PendingMatch {
    /// The placeholder's name.
    pub name: String,
    /// `SELECT * FROM <the clause's table>`.
    pub input: Query,
    clause: TableFactor,
}

/// Replaces every `MATCH_RECOGNIZE` clause of `query` (not those inside
/// another's input: that input is planned as a query of its own) by its
/// placeholder relation.
pub fn rewrite(query: &mut Query) -> Result<Vec<PendingMatch>> {
    struct Cut {
        found: Vec<PendingMatch>,
        failed: Option<SqlError>,
    }
    impl VisitorMut for Cut {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::MatchRecognize { table, alias, .. } = t else {
                return ControlFlow::Continue(());
            };
            let name = format!("{MATCH_RELATION}{}", NEXT_RELATION.fetch_add(1, Ordering::Relaxed));
            let input = match select_all_from(table) {
                Ok(q) => q,
                Err(e) => {
                    self.failed = Some(e);
                    return ControlFlow::Break(());
                }
            };
            let alias = alias.take();
            let placeholder = TableFactor::Table {
                name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name.clone()))]),
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
            let clause = std::mem::replace(t, placeholder);
            self.found.push(PendingMatch { name, input, clause });
            ControlFlow::Continue(())
        }
    }
    let mut cut = Cut {
        found: Vec::new(),
        failed: None,
    };
    let _ = query.visit(&mut cut);
    match cut.failed {
        Some(e) => Err(e),
        None => Ok(cut.found),
    }
}

/// `SELECT * FROM <table>`: the rows the clause matches.
fn select_all_from(table: &TableFactor) -> Result<Query> {
    let dialect = crate::dialect::WeirDialect::default();
    let mut query = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .try_with_sql("SELECT * FROM t")
        .and_then(|mut p| p.parse_query())
        .map_err(|e| SqlError::plan(format!("MATCH_RECOGNIZE input: {e}"), None))?;
    if let SetExpr::Select(select) = query.body.as_mut()
        && let Some(from) = select.from.first_mut()
    {
        from.relation = table.clone();
    }
    Ok(*query)
}

/// A `MATCH_RECOGNIZE` clause, planned: its input and its operator.
#[derive(Debug)]
pub struct MatchRelation {
    /// The placeholder's name, registered while the query is planned.
    pub name: String,
    /// The rows matched, as DataFusion planned them.
    pub input: Arc<LogicalPlan>,
    /// The operator; its `time_column` must be the input's rowtime.
    pub plan: MatchPlan,
    /// The output column that is `MATCH_ROWTIME()`: the output's rowtime.
    pub rowtime: Option<usize>,
}

impl PendingMatch {
    /// Compiles the clause over its planned `input`.
    pub fn plan(self, input: LogicalPlan, state: &SessionState) -> Result<Arc<MatchRelation>> {
        let TableFactor::MatchRecognize {
            partition_by,
            order_by,
            measures,
            rows_per_match,
            after_match_skip,
            pattern,
            symbols,
            ..
        } = &self.clause
        else {
            return Err(SqlError::plan("not a MATCH_RECOGNIZE clause", None));
        };
        if let Some(RowsPerMatch::AllRows(_)) = rows_per_match {
            return Err(SqlError::Unsupported {
                construct: "ALL ROWS PER MATCH".into(),
                detail: Some(
                    "MATCH_RECOGNIZE emits ONE ROW PER MATCH: its partition columns, then its MEASURES".into(),
                ),
                position: position_of(&self.clause),
            });
        }
        let row: SchemaRef = Arc::new(input.schema().as_arrow().clone());
        let partition = partition_by
            .iter()
            .map(|e| column_index(e, &row, "PARTITION BY"))
            .collect::<Result<Vec<_>>>()?;
        let time_column = order_column(order_by, &row, &self.clause)?;
        let mut variables = Vec::new();
        let pattern_tree = convert_pattern(pattern, &mut variables)?;
        let nfa = Nfa::compile(&pattern_tree).map_err(|m| SqlError::plan(m, position_of(&self.clause)))?;
        let (within, defines) = split_within(symbols, state)?;
        let mut compiler = navigation::Compiler::new(state, input.schema(), &variables, time_column);
        let mut define_conditions = vec![None; variables.len()];
        for d in defines {
            let Some(v) = variables.iter().position(|v| *v == d.symbol.value) else {
                return Err(SqlError::plan(
                    format!("DEFINE {}: PATTERN ({pattern}) has no such variable", d.symbol),
                    Position::of(d.symbol.span),
                ));
            };
            if define_conditions[v].is_some() {
                return Err(SqlError::plan(
                    format!("{} is defined twice", d.symbol),
                    Position::of(d.symbol.span),
                ));
            }
            define_conditions[v] = Some(compiler.condition(&d.definition)?);
        }
        let mut fields: Vec<Field> = partition
            .iter()
            .map(|c| row.field(*c).clone().with_nullable(true))
            .collect();
        let mut compiled = Vec::new();
        let mut rowtime = None;
        for Measure { expr, alias } in measures {
            let m = compiler.condition(expr)?;
            if is_match_rowtime(expr) {
                rowtime = Some(fields.len());
            }
            let data_type = m.expr.data_type(&m.schema).map_err(SqlError::from)?;
            fields.push(Field::new(alias.value.clone(), data_type, true));
            compiled.push(m);
        }
        let after_match = match after_match_skip {
            None | Some(AfterMatchSkip::PastLastRow) => AfterMatch::PastLastRow,
            Some(AfterMatchSkip::ToNextRow) => AfterMatch::ToNextRow,
            Some(AfterMatchSkip::ToFirst(v)) => AfterMatch::ToFirst(variable(v, &variables)?),
            Some(AfterMatchSkip::ToLast(v)) => AfterMatch::ToLast(variable(v, &variables)?),
        };
        let plan = MatchPlan {
            partition,
            time_column,
            derived: compiler.derived,
            variables,
            nfa,
            pattern_text: pattern.to_string(),
            defines: define_conditions,
            measures: compiled,
            after_match,
            within,
            input_schema: Arc::clone(&row),
            output_schema: Arc::new(Schema::new(fields)),
            late_output: None,
        };
        Ok(Arc::new(MatchRelation {
            name: self.name,
            input: Arc::new(input),
            plan,
            rowtime,
        }))
    }
}

/// The input column a `PARTITION BY` / `ORDER BY` item names.
fn column_index(e: &Expr, row: &Schema, clause: &str) -> Result<usize> {
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(parts) if let Some(last) = parts.last() => &last.value,
        _ => {
            return Err(SqlError::unsupported(
                format!("{clause} {e} in MATCH_RECOGNIZE (name a column of its input)"),
                position_of(e),
            ));
        }
    };
    row.index_of(name).map_err(|_| {
        SqlError::plan(
            format!("{clause} {e}: MATCH_RECOGNIZE's input has no such column"),
            position_of(e),
        )
    })
}

/// The time column `ORDER BY` starts with, ascending (Flink's rule; that
/// it is the rowtime is checked where rowtimes are known).
fn order_column(order_by: &[OrderByExpr], row: &Schema, clause: &TableFactor) -> Result<usize> {
    let reason = "as in Flink, MATCH_RECOGNIZE orders rows by their time attribute: ORDER BY <rowtime> [ASC]";
    let Some(first) = order_by.first() else {
        return Err(SqlError::plan(
            format!("MATCH_RECOGNIZE needs ORDER BY: {reason}"),
            position_of(clause),
        ));
    };
    if first.options.asc == Some(false) {
        return Err(SqlError::plan(
            format!("ORDER BY {first} in MATCH_RECOGNIZE: descending order is not supported; {reason}"),
            position_of(&first.expr),
        ));
    }
    if let Some(more) = order_by.get(1) {
        return Err(SqlError::unsupported(
            format!(
                "ORDER BY {more} after the time attribute in MATCH_RECOGNIZE (rows of equal time are taken in arrival order)"
            ),
            position_of(&more.expr),
        ));
    }
    column_index(&first.expr, row, "ORDER BY")
}

/// The `WITHIN` interval in milliseconds (moved into `DEFINE` by
/// [`move_within`]), and the other definitions.
fn split_within<'a>(
    symbols: &'a [SymbolDefinition],
    state: &SessionState,
) -> Result<(Option<i64>, Vec<&'a SymbolDefinition>)> {
    let mut within = None;
    let mut defines = Vec::new();
    for s in symbols {
        if s.symbol.value != WITHIN_SYMBOL {
            defines.push(s);
            continue;
        }
        let ms = super::window_tvf::interval_ms(&s.definition, state)?;
        if ms <= 0 {
            return Err(SqlError::plan(
                "WITHIN needs a positive interval",
                position_of(&s.definition),
            ));
        }
        within = Some(ms);
    }
    Ok((within, defines))
}

fn variable(v: &Ident, variables: &[String]) -> Result<usize> {
    variables.iter().position(|x| *x == v.value).ok_or_else(|| {
        SqlError::plan(
            format!("AFTER MATCH SKIP TO {v}: the PATTERN has no variable {v}"),
            Position::of(v.span),
        )
    })
}

fn is_match_rowtime(e: &Expr) -> bool {
    matches!(e, Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("MATCH_ROWTIME"))
}

/// The engine's pattern of sqlparser's; variables are numbered in order of
/// first appearance. A quantifier followed by `?` is reluctant.
fn convert_pattern(p: &MatchRecognizePattern, variables: &mut Vec<String>) -> Result<Pattern> {
    let unsupported = |what: &str| SqlError::unsupported(format!("{what} in a MATCH_RECOGNIZE PATTERN"), None);
    match p {
        MatchRecognizePattern::Symbol(MatchRecognizeSymbol::Named(v)) => {
            if v.value == WITHIN_SYMBOL {
                return Err(SqlError::plan(format!("{v} is a reserved name"), Position::of(v.span)));
            }
            let i = variables.iter().position(|x| *x == v.value).unwrap_or_else(|| {
                variables.push(v.value.clone());
                variables.len() - 1
            });
            Ok(Pattern::Var(i))
        }
        MatchRecognizePattern::Symbol(s) => Err(unsupported(&format!("the anchor {s}"))),
        MatchRecognizePattern::Exclude(s) => Err(unsupported(&format!("the exclusion {{- {s} -}}"))),
        MatchRecognizePattern::Permute(_) => Err(unsupported("PERMUTE")),
        MatchRecognizePattern::Concat(parts) => Ok(Pattern::Concat(
            parts
                .iter()
                .map(|q| convert_pattern(q, variables))
                .collect::<Result<_>>()?,
        )),
        MatchRecognizePattern::Alternation(parts) => Ok(Pattern::Alt(
            parts
                .iter()
                .map(|q| convert_pattern(q, variables))
                .collect::<Result<_>>()?,
        )),
        MatchRecognizePattern::Group(inner) => convert_pattern(inner, variables),
        // `x+?`: sqlparser reads the `?` as a second quantifier.
        MatchRecognizePattern::Repetition(inner, RepetitionQuantifier::AtMostOne)
            if let MatchRecognizePattern::Repetition(body, q) = inner.as_ref() =>
        {
            if matches!(body.as_ref(), MatchRecognizePattern::Repetition(..)) {
                return Err(unsupported(&format!("the quantifiers of {p}")));
            }
            repeat(convert_pattern(body, variables)?, q, false)
        }
        MatchRecognizePattern::Repetition(inner, q) => {
            if matches!(inner.as_ref(), MatchRecognizePattern::Repetition(..)) {
                return Err(unsupported(&format!("the quantifiers of {p}")));
            }
            repeat(convert_pattern(inner, variables)?, q, true)
        }
    }
}

fn repeat(inner: Pattern, q: &RepetitionQuantifier, greedy: bool) -> Result<Pattern> {
    let (min, max) = match *q {
        RepetitionQuantifier::ZeroOrMore => (0, None),
        RepetitionQuantifier::OneOrMore => (1, None),
        RepetitionQuantifier::AtMostOne => (0, Some(1)),
        RepetitionQuantifier::Exactly(n) => (n, Some(n)),
        RepetitionQuantifier::AtLeast(n) => (n, None),
        RepetitionQuantifier::AtMost(m) => (0, Some(m)),
        RepetitionQuantifier::Range(n, m) => (n, Some(m)),
    };
    if max.is_some_and(|m| m < min || m == 0) {
        return Err(SqlError::plan(format!("the quantifier {q} matches no rows"), None));
    }
    Ok(Pattern::Repeat {
        inner: Box::new(inner),
        min,
        max,
        greedy,
    })
}

/// The placeholder table of a planned clause: DataFusion reads its
/// columns, the stream planner its relation.
#[derive(Debug)]
pub struct MatchTable(pub Arc<MatchRelation>);

#[async_trait]
impl TableProvider for MatchTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.0.plan.output_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Never run as a batch: the stream planner replaces it.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[LExpr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        EmptyTable::new(self.schema())
            .scan(state, projection, filters, limit)
            .await
    }
}

/// The clause a scan reads, if it reads one's placeholder.
pub fn relation(scan: &TableScan) -> Option<Arc<MatchRelation>> {
    let provider = source_as_provider(&scan.source).ok()?;
    provider.downcast_ref::<MatchTable>().map(|t| Arc::clone(&t.0))
}

/// The placeholder of `relation`, registered while its query is planned.
pub fn table(relation: &Arc<MatchRelation>) -> Arc<dyn TableProvider> {
    Arc::new(MatchTable(Arc::clone(relation)))
}
