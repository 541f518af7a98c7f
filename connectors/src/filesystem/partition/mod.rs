//! Partitioned filesystem tables (`PARTITIONED BY`), as Flink lays them
//! out: rows in Hive-style `key=value` directories, the partition columns
//! in the path rather than in the files, and partitions committed (a
//! `_SUCCESS` file) when their trigger says they are complete.
//!
//! `layout.rs` (which columns, directory names), `path.rs` (escaping),
//! `split.rs` (a batch per partition), `tree.rs` (listing directories),
//! `columns.rs` (the partition columns of rows read back), `policy.rs`,
//! `committer.rs` and `tracker.rs` (partition commits).

pub(crate) mod columns;
pub(crate) mod committer;
pub(crate) mod layout;
pub(crate) mod path;
pub(crate) mod policy;
pub(crate) mod split;
pub(crate) mod tracker;
pub(crate) mod tree;

pub(crate) use layout::{DEFAULT_PARTITION_NAME, PartitionLayout};
pub(crate) use policy::{COMMIT_OPTIONS, CommitPolicy};
