//! Flink's `CREATE TABLE t (…) WITH (…) LIKE source [(options)]`: a table
//! declared as another's columns, watermark and options with changes.
//! What each like option means is applied in `planner/table_like.rs`.

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{Position, Result, SqlError};

/// `LIKE source [(options)]`.
#[derive(Debug, Clone)]
pub struct LikeClause {
    pub source: ObjectName,
    /// The like options in order; a later one wins.
    pub options: Vec<(LikeMode, LikeFeature)>,
    pub position: Option<Position>,
}

/// What to do with a feature of the source table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LikeMode {
    Including,
    Excluding,
    /// Take the source's, but let the new table's replace it.
    Overwriting,
}

/// The parts of a table a like option is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LikeFeature {
    All,
    Constraints,
    Partitions,
    Generated,
    Options,
    Watermarks,
    Metadata,
}

/// Parses what follows `LIKE`.
pub(super) fn parse_like(p: &mut Parser, position: Option<Position>) -> Result<LikeClause> {
    let source = p.parse_object_name(false)?;
    let mut options = Vec::new();
    if p.consume_token(&Token::LParen) {
        while !p.consume_token(&Token::RParen) {
            let t = p.next_token();
            let at = Position::of(t.span);
            let word = |t: &Token| match t {
                Token::Word(w) => w.value.to_ascii_uppercase(),
                other => other.to_string(),
            };
            let mode = match word(&t.token).as_str() {
                "INCLUDING" => LikeMode::Including,
                "EXCLUDING" => LikeMode::Excluding,
                "OVERWRITING" => LikeMode::Overwriting,
                other => {
                    return Err(SqlError::plan(
                        format!("expected INCLUDING, EXCLUDING or OVERWRITING in the LIKE options, found {other}"),
                        at,
                    ));
                }
            };
            let f = p.next_token();
            let feature = match word(&f.token).as_str() {
                "ALL" => LikeFeature::All,
                "CONSTRAINTS" => LikeFeature::Constraints,
                "PARTITIONS" => LikeFeature::Partitions,
                "GENERATED" => LikeFeature::Generated,
                "OPTIONS" => LikeFeature::Options,
                "WATERMARKS" => LikeFeature::Watermarks,
                "METADATA" => LikeFeature::Metadata,
                other => {
                    return Err(SqlError::plan(
                        format!(
                            "expected ALL, CONSTRAINTS, PARTITIONS, GENERATED, OPTIONS, WATERMARKS or METADATA after {}, found {other}",
                            word(&t.token)
                        ),
                        Position::of(f.span),
                    ));
                }
            };
            // Flink: constraints and partitions are either kept or not.
            if mode == LikeMode::Overwriting && matches!(feature, LikeFeature::All | LikeFeature::Constraints | LikeFeature::Partitions) {
                return Err(SqlError::plan(
                    format!("OVERWRITING {} is not a like option: use INCLUDING or EXCLUDING", word(&f.token)),
                    at,
                ));
            }
            options.push((mode, feature));
        }
    }
    Ok(LikeClause { source, options, position })
}
