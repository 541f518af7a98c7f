//! Weir's statements and their parser.
//!
//! Queries, INSERT and expressions are parsed by sqlparser (with
//! [`WeirDialect`]); the statements Flink has and sqlparser lacks — `CREATE
//! TABLE` with `WATERMARK FOR` and computed columns, `SET 'k' = 'v'`,
//! `RESET`, `SHOW JOBS`, `STOP JOB`, `CREATE MATERIALIZED VIEW … AS SELECT`
//! with Weir's window clauses — are parsed here with sqlparser's own
//! `Parser` primitives, on the same token stream.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{
    DataType as SqlType, Expr, Ident, ObjectName, Query, Spanned,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Position, Result, SqlError};

mod alter;
mod catalog;
mod explain;
mod insert;
mod like;
mod partitioned;
mod show;
mod statement_set;
pub use alter::{AlterAction, AlterTable, AlterView, AlterViewAction, Component, Place};
pub use catalog::CatalogStatement;
pub use like::{LikeClause, LikeFeature, LikeMode};
use insert::parse_insert;
pub use partitioned::PartitionedBy;
pub use show::{LikeFilter, Show};

/// One column of `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: Ident,
    pub kind: ColumnKind,
    pub position: Option<Position>,
}

/// A physical column, read from the connector, or a computed one.
#[derive(Debug, Clone)]
pub enum ColumnKind {
    Physical { data_type: SqlType, not_null: bool },
    /// `name AS expr`
    Computed(Box<Expr>),
    /// `name TYPE METADATA [FROM 'key'] [VIRTUAL]`: a value the connector
    /// has about each record (a Kafka offset), `key` defaulting to the
    /// column's name. A `VIRTUAL` one is only read, never written.
    Metadata { data_type: SqlType, key: Option<String>, is_virtual: bool },
}

/// `WATERMARK FOR column AS expr`
#[derive(Debug, Clone)]
pub struct WatermarkSpec {
    pub column: Ident,
    pub expr: Expr,
    pub position: Option<Position>,
}

/// Flink's `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct CreateTable {
    pub name: ObjectName,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnSpec>,
    pub watermark: Option<WatermarkSpec>,
    /// `PRIMARY KEY (…) NOT ENFORCED` columns.
    pub primary_key: Vec<Ident>,
    /// `PARTITIONED BY (…)`.
    pub partitioned_by: Option<PartitionedBy>,
    /// `WITH (…)`, keys as written.
    pub options: BTreeMap<String, String>,
    /// `LIKE source (…)`: declared as another table with changes.
    pub like: Option<LikeClause>,
}

/// Clauses Weir adds after a windowed `GROUP BY` (SQL.md, "Late data" and
/// "Emit modes"), in this order.
#[derive(Debug, Clone, Default)]
pub struct WindowClauses {
    /// `EMIT EARLY EVERY INTERVAL …`
    pub emit_early: Option<Expr>,
    /// `ALLOWED LATENESS INTERVAL …`
    pub allowed_lateness: Option<Expr>,
    /// `LATE DATA INTO t`
    pub late_data_into: Option<ObjectName>,
    pub position: Option<Position>,
}

impl WindowClauses {
    pub fn is_empty(&self) -> bool {
        self.emit_early.is_none() && self.allowed_lateness.is_none() && self.late_data_into.is_none()
    }
}

