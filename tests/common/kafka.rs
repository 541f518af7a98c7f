//! A Kafka-compatible broker for the integration tests, and a small client
//! of the Kafka protocol that creates topics, produces test inputs, and
//! reads topics back as a `read_committed` consumer would see them.
//!
//! The broker is nisshi with SQLite storage: one self-contained process
//! that starts in well under a second, keeps its log across a SIGKILL, and
//! implements transactions. Its Fetch never reports aborted transactions,
//! though, so a real `read_committed` consumer sees aborted records there.
//! The reader here therefore fetches everything, control batches included,
//! and applies Kafka's `read_committed` rule itself.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, CreateTopicsRequest, FetchRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, NO_SEQUENCE, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tempfile::TempDir;

/// How long the broker may take to accept connections after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one request may wait for its response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The SQLite file, relative to the broker's working directory: nisshi
/// resolves the path of a `sqlite://` URL against its working directory.
const DB_FILE: &str = "nisshi.db";

/// A nisshi broker on a free loopback port, with its SQLite log in a
/// scratch directory. Dropping it kills the broker.
pub struct Broker {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().expect("temp dir for the broker");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = spawn(&dir, port);
        let mut broker = Broker { dir, port, child };
        broker.wait_ready();
        broker
    }

    /// The `bootstrap.servers` of the broker.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker with SIGKILL, as a crash would, and starts it again
    /// on the same port and log.
    pub fn restart(&mut self) {
        self.child.kill().expect("kill the broker");
        self.child.wait().expect("reap the broker");
        self.child = spawn(&self.dir, self.port);
        self.wait_ready();
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let mut conn = self.connect();
        let request = CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic_name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1),
            ])
            .with_timeout_ms(10_000);
        let response = conn.call(&request, CREATE_TOPICS_VERSIONS);
        for result in response.topics {
            assert_eq!(
                result.error_code, 0,
                "creating topic {topic}: error {} {:?}",
                result.error_code, result.error_message
            );
        }
    }

    /// Grows `topic` to `partitions` partitions. nisshi 0.7 answers no
    /// CreatePartitions request, so this does in its SQLite store what its
    /// own CreateTopics does for each partition (a `topition` row and its
    /// `watermark` row) and raises the topic's count, which its Metadata
    /// answers read afresh each time.
    pub fn add_partitions(&self, topic: &str, partitions: i32) {
        let script = r#"
import sqlite3, sys
db, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = sqlite3.connect(db, timeout=30)
(tid, current) = c.execute("select id, partitions from topic where name = ?", (topic,)).fetchone()
assert total > current, f"topic has {current} partitions already"
for p in range(current, total):
    c.execute("insert into topition (topic, partition) values (?, ?)", (tid, p))
    c.execute("insert into watermark (topition) select id from topition where topic = ? and partition = ?", (tid, p))
c.execute("update topic set partitions = ? where id = ?", (total, tid))
c.commit()
"#;
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(self.dir.path().join(DB_FILE))
            .arg(topic)
            .arg(partitions.to_string())
            .output()
            .expect("run python3");
        assert!(out.status.success(), "adding partitions to {topic}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Appends plain (non-transactional) records, `(key, value)`, to one
    /// partition, as a test's input.
    pub fn produce(&self, topic: &str, partition: i32, records: &[(Option<Vec<u8>>, Vec<u8>)]) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64;
        let records: Vec<kafka_protocol::records::Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| kafka_protocol::records::Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder puts records in one batch only while their
                // offset minus sequence is the same, and takes the first
                // one's as the batch's: -1, no producer sequence.
                sequence: NO_SEQUENCE + i as i32,
                timestamp: now,
                key: key.clone().map(Bytes::from),
                value: Some(Bytes::from(value.clone())),
                headers: IndexMap::new(),
            })
            .collect();
        let mut batch = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut batch, &records, &options).expect("encode a record batch");

        let mut conn = self.connect();
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default().with_name(topic_name(topic)).with_partition_data(vec![
                PartitionProduceData::default().with_index(partition).with_records(Some(batch.freeze())),
            ]),
        ]);
        let response = conn.call(&request, PRODUCE_VERSIONS);
        for part in response.responses.iter().flat_map(|t| &t.partition_responses) {
            assert_eq!(
                part.error_code, 0,
                "producing to {topic}/{partition}: error {} {:?}",
                part.error_code, part.error_message
            );
        }
    }

    /// What a `read_committed` consumer reading `topic` from the start
    /// shows once every transaction has ended: the records of committed
    /// transactions and the non-transactional ones, by partition and
    /// offset. Records of aborted transactions, of transactions still open,
    /// and control records are left out.
    pub fn read_committed(&self, topic: &str) -> Vec<Record> {
        self.read_log(topic).into_iter().flat_map(|(partition, log)| committed(partition, log)).collect()
    }

    /// The committed records of `topic`, JSON values, as sorted lines of
    /// [`super::normalize_json`].
    pub fn committed_json_rows(&self, topic: &str) -> Vec<String> {
        let mut rows: Vec<String> = self
            .read_committed(topic)
            .iter()
            .map(|r| super::normalize_json(&serde_json::from_slice(r.value.as_deref().expect("a value")).expect("JSON")))
            .collect();
        rows.sort();
        rows
    }

    /// Every data record of `topic`, by partition and offset, as a plain
    /// (`read_uncommitted`) consumer shows them: aborted and open
    /// transactions included, control records not.
    pub fn read_uncommitted(&self, topic: &str) -> Vec<Record> {
        self.read_log(topic)
            .into_iter()
            .flat_map(|(partition, log)| {
                log.into_iter().filter(|r| !r.control).map(move |r| Record::new(partition, r))
            })
            .collect()
    }

    /// Every record of every partition of `topic` up to its high
    /// watermark, control records included, by partition and offset.
    fn read_log(&self, topic: &str) -> Vec<(i32, Vec<kafka_protocol::records::Record>)> {
        let mut conn = self.connect();
        partitions(&mut conn, topic)
            .into_iter()
            .map(|partition| {
                let start = list_offset(&mut conn, topic, partition, EARLIEST);
                let end = list_offset(&mut conn, topic, partition, LATEST);
                (partition, fetch_range(&mut conn, topic, partition, start, end))
            })
            .collect()
    }

    fn connect(&self) -> Connection {
        Connection::open(self.port)
            .unwrap_or_else(|e| panic!("connecting to nisshi at {}: {e}\n{}", self.bootstrap(), self.log()))
    }

    /// Waits until the broker answers an ApiVersions request, not merely
    /// accepts connections: that is when it serves clients.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the broker") {
                panic!("nisshi exited at startup ({status}):\n{}", self.log());
            }
            if Connection::open(self.port).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "nisshi did not accept connections on {} within {STARTUP_TIMEOUT:?}:\n{}",
                    self.bootstrap(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// nisshi's stdout and stderr so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nisshi.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // The broker may already be gone; there is nothing to do about it then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nisshi in `dir`, its log file and working directory, appending
/// its output to `nisshi.log` there (across restarts).
fn spawn(dir: &TempDir, port: u16) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("nisshi.log"))
        .expect("nisshi log file");
    let url = format!("tcp://127.0.0.1:{port}");
    Command::new(nisshi())
        .args(["broker", "--storage-engine", &format!("sqlite://{DB_FILE}")])
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        // A consumer group's first rebalance need not wait for more members
        // in a test, as Kafka's own test setups have it.
        .args(["--group-initial-rebalance-delay", "0s"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log file handle"))
        .stderr(log)
        .spawn()
        .expect("start nisshi")
}

/// The nisshi binary: `$NISSHI`, else cargo's install location, else the
/// one on `PATH`.
fn nisshi() -> PathBuf {
    if let Some(path) = std::env::var_os("NISSHI") {
        return PathBuf::from(path);
    }
    let installed = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|cargo| cargo.join("bin").join("nisshi"));
    if let Some(path) = installed.filter(|p| p.is_file()) {
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("nisshi"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "the Kafka tests need the nisshi broker, not found in $NISSHI, ~/.cargo/bin or PATH: \
             run scripts/test.sh, which installs it"
        )
    })
}

