//! `CREATE TABLE t (…) WITH (…) LIKE source (options)`, merged as Flink
//! merges it: the source's columns first, then the new ones; its
//! watermark, primary key and options unless excluded. The default is
//! Flink's `INCLUDING ALL OVERWRITING OPTIONS`: a new option replaces the
//! source's, while a second watermark, primary key or computed column of
//! the same name is an error unless `OVERWRITING` says which wins.

use std::collections::BTreeMap;

use crate::error::{Result, SqlError};
use crate::planner::table::normalize;
use crate::statement::{ColumnKind, CreateTable, LikeClause, LikeFeature, LikeMode};

/// What each feature does, after the like options.
struct Modes {
    constraints: LikeMode,
    partitions: LikeMode,
    generated: LikeMode,
    options: LikeMode,
    watermarks: LikeMode,
    metadata: LikeMode,
}

impl Modes {
    fn of(like: &LikeClause) -> Self {
        let mut m = Modes {
            constraints: LikeMode::Including,
            partitions: LikeMode::Including,
            generated: LikeMode::Including,
            options: LikeMode::Overwriting,
            watermarks: LikeMode::Including,
            metadata: LikeMode::Including,
        };
        for (mode, feature) in &like.options {
            let mode = *mode;
            match feature {
                LikeFeature::All => {
                    m = Modes {
                        constraints: mode,
                        partitions: mode,
                        generated: mode,
                        options: mode,
                        watermarks: mode,
                        metadata: mode,
                    };
                }
                LikeFeature::Constraints => m.constraints = mode,
                LikeFeature::Partitions => m.partitions = mode,
                LikeFeature::Generated => m.generated = mode,
                LikeFeature::Options => m.options = mode,
                LikeFeature::Watermarks => m.watermarks = mode,
                LikeFeature::Metadata => m.metadata = mode,
            }
        }
        m
    }
}