/// A statement Weir runs.
#[derive(Debug, Clone)]
pub enum WeirStatement {
    CreateTable(CreateTable),
    DropTable { name: ObjectName, if_exists: bool },
    /// `CREATE [OR REPLACE] TABLE t WITH (…) AS SELECT …` (Flink's CTAS
    /// and RTAS): a table of the query's columns, and the job writing it.
    CreateTableAs {
        create: CreateTable,
        query: Box<Query>,
        /// `OR REPLACE`: a table of that name is dropped first.
        replace: bool,
    },
    /// `INSERT INTO sink [(col, …)] SELECT …`: a continuous job.
    Insert {
        table: ObjectName,
        /// The column list: the query's columns go to these, the others
        /// are NULL; empty for every column in order.
        columns: Vec<Ident>,
        /// `PARTITION (col = value, …)`: columns given a value for every
        /// row, which the query does not produce.
        partition: Vec<(Ident, Expr)>,
        query: Box<Query>,
        clauses: WindowClauses,
    },
    /// A plain query.
    Query { query: Box<Query>, clauses: WindowClauses },
    /// `CREATE MATERIALIZED VIEW v AS SELECT …`: a continuous job whose
    /// rows are kept in a memory table `v`, one row per key.
    CreateMaterializedView {
        name: ObjectName,
        query: Box<Query>,
        clauses: WindowClauses,
    },
    /// `EXPLAIN <query or INSERT>`.
    Explain(Box<WeirStatement>),
    /// `SET 'key' = 'value'`, or `SET` alone to list settings.
    Set { key: Option<String>, value: Option<String> },
    /// `RESET 'key'`, or `RESET` alone for all.
    Reset { key: Option<String> },
    /// `CREATE [TEMPORARY] VIEW [IF NOT EXISTS] v [(columns)] AS query`
    CreateView {
        name: ObjectName,
        columns: Vec<Ident>,
        query: Box<Query>,
        if_not_exists: bool,
    },
    DropView { name: ObjectName, if_exists: bool },
    /// `EXECUTE STATEMENT SET BEGIN INSERT …; INSERT …; END`: one job.
    StatementSet(Vec<WeirStatement>),
    /// `BEGIN STATEMENT SET`: the INSERTs up to `END` are one job (Flink's
    /// SQL client form).
    BeginStatementSet,
    EndStatementSet,
    /// Flink's `SHOW …` of the catalog, its tables, views, columns,
    /// functions and modules.
    Show(Show),
    ShowJobs,
    /// `USE …` and `CREATE DATABASE`, against Weir's one catalog.
    Catalog(CatalogStatement),
    /// `ALTER TABLE t …`
    AlterTable(AlterTable),
    /// `ALTER VIEW v …`
    AlterView(AlterView),
    /// `STOP JOB 'id' [WITH SAVEPOINT]`
    StopJob { id: String, savepoint: bool },
    /// `DESCRIBE [EXTENDED] t` (a table or a view)
    Describe { name: ObjectName },
}

