//! Flink's `SHOW …` statements: the catalog's names (one catalog, one
//! database), its tables, views and columns, the DDL a table or view was
//! made with, and the functions, modules and jars a session has.

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;

use super::{WeirStatement, parse_word};
use crate::error::{Position, Result, SqlError};

/// One `SHOW` statement (`SHOW JOBS` is Weir's own: [`WeirStatement::ShowJobs`]).
#[derive(Debug, Clone)]
pub enum Show {
    Catalogs { like: Option<LikeFilter> },
    CurrentCatalog,
    Databases { like: Option<LikeFilter> },
    CurrentDatabase,
    /// `SHOW TABLES [(FROM | IN) [catalog.]db] [[NOT] LIKE 'p']`
    Tables { from: Option<ObjectName>, like: Option<LikeFilter> },
    /// `SHOW VIEWS`, with the same clauses.
    Views { from: Option<ObjectName>, like: Option<LikeFilter> },
    /// `SHOW COLUMNS (FROM | IN) t [[NOT] LIKE 'p']`: DESCRIBE's rows.
    Columns { table: ObjectName, like: Option<LikeFilter> },
    /// `SHOW CREATE TABLE t`: the DDL the catalog keeps.
    CreateTable(ObjectName),
    /// `SHOW CREATE VIEW v`
    CreateView(ObjectName),
    /// `SHOW [USER] FUNCTIONS [[NOT] LIKE 'p']`
    Functions { user: bool, like: Option<LikeFilter> },
    /// `SHOW [FULL] MODULES`
    Modules { full: bool },
    Jars,
}

/// `[NOT] (LIKE | ILIKE) 'pattern'`: Flink's filter of the names shown,
/// with SQL's wildcards `%` and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikeFilter {
    pub pattern: String,
    pub negated: bool,
    /// `ILIKE`: letters match in either case.
    pub case_insensitive: bool,
}

impl LikeFilter {
    /// Whether `name` is shown.
    pub fn keeps(&self, name: &str) -> bool {
        let (p, n): (Vec<char>, Vec<char>) = match self.case_insensitive {
            true => (self.pattern.to_lowercase().chars().collect(), name.to_lowercase().chars().collect()),
            false => (self.pattern.chars().collect(), name.chars().collect()),
        };
        like(&p, &n) != self.negated
    }
}

