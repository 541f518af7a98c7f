//! Tests of the Kafka test harness itself (tests/common/kafka.rs): the
//! nisshi broker it starts, and its reader, which must show a topic as a
//! `read_committed` consumer would even though nisshi's own Fetch does not
//! hide aborted transactions. Also pins down the broker behaviour the
//! engine's exactly-once Kafka connector relies on: offsets sent within a
//! transaction are committed with it, and dropped when it aborts.

use crate::common;

use std::time::Duration;

use common::kafka::{Broker, Record};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Threaded, so that delivery reports are served while a commit or abort
/// waits for them.
type TxProducer = ThreadedProducer<DefaultProducerContext>;

/// The `(key, value)` pairs of records, as text, for readable assertions.
fn texts(records: &[Record]) -> Vec<(Option<String>, String)> {
    records
        .iter()
        .map(|r| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (r.key.as_deref().map(text), r.value.as_deref().map(text).unwrap_or_default())
        })
        .collect()
}

/// The values of records, as text.
fn values(records: &[Record]) -> Vec<String> {
    texts(records).into_iter().map(|(_, v)| v).collect()
}

fn record(key: Option<&str>, value: &str) -> (Option<Vec<u8>>, Vec<u8>) {
    (key.map(|k| k.as_bytes().to_vec()), value.as_bytes().to_vec())
}

fn transactional_producer(broker: &Broker, id: &str) -> TxProducer {
    let producer: TxProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("transactional.id", id)
        .create()
        .expect("a transactional producer");
    producer.init_transactions(TIMEOUT).expect("init_transactions");
    producer
}

fn send(producer: &TxProducer, topic: &str, key: &str, value: &str) {
    producer
        .send(BaseRecord::to(topic).partition(0).key(key).payload(value))
        .map_err(|(e, _)| e)
        .expect("queue a record");
}

#[test]
fn plain_records_read_back_in_partition_and_offset_order() {
    let broker = Broker::start();
    broker.create_topic("plain", 2);
    broker.produce("plain", 1, &[record(Some("b"), "p1-0")]);
    broker.produce("plain", 0, &[record(Some("a"), "p0-0"), record(None, "p0-1")]);
    broker.produce("plain", 1, &[record(Some("b"), "p1-1")]);

    let got = broker.read_committed("plain");
    let at: Vec<(i32, i64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(at, [(0, 0), (0, 1), (1, 0), (1, 1)]);
    assert_eq!(
        texts(&got),
        [
            (Some("a".into()), "p0-0".into()),
            (None, "p0-1".into()),
            (Some("b".into()), "p1-0".into()),
            (Some("b".into()), "p1-1".into()),
        ]
    );
    assert!(got.iter().all(|r| r.producer_id == -1), "plain records have no producer id: {got:?}");
    assert_eq!(broker.read_uncommitted("plain"), got);
}

#[test]
fn read_committed_hides_aborted_and_open_transactions() {
    let broker = Broker::start();
    broker.create_topic("txn", 1);
    let producer = transactional_producer(&broker, "harness-txn");

    producer.begin_transaction().expect("begin");
    send(&producer, "txn", "k", "committed-1");
    send(&producer, "txn", "k", "committed-2");
    producer.commit_transaction(TIMEOUT).expect("commit");

    producer.begin_transaction().expect("begin");
    send(&producer, "txn", "k", "aborted-1");
    // Aborting purges what is still queued: flush for the record to reach
    // the log, which then holds an aborted transaction.
    producer.flush(TIMEOUT).expect("flush the aborted transaction");
    producer.abort_transaction(TIMEOUT).expect("abort");

    producer.begin_transaction().expect("begin");
    send(&producer, "txn", "k", "open-1");
    producer.flush(TIMEOUT).expect("flush the open transaction");
    broker.produce("txn", 0, &[record(None, "plain")]);

    assert_eq!(values(&broker.read_committed("txn")), ["committed-1", "committed-2", "plain"]);
    assert_eq!(
        values(&broker.read_uncommitted("txn")),
        ["committed-1", "committed-2", "aborted-1", "open-1", "plain"]
    );
    let committed = broker.read_committed("txn");
    assert!(committed[0].producer_id >= 0, "a transactional record has its producer id");
    assert_eq!(committed[2].producer_id, -1);
}

#[test]
fn restart_keeps_the_log() {
    let mut broker = Broker::start();
    broker.create_topic("kept", 1);
    broker.produce("kept", 0, &[record(None, "before-1"), record(None, "before-2")]);
    let before = broker.read_committed("kept");

    broker.restart();
    assert_eq!(broker.read_committed("kept"), before);
    broker.produce("kept", 0, &[record(None, "after")]);
    let after = broker.read_committed("kept");
    assert_eq!(after.len(), 3);
    assert_eq!(after[..2], before[..]);
    assert_eq!((after[2].offset, after[2].value.as_deref()), (2, Some(&b"after"[..])));
}

/// The commit marker of the engine's exactly-once sink: offsets sent with
/// `send_offsets_to_transaction` become the group's committed offsets when
/// the transaction commits, and not when it aborts; they survive a broker
/// crash.
#[test]
fn offsets_sent_in_a_transaction_commit_with_it() {
    let mut broker = Broker::start();
    broker.create_topic("offsets-in", 1);
    broker.create_topic("offsets-out", 1);
    let consumer = group_consumer(&broker, "g");
    let group = consumer.group_metadata().expect("group metadata of a consumer with a group.id");
    let producer = transactional_producer(&broker, "harness-offsets");
    let offsets = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("offsets-in", 0, Offset::Offset(offset)).expect("an offset");
        tpl
    };

    producer.begin_transaction().expect("begin");
    send(&producer, "offsets-out", "k", "with-7");
    producer.send_offsets_to_transaction(&offsets(7), &group, TIMEOUT).expect("send offset 7");
    producer.commit_transaction(TIMEOUT).expect("commit");

    producer.begin_transaction().expect("begin");
    send(&producer, "offsets-out", "k", "with-9");
    producer.flush(TIMEOUT).expect("flush the aborted transaction");
    producer.send_offsets_to_transaction(&offsets(9), &group, TIMEOUT).expect("send offset 9");
    producer.abort_transaction(TIMEOUT).expect("abort");

    assert_eq!(committed_offset(&consumer), Offset::Offset(7));
    assert_eq!(values(&broker.read_committed("offsets-out")), ["with-7"]);
    assert_eq!(values(&broker.read_uncommitted("offsets-out")), ["with-7", "with-9"]);

    drop((producer, consumer));
    broker.restart();
    assert_eq!(committed_offset(&group_consumer(&broker, "g")), Offset::Offset(7), "after a broker crash");
}

