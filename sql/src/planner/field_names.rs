//! Flink names a selected ROW field after the field: `SELECT bid.auction
//! FROM datagen` has a column `auction` (Flink nexmark's views rely on it),
//! where DataFusion would name it `datagen.bid[auction]`. Every unaliased
//! `a.b[.c…]` in a select list is given its last part as alias — for a
//! qualified column `t.c` that is the name it has anyway — unless another
//! item of the same list has that name (Flink would rename one of them;
//! they keep DataFusion's names instead).

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Query, Select, SelectItem, SetExpr, VisitMut, VisitorMut};

/// Aliases the selected fields of every select of `query`.
pub fn rewrite(query: &mut Query) {
    let _ = query.visit(&mut Namer);
}

struct Namer;

impl VisitorMut for Namer {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        name_fields(query.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn name_fields(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => name_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            name_fields(left);
            name_fields(right);
        }
        _ => {}
    }
}

/// The name an item's column gets without a new alias, if it is plain.
fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => parts.last().map(|p| p.value.clone()),
        _ => None,
    }
}

fn name_select(select: &mut Select) {
    let mut names: HashMap<String, usize> = HashMap::new();
    for item in &select.projection {
        if let Some(n) = output_name(item) {
            *names.entry(n).or_default() += 1;
        }
    }
    for item in &mut select.projection {
        let SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) = item else { continue };
        let Some(last) = parts.last().cloned() else { continue };
        if parts.len() < 2 || names.get(&last.value).copied().unwrap_or(0) > 1 {
            continue;
        }
        let expr = Expr::CompoundIdentifier(std::mem::take(parts));
        *item = SelectItem::ExprWithAlias { expr, alias: last };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::parse_script;
    use crate::statement::WeirStatement;

    fn named(sql: &str) -> String {
        let WeirStatement::Query { mut query, .. } = parse_script(sql).expect("parses").remove(0).statement else {
            panic!("not a query")
        };
        rewrite(&mut query);
        query.to_string()
    }

    #[test]
    fn selected_fields_are_named_after_the_field_unless_names_clash() {
        assert_eq!(
            named("SELECT bid.auction, t.bid.price, `dateTime`, x AS y FROM datagen"),
            "SELECT bid.auction AS auction, t.bid.price AS price, `dateTime`, x AS y FROM datagen"
        );
        assert_eq!(named("SELECT a.id, b.id FROM a JOIN b ON a.k = b.k"), "SELECT a.id, b.id FROM a JOIN b ON a.k = b.k");
        assert_eq!(
            named("SELECT * FROM (SELECT r.k FROM t UNION ALL SELECT s.k FROM u)"),
            "SELECT * FROM (SELECT r.k AS k FROM t UNION ALL SELECT s.k AS k FROM u)"
        );
    }
}
