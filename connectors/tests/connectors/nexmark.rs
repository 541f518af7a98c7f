//! The nexmark connector: Flink nexmark's proportions, ids, hot ratios and
//! event times, determinism, the split across subtasks and the restore
//! from positions. Expected values are computed here from the rules of
//! Flink's generator, independently of the connector's own arithmetic.

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{
    SortColumn, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use weir_engine::source::{Positions, SourceEvent};

use crate::support::{Event, read, read_resumed, schema, table};

/// 2026-01-01 00:00:00 UTC.
const T0: i64 = 1_767_225_600_000;
const TS: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);

fn bid_columns() -> Vec<(&'static str, DataType)> {
    vec![
        ("auction", DataType::Int64),
        ("bidder", DataType::Int64),
        ("price", DataType::Int64),
        ("channel", DataType::Utf8),
        ("url", DataType::Utf8),
        ("dateTime", TS),
        ("extra", DataType::Utf8),
    ]
}

/// The options of a `kind` table of `events` events, one per millisecond
/// (so each event's time names its event number) from `T0`.
fn options(kind: &'static str, events: &str, seed: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("connector", "nexmark".into()),
        ("nexmark.table", kind.into()),
        ("events-per-second", "1000".into()),
        ("number-of-events", events.into()),
        ("rate-limited", "false".into()),
        ("first-event-time", "2026-01-01 00:00:00".into()),
        ("seed", seed.into()),
    ]
}