/// One statement at the parser's position (without its `;`).
pub(crate) fn parse_statement(p: &mut Parser) -> Result<WeirStatement> {
    let tok = p.peek_token();
    let pos = Position::of(tok.span);
    if p.parse_keyword(Keyword::CREATE) {
        let replace_at = Position::of(p.peek_token().span);
        let replace = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        let _ = p.parse_keyword(Keyword::TEMPORARY);
        if p.parse_keyword(Keyword::TABLE) {
            let create = parse_create_table(p)?;
            if p.parse_keyword(Keyword::AS) {
                let query = p.parse_query()?;
                return Ok(WeirStatement::CreateTableAs { create, query, replace });
            }
            if replace {
                return Err(SqlError::plan("CREATE OR REPLACE TABLE needs AS SELECT …", replace_at));
            }
            return Ok(WeirStatement::CreateTable(create));
        }
        if replace {
            return Err(SqlError::unsupported("CREATE OR REPLACE of anything but a TABLE … AS SELECT", replace_at));
        }
        if p.parse_keywords(&[Keyword::MATERIALIZED, Keyword::VIEW]) {
            let name = p.parse_object_name(false)?;
            p.expect_keyword(Keyword::AS)?;
            let query = p.parse_query()?;
            let clauses = parse_window_clauses(p)?;
            return Ok(WeirStatement::CreateMaterializedView { name, query, clauses });
        }
        if p.parse_keyword(Keyword::VIEW) {
            let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let name = p.parse_object_name(false)?;
            let columns = match p.consume_token(&Token::LParen) {
                true => {
                    let columns = p.parse_comma_separated(|p| p.parse_identifier())?;
                    p.expect_token(&Token::RParen)?;
                    columns
                }
                false => Vec::new(),
            };
            if p.parse_keyword(Keyword::COMMENT) {
                p.parse_literal_string()?;
            }
            p.expect_keyword(Keyword::AS)?;
            let query = p.parse_query()?;
            return Ok(WeirStatement::CreateView { name, columns, query, if_not_exists });
        }
        if let Some(statement) = catalog::parse_create(p)? {
            return Ok(statement);
        }
        let what = p.peek_token();
        return Err(SqlError::unsupported(format!("CREATE {}", what.token), Position::of(what.span)));
    }
    if p.parse_keyword(Keyword::DROP) {
        let _ = p.parse_keyword(Keyword::TEMPORARY);
        catalog::refuse_drop(p)?;
        if p.parse_keyword(Keyword::VIEW) {
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = p.parse_object_name(false)?;
            return Ok(WeirStatement::DropView { name, if_exists });
        }
        p.expect_keyword(Keyword::TABLE)?;
        let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = p.parse_object_name(false)?;
        return Ok(WeirStatement::DropTable { name, if_exists });
    }
    if p.parse_keyword(Keyword::SET) {
        return parse_set(p);
    }
    if parse_word(p, "EXECUTE") {
        expect_word(p, "STATEMENT")?;
        p.expect_keyword(Keyword::SET)?;
        return statement_set::parse_body(p, pos);
    }
    if p.parse_keyword(Keyword::BEGIN) {
        expect_word(p, "STATEMENT")?;
        p.expect_keyword(Keyword::SET)?;
        return Ok(WeirStatement::BeginStatementSet);
    }
    if p.parse_keyword(Keyword::END) {
        return Ok(WeirStatement::EndStatementSet);
    }
    if p.parse_keyword(Keyword::RESET) {
        let key = if matches!(p.peek_token().token, Token::SemiColon | Token::EOF) {
            None
        } else {
            Some(parse_key(p)?)
        };
        return Ok(WeirStatement::Reset { key });
    }
    if p.parse_keyword(Keyword::EXPLAIN) {
        return explain::parse_explain(p, pos);
    }
    if p.parse_keyword(Keyword::SHOW) {
        return show::parse_show(p);
    }
    if p.parse_keyword(Keyword::USE) {
        return catalog::parse_use(p);
    }
    if p.parse_keyword(Keyword::ALTER) {
        return alter::parse_alter(p);
    }
    catalog::refuse_modules(p)?;
    if parse_word(p, "STOP") {
        expect_word(p, "JOB")?;
        let id = p.parse_literal_string()?;
        let savepoint = p.parse_keyword(Keyword::WITH);
        if savepoint {
            p.expect_keyword(Keyword::SAVEPOINT)?;
        }
        return Ok(WeirStatement::StopJob { id, savepoint });
    }
    if p.parse_keyword(Keyword::DESCRIBE) || p.parse_keyword(Keyword::DESC) {
        // Flink's EXTENDED adds nothing Weir keeps.
        let _ = p.parse_keyword(Keyword::EXTENDED);
        let name = p.parse_object_name(false)?;
        return Ok(WeirStatement::Describe { name });
    }
    if p.peek_keyword(Keyword::INSERT) {
        return parse_insert(p);
    }
    if p.peek_keyword(Keyword::SELECT)
        || p.peek_keyword(Keyword::WITH)
        || p.peek_keyword(Keyword::VALUES)
        || p.peek_token().token == Token::LParen
    {
        let query = p.parse_query()?;
        let clauses = parse_window_clauses(p)?;
        return Ok(WeirStatement::Query { query, clauses });
    }
    Err(SqlError::Syntax {
        message: format!(
            "expected a statement (SELECT, INSERT INTO, CREATE TABLE, SET, EXPLAIN, …), found {}",
            tok.token
        ),
        position: pos,
    })
}

