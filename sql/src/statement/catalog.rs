//! Flink's statements about catalogs, databases and modules. Weir has one
//! catalog and one database under Flink's default names
//! (`crate::catalog::names`): naming them is accepted, making or dropping
//! others is refused where it is written.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{WeirStatement, parse_key, parse_value, parse_word};
use crate::catalog::names::ONE_CATALOG;
use crate::error::{Position, Result, SqlError};

/// A statement about the catalog, checked against Weir's one catalog and
/// database when it runs.
#[derive(Debug, Clone)]
pub enum CatalogStatement {
    /// `USE CATALOG c`
    UseCatalog(Ident),
    /// `USE [catalog.]database`
    UseDatabase(ObjectName),
    /// `USE MODULES m, …`: Weir has the `core` module only.
    UseModules(Vec<Ident>),
    /// `CREATE DATABASE [IF NOT EXISTS] [catalog.]db …`: only the one
    /// database, with IF NOT EXISTS, is accepted (as a no-op).
    CreateDatabase { name: ObjectName, if_not_exists: bool },
}

fn refused(what: &str, at: Option<Position>) -> SqlError {
    SqlError::Unsupported { construct: what.to_string(), detail: Some(ONE_CATALOG.to_string()), position: at }
}

/// What follows `USE`.
pub(super) fn parse_use(p: &mut Parser) -> Result<WeirStatement> {
    if parse_word(p, "CATALOG") {
        return Ok(WeirStatement::Catalog(CatalogStatement::UseCatalog(p.parse_identifier()?)));
    }
    if parse_word(p, "MODULES") {
        let modules = p.parse_comma_separated(|p| p.parse_identifier())?;
        return Ok(WeirStatement::Catalog(CatalogStatement::UseModules(modules)));
    }
    Ok(WeirStatement::Catalog(CatalogStatement::UseDatabase(p.parse_object_name(false)?)))
}

/// `CREATE DATABASE …` or `CREATE CATALOG …` after `CREATE`; `None` for
/// other objects.
pub(super) fn parse_create(p: &mut Parser) -> Result<Option<WeirStatement>> {
    let at = Position::of(p.peek_token().span);
    if parse_word(p, "CATALOG") {
        return Err(refused("CREATE CATALOG", at));
    }
    if !p.parse_keyword(Keyword::DATABASE) {
        return Ok(None);
    }
    let if_not_exists = p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    if p.parse_keyword(Keyword::COMMENT) {
        p.parse_literal_string()?;
    }
    if p.parse_keyword(Keyword::WITH) {
        p.expect_token(&Token::LParen)?;
        while !p.consume_token(&Token::RParen) {
            parse_key(p)?;
            p.expect_token(&Token::Eq)?;
            parse_value(p)?;
            if !p.consume_token(&Token::Comma) {
                p.expect_token(&Token::RParen)?;
                break;
            }
        }
    }
    Ok(Some(WeirStatement::Catalog(CatalogStatement::CreateDatabase { name, if_not_exists })))
}

/// Refuses `DROP DATABASE` and `DROP CATALOG` where written; other DROPs
/// are left to the caller.
pub(super) fn refuse_drop(p: &Parser) -> Result<()> {
    let t = p.peek_token();
    let at = Position::of(t.span);
    match &t.token {
        Token::Word(w) if w.keyword == Keyword::DATABASE => Err(refused("DROP DATABASE", at)),
        Token::Word(w) if w.value.eq_ignore_ascii_case("CATALOG") => Err(refused("DROP CATALOG", at)),
        _ => Ok(()),
    }
}

/// Refuses `LOAD MODULE` and `UNLOAD MODULE`: Weir's functions are its
/// `core` module's.
pub(super) fn refuse_modules(p: &mut Parser) -> Result<()> {
    let t = p.peek_token();
    let at = Position::of(t.span);
    for word in ["LOAD", "UNLOAD"] {
        if matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case(word))
            && matches!(&p.peek_nth_token_ref(1).token, Token::Word(w) if w.value.eq_ignore_ascii_case("MODULE"))
        {
            return Err(SqlError::Unsupported {
                construct: format!("{word} MODULE"),
                detail: Some("Weir has the core module only".into()),
                position: at,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    fn catalog(sql: &str) -> CatalogStatement {
        match parse_script(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).remove(0).statement {
            WeirStatement::Catalog(c) => c,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn use_and_create_database_forms() {
        assert!(matches!(catalog("USE CATALOG default_catalog"), CatalogStatement::UseCatalog(c) if c.value == "default_catalog"));
        assert!(matches!(catalog("USE default_catalog.default_database"), CatalogStatement::UseDatabase(n) if n.0.len() == 2));
        assert!(matches!(catalog("USE MODULES core"), CatalogStatement::UseModules(m) if m.len() == 1));
        assert!(matches!(
            catalog("CREATE DATABASE IF NOT EXISTS default_database COMMENT 'x' WITH ('k' = 'v')"),
            CatalogStatement::CreateDatabase { if_not_exists: true, .. }
        ));
    }

    #[test]
    fn making_or_dropping_catalogs_is_refused_where_written() {
        for (sql, needle, column) in [
            ("CREATE CATALOG c WITH ('type' = 'x')", "CREATE CATALOG is not supported: Weir has one catalog", 8),
            ("  DROP DATABASE d", "DROP DATABASE is not supported", 8),
            ("DROP CATALOG IF EXISTS c", "DROP CATALOG is not supported", 6),
            ("LOAD MODULE hive", "LOAD MODULE is not supported", 1),
            ("UNLOAD MODULE core", "UNLOAD MODULE is not supported", 1),
        ] {
            let e = parse_script(sql).unwrap_err();
            assert!(e.to_string().contains(needle), "{sql}: {e}");
            assert_eq!(e.position().map(|p| p.column), Some(column), "{sql}: {e}");
        }
    }
}
