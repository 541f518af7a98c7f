//! The datagen connector: sequences, bounds, ranges and pacing.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use weir_engine::source::{PARTITION_ENDED, Positions, SourceEvent};

use crate::support::{Event, read, read_resumed, schema, table};

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
    assert_eq!(events, vec![Event::Batch(0, 5, 0, 5), Event::End(0)]);
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
        matches!(events[..2], [Event::Batch(0, a, 0, pa), Event::Batch(1, b, 0, pb)] if pa == a as u64 && pb == b as u64 && (2..20).contains(&a) && (2..20).contains(&b)),
        "{events:?}"
    );
}

/// The ids of `batch`'s first column, an INT64 sequence.
fn ids(batch: &datafusion::arrow::array::RecordBatch) -> Vec<i64> {
    batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

#[tokio::test]
async fn a_resumed_partition_continues_its_sequence_without_gap_or_duplicate() {
    let columns = schema(&[("id", DataType::Int64)]);
    // 1000 rows a second in batches of about 20: several events.
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "1000"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
        ("fields.id.end", "100"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    // Partition 1 of 2 holds 51..=100. Read two batches, as if a checkpoint
    // came then, and the job died.
    let mut reader = src.open(crate::support::assignment(vec![1], 2), false, &Positions::new()).unwrap();
    let mut before = Vec::new();
    let mut position = 0;
    for _ in 0..2 {
        match reader.next().await.unwrap() {
            Some(SourceEvent::Batch {
                partition: 1,
                batch,
                bad_records,
                position: p,
            }) => {
                assert!(bad_records.is_empty());
                before.extend(ids(&batch));
                assert_eq!(p, before.len() as u64, "positions count rows");
                position = p;
            }
            other => panic!("expected a batch, got {other:?}"),
        }
    }
    assert!(
        position < 50,
        "the partition must not be done yet: {position}"
    );
    drop(reader);
    let resume = Positions::from([(1, position)]);
    let after = read_resumed(&src, vec![1], 2, false, &resume)
        .await
        .unwrap();
    assert_eq!(after.events.last(), Some(&Event::End(1)));
    assert!(
        matches!(
            after.events[after.events.len() - 2],
            Event::Batch(1, _, 0, 50)
        ),
        "{:?}",
        after.events
    );
    before.extend(ids(&after.rows));
    assert_eq!(before, (51..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_resumed_partition_makes_only_the_rest_of_its_rows() {
    let columns = schema(&[("n", DataType::Int32)]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "100000000"),
        ("number-of-rows", "30"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    // Partition 0 of 3 makes 10 random rows; 7 were made before.
    let read = read_resumed(&src, vec![0, 2], 3, false, &Positions::from([(0, 7)]))
        .await
        .unwrap();
    assert_eq!(
        read.events,
        vec![
            Event::Batch(0, 3, 0, 10),
            Event::Batch(2, 10, 0, 10),
            Event::End(0),
            Event::End(2)
        ]
    );
    // An ended partition makes nothing, not even its end.
    let ended = Positions::from([(0, PARTITION_ENDED), (2, 10)]);
    let read = read_resumed(&src, vec![0, 2], 3, false, &ended)
        .await
        .unwrap();
    assert_eq!(read.events, vec![Event::End(2)]);
}

/// ROW, ARRAY and MAP columns, as Flink's datagen makes them: each part
/// from its own options (`fields.<column>.<field>.*`, `.element.*`,
/// `.key.*`, `.value.*`), collections of `'length'` elements (3 by
/// default), and `'var-len'` strings from 1 to `'length'` characters.
#[tokio::test]
async fn row_array_and_map_columns_follow_their_parts_options() {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Fields};
    let buyer = DataType::Struct(Fields::from(vec![
        Field::new("age", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let tags = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int32, true),
        ])),
        false,
    );
    let attrs = DataType::Map(Arc::new(entries), false);
    let columns = schema(&[("buyer", buyer), ("tags", tags), ("attrs", attrs), ("note", DataType::Utf8)]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "100000000"),
        ("number-of-rows", "500"),
        ("fields.buyer.age.min", "18"),
        ("fields.buyer.age.max", "30"),
        ("fields.buyer.name.length", "5"),
        ("fields.tags.length", "4"),
        ("fields.tags.element.min", "-3"),
        ("fields.tags.element.max", "3"),
        ("fields.attrs.key.length", "2"),
        ("fields.attrs.value.min", "7"),
        ("fields.attrs.value.max", "7"),
        ("fields.note.length", "40"),
        ("fields.note.var-len", "true"),
    ];
    let src = table(&options, columns.clone()).unwrap().source.unwrap();
    let (_, batch) = read(&src, vec![0], 1).await.unwrap();
    assert_eq!(batch.num_rows(), 500);
    let buyer = batch.column(0).as_struct();
    let ages = buyer.column(0).as_primitive::<Int32Type>();
    assert!(ages.values().iter().all(|a| (18..=30).contains(a)), "ages out of range");
    let names = buyer.column(1).as_string::<i32>();
    assert!(names.iter().all(|n| n.is_some_and(|n| n.len() == 5)), "names of another length");
    let tags = batch.column(1).as_list::<i32>();
    assert!((0..tags.len()).all(|r| tags.value_length(r) == 4), "arrays of another length");
    let elements = tags.values().as_primitive::<Int64Type>();
    assert!(elements.values().iter().all(|e| (-3..=3).contains(e)), "elements out of range");
    let attrs = batch.column(2).as_map();
    assert!((0..attrs.len()).all(|r| attrs.value_length(r) == 3), "maps of other than 3 entries by default");
    assert!(attrs.keys().as_string::<i32>().iter().all(|k| k.is_some_and(|k| k.len() == 2)));
    assert!(attrs.values().as_primitive::<Int32Type>().values().iter().all(|v| *v == 7));
    let notes = batch.column(3).as_string::<i32>();
    let lengths: std::collections::BTreeSet<usize> = notes.iter().map(|n| n.map_or(0, str::len)).collect();
    assert!(lengths.iter().all(|l| (1..=40).contains(l)) && lengths.len() > 10, "var-len lengths: {lengths:?}");

    // A part that is not there, and an option of the wrong kind, are named.
    let wrong = [("connector", "datagen"), ("fields.buyer.height.min", "1")];
    let e = table(&wrong, columns.clone()).unwrap_err().to_string();
    assert!(e.contains("fields.buyer.height.min") && e.contains("its parts: age, name"), "{e}");
    let wrong = [("connector", "datagen"), ("fields.tags.var-len", "true")];
    let e = table(&wrong, columns).unwrap_err().to_string();
    assert!(e.contains("fields.tags.var-len") && e.contains("applies only to VARCHAR fields"), "{e}");
}

/// A job that reads some columns gets its sequences as they would be and
/// nulls in the random columns it does not read.
#[tokio::test]
async fn random_columns_a_job_does_not_read_are_left_null() {
    let columns = schema(&[("id", DataType::Int64), ("s", DataType::Utf8), ("x", DataType::Int64)]);
    let options = [
        ("connector", "datagen"),
        ("rows-per-second", "100000000"),
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
        ("fields.id.end", "1000"),
        ("fields.x.min", "5"),
        ("fields.x.max", "9"),
    ];
    let src = table(&options, columns).unwrap().source.unwrap();
    // A sequence is made whether read or not: it bounds the rows.
    assert!(src.only_columns(&[1, 2]).is_none());
    let part = src.only_columns(&[0, 2]).expect("s skipped");
    assert!(part.describe().ends_with(" unread=s"), "{}", part.describe());
    let (events, batch) = read(&part, vec![0], 1).await.unwrap();
    assert_eq!(events.last(), Some(&Event::End(0)));
    let ids: Vec<i64> = batch.column(0).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ids, (1..=1000).collect::<Vec<_>>());
    assert_eq!(batch.column(1).null_count(), 1000);
    let xs = batch.column(2).as_primitive::<Int64Type>();
    assert_eq!(xs.null_count(), 0);
    assert!(xs.values().iter().all(|x| (5..=9).contains(x)));
}
