//! Flink's `ALTER TABLE` and `ALTER VIEW`. Each changes the declaration the
//! catalog keeps (`session/alter.rs` applies it and declares the table
//! again through `CREATE TABLE`'s path, which validates it).

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{Ident, ObjectName, Query};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::{ColumnKind, ColumnSpec, WatermarkSpec, WeirStatement, parse_key, parse_primary_key, parse_value, parse_word};
use crate::catalog::names::ONE_CATALOG;
use crate::error::{Position, Result, SqlError};

/// `ALTER TABLE [IF EXISTS] t …`
#[derive(Debug, Clone)]
pub struct AlterTable {
    pub name: ObjectName,
    pub if_exists: bool,
    pub action: AlterAction,
    /// Where the action starts, for errors about it as a whole.
    pub position: Option<Position>,
}

/// What an `ALTER TABLE` changes.
#[derive(Debug, Clone)]
pub enum AlterAction {
    /// `RENAME TO u`
    RenameTo(ObjectName),
    /// `SET ('k' = 'v', …)`: options merged into the table's.
    Set(BTreeMap<String, String>),
    /// `RESET ('k', …)`: options removed.
    Reset(Vec<(String, Option<Position>)>),
    /// `ADD component` or `ADD (component, …)`
    Add(Vec<Component>),
    /// `MODIFY component` or `MODIFY (component, …)`
    Modify(Vec<Component>),
    /// `RENAME c TO d`
    RenameColumn { from: Ident, to: Ident },
    /// `DROP c` or `DROP (c, …)`
    DropColumns(Vec<Ident>),
    /// `DROP WATERMARK`
    DropWatermark,
    /// `DROP PRIMARY KEY` or `DROP CONSTRAINT name`
    DropPrimaryKey,
}

/// A part of a table's schema that ADD and MODIFY take.
#[derive(Debug, Clone)]
pub enum Component {
    Column { spec: ColumnSpec, place: Option<Place> },
    Watermark(WatermarkSpec),
    PrimaryKey { columns: Vec<Ident>, position: Option<Position> },
}

/// Where an added or modified column goes.
#[derive(Debug, Clone)]
pub enum Place {
    First,
    After(Ident),
}

/// `ALTER VIEW v …`
#[derive(Debug, Clone)]
pub struct AlterView {
    pub name: ObjectName,
    pub action: AlterViewAction,
}

/// What an `ALTER VIEW` changes.
#[derive(Debug, Clone)]
pub enum AlterViewAction {
    RenameTo(ObjectName),
    /// `AS query`: the view's query replaced (its column list dropped).
    As(Box<Query>),
}

/// What follows `ALTER`.
pub(super) fn parse_alter(p: &mut Parser) -> Result<WeirStatement> {
    if p.parse_keyword(Keyword::VIEW) {
        let name = p.parse_object_name(false)?;
        let action = if p.parse_keyword(Keyword::RENAME) {
            p.expect_keyword(Keyword::TO)?;
            AlterViewAction::RenameTo(p.parse_object_name(false)?)
        } else {
            p.expect_keyword(Keyword::AS)?;
            AlterViewAction::As(p.parse_query()?)
        };
        return Ok(WeirStatement::AlterView(AlterView { name, action }));
    }
    if !p.parse_keyword(Keyword::TABLE) {
        let t = p.peek_token();
        let at = Position::of(t.span);
        if matches!(&t.token, Token::Word(w) if w.keyword == Keyword::DATABASE) {
            return Err(SqlError::Unsupported {
                construct: "ALTER DATABASE".into(),
                detail: Some(ONE_CATALOG.into()),
                position: at,
            });
        }
        return Err(SqlError::unsupported(format!("ALTER {}", t.token), at));
    }
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = p.parse_object_name(false)?;
    let position = Position::of(p.peek_token().span);
    let action = parse_action(p)?;
    Ok(WeirStatement::AlterTable(AlterTable { name, if_exists, action, position }))
}