/// All rows of a table read by one subtask.
async fn read_table(kind: &'static str, columns: &[(&str, DataType)], events: &str, seed: &'static str) -> RecordBatch {
    let opts = options(kind, events, seed);
    let pairs: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let src = table(&pairs, schema(columns)).unwrap().source.unwrap();
    read(&src, vec![0], 1).await.unwrap().1
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn times(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column_by_name("dateTime")
        .unwrap()
        .as_primitive::<TimestampMillisecondType>()
        .values()
        .to_vec()
}

/// Event numbers below `n` of each kind, by Flink's rule: of every 50 ids,
/// the first is a person, the next 3 auctions, the other 46 bids.
fn numbers(n: u64, kind: &str) -> Vec<i64> {
    (0..n)
        .filter(|id| match kind {
            "person" => id % 50 < 1,
            "auction" => (1..4).contains(&(id % 50)),
            _ => id % 50 >= 4,
        })
        .map(|id| id as i64)
        .collect()
}

#[tokio::test]
async fn kinds_come_in_flinks_proportions_at_their_event_times() {
    let n = 20_000;
    let bids = read_table("bid", &bid_columns(), "20000", "1").await;
    let people = read_table("person", &[("id", DataType::Int64), ("dateTime", TS)], "20000", "1").await;
    let auctions = read_table("auction", &[("id", DataType::Int64), ("dateTime", TS)], "20000", "1").await;
    for (kind, batch) in [("bid", &bids), ("person", &people), ("auction", &auctions)] {
        // One event per ms: each row's time is T0 plus its event number.
        let expected: Vec<i64> = numbers(n, kind).iter().map(|id| T0 + id).collect();
        assert_eq!(times(batch), expected, "{kind} times");
    }
    assert_eq!(bids.num_rows() + people.num_rows() + auctions.num_rows(), n as usize);
    // Ids are consecutive from 1000, in the order made.
    let expected: Vec<i64> = (1000..1000 + people.num_rows() as i64).collect();
    assert_eq!(ints(&people, "id"), expected);
    let expected: Vec<i64> = (1000..1000 + auctions.num_rows() as i64).collect();
    assert_eq!(ints(&auctions, "id"), expected);
}

#[tokio::test]
async fn bids_name_existing_auctions_and_people_mostly_hot_ones() {
    let n = 100_000u64;
    let bids = read_table("bid", &bid_columns(), "100000", "7").await;
    let (auctions, bidders, prices, at) = (
        ints(&bids, "auction"),
        ints(&bids, "bidder"),
        ints(&bids, "price"),
        times(&bids),
    );
    let (mut hot_auctions, mut hot_bidders) = (0usize, 0usize);
    for i in 0..bids.num_rows() {
        let id = (at[i] - T0) as u64;
        // Auctions and people made so far (counted from the event kinds
        // of the ids before this one).
        let made_auctions = (id / 50 * 3 + (id % 50).clamp(1, 4) - 1) as i64;
        let made_people = (id / 50 + 1) as i64;
        // In flight (the last 100) or up to 10 ahead; active people are
        // the last 1000, or up to 10 ahead.
        assert!(auctions[i] >= 1000 + (made_auctions - 1 - 100).max(0), "bid {i}: auction {}", auctions[i]);
        assert!(auctions[i] < 1000 + made_auctions + 10, "bid {i}: auction {}", auctions[i]);
        assert!(bidders[i] >= 1000 + (made_people - 1000).max(0), "bid {i}: bidder {}", bidders[i]);
        assert!(bidders[i] < 1000 + made_people + 10, "bid {i}: bidder {}", bidders[i]);
        // The hot auction is the first of the last run of 100 auctions,
        // the hot bidder the second of the last run of 100 people.
        hot_auctions += usize::from(auctions[i] - 1000 == (made_auctions - 1) / 100 * 100);
        hot_bidders += usize::from(bidders[i] - 1000 == (made_people - 1) / 100 * 100 + 1);
        assert!((100..=100_000_000).contains(&prices[i]), "price {}", prices[i]);
    }
    let share = |k: usize| k as f64 / bids.num_rows() as f64;
    // Hot with probability 1 - 1/2 and 1 - 1/4, plus the odd random pick
    // that lands on the hot one.
    assert!((0.49..0.53).contains(&share(hot_auctions)), "hot auctions {}", share(hot_auctions));
    assert!((0.74..0.77).contains(&share(hot_bidders)), "hot bidders {}", share(hot_bidders));
    // Half the bids through the 4 hot channels.
    let channels = bids.column_by_name("channel").unwrap().as_string::<i32>();
    let hot = channels
        .iter()
        .filter(|c| ["Google", "Facebook", "Baidu", "Apple"].contains(&c.unwrap()))
        .count();
    assert!((0.48..0.52).contains(&share(hot)), "hot channels {}", share(hot));
    // Filler brings a bid to 100 bytes on average: 32 of numbers, 54 to 81
    // letters of extra.
    let extra = bids.column_by_name("extra").unwrap().as_string::<i32>();
    assert!(extra.iter().all(|x| (54..82).contains(&x.unwrap().len())));
    let mean = extra.iter().map(|x| x.unwrap().len()).sum::<usize>() as f64 / extra.len() as f64;
    assert!((66.5..68.5).contains(&mean), "mean extra {mean}");
    assert_eq!(bids.num_rows(), numbers(n, "bid").len());
}

#[tokio::test]
async fn auctions_are_sold_by_people_that_exist_and_expire_later() {
    let columns = [
        ("id", DataType::Int64),
        ("seller", DataType::Int64),
        ("category", DataType::Int64),
        ("initialBid", DataType::Int64),
        ("reserve", DataType::Int64),
        ("dateTime", TS),
        ("expires", TS),
    ];
    let auctions = read_table("auction", &columns, "50000", "3").await;
    let at = times(&auctions);
    let expires = auctions.column_by_name("expires").unwrap().as_primitive::<TimestampMillisecondType>();
    let (sellers, categories) = (ints(&auctions, "seller"), ints(&auctions, "category"));
    let (initial, reserve) = (ints(&auctions, "initialBid"), ints(&auctions, "reserve"));
    let mut hot = 0;
    for i in 0..auctions.num_rows() {
        let made_people = ((at[i] - T0) / 50 + 1) as i64;
        assert!(sellers[i] >= 1000 && sellers[i] < 1000 + made_people + 10);
        hot += usize::from((sellers[i] - 1000) == (made_people - 1) / 100 * 100);
        assert!((10..15).contains(&categories[i]));
        assert!(reserve[i] > initial[i]);
        // Auctions last on average as long as 100 auctions take to make:
        // 100 * 50 / 3 events, 1 ms each; at most twice that.
        let length = expires.value(i) - at[i];
        assert!((1..=2 * 1666).contains(&length), "length {length}");
    }
    let share = hot as f64 / auctions.num_rows() as f64;
    assert!((0.72..0.78).contains(&share), "hot sellers {share}");
}

#[tokio::test]
async fn a_seed_decides_every_value() {
    let a = read_table("bid", &bid_columns(), "5000", "11").await;
    let b = read_table("bid", &bid_columns(), "5000", "11").await;
    let c = read_table("bid", &bid_columns(), "5000", "12").await;
    assert_eq!(a, b);
    assert_ne!(ints(&a, "price"), ints(&c, "price"));
    // Declaring fewer columns leaves the others' values as they were.
    let few = read_table("bid", &[("price", DataType::Int64), ("auction", DataType::Int64)], "5000", "11").await;
    assert_eq!(ints(&few, "price"), ints(&a, "price"));
    assert_eq!(ints(&few, "auction"), ints(&a, "auction"));
}

/// A job that reads some columns of a bid table gets the bids it would
/// get reading all, and nulls in the text columns it does not read.
#[tokio::test]
async fn a_bid_table_read_in_part_makes_the_same_bids() {
    let opts = options("bid", "5000", "11");
    let pairs: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let src = table(&pairs, schema(&bid_columns())).unwrap().source.unwrap();
    let whole = read(&src, vec![0], 1).await.unwrap().1;
    // auction, price, url, dateTime: channel and extra are left null; the
    // numbers are made anyway.
    let part = src.only_columns(&[0, 2, 4, 5]).expect("text columns skipped");
    assert!(part.describe().ends_with(" unread=channel,extra"), "{}", part.describe());
    let narrow = read(&part, vec![0], 1).await.unwrap().1;
    assert_eq!(narrow.schema(), whole.schema());
    for (i, (name, _)) in bid_columns().iter().enumerate() {
        match [3, 6].contains(&i) {
            true => assert_eq!(narrow.column(i).null_count(), whole.num_rows(), "{name}"),
            false => assert_eq!(narrow.column(i), whole.column(i), "{name}"),
        }
    }
    // Reading every text column skips nothing.
    assert!(src.only_columns(&[3, 4, 6]).is_none());
}

/// `batch` ordered by event time (unique: one event per millisecond).
fn by_time(batch: &RecordBatch) -> RecordBatch {
    let column = batch.column_by_name("dateTime").unwrap().clone();
    let order = lexsort_to_indices(&[SortColumn { values: column, options: None }], None).unwrap();
    take_record_batch(batch, &order).unwrap()
}

#[tokio::test]
async fn subtasks_together_make_the_events_of_one() {
    let opts = options("bid", "30001", "5");
    let pairs: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let src = table(&pairs, schema(&bid_columns())).unwrap().source.unwrap();
    let whole = read(&src, vec![0], 1).await.unwrap().1;
    assert_eq!(src.partitions(3).unwrap(), 3);
    let mut parts = Vec::new();
    for p in 0..3 {
        let (events, batch) = read(&src, vec![p], 3).await.unwrap();
        assert_eq!(events.last(), Some(&Event::End(p)));
        // Subtask p makes event numbers p, p + 3, …
        assert!(times(&batch).iter().all(|t| (t - T0) % 3 == p as i64), "partition {p}");
        parts.push(batch);
    }
    let union = concat_batches(&src.schema(), &parts).unwrap();
    assert_eq!(by_time(&union), whole);
}

#[tokio::test]
async fn a_restored_partition_continues_right_after_its_position() {
    let opts = options("bid", "100000", "9");
    let pairs: Vec<(&str, &str)> = opts.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let src = table(&pairs, schema(&bid_columns())).unwrap().source.unwrap();
    let (events, whole) = read(&src, vec![0, 1], 2).await.unwrap();
    // Stop each partition after its first batch, as a checkpoint would.
    let mut resume = Positions::new();
    for e in &events {
        if let Event::Batch(p, _, _, position) = e {
            resume.entry(*p).or_insert(*position);
        }
    }
    assert_eq!(resume.len(), 2);
    let rest = read_resumed(&src, vec![0, 1], 2, false, &resume).await.unwrap().rows;
    // A position counts the events of a partition's share made: partition
    // p resumes at event number p + 2 * position.
    let keep: Vec<bool> = times(&whole)
        .iter()
        .map(|t| {
            let n = (t - T0) as u64;
            n >= n % 2 + 2 * resume[&((n % 2) as usize)]
        })
        .collect();
    assert!(keep.iter().any(|k| !k) && keep.iter().any(|k| *k));
    let expected = filter_record_batch(&whole, &BooleanArray::from(keep)).unwrap();
    assert_eq!(by_time(&rest), by_time(&expected));
}

#[tokio::test]
async fn bad_options_and_columns_are_refused() {
    let bad = |extra: &[(&str, &str)], columns: &[(&str, DataType)]| {
        let mut pairs = vec![("connector", "nexmark")];
        pairs.extend_from_slice(extra);
        table(&pairs, schema(columns)).unwrap_err().to_string()
    };
    let price = [("price", DataType::Int64)];
    assert!(bad(&[], &price).contains("nexmark.table"));
    assert!(bad(&[("nexmark.table", "bids")], &price).contains("'person', 'auction' or 'bid'"));
    assert!(bad(&[("nexmark.table", "bid")], &[("cost", DataType::Int64)]).contains("no column 'cost'"));
    assert!(bad(&[("nexmark.table", "bid")], &[("price", DataType::Int32)]).contains("must be BIGINT"));
    assert!(bad(&[("nexmark.table", "bid"), ("events-per-second", "0")], &price).contains("positive"));
    assert!(bad(&[("nexmark.table", "bid"), ("first-event-time", "soon")], &price).contains("timestamp"));
    assert!(bad(&[("nexmark.table", "bid"), ("bid.proportion", "0")], &price).contains("never have a row"));
    assert!(bad(&[("nexmark.table", "bid"), ("rows-per-second", "5")], &price).contains("unknown option"));
    // Column names match whatever their case.
    let ok = table(&[("connector", "nexmark"), ("nexmark.table", "bid")], schema(&[("DATETIME", TS)]));
    assert!(ok.is_ok());
}

/// Paced reading releases events at the rate: 2 000 events at 20 000 a
/// second take about a tenth of a second.
#[tokio::test]
async fn paced_events_come_at_the_rate() {
    let src = table(
        &[
            ("connector", "nexmark"),
            ("nexmark.table", "bid"),
            ("events-per-second", "20000"),
            ("number-of-events", "2000"),
        ],
        schema(&[("price", DataType::Int64)]),
    )
    .unwrap()
    .source
    .unwrap();
    let mut reader = src.open(crate::support::assignment(vec![0], 1), false, &Positions::new()).unwrap();
    let start = std::time::Instant::now();
    let mut rows = 0;
    while let Some(e) = reader.next().await.unwrap() {
        if let SourceEvent::Batch { batch, .. } = e {
            rows += batch.num_rows();
        }
    }
    assert_eq!(rows, numbers(2000, "bid").len());
    assert!(start.elapsed() >= std::time::Duration::from_millis(80), "{:?}", start.elapsed());
}