/// One record of a topic as a consumer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// The producer id the record was written with, -1 when it was not
    /// written by an idempotent or transactional producer.
    pub producer_id: i64,
}

impl Record {
    fn new(partition: i32, r: kafka_protocol::records::Record) -> Record {
        Record {
            partition,
            offset: r.offset,
            key: r.key.map(|k| k.to_vec()),
            value: r.value.map(|v| v.to_vec()),
            producer_id: r.producer_id,
        }
    }
}

/// Kafka's `read_committed` rule over one partition's log: a transactional
/// record shows once its producer's next control record commits it, and
/// never when that record aborts it or no control record follows.
/// Non-transactional records show as they come, also those after a
/// transaction still open (a consumer would wait for it to end before
/// showing them). The result keeps log order, as a consumer does, also when
/// transactions interleave.
fn committed(partition: i32, log: Vec<kafka_protocol::records::Record>) -> Vec<Record> {
    let mut shown = Vec::new();
    let mut open: HashMap<i64, Vec<kafka_protocol::records::Record>> = HashMap::new();
    for record in log {
        if record.control {
            let pending = open.remove(&record.producer_id).unwrap_or_default();
            if control_type(&record) == CONTROL_COMMIT {
                shown.extend(pending.into_iter().map(|r| Record::new(partition, r)));
            }
        } else if record.transactional {
            open.entry(record.producer_id).or_default().push(record);
        } else {
            shown.push(Record::new(partition, record));
        }
    }
    shown.sort_by_key(|r| r.offset);
    shown
}

