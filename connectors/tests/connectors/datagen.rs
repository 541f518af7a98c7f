//! The datagen connector: sequences, bounds, ranges and pacing.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
};

use crate::support::{Event, read, schema, table};

#[tokio::test]
async fn a_sequence_is_split_into_contiguous_shares() {
    let columns = schema(&[("id", DataType::Int32), ("label", DataType::Utf8)]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "100000000"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
        ("fields.id.end", "100"),
        ("fields.label.kind", "sequence"),
        ("fields.label.start", "1001"),
        ("fields.label.end", "1100"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    assert_eq!(src.partitions(3).unwrap(), 3);
    let mut all = Vec::new();
    for (p, expected) in [(0, 1..=34), (1, 35..=67), (2, 68..=100)] {
        let (events, batch) = read(&src, vec![p], 3).await.unwrap();
        assert_eq!(events.last(), Some(&Event::End(p)));
        let ids: Vec<i32> = batch
            .column(0)
            .as_primitive::<Int32Type>()
            .values()
            .to_vec();
        assert_eq!(ids, expected.collect::<Vec<_>>(), "partition {p}");
        let labels: Vec<String> = batch
            .column(1)
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap().to_string())
            .collect();
        let expected_labels: Vec<String> = ids.iter().map(|i| (i + 1000).to_string()).collect();
        assert_eq!(labels, expected_labels);
        all.extend(ids);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn number_of_rows_bounds_the_source_and_random_values_stay_in_range() {
    let columns = schema(&[
        ("n", DataType::Int64),
        ("x", DataType::Float64),
        ("s", DataType::Utf8),
        ("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
        ("gone", DataType::Int32),
    ]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "100000000"),
        ("number-of-rows", "20000"),
        ("fields.n.min", "-5"),
        ("fields.n.max", "5"),
        ("fields.x.min", "0.5"),
        ("fields.x.max", "1.5"),
        ("fields.s.length", "7"),
        ("fields.ts.max-past", "1 min"),
        ("fields.gone.null-rate", "1"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut total = 0;
    for (p, rows) in [(0, 6667), (1, 6667), (2, 6666)] {
        let (events, batch) = read(&src, vec![p], 3).await.unwrap();
        assert_eq!(events.last(), Some(&Event::End(p)));
        assert_eq!(batch.num_rows(), rows, "partition {p}");
        let n = batch.column(0).as_primitive::<Int64Type>();
        assert!(n.values().iter().all(|v| (-5..=5).contains(v)));
        assert!(
            n.values().contains(&-5) && n.values().contains(&5),
            "the bounds are inclusive"
        );
        let x = batch
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        assert!(x.values().iter().all(|v| (0.5..1.5).contains(v)));
        let s = batch.column(2).as_string::<i32>();
        assert!(
            s.iter().all(
                |v| v.is_some_and(|v| v.len() == 7 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            )
        );
        let ts = batch.column(3).as_primitive::<TimestampMillisecondType>();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            ts.values()
                .iter()
                .all(|t| (before - 60_000..=after).contains(t))
        );
        assert_eq!(batch.column(4).null_count(), rows);
        total += batch.num_rows();
    }
    assert_eq!(total, 20000);
}

#[tokio::test]
async fn the_shorter_of_sequence_and_number_of_rows_ends_the_source() {
    let columns = schema(&[("id", DataType::Int64)]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "100000000"),
        ("number-of-rows", "5"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "10"),
        ("fields.id.end", "1000"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    let (events, batch) = read(&src, vec![0], 1).await.unwrap();
    assert_eq!(events, vec![Event::Batch(0, 5), Event::End(0)]);
    assert_eq!(
        batch
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec(),
        vec![10, 11, 12, 13, 14]
    );
}

#[tokio::test]
async fn rows_are_paced_to_the_rate() {
    let columns = schema(&[("id", DataType::Int64)]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "200"),
        ("number-of-rows", "40"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    let start = Instant::now();
    let (events, batch) = read(&src, vec![0, 1], 2).await.unwrap();
    assert_eq!(batch.num_rows(), 40);
    // Two partitions of 20 rows, each at 100 rows a second: 200 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(190),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        events.iter().filter(|e| matches!(e, Event::End(_))).count(),
        2
    );
    // Small batches (about 20 ms of rows each), alternating between the
    // partitions, rather than everything at once.
    assert!(
        matches!(events[..2], [Event::Batch(0, a), Event::Batch(1, b)] if (2..20).contains(&a) && (2..20).contains(&b)),
        "{events:?}"
    );
}
