//! Regular joins over changelogs and outer regular joins (the updating
//! join), end to end through the `weir` binary on disordered input at
//! parallelism 1 and 4: the changes printed, applied in order, end in
//! DataFusion's batch join of the same rows. Results of a GROUP BY change
//! as rows come (and a HAVING makes groups appear and vanish), so each
//! join takes back and sends again what it emitted.

use crate::common;

use std::collections::BTreeMap;

use common::*;

/// 3 000 rows over 40 keys, values unique, disordered.
fn rows() -> Vec<Row> {
    disordered_rows(43, 3000, 40)
}

/// The changes `query` prints at parallelism 1 and 4, applied as a
/// multiset, end in DataFusion's answer to `oracle` ([`changes_end_in`]).
async fn ends_in(oracle: &str, sink: &str, query: &str) -> Vec<BTreeMap<String, usize>> {
    changes_end_in(&rows(), oracle, sink, query, 0, &[1, 4]).await
}

fn count(kinds: &BTreeMap<String, usize>, kind: &str) -> usize {
    kinds.get(kind).copied().unwrap_or(0)
}

/// An inner join of two GROUP BY results forwards their updates as
/// `-U`/`+U` of the joined rows.
#[tokio::test]
async fn an_inner_join_of_two_aggregations_follows_both() {
    let query = "SELECT a.k, a.n, b.s FROM (SELECT k, COUNT(*) AS n FROM t GROUP BY k) a \
                 JOIN (SELECT k, SUM(v) AS s FROM t WHERE v % 3 = 0 GROUP BY k) b ON a.k = b.k";
    let kinds = ends_in(query, "k VARCHAR, n BIGINT, s BIGINT", query).await;
    assert!(
        kinds.iter().all(|k| count(k, "-U") > 0 && count(k, "+U") > 0),
        "{kinds:?}"
    );
}

/// A LEFT JOIN of two append-only streams: a row first goes out padded
/// with NULLs, which is withdrawn when its first partner comes.
#[tokio::test]
async fn a_left_join_of_streams_withdraws_rows_padded_with_nulls() {
    let query = "SELECT a.k, a.v, b.v FROM t a LEFT JOIN t b ON a.k = b.k AND b.v = a.v + 1";
    let kinds = ends_in(query, "k VARCHAR, v BIGINT, w BIGINT", query).await;
    assert!(
        kinds.iter().all(|k| count(k, "-D") > 0 && count(k, "-U") == 0),
        "{kinds:?}"
    );
}

/// A FULL JOIN of two aggregations whose HAVING lets groups in and out:
/// both sides' lonely rows come and go.
#[tokio::test]
async fn a_full_join_of_aggregations_with_having() {
    let query = "SELECT a.k, a.n, b.k, b.m FROM \
                 (SELECT k, COUNT(*) AS n FROM t WHERE v % 2 = 0 GROUP BY k HAVING COUNT(*) > 36) a \
                 FULL JOIN (SELECT k, MAX(v) AS m FROM t WHERE v % 5 = 0 GROUP BY k HAVING MAX(v) > 2950) b \
                 ON a.k = b.k";
    let kinds = ends_in(query, "k VARCHAR, n BIGINT, k2 VARCHAR, m BIGINT", query).await;
    assert!(
        kinds
            .iter()
            .all(|k| count(k, "-D") > 0 && count(k, "+I") > count(k, "-D")),
        "{kinds:?}"
    );
}

/// A RIGHT JOIN whose condition has a part beyond the keys, and a GROUP BY
/// over the join's changelog.
#[tokio::test]
async fn an_aggregation_over_a_right_join_with_a_residual_condition() {
    let query = "SELECT b.k, COUNT(*) AS c, COUNT(a.v) AS matched FROM \
                 (SELECT k, v FROM t WHERE v % 7 = 0) a \
                 RIGHT JOIN (SELECT k, MIN(v) AS lo FROM t GROUP BY k) b ON a.k = b.k AND a.v < b.lo + 300 \
                 GROUP BY b.k";
    ends_in(query, "k VARCHAR, c BIGINT, matched BIGINT", query).await;
}