fn parse_action(p: &mut Parser) -> Result<AlterAction> {
    if p.parse_keyword(Keyword::RENAME) {
        if p.parse_keyword(Keyword::TO) {
            return Ok(AlterAction::RenameTo(p.parse_object_name(false)?));
        }
        let _ = p.parse_keyword(Keyword::COLUMN);
        let from = p.parse_identifier()?;
        p.expect_keyword(Keyword::TO)?;
        return Ok(AlterAction::RenameColumn { from, to: p.parse_identifier()? });
    }
    if p.parse_keyword(Keyword::SET) {
        p.expect_token(&Token::LParen)?;
        let mut options = BTreeMap::new();
        loop {
            let t = p.peek_token();
            let key = parse_key(p)?;
            p.expect_token(&Token::Eq)?;
            let value = parse_value(p)?;
            if options.insert(key.clone(), value).is_some() {
                return Err(SqlError::plan(format!("option '{key}' is given twice"), Position::of(t.span)));
            }
            if !p.consume_token(&Token::Comma) {
                p.expect_token(&Token::RParen)?;
                return Ok(AlterAction::Set(options));
            }
        }
    }
    if p.parse_keyword(Keyword::RESET) {
        p.expect_token(&Token::LParen)?;
        let mut keys = Vec::new();
        loop {
            let at = Position::of(p.peek_token().span);
            keys.push((parse_key(p)?, at));
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen)?;
        return Ok(AlterAction::Reset(keys));
    }
    if p.parse_keyword(Keyword::ADD) {
        return Ok(AlterAction::Add(parse_components(p)?));
    }
    if p.parse_keyword(Keyword::MODIFY) {
        return Ok(AlterAction::Modify(parse_components(p)?));
    }
    if p.parse_keyword(Keyword::DROP) {
        if parse_word(p, "WATERMARK") {
            return Ok(AlterAction::DropWatermark);
        }
        if p.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            return Ok(AlterAction::DropPrimaryKey);
        }
        if p.parse_keyword(Keyword::CONSTRAINT) {
            p.parse_identifier()?;
            return Ok(AlterAction::DropPrimaryKey);
        }
        if p.consume_token(&Token::LParen) {
            let columns = p.parse_comma_separated(|p| p.parse_identifier())?;
            p.expect_token(&Token::RParen)?;
            return Ok(AlterAction::DropColumns(columns));
        }
        let _ = p.parse_keyword(Keyword::COLUMN);
        return Ok(AlterAction::DropColumns(vec![p.parse_identifier()?]));
    }
    let t = p.peek_token();
    Err(SqlError::Syntax {
        message: format!("expected RENAME, SET, RESET, ADD, MODIFY or DROP after ALTER TABLE t, found {}", t.token),
        position: Position::of(t.span),
    })
}

/// One component, or several in parentheses.
fn parse_components(p: &mut Parser) -> Result<Vec<Component>> {
    if !p.consume_token(&Token::LParen) {
        return Ok(vec![parse_component(p)?]);
    }
    let mut components = Vec::new();
    loop {
        components.push(parse_component(p)?);
        if !p.consume_token(&Token::Comma) {
            p.expect_token(&Token::RParen)?;
            return Ok(components);
        }
    }
}

