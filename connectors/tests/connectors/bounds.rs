//! Numeric options at the ends of their types: accepted and generated
//! without overflow, or refused naming the option and the range.

use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use weir_engine::source::{Positions, SourceConnector, SourceEvent};

use crate::support::{assignment, read, schema, table};

const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

fn source(pairs: &[(&str, &str)], columns: &[(&str, DataType)]) -> std::sync::Arc<dyn SourceConnector> {
    table(pairs, schema(columns)).unwrap().source.unwrap()
}

fn refused(pairs: &[(&str, &str)], columns: &[(&str, DataType)]) -> String {
    table(pairs, schema(columns)).expect_err("the options must be refused").to_string()
}

/// The first batch of an unbounded (or very long) source, and the
/// partition's position after it.
async fn first_batch(src: &std::sync::Arc<dyn SourceConnector>) -> (RecordBatch, u64) {
    let mut reader = src.open(assignment(vec![0], 1), false, &Positions::new()).unwrap();
    match reader.next().await.unwrap() {
        Some(SourceEvent::Batch { batch, position, .. }) => (batch, position),
        other => panic!("expected a batch, got {other:?}"),
    }
}

fn ints(batch: &RecordBatch, column: usize) -> Vec<i64> {
    batch.column(column).as_primitive::<Int64Type>().values().to_vec()
}

#[tokio::test]
async fn datagen_counts_and_rates_at_their_largest_run_without_overflow() {
    let id = [("id", DataType::Int64)];
    for rows in [u64::MAX.to_string(), i64::MAX.to_string()] {
        for rate in ["1", "18446744073709551615"] {
            let src = source(&[("connector", "datagen"), ("number-of-rows", &rows), ("rows-per-second", rate)], &id);
            let (batch, position) = first_batch(&src).await;
            assert!(batch.num_rows() > 0, "{rows} rows at {rate}/s");
            assert_eq!(position, batch.num_rows() as u64);
        }
    }
    for (key, value, reason) in [
        ("number-of-rows", "-1", "non-negative integer"),
        ("number-of-rows", "18446744073709551616", "non-negative integer"),
        ("rows-per-second", "0", "positive integer"),
        ("rows-per-second", "-5", "positive integer"),
    ] {
        let e = refused(&[("connector", "datagen"), (key, value)], &id);
        assert!(e.contains(&format!("'{key}'")) && e.contains(reason), "{key} = {value}: {e}");
    }
}

/// Sequences ending at the largest BIGINT, or starting at the smallest,
/// make exactly their values over any number of subtasks.
#[tokio::test]
async fn datagen_sequences_at_the_ends_of_bigint_are_exact() {
    for (start, end) in [(i64::MAX - 9, i64::MAX), (i64::MIN, i64::MIN + 9)] {
        let (start_text, end_text) = (start.to_string(), end.to_string());
        let src = source(
            &[
                ("connector", "datagen"),
                ("rows-per-second", "1000000"),
                ("fields.id.kind", "sequence"),
                ("fields.id.start", &start_text),
                ("fields.id.end", &end_text),
            ],
            &[("id", DataType::Int64)],
        );
        let mut all = Vec::new();
        for p in 0..3 {
            all.extend(ints(&read(&src, vec![p], 3).await.unwrap().1, 0));
        }
        all.sort_unstable();
        assert_eq!(all, (start..=end).collect::<Vec<_>>());
    }
    // The whole BIGINT range is a sequence too long to count in 64 bits:
    // it starts at its start.
    let (min, max) = (i64::MIN.to_string(), i64::MAX.to_string());
    let src = source(
        &[("connector", "datagen"), ("fields.id.kind", "sequence"), ("fields.id.start", &min), ("fields.id.end", &max)],
        &[("id", DataType::Int64)],
    );
    let (batch, _) = first_batch(&src).await;
    let ids = ints(&batch, 0);
    assert_eq!(ids, (0..ids.len() as i64).map(|i| i64::MIN + i).collect::<Vec<_>>());
}

/// Batches of the longest strings stay small: 8192 rows of 64 KiB would
/// be half a gigabyte each.
#[tokio::test]
async fn datagen_batches_of_long_strings_stay_within_sixteen_mib() {
    let src = source(
        &[("connector", "datagen"), ("number-of-rows", "2000"), ("rows-per-second", "100000000"), ("fields.s.length", "65536")],
        &[("s", DataType::Utf8)],
    );
    let mut reader = src.open(assignment(vec![0], 1), false, &Positions::new()).unwrap();
    let mut rows = 0;
    while let Some(event) = reader.next().await.unwrap() {
        if let SourceEvent::Batch { batch, .. } = event {
            assert!(batch.get_array_memory_size() <= 17 << 20, "{} bytes", batch.get_array_memory_size());
            assert!(batch.column(0).as_string::<i32>().iter().all(|s| s.is_some_and(|s| s.len() == 65536)));
            rows += batch.num_rows();
        }
    }
    assert_eq!(rows, 2000);
}

/// The longest `max-past` a duration can say (213 503 days) reaches back
/// to about 560 BC from now: every time stays within it.
#[tokio::test]
async fn datagen_times_with_the_longest_max_past_stay_in_range() {
    let src = source(
        &[("connector", "datagen"), ("number-of-rows", "1000"), ("fields.ts.max-past", "213503 d")],
        &[("ts", TS)],
    );
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let batch = read(&src, vec![0], 1).await.unwrap().1;
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let earliest = before - 213_503 * 86_400_000;
    for t in batch.column(0).as_primitive::<TimestampMillisecondType>().values() {
        assert!((earliest..=after).contains(t), "{t}");
    }
    let e = refused(&[("connector", "datagen"), ("fields.ts.max-past", "999999999999 d")], &[("ts", TS)]);
    assert!(e.contains("'fields.ts.max-past'") && e.contains("too long"), "{e}");
}

#[tokio::test]
async fn nexmark_times_counts_and_rates_at_their_bounds() {
    let auction = [("dateTime", TS), ("expires", TS)];
    let nexmark = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = vec![("connector", "nexmark"), ("nexmark.table", "auction"), ("rate-limited", "false")];
        pairs.extend_from_slice(extra);
        pairs
    };
    // 253402300800000 is 10000-01-01.
    for time in [i64::MAX.to_string(), i64::MIN.to_string(), "253402300800000".into()] {
        let pairs = nexmark(&[]);
        let mut pairs: Vec<(&str, &str)> = pairs;
        pairs.push(("first-event-time", &time));
        let e = refused(&pairs, &auction);
        assert!(e.contains("'first-event-time'") && e.contains("0000-01-01 to 9999-12-31"), "{time}: {e}");
    }
    // The last millisecond of year 9999, as many events as a u64 counts, at
    // the highest rate: auctions expire after they start, in the range.
    let src = source(
        &nexmark(&[
            ("first-event-time", "9999-12-31 23:59:59.999"),
            ("number-of-events", "18446744073709551615"),
            ("events-per-second", "18446744073709551615"),
        ]),
        &auction,
    );
    let (batch, _) = first_batch(&src).await;
    assert!(batch.num_rows() > 0);
    let times = |c: usize| batch.column(c).as_primitive::<TimestampMillisecondType>().values().to_vec();
    for (start, expires) in times(0).into_iter().zip(times(1)) {
        assert!(start >= 253_402_300_799_999 && expires > start, "{start} {expires}");
    }
    assert_eq!(batch.column(1).null_count(), 0);
}