/// `[EMIT EARLY EVERY i] [ALLOWED LATENESS i] [LATE DATA INTO t]` after a
/// query.
fn parse_window_clauses(p: &mut Parser) -> Result<WindowClauses> {
    let mut c = WindowClauses {
        position: Position::of(p.peek_token().span),
        ..Default::default()
    };
    if parse_word(p, "EMIT") {
        expect_word(p, "EARLY")?;
        expect_word(p, "EVERY")?;
        c.emit_early = Some(p.parse_expr()?);
    }
    if parse_word(p, "ALLOWED") {
        expect_word(p, "LATENESS")?;
        c.allowed_lateness = Some(p.parse_expr()?);
    }
    if parse_word(p, "LATE") {
        expect_word(p, "DATA")?;
        p.expect_keyword(Keyword::INTO)?;
        c.late_data_into = Some(p.parse_object_name(false)?);
    }
    Ok(c)
}

/// A settings key: `'a.b.c'` as in Flink, or bare `a.b.c`.
fn parse_key(p: &mut Parser) -> Result<String> {
    if let Token::SingleQuotedString(_) = p.peek_token().token {
        return Ok(p.parse_literal_string()?);
    }
    let parts = p.parse_object_name(false)?;
    Ok(parts.to_string())
}

fn parse_set(p: &mut Parser) -> Result<WeirStatement> {
    if matches!(p.peek_token().token, Token::SemiColon | Token::EOF) {
        return Ok(WeirStatement::Set { key: None, value: None });
    }
    let key = parse_key(p)?;
    p.expect_token(&Token::Eq)?;
    let value = parse_value(p)?;
    Ok(WeirStatement::Set {
        key: Some(key),
        value: Some(value),
    })
}

/// An option value: a quoted string, a number or a bare word.
fn parse_value(p: &mut Parser) -> Result<String> {
    let t = p.next_token();
    match t.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Number(n, _) => Ok(n),
        Token::Word(w) => Ok(w.value),
        other => Err(SqlError::Syntax {
            message: format!("expected a quoted value, found {other}"),
            position: Position::of(t.span),
        }),
    }
}