/// SQL's LIKE without escapes: `%` any run, `_` any one character. Linear
/// in space, quadratic at worst in time (no backtracking blow-up).
fn like(pattern: &[char], name: &[char]) -> bool {
    // matches[j]: the pattern so far matches name[..j].
    let mut matches = vec![false; name.len() + 1];
    matches[0] = true;
    for &c in pattern {
        let mut next = vec![false; name.len() + 1];
        match c {
            '%' => {
                let mut any = false;
                for j in 0..=name.len() {
                    any |= matches[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=name.len() {
                    next[j] = matches[j - 1] && (c == '_' || c == name[j - 1]);
                }
            }
        }
        matches = next;
    }
    matches[name.len()]
}

/// What follows `SHOW`.
pub(super) fn parse_show(p: &mut Parser) -> Result<WeirStatement> {
    let show = |s| Ok(WeirStatement::Show(s));
    if parse_word(p, "JOBS") {
        return Ok(WeirStatement::ShowJobs);
    }
    if parse_word(p, "CATALOGS") {
        return show(Show::Catalogs { like: parse_like_filter(p)? });
    }
    if parse_word(p, "DATABASES") {
        return show(Show::Databases { like: parse_like_filter(p)? });
    }
    if p.parse_keyword(Keyword::CURRENT) {
        if parse_word(p, "CATALOG") {
            return show(Show::CurrentCatalog);
        }
        if parse_word(p, "DATABASE") {
            return show(Show::CurrentDatabase);
        }
        return Err(expected(p, "CATALOG or DATABASE"));
    }
    if p.parse_keyword(Keyword::TABLES) {
        let from = parse_from(p)?;
        return show(Show::Tables { from, like: parse_like_filter(p)? });
    }
    if p.parse_keyword(Keyword::VIEWS) {
        let from = parse_from(p)?;
        return show(Show::Views { from, like: parse_like_filter(p)? });
    }
    if parse_word(p, "COLUMNS") {
        if !(p.parse_keyword(Keyword::FROM) || p.parse_keyword(Keyword::IN)) {
            return Err(expected(p, "FROM or IN"));
        }
        let table = p.parse_object_name(false)?;
        return show(Show::Columns { table, like: parse_like_filter(p)? });
    }
    if p.parse_keyword(Keyword::CREATE) {
        if p.parse_keyword(Keyword::TABLE) {
            return show(Show::CreateTable(p.parse_object_name(false)?));
        }
        if p.parse_keyword(Keyword::VIEW) {
            return show(Show::CreateView(p.parse_object_name(false)?));
        }
        return Err(expected(p, "TABLE or VIEW"));
    }
    let user = p.parse_keyword(Keyword::USER);
    if parse_word(p, "FUNCTIONS") {
        // Flink's `FROM db` has one database to name here.
        let _ = parse_from(p)?;
        return show(Show::Functions { user, like: parse_like_filter(p)? });
    }
    if user {
        return Err(expected(p, "FUNCTIONS"));
    }
    let full = p.parse_keyword(Keyword::FULL);
    if parse_word(p, "MODULES") {
        return show(Show::Modules { full });
    }
    if full {
        return Err(expected(p, "MODULES"));
    }
    if parse_word(p, "JARS") {
        return show(Show::Jars);
    }
    let what = p.peek_token();
    Err(SqlError::unsupported(format!("SHOW {}", what.token), Position::of(what.span)))
}

/// `(FROM | IN) [catalog.]database`
fn parse_from(p: &mut Parser) -> Result<Option<ObjectName>> {
    if p.parse_keyword(Keyword::FROM) || p.parse_keyword(Keyword::IN) {
        return Ok(Some(p.parse_object_name(false)?));
    }
    Ok(None)
}

fn parse_like_filter(p: &mut Parser) -> Result<Option<LikeFilter>> {
    let negated = p.parse_keyword(Keyword::NOT);
    let case_insensitive = match p.parse_one_of_keywords(&[Keyword::LIKE, Keyword::ILIKE]) {
        Some(k) => k == Keyword::ILIKE,
        None if negated => return Err(expected(p, "LIKE or ILIKE")),
        None => return Ok(None),
    };
    let pattern = p.parse_literal_string()?;
    Ok(Some(LikeFilter { pattern, negated, case_insensitive }))
}

fn expected(p: &Parser, what: &str) -> SqlError {
    let t = p.peek_token();
    SqlError::Syntax {
        message: format!("expected {what}, found {}", t.token),
        position: Position::of(t.span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    fn show(sql: &str) -> Show {
        match parse_script(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).remove(0).statement {
            WeirStatement::Show(s) => s,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn like_has_sql_wildcards() {
        let f = |pattern: &str, negated| LikeFilter { pattern: pattern.into(), negated, case_insensitive: false };
        assert!(f("b%", false).keeps("bids"));
        assert!(!f("b%", false).keeps("abids"));
        assert!(f("_ids", false).keeps("bids"));
        assert!(!f("_ids", false).keeps("ids"));
        assert!(f("%i%s", false).keeps("bids"));
        assert!(f("b%", true).keeps("orders"));
        assert!(f("", false).keeps(""));
        assert!(!f("B%", false).keeps("bids"));
        let i = LikeFilter { pattern: "B%".into(), negated: false, case_insensitive: true };
        assert!(i.keeps("bids"));
    }

    #[test]
    fn show_forms() {
        assert!(matches!(show("SHOW CATALOGS"), Show::Catalogs { like: None }));
        assert!(matches!(show("SHOW CURRENT CATALOG"), Show::CurrentCatalog));
        assert!(matches!(show("SHOW DATABASES"), Show::Databases { .. }));
        assert!(matches!(show("show current database"), Show::CurrentDatabase));
        let Show::Tables { from: Some(from), like: Some(like) } =
            show("SHOW TABLES FROM default_catalog.default_database NOT LIKE 'b%'")
        else {
            panic!()
        };
        assert_eq!(from.to_string(), "default_catalog.default_database");
        assert!(like.negated && like.pattern == "b%");
        assert!(matches!(show("SHOW VIEWS IN default_database ILIKE 'V%'"), Show::Views { from: Some(_), like: Some(l) } if l.case_insensitive));
        assert!(matches!(show("SHOW COLUMNS IN t LIKE '%a'"), Show::Columns { like: Some(_), .. }));
        assert!(matches!(show("SHOW CREATE TABLE t"), Show::CreateTable(n) if n.to_string() == "t"));
        assert!(matches!(show("SHOW CREATE VIEW v"), Show::CreateView(_)));
        assert!(matches!(show("SHOW USER FUNCTIONS"), Show::Functions { user: true, .. }));
        assert!(matches!(show("SHOW FUNCTIONS LIKE 'a%'"), Show::Functions { user: false, like: Some(_) }));
        assert!(matches!(show("SHOW FULL MODULES"), Show::Modules { full: true }));
        assert!(matches!(show("SHOW MODULES"), Show::Modules { full: false }));
        assert!(matches!(show("SHOW JARS"), Show::Jars));
        assert!(matches!(parse_script("SHOW JOBS").unwrap()[0].statement, WeirStatement::ShowJobs));
    }

    #[test]
    fn bad_show_forms_say_where() {
        for (sql, needle, column) in [
            ("SHOW COLUMNS t", "expected FROM or IN", 14),
            ("SHOW TABLES NOT 'x'", "expected LIKE or ILIKE", 17),
            ("SHOW CURRENT TABLE", "expected CATALOG or DATABASE", 14),
            ("SHOW PARTITIONS t", "SHOW PARTITIONS is not supported", 6),
        ] {
            let e = parse_script(sql).unwrap_err();
            assert!(e.to_string().contains(needle), "{sql}: {e}");
            assert_eq!(e.position().map(|p| p.column), Some(column), "{sql}: {e}");
        }
    }
}