/// `ct` (which says `LIKE`) merged with `source`, the declaration of the
/// table it names.
pub fn merge(ct: &CreateTable, like: &LikeClause, source: &CreateTable) -> Result<CreateTable> {
    let modes = Modes::of(like);
    let at = like.position;
    let source_name = like.source.to_string();
    let clash = |what: &str, feature: &str| {
        SqlError::plan(
            format!("{what} is declared both here and in '{source_name}': say OVERWRITING {feature} to keep this one, or EXCLUDING {feature}"),
            at,
        )
    };
    let mut columns = Vec::new();
    for c in &source.columns {
        let mode = match c.kind {
            ColumnKind::Physical { .. } => LikeMode::Including,
            ColumnKind::Computed(_) => modes.generated,
            ColumnKind::Metadata { .. } => modes.metadata,
        };
        if mode == LikeMode::Excluding {
            continue;
        }
        match ct.columns.iter().find(|n| normalize(&n.name) == normalize(&c.name)) {
            None => columns.push(c.clone()),
            Some(_) if mode == LikeMode::Overwriting => {}
            Some(_) if matches!(c.kind, ColumnKind::Physical { .. }) => {
                return Err(SqlError::plan(
                    format!("column '{}' is declared both here and in '{source_name}'", normalize(&c.name)),
                    at,
                ));
            }
            Some(_) => {
                let feature = if matches!(c.kind, ColumnKind::Computed(_)) { "GENERATED" } else { "METADATA" };
                return Err(clash(&format!("column '{}'", normalize(&c.name)), feature));
            }
        }
    }
    // The new columns follow the source's (an overwritten one among them).
    columns.extend(ct.columns.iter().cloned());
    let watermark = match (&ct.watermark, &source.watermark, modes.watermarks) {
        (Some(_), Some(_), LikeMode::Including) => return Err(clash("a WATERMARK", "WATERMARKS")),
        (Some(w), _, _) => Some(w.clone()),
        (None, Some(w), LikeMode::Including | LikeMode::Overwriting) => Some(w.clone()),
        (None, _, _) => None,
    };
    let primary_key = match (ct.primary_key.is_empty(), modes.constraints) {
        (false, LikeMode::Including) if !source.primary_key.is_empty() => {
            return Err(SqlError::plan(format!("a PRIMARY KEY is declared both here and in '{source_name}'"), at));
        }
        (false, _) => ct.primary_key.clone(),
        (true, LikeMode::Excluding) => Vec::new(),
        (true, _) => source.primary_key.clone(),
    };
    // As Flink: the source's PARTITIONED BY is kept unless excluded, and a
    // table that declares its own must exclude the source's.
    let partitioned_by = match (&ct.partitioned_by, &source.partitioned_by, modes.partitions) {
        (Some(_), Some(_), LikeMode::Including) => {
            return Err(SqlError::plan(
                format!("PARTITIONED BY is declared both here and in '{source_name}': say EXCLUDING PARTITIONS to keep this one"),
                at,
            ));
        }
        (Some(p), _, _) => Some(p.clone()),
        (None, _, LikeMode::Excluding) => None,
        (None, p, _) => p.clone(),
    };
    let mut options: BTreeMap<String, String> = match modes.options {
        LikeMode::Excluding => BTreeMap::new(),
        _ => source.options.clone(),
    };
    for (k, v) in &ct.options {
        if modes.options == LikeMode::Including && options.contains_key(k) {
            return Err(clash(&format!("option '{k}'"), "OPTIONS"));
        }
        options.insert(k.clone(), v.clone());
    }
    Ok(CreateTable {
        name: ct.name.clone(),
        if_not_exists: ct.if_not_exists,
        columns,
        watermark,
        primary_key,
        partitioned_by,
        options,
        like: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn table(sql: &str) -> CreateTable {
        match parse_script(sql).expect("parses").remove(0).statement {
            WeirStatement::CreateTable(ct) => ct,
            other => panic!("{other:?}"),
        }
    }

    fn merged(source: &str, derived: &str) -> Result<CreateTable> {
        let (source, derived) = (table(source), table(derived));
        let like = derived.like.clone().expect("a LIKE");
        merge(&derived, &like, &source)
    }

    const SOURCE: &str = "CREATE TABLE orders (id BIGINT, ts TIMESTAMP(3), price AS id * 2, \
        WATERMARK FOR ts AS ts - INTERVAL '5' SECOND, PRIMARY KEY (id) NOT ENFORCED) \
        WITH ('connector' = 'datagen', 'number-of-rows' = '10')";

    fn names(ct: &CreateTable) -> Vec<String> {
        ct.columns.iter().map(|c| c.name.value.clone()).collect()
    }

    /// Flink's default, INCLUDING ALL OVERWRITING OPTIONS: everything of the
    /// source, the new columns after its own, new options replacing its.
    #[test]
    fn the_default_includes_all_and_overwrites_options() {
        let t = merged(SOURCE, "CREATE TABLE o2 (note STRING) WITH ('number-of-rows' = '3') LIKE orders").expect("merges");
        assert_eq!(names(&t), ["id", "ts", "price", "note"]);
        assert!(t.watermark.is_some());
        assert_eq!(t.primary_key.len(), 1);
        assert_eq!(t.options.get("number-of-rows").map(String::as_str), Some("3"));
        assert_eq!(t.options.get("connector").map(String::as_str), Some("datagen"));
        let t = merged(SOURCE, "CREATE TABLE o3 WITH ('x' = '1') LIKE orders (EXCLUDING ALL INCLUDING OPTIONS)").expect("merges");
        assert_eq!(names(&t), ["id", "ts"]);
        assert!(t.watermark.is_none() && t.primary_key.is_empty());
        assert_eq!(t.options.len(), 3);
    }

    #[test]
    fn a_second_watermark_or_column_needs_overwriting() {
        let w = "CREATE TABLE o2 (WATERMARK FOR ts AS ts) WITH () LIKE orders";
        let e = merged(SOURCE, w).expect_err("two watermarks");
        assert!(e.to_string().contains("OVERWRITING WATERMARKS"), "{e}");
        let t = merged(SOURCE, &format!("{w} (OVERWRITING WATERMARKS)")).expect("merges");
        assert_eq!(t.watermark.map(|w| w.expr.to_string()), Some("ts".into()));
        let e = merged(SOURCE, "CREATE TABLE o2 (id INT) WITH () LIKE orders").expect_err("a column twice");
        assert!(e.to_string().contains("column 'id' is declared both here and in 'orders'"), "{e}");
        let e = merged(SOURCE, "CREATE TABLE o2 (price AS id * 3) WITH () LIKE orders").expect_err("computed twice");
        assert!(e.to_string().contains("OVERWRITING GENERATED"), "{e}");
        let e = merged(SOURCE, "CREATE TABLE o2 WITH ('connector' = 'x') LIKE orders (INCLUDING OPTIONS)").expect_err("an option twice");
        assert!(e.to_string().contains("option 'connector'"), "{e}");
    }

    /// Flink's PARTITIONS like option: kept by default, dropped by
    /// EXCLUDING, and a second PARTITIONED BY only with EXCLUDING.
    #[test]
    fn partitions_are_included_unless_excluded() {
        let source = "CREATE TABLE fs (v BIGINT, dt STRING, hm STRING) PARTITIONED BY (dt, hm) \
            WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'json')";
        let keys = |t: &CreateTable| t.partitioned_by.as_ref().map(|p| p.columns.iter().map(|c| c.value.clone()).collect::<Vec<_>>());
        let t = merged(source, "CREATE TABLE fs2 WITH ('path' = '/tmp/y') LIKE fs").expect("merges");
        assert_eq!(keys(&t), Some(vec!["dt".to_string(), "hm".to_string()]));
        let t = merged(source, "CREATE TABLE fs2 WITH () LIKE fs (EXCLUDING PARTITIONS)").expect("merges");
        assert_eq!(keys(&t), None);
        let e = merged(source, "CREATE TABLE fs2 (x INT) PARTITIONED BY (x) WITH () LIKE fs").expect_err("twice");
        assert!(e.to_string().contains("EXCLUDING PARTITIONS"), "{e}");
        let t = merged(source, "CREATE TABLE fs2 (x INT) PARTITIONED BY (x) WITH () LIKE fs (EXCLUDING PARTITIONS)").expect("merges");
        assert_eq!(keys(&t), Some(vec!["x".to_string()]));
    }

    #[test]
    fn bad_like_options_are_named() {
        let e = parse_script("CREATE TABLE o2 WITH () LIKE orders (OVERWRITING ALL)").expect_err("refused");
        assert!(e.to_string().contains("OVERWRITING ALL is not a like option"), "{e}");
        let e = parse_script("CREATE TABLE o2 WITH () LIKE orders (INCLUDING COLUMNS)").expect_err("refused");
        assert!(e.to_string().contains("expected ALL, CONSTRAINTS"), "{e}");
        let e = parse_script("CREATE TABLE o2 WITH ()").expect_err("refused");
        assert!(e.to_string().contains("needs its columns in parentheses"), "{e}");
    }
}