fn parse_create_table(p: &mut Parser) -> Result<CreateTable> {
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    let mut columns = Vec::new();
    let mut watermark = None;
    let mut primary_key = Vec::new();
    // A table declared LIKE another may leave its column list out.
    let listed = p.consume_token(&Token::LParen);
    loop {
        if !listed {
            break;
        }
        let tok = p.peek_token();
        let pos = Position::of(tok.span);
        let watermark_clause = matches!(&p.peek_token_ref().token, Token::Word(w) if w.value.eq_ignore_ascii_case("WATERMARK"))
            && matches!(&p.peek_nth_token_ref(1).token, Token::Word(w) if w.keyword == Keyword::FOR);
        if watermark_clause {
            p.next_token();
            p.expect_keyword(Keyword::FOR)?;
            let column = p.parse_identifier()?;
            p.expect_keyword(Keyword::AS)?;
            let expr = p.parse_expr()?;
            if watermark.is_some() {
                return Err(SqlError::plan("a table can declare only one WATERMARK", pos));
            }
            watermark = Some(WatermarkSpec { column, expr, position: pos });
        } else if p.parse_keyword(Keyword::CONSTRAINT) {
            p.parse_identifier()?;
            primary_key = parse_primary_key(p)?;
        } else if p.peek_keyword(Keyword::PRIMARY) {
            primary_key = parse_primary_key(p)?;
        } else {
            let name = p.parse_identifier()?;
            let kind = if p.parse_keyword(Keyword::AS) {
                ColumnKind::Computed(Box::new(p.parse_expr()?))
            } else {
                let data_type = p.parse_data_type()?;
                let mut not_null = false;
                let mut metadata = None;
                loop {
                    if p.parse_keyword(Keyword::METADATA) {
                        let key = if p.parse_keyword(Keyword::FROM) { Some(p.parse_literal_string()?) } else { None };
                        metadata = Some((key, p.parse_keyword(Keyword::VIRTUAL)));
                        break;
                    }
                    if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
                        not_null = true;
                    } else if p.parse_keyword(Keyword::NULL) {
                        not_null = false;
                    } else if p.parse_keyword(Keyword::PRIMARY) {
                        p.expect_keyword(Keyword::KEY)?;
                        p.expect_keywords(&[Keyword::NOT, Keyword::ENFORCED])?;
                        primary_key = vec![name.clone()];
                    } else {
                        break;
                    }
                }
                match metadata {
                    Some((key, is_virtual)) => ColumnKind::Metadata { data_type, key, is_virtual },
                    None => ColumnKind::Physical { data_type, not_null },
                }
            };
            if p.parse_keyword(Keyword::COMMENT) {
                p.parse_literal_string()?;
            }
            columns.push(ColumnSpec { name, kind, position: pos });
        }
        if p.consume_token(&Token::Comma) {
            continue;
        }
        p.expect_token(&Token::RParen)?;
        break;
    }
    if p.parse_keyword(Keyword::COMMENT) {
        p.parse_literal_string()?;
    }
    let partitioned_by = partitioned::parse_partitioned_by(p)?;
    let mut options = BTreeMap::new();
    if p.parse_keyword(Keyword::WITH) {
        p.expect_token(&Token::LParen)?;
        if !p.consume_token(&Token::RParen) {
            loop {
                let t = p.peek_token();
                let key = parse_key(p)?;
                p.expect_token(&Token::Eq)?;
                let value = parse_value(p)?;
                if options.insert(key.clone(), value).is_some() {
                    return Err(SqlError::plan(format!("option '{key}' is given twice"), Position::of(t.span)));
                }
                if p.consume_token(&Token::Comma) {
                    continue;
                }
                p.expect_token(&Token::RParen)?;
                break;
            }
        }
    }
    let like_at = Position::of(p.peek_token().span);
    let like = match p.parse_keyword(Keyword::LIKE) {
        true => Some(like::parse_like(p, like_at)?),
        // `CREATE TABLE t WITH (…) AS SELECT …` takes the query's columns.
        false if !listed && !p.peek_keyword(Keyword::AS) => {
            return Err(SqlError::plan(
                "CREATE TABLE needs its columns in parentheses (or LIKE another table, or AS SELECT …)",
                like_at,
            ));
        }
        false => None,
    };
    Ok(CreateTable {
        name,
        if_not_exists,
        columns,
        watermark,
        primary_key,
        partitioned_by,
        options,
        like,
    })
}

fn parse_primary_key(p: &mut Parser) -> Result<Vec<Ident>> {
    p.expect_keywords(&[Keyword::PRIMARY, Keyword::KEY])?;
    p.expect_token(&Token::LParen)?;
    let cols = p.parse_comma_separated(|p| p.parse_identifier())?;
    p.expect_token(&Token::RParen)?;
    p.expect_keywords(&[Keyword::NOT, Keyword::ENFORCED])?;
    Ok(cols)
}

/// Consumes the next token if it is the (non-reserved) word `w`.
fn parse_word(p: &mut Parser, w: &str) -> bool {
    match &p.peek_token_ref().token {
        Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w) => {
            p.next_token();
            true
        }
        _ => false,
    }
}

fn expect_word(p: &mut Parser, w: &str) -> Result<()> {
    if parse_word(p, w) {
        return Ok(());
    }
    let t = p.peek_token();
    Err(SqlError::Syntax {
        message: format!("expected {w}, found {}", t.token),
        position: Position::of(t.span),
    })
}

