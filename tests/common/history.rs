//! A random history of a `products` table and Debezium's records of it,
//! shared by the changelog tests: the history's
//! final table is the oracle, replayed here with nothing of Weir's.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Lcg, T0};

/// One row of the upstream table.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub weight: i64,
    /// When it last changed (epoch ms): the WATERMARK column.
    pub updated: i64,
}

/// One change of the upstream table, in commit order.
#[derive(Debug, Clone)]
pub enum Change {
    /// A row of the initial snapshot (Debezium's `op: r`).
    Snapshot(Product),
    Insert(Product),
    Update(Product, Product),
    Delete(Product),
}

/// `n` random changes after a snapshot of 20 rows, and the table they
/// leave (the oracle: a plain replay, nothing of Weir's).
pub fn history(seed: u64, n: usize) -> (Vec<Change>, BTreeMap<i64, Product>) {
    let mut g = Lcg(seed);
    let mut table: BTreeMap<i64, Product> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut next_id = 101;
    let mut clock = T0;
    let product = |g: &mut Lcg, id: i64, clock: i64| Product {
        id,
        name: format!("product {}", g.below(50)),
        category: format!("c{}", g.below(5)),
        weight: g.below(1000) as i64,
        updated: clock,
    };
    for _ in 0..20 {
        let p = product(&mut g, next_id, clock);
        next_id += 1;
        table.insert(p.id, p.clone());
        changes.push(Change::Snapshot(p));
    }
    for _ in 0..n {
        clock += g.below(500) as i64;
        let ids: Vec<i64> = table.keys().copied().collect();
        match g.below(10) {
            0..=2 => {
                let p = product(&mut g, next_id, clock);
                next_id += 1;
                table.insert(p.id, p.clone());
                changes.push(Change::Insert(p));
            }
            3..=7 if !ids.is_empty() => {
                let before = table[&ids[g.below(ids.len() as u64) as usize]].clone();
                let mut after = before.clone();
                after.updated = clock;
                match g.below(3) {
                    0 => after.weight = g.below(1000) as i64,
                    1 => after.category = format!("c{}", g.below(5)),
                    _ => {
                        after.weight = g.below(1000) as i64;
                        after.name = format!("product {}", g.below(50));
                    }
                }
                table.insert(after.id, after.clone());
                changes.push(Change::Update(before, after));
            }
            _ if !ids.is_empty() => {
                let gone = table.remove(&ids[g.below(ids.len() as u64) as usize]).expect("a row");
                changes.push(Change::Delete(gone));
            }
            _ => {}
        }
    }
    (changes, table)
}

pub fn row(p: &Product) -> Value {
    json!({"id": p.id, "name": p.name, "category": p.category, "weight": p.weight, "updated": p.updated})
}

/// Debezium's MySQL connector's records, one per change.
pub fn debezium(changes: &[Change]) -> String {
    let mut out = String::new();
    for (i, c) in changes.iter().enumerate() {
        let (op, before, after) = match c {
            Change::Snapshot(p) => ("r", Value::Null, row(p)),
            Change::Insert(p) => ("c", Value::Null, row(p)),
            Change::Update(b, a) => ("u", row(b), row(a)),
            Change::Delete(p) => ("d", row(p), Value::Null),
        };
        let record = json!({
            "before": before, "after": after,
            "source": {"version": "2.7.0.Final", "connector": "mysql", "name": "dbserver1", "ts_ms": T0 + i as i64,
                       "snapshot": if op == "r" { "true" } else { "false" }, "db": "inventory", "sequence": null,
                       "table": "products", "server_id": 223344, "gtid": null, "file": "mysql-bin.000003",
                       "pos": 154 + i, "row": 0, "thread": 7, "query": null},
            "op": op, "ts_ms": T0 + 1000 + i as i64, "transaction": null
        });
        out.push_str(&record.to_string());
        out.push('\n');
    }
    out
}

/// The table as sorted `id|name|category|weight` lines.
pub fn final_rows(table: &BTreeMap<i64, Product>) -> Vec<String> {
    let mut rows: Vec<String> = table
        .values()
        .map(|p| format!("{}|{}|{}|{}", p.id, p.name, p.category, p.weight))
        .collect();
    rows.sort();
    rows
}

/// `category|count|sum of weight` lines of the table, sorted.
pub fn per_category(table: &BTreeMap<i64, Product>) -> Vec<String> {
    let mut groups: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for p in table.values() {
        let g = groups.entry(&p.category).or_default();
        g.0 += 1;
        g.1 += p.weight;
    }
    groups.into_iter().map(|(c, (n, w))| format!("{c}|{n}|{w}")).collect()
}