/// A column as `CREATE TABLE` declares one (then `FIRST` or `AFTER c`), a
/// `WATERMARK FOR c AS expr`, or a `[CONSTRAINT n] PRIMARY KEY (…) NOT
/// ENFORCED`.
fn parse_component(p: &mut Parser) -> Result<Component> {
    let position = Position::of(p.peek_token().span);
    let watermark = matches!(&p.peek_token_ref().token, Token::Word(w) if w.value.eq_ignore_ascii_case("WATERMARK"))
        && matches!(&p.peek_nth_token_ref(1).token, Token::Word(w) if w.keyword == Keyword::FOR);
    if watermark {
        p.next_token();
        p.expect_keyword(Keyword::FOR)?;
        let column = p.parse_identifier()?;
        p.expect_keyword(Keyword::AS)?;
        let expr = p.parse_expr()?;
        return Ok(Component::Watermark(WatermarkSpec { column, expr, position }));
    }
    if p.parse_keyword(Keyword::CONSTRAINT) {
        p.parse_identifier()?;
        return Ok(Component::PrimaryKey { columns: parse_primary_key(p)?, position });
    }
    if p.peek_keyword(Keyword::PRIMARY) {
        return Ok(Component::PrimaryKey { columns: parse_primary_key(p)?, position });
    }
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
            } else if !p.parse_keyword(Keyword::NULL) {
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
    let place = if parse_word(p, "FIRST") {
        Some(Place::First)
    } else if p.parse_keyword(Keyword::AFTER) {
        Some(Place::After(p.parse_identifier()?))
    } else {
        None
    };
    Ok(Component::Column { spec: ColumnSpec { name, kind, position }, place })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;

    fn alter(sql: &str) -> AlterTable {
        match parse_script(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).remove(0).statement {
            WeirStatement::AlterTable(a) => a,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn alter_table_forms() {
        assert!(matches!(alter("ALTER TABLE t RENAME TO u").action, AlterAction::RenameTo(n) if n.to_string() == "u"));
        assert!(alter("ALTER TABLE IF EXISTS t RENAME TO u").if_exists);
        let AlterAction::Set(o) = alter("ALTER TABLE t SET ('path' = '/x', 'format' = 'csv')").action else { panic!() };
        assert_eq!(o["path"], "/x");
        assert!(matches!(alter("ALTER TABLE t RESET ('a', 'b.c')").action, AlterAction::Reset(k) if k.len() == 2));
        let AlterAction::Add(c) =
            alter("ALTER TABLE t ADD (x INT NOT NULL FIRST, y AS x + 1 AFTER a, WATERMARK FOR ts AS ts, PRIMARY KEY (x) NOT ENFORCED)")
                .action
        else {
            panic!()
        };
        assert_eq!(c.len(), 4);
        assert!(matches!(&c[0], Component::Column { place: Some(Place::First), spec } if matches!(spec.kind, ColumnKind::Physical { not_null: true, .. })));
        assert!(matches!(&c[1], Component::Column { place: Some(Place::After(a)), .. } if a.value == "a"));
        assert!(matches!(&c[2], Component::Watermark(_)));
        assert!(matches!(&c[3], Component::PrimaryKey { columns, .. } if columns.len() == 1));
        assert!(matches!(alter("ALTER TABLE t ADD o BIGINT METADATA FROM 'offset' VIRTUAL").action, AlterAction::Add(c) if c.len() == 1));
        assert!(matches!(alter("ALTER TABLE t MODIFY v DOUBLE").action, AlterAction::Modify(_)));
        assert!(matches!(alter("ALTER TABLE t RENAME a TO b").action, AlterAction::RenameColumn { from, to } if from.value == "a" && to.value == "b"));
        assert!(matches!(alter("ALTER TABLE t DROP (a, b)").action, AlterAction::DropColumns(c) if c.len() == 2));
        assert!(matches!(alter("ALTER TABLE t DROP a").action, AlterAction::DropColumns(c) if c.len() == 1));
        assert!(matches!(alter("ALTER TABLE t DROP WATERMARK").action, AlterAction::DropWatermark));
        assert!(matches!(alter("ALTER TABLE t DROP PRIMARY KEY").action, AlterAction::DropPrimaryKey));
        let s = parse_script("ALTER VIEW v RENAME TO w; ALTER VIEW v AS SELECT 1").unwrap();
        assert!(matches!(&s[0].statement, WeirStatement::AlterView(AlterView { action: AlterViewAction::RenameTo(_), .. })));
        assert!(matches!(&s[1].statement, WeirStatement::AlterView(AlterView { action: AlterViewAction::As(_), .. })));
    }

    #[test]
    fn bad_alter_forms_say_where() {
        for (sql, needle, column) in [
            ("ALTER TABLE t FROB", "expected RENAME, SET, RESET, ADD, MODIFY or DROP", 15),
            ("ALTER TABLE t SET ('a' = '1', 'a' = '2')", "given twice", 31),
            ("ALTER DATABASE d SET ('k' = 'v')", "ALTER DATABASE is not supported", 7),
        ] {
            let e = parse_script(sql).unwrap_err();
            assert!(e.to_string().contains(needle), "{sql}: {e}");
            assert_eq!(e.position().map(|p| p.column), Some(column), "{sql}: {e}");
        }
    }
}