/// Where an expression starts, for error messages.
pub fn position_of(e: &impl Spanned) -> Option<Position> {
    Position::of(e.span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    #[test]
    fn metadata_columns_with_and_without_from_and_virtual() {
        let s = parse_script(
            "CREATE TABLE t (v BIGINT, o BIGINT METADATA FROM 'offset' VIRTUAL, `timestamp` TIMESTAMP(3) METADATA, p INT METADATA FROM 'partition')",
        )
        .unwrap();
        let WeirStatement::CreateTable(ct) = &s[0].statement else { panic!() };
        let kinds: Vec<(Option<String>, bool)> = ct
            .columns
            .iter()
            .filter_map(|c| match &c.kind {
                ColumnKind::Metadata { key, is_virtual, .. } => Some((key.clone(), *is_virtual)),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, vec![(Some("offset".into()), true), (None, false), (Some("partition".into()), false)]);
    }

    #[test]
    fn flink_create_table_with_watermark_and_computed_column() {
        let sql = "CREATE TABLE bids (\n  seq BIGINT,\n  price DECIMAL(10, 2) NOT NULL,\n  ts AS TO_TIMESTAMP_LTZ(seq, 3),\n  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND\n) WITH ('connector' = 'datagen', 'number-of-rows' = '10');";
        let s = parse_script(sql).unwrap();
        assert_eq!(s.len(), 1);
        let WeirStatement::CreateTable(ct) = &s[0].statement else {
            panic!("not a CREATE TABLE")
        };
        assert_eq!(ct.columns.len(), 3);
        assert!(matches!(ct.columns[2].kind, ColumnKind::Computed(_)));
        let wm = ct.watermark.as_ref().unwrap();
        assert_eq!(wm.column.value, "ts");
        assert_eq!(wm.expr.to_string(), "ts - INTERVAL '5' SECOND");
        assert_eq!(ct.options["number-of-rows"], "10");
        assert!(s[0].text.starts_with("CREATE TABLE bids"));
        assert!(s[0].text.ends_with("'10')"));
    }

    #[test]
    fn window_tvf_table_argument() {
        let sql = "SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end";
        let s = parse_script(sql).unwrap();
        let WeirStatement::Query { query: q, .. } = &s[0].statement else { panic!() };
        assert!(q.to_string().contains("TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)"));
    }

    #[test]
    fn late_data_clauses_follow_the_group_by() {
        let sql = "INSERT INTO counts SELECT window_start, window_end, count(*) FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end EMIT EARLY EVERY INTERVAL '1' SECOND ALLOWED LATENESS INTERVAL '1' MINUTE LATE DATA INTO late_bids;";
        let s = parse_script(sql).unwrap();
        let WeirStatement::Insert { clauses, .. } = &s[0].statement else { panic!() };
        assert_eq!(clauses.emit_early.as_ref().unwrap().to_string(), "INTERVAL '1' SECOND");
        assert_eq!(clauses.allowed_lateness.as_ref().unwrap().to_string(), "INTERVAL '1' MINUTE");
        assert_eq!(clauses.late_data_into.as_ref().unwrap().to_string(), "late_bids");
        let e = parse_script("SELECT a FROM t GROUP BY a ALLOWED LATENESS INTERVAL '1' SECOND LATE DATA t").unwrap_err();
        assert!(e.to_string().contains("INTO"), "{e}");
        // Not taken for aliases.
        let s = parse_script("SELECT a FROM t LATE DATA INTO x; SELECT a ALLOWED LATENESS INTERVAL '1' SECOND").unwrap();
        assert!(matches!(&s[0].statement, WeirStatement::Query { clauses, .. } if clauses.late_data_into.is_some()));
        assert!(matches!(&s[1].statement, WeirStatement::Query { clauses, .. } if clauses.allowed_lateness.is_some()));
        let s = parse_script("CREATE TABLE t (watermark TIMESTAMP(3), WATERMARK FOR watermark AS watermark)").unwrap();
        assert!(matches!(&s[0].statement, WeirStatement::CreateTable(c) if c.columns.len() == 1 && c.watermark.is_some()));
        assert!(e.to_string().contains("INTO"), "{e}");
    }

    #[test]
    fn set_reset_and_positions() {
        let s = parse_script("SET 'parallelism.default' = '4';\nRESET 'parallelism.default';\n  SHOW TABLES").unwrap();
        assert!(matches!(&s[0].statement, WeirStatement::Set { key: Some(k), value: Some(v) } if k == "parallelism.default" && v == "4"));
        assert!(matches!(&s[1].statement, WeirStatement::Reset { key: Some(_) }));
        assert_eq!(s[2].start, Position { line: 3, column: 3 });
    }

    /// Each statement's text, wherever it starts: several on one line,
    /// over lines, after multi-byte characters.
    #[test]
    fn statement_texts_are_cut_where_they_start_and_end() {
        let sql = "SELECT 'é' AS a; SELECT 2;\n  SELECT\n 3 ;;SELECT 'ü€' AS b";
        let texts: Vec<String> = parse_script(sql).unwrap().into_iter().map(|s| s.text).collect();
        assert_eq!(texts, ["SELECT 'é' AS a", "SELECT 2", "SELECT\n 3", "SELECT 'ü€' AS b"]);
        let many = "SELECT 1;".repeat(30_000);
        let parsed = parse_script(&many).unwrap();
        assert_eq!(parsed.len(), 30_000);
        assert!(parsed.iter().all(|s| s.text == "SELECT 1"));
        assert_eq!(parsed[29_999].start, Position { line: 1, column: 29_999 * 9 + 1 });
    }

    #[test]
    fn errors_carry_positions() {
        let e = parse_script("SELECT 1;\nSELEC x").unwrap_err();
        assert_eq!(e.position(), Some(Position { line: 2, column: 1 }));
        let e = parse_script("CREATE TABLE t (a BIGINT, WATERMARK ts AS ts)").unwrap_err();
        assert!(matches!(e, SqlError::Syntax { .. }), "{e}");
        assert_eq!(e.position().unwrap().line, 1);
        let e = parse_script("CREATE FUNCTION f AS 'x'").unwrap_err();
        assert!(e.to_string().contains("CREATE FUNCTION"), "{e}");
    }

    /// `top` is a column name, as in Flink and PostgreSQL; `TOP n` keeps
    /// the meaning sqlparser gives it.
    #[test]
    fn top_is_a_column_name() {
        for sql in [
            "SELECT max(price) AS top FROM bids",
            "SELECT top FROM counts",
            "SELECT window_start, top FROM counts",
            "SELECT c.top, top + 1 FROM counts c WHERE top > 3",
        ] {
            let s = parse_script(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            let WeirStatement::Query { query, .. } = &s[0].statement else { panic!("{sql}") };
            assert_eq!(query.to_string(), sql, "{sql}");
        }
        let s = parse_script("SELECT TOP 3 a FROM t").unwrap();
        let WeirStatement::Query { query, .. } = &s[0].statement else { panic!() };
        assert!(query.to_string().contains("TOP 3"), "{query}");
    }

    #[test]
    fn materialized_view_takes_a_query_and_window_clauses() {
        let sql = "CREATE MATERIALIZED VIEW v AS SELECT window_start, count(*) AS c FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end ALLOWED LATENESS INTERVAL '1' MINUTE;";
        let s = parse_script(sql).unwrap();
        let WeirStatement::CreateMaterializedView { name, query, clauses } = &s[0].statement else { panic!() };
        assert_eq!(name.to_string(), "v");
        assert!(query.to_string().starts_with("SELECT window_start"));
        assert_eq!(clauses.allowed_lateness.as_ref().unwrap().to_string(), "INTERVAL '1' MINUTE");
        let e = parse_script("CREATE MATERIALIZED VIEW v SELECT 1").unwrap_err();
        assert!(matches!(e, SqlError::Syntax { .. }), "{e}");
    }
}
