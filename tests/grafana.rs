//! The Grafana dashboard `deploy/grafana/weir.json` checked against a real
//! scrape of `/metrics` (Grafana itself cannot run here): every metric its
//! queries read is in the scrape, with every label its matchers, `by (…)`
//! clauses and legends name. A renamed metric or label fails here instead
//! of leaving a user's panel empty.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One sample of a scrape: its name and labels.
pub struct Scraped<'a> {
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

/// The dashboard as committed.
fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/weir.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// What one query reads: each metric with the labels its matcher names,
/// and the labels of its `by (…)` clauses.
#[derive(Debug, Default)]
struct Reads {
    metrics: Vec<(String, Vec<String>)>,
    by: Vec<String>,
}

fn identifier(rest: &str) -> &str {
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    &rest[..end]
}

/// Reads a PromQL expression far enough to name what it reads: `weir_…`
/// metric names, `{label op "value", …}` matchers and `by (…)` lists.
fn reads(expr: &str) -> Reads {
    let mut r = Reads::default();
    let mut i = 0;
    while i < expr.len() {
        let rest = &expr[i..];
        let at_boundary = expr[..i].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if at_boundary && rest.starts_with("weir_") {
            let name = identifier(rest);
            let after = &rest[name.len()..];
            let mut labels = Vec::new();
            if let Some(body) = after.strip_prefix('{') {
                let body = &body[..body.find('}').unwrap_or_else(|| panic!("unclosed matcher in {expr}"))];
                for m in body.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                    labels.push(identifier(m).to_string());
                }
            }
            r.metrics.push((name.to_string(), labels));
            i += name.len();
        } else if at_boundary && rest.starts_with("by (") {
            let list = &rest[4..rest.find(')').unwrap_or_else(|| panic!("unclosed by in {expr}"))];
            r.by.extend(list.split(',').map(|l| l.trim().to_string()));
            i += 4;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    r
}

/// Every panel, those inside rows included.
fn panels(v: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in v["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(p));
    }
    out
}

/// Checks the dashboard against `scrape`, which must come from a job that
/// exercises every family the dashboard reads (a Kafka source, a keyed
/// window, checkpoints).
pub fn check_against(scrape: &[Scraped]) {
    let mut labels_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in scrape {
        labels_of.entry(s.name).or_default().extend(s.labels.keys().map(String::as_str));
    }
    let d = dashboard();
    let known = |metric: &str, label: &str, what: &str| {
        let labels = labels_of.get(metric).unwrap_or_else(|| panic!("{what}: {metric} is not in the scrape"));
        assert!(labels.contains(label), "{what}: {metric} has no label {label} (it has {labels:?})");
    };

    // The job variable lists what a label of a metric holds.
    let variables = d["templating"]["list"].as_array().expect("templating variables");
    let job = variables.iter().find(|v| v["name"] == "job_id").expect("a job_id variable");
    assert_eq!(job["definition"], "label_values(weir_job_running, job_id)");
    known("weir_job_running", "job_id", "the job_id variable");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus")
    );

    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for p in panels(&d) {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(ids.insert(p["id"].as_u64().expect("a numeric id")), "panel id {} twice", p["id"]);
        assert!(p["gridPos"]["w"].as_u64().is_some_and(|w| w > 0 && w <= 24), "{title}: gridPos");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}: the datasource variable");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty()).unwrap_or_else(|| panic!("{title}: no query"));
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{title}: a target without expr"));
            let what = format!("{title}: {expr}");
            let r = reads(expr);
            assert!(!r.metrics.is_empty(), "{what}: reads no weir metric");
            for (metric, labels) in &r.metrics {
                assert!(labels_of.contains_key(metric.as_str()), "{what}: {metric} is not in the scrape");
                for l in labels {
                    known(metric, l, &what);
                }
            }
            for l in &r.by {
                assert!(
                    r.metrics.iter().any(|(m, _)| labels_of[m.as_str()].contains(l.as_str())),
                    "{what}: no metric it reads has the label {l} it groups by"
                );
            }
            // A legend names labels the result keeps: those grouped by, or
            // the metrics' own when nothing aggregates.
            let legend = t["legendFormat"].as_str().unwrap_or_default();
            for l in legend.split("{{").skip(1).map(|s| s.split("}}").next().unwrap_or_default().trim()) {
                let kept = if r.by.is_empty() {
                    r.metrics.iter().all(|(m, _)| labels_of[m.as_str()].contains(l))
                } else {
                    r.by.iter().any(|b| b == l)
                };
                assert!(kept, "{what}: the legend's {{{{{l}}}}} is not a label of the result");
            }
            queries += 1;
        }
    }
    assert!(queries >= 20, "{queries} queries: the dashboard lost panels");
}

#[test]
fn queries_are_read_as_metrics_matchers_and_groupings() {
    let r = reads(r#"sum by (job_id, topic) (rate(weir_kafka_lag{job_id=~"$job_id", rank="1"}[5m])) / weir_x"#);
    assert_eq!(r.by, ["job_id", "topic"]);
    assert_eq!(
        r.metrics,
        [
            ("weir_kafka_lag".to_string(), vec!["job_id".to_string(), "rank".to_string()]),
            ("weir_x".to_string(), vec![])
        ]
    );
    assert!(reads("time() - my_weir_metric").metrics.is_empty());
}