/// The control type of a control record, in the second int16 of its key
/// (the first is the key's version).
fn control_type(record: &kafka_protocol::records::Record) -> i16 {
    let key = record
        .key
        .as_ref()
        .filter(|k| k.len() >= 4)
        .unwrap_or_else(|| panic!("control record at offset {} without a control key", record.offset));
    i16::from_be_bytes([key[2], key[3]])
}

const CONTROL_COMMIT: i16 = 1;
/// The ListOffsets timestamp that asks for the log start offset.
const EARLIEST: i64 = -2;
/// The ListOffsets timestamp that asks for the high watermark.
const LATEST: i64 = -1;
const READ_UNCOMMITTED: i8 = 0;

// The versions this client speaks of each API; the one used is the highest
// the broker also supports. Fetch and Produce stop before the versions that
// name topics by id instead of by name.
const API_VERSIONS_VERSION: i16 = 3;
const METADATA_VERSIONS: RangeInclusive<i16> = 1..=12;
const LIST_OFFSETS_VERSIONS: RangeInclusive<i16> = 1..=10;
const FETCH_VERSIONS: RangeInclusive<i16> = 4..=12;
const PRODUCE_VERSIONS: RangeInclusive<i16> = 3..=12;
const CREATE_TOPICS_VERSIONS: RangeInclusive<i16> = 2..=7;

/// The partition ids of `topic`, which must exist.
fn partitions(conn: &mut Connection, topic: &str) -> Vec<i32> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(topic)))]))
        .with_allow_auto_topic_creation(false);
    let response = conn.call(&request, METADATA_VERSIONS);
    let found = response
        .topics
        .into_iter()
        .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(topic))
        .unwrap_or_else(|| panic!("no metadata for topic {topic}"));
    assert_eq!(found.error_code, 0, "metadata of topic {topic}: error {}", found.error_code);
    let mut ids: Vec<i32> = found.partitions.iter().map(|p| p.partition_index).collect();
    ids.sort_unstable();
    ids
}

/// The offset ListOffsets gives for `timestamp` (`EARLIEST` or `LATEST`),
/// uncommitted data included.
fn list_offset(conn: &mut Connection, topic: &str, partition: i32, timestamp: i64) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(READ_UNCOMMITTED)
        .with_topics(vec![ListOffsetsTopic::default().with_name(topic_name(topic)).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp),
        ])]);
    let response = conn.call(&request, LIST_OFFSETS_VERSIONS);
    let part = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .unwrap_or_else(|| panic!("no offsets for {topic}/{partition}"));
    assert_eq!(part.error_code, 0, "offsets of {topic}/{partition}: error {}", part.error_code);
    part.offset
}

/// The records of one partition at offsets `start..end`, control records
/// included: Fetch with `read_uncommitted` returns every batch.
fn fetch_range(
    conn: &mut Connection,
    topic: &str,
    partition: i32,
    start: i64,
    end: i64,
) -> Vec<kafka_protocol::records::Record> {
    let mut records = Vec::new();
    let mut next = start;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while next < end {
        assert!(Instant::now() < deadline, "fetching {topic}/{partition}: stuck at offset {next} of {end}");
        let wanted = FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(next)
            .with_partition_max_bytes(1 << 20);
        let request = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_isolation_level(READ_UNCOMMITTED)
            .with_topics(vec![
                FetchTopic::default().with_topic(topic_name(topic)).with_partitions(vec![wanted]),
            ]);
        let response = conn.call(&request, FETCH_VERSIONS);
        assert_eq!(response.error_code, 0, "fetch of {topic}/{partition}: error {}", response.error_code);
        for part in response.responses.into_iter().flat_map(|t| t.partitions) {
            assert_eq!(part.error_code, 0, "fetch of {topic}/{partition}: error {}", part.error_code);
            let mut data = part.records.unwrap_or_default();
            while let Some(mut batch) = next_batch(&mut data) {
                let set = RecordBatchDecoder::decode(&mut batch)
                    .unwrap_or_else(|e| panic!("decoding a batch of {topic}/{partition}: {e}"));
                for record in set.records {
                    // A fetch returns whole batches, so the first one may
                    // start before the offset asked for.
                    if record.offset >= next && record.offset < end {
                        next = record.offset + 1;
                        records.push(record);
                    }
                }
            }
        }
    }
    records
}