fn group_consumer(broker: &Broker, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .create()
        .expect("a consumer")
}

/// The offset of partition 0 of "offsets-in" committed for the consumer's
/// group.
fn committed_offset(consumer: &BaseConsumer) -> Offset {
    let mut asked = TopicPartitionList::new();
    asked.add_partition("offsets-in", 0);
    let committed = consumer.committed_offsets(asked, TIMEOUT).expect("committed offsets");
    committed.find_partition("offsets-in", 0).expect("the partition asked for").offset()
}

/// The engine's recovery case: a producer crashes with a transaction open
/// that carries the next marker; the restarted producer (same
/// transactional id) fences it, which aborts that transaction, and the
/// group's offset is still the last committed marker.
#[test]
fn a_fenced_transactions_offsets_do_not_replace_the_committed_ones() {
    let broker = Broker::start();
    broker.create_topic("fence-in", 1);
    broker.create_topic("fence-out", 1);
    let consumer = group_consumer(&broker, "fence-g");
    let group = consumer.group_metadata().expect("group metadata");
    let offsets = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("fence-in", 0, Offset::Offset(offset)).expect("an offset");
        tpl
    };
    let zombie = transactional_producer(&broker, "harness-fence");
    for marker in [3, 4] {
        zombie.begin_transaction().expect("begin");
        send(&zombie, "fence-out", "k", &format!("with-{marker}"));
        zombie.send_offsets_to_transaction(&offsets(marker), &group, TIMEOUT).expect("send offsets");
        zombie.commit_transaction(TIMEOUT).expect("commit");
    }
    zombie.begin_transaction().expect("begin");
    send(&zombie, "fence-out", "k", "with-5");
    zombie.flush(TIMEOUT).expect("flush");
    zombie.send_offsets_to_transaction(&offsets(5), &group, TIMEOUT).expect("send offset 5");
    // The crash: the zombie never ends its transaction.
    let _restarted = transactional_producer(&broker, "harness-fence");
    let fresh = group_consumer(&broker, "fence-g");
    let mut asked = TopicPartitionList::new();
    asked.add_partition("fence-in", 0);
    let committed = fresh.committed_offsets(asked, TIMEOUT).expect("committed offsets");
    assert_eq!(committed.find_partition("fence-in", 0).expect("partition").offset(), Offset::Offset(4));
    assert_eq!(values(&broker.read_committed("fence-out")), ["with-3", "with-4"]);
    std::mem::forget(zombie);
}

/// Partitions added to a live topic (the harness's stand-in for
/// CreatePartitions) show in the broker's metadata, take records and read
/// back; the old partition keeps its records.
#[test]
fn partitions_added_to_a_live_topic_are_served() {
    let broker = Broker::start();
    broker.create_topic("growing", 1);
    broker.produce("growing", 0, &[record(None, "p0-0")]);
    broker.add_partitions("growing", 3);
    broker.produce("growing", 2, &[record(None, "p2-0")]);
    broker.produce("growing", 1, &[record(None, "p1-0")]);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some("growing"), Duration::from_secs(10)).expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
    let got = broker.read_committed("growing");
    let at: Vec<(i32, i64)> = got.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(at, [(0, 0), (1, 0), (2, 0)]);
    assert_eq!(values(&got), ["p0-0", "p1-0", "p2-0"]);
}