/// Splits the next complete record batch off `data`. A fetch may end with
/// a partial batch, cut at the size limit; it is left for the next fetch.
fn next_batch(data: &mut Bytes) -> Option<Bytes> {
    // A batch starts with its base offset (8 bytes) and the length of the
    // rest (4 bytes).
    if data.len() < 12 {
        return None;
    }
    let length = i32::from_be_bytes(data[8..12].try_into().expect("4 bytes"));
    let total = 12 + usize::try_from(length).expect("a batch length is positive");
    (data.len() >= total).then(|| data.split_to(total))
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// One connection to the broker, speaking the API versions both sides
/// support.
struct Connection {
    stream: TcpStream,
    correlation_id: i32,
    /// The broker's supported versions of each API key.
    supported: HashMap<i16, RangeInclusive<i16>>,
}

impl Connection {
    /// Connects and asks the broker which API versions it supports. Errors
    /// instead of panicking, for the startup wait to retry.
    fn open(port: u16) -> Result<Connection, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = Connection { stream, correlation_id: 0, supported: HashMap::new() };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("weir-tests"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = conn.exchange(&request, API_VERSIONS_VERSION)?;
        if response.error_code != 0 {
            return Err(format!("ApiVersions: error {}", response.error_code));
        }
        conn.supported =
            response.api_keys.iter().map(|k| (k.api_key, k.min_version..=k.max_version)).collect();
        Ok(conn)
    }

    /// Sends `request` in the highest version in `ours` that the broker and
    /// the kafka-protocol crate also support, and returns the response.
    fn call<R: Request>(&mut self, request: &R, ours: RangeInclusive<i16>) -> R::Response {
        let name = ApiKey::try_from(R::KEY).map_or_else(|_| R::KEY.to_string(), |k| format!("{k:?}"));
        let broker = self.supported.get(&R::KEY).unwrap_or_else(|| panic!("nisshi does not support {name}"));
        let low = *ours.start().max(broker.start()).max(&R::VERSIONS.min);
        let high = *ours.end().min(broker.end()).min(&R::VERSIONS.max);
        assert!(low <= high, "no common version of {name}: ours {ours:?}, nisshi's {broker:?}");
        self.exchange(request, high).unwrap_or_else(|e| panic!("{name} v{high}: {e}"))
    }

    /// Writes one size-prefixed request frame and reads the response frame.
    fn exchange<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, String> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("weir-tests")));
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, R::header_version(version))
            .and_then(|()| request.encode(&mut frame, version))
            .map_err(|e| format!("encoding the request: {e}"))?;
        let size = u32::try_from(frame.len()).expect("a request under 4 GiB");
        self.stream.write_all(&size.to_be_bytes()).map_err(|e| e.to_string())?;
        self.stream.write_all(&frame).map_err(|e| e.to_string())?;

        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(|e| format!("reading the response: {e}"))?;
        let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).map_err(|e| format!("reading the response: {e}"))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
            .map_err(|e| format!("decoding the response header: {e}"))?;
        if header.correlation_id != self.correlation_id {
            return Err(format!(
                "response to request {} while waiting for {}",
                header.correlation_id, self.correlation_id
            ));
        }
        let response =
            R::Response::decode(&mut body, version).map_err(|e| format!("decoding the response: {e}"))?;
        if body.has_remaining() {
            return Err(format!("{} bytes left after the response", body.remaining()));
        }
        Ok(response)
    }
}

/// A window-test row as the JSON value the Kafka tests produce.
pub fn json_record(r: &super::Row) -> Vec<u8> {
    serde_json::json!({"k": r.k, "v": r.v, "ts": r.ts.map(super::sql_timestamp)}).to_string().into_bytes()
}
