//! Weir's integration tests, as one test binary: each module drives the real
//! `weir` binary (CARGO_BIN_EXE_weir) against real parts. One binary instead
//! of one per file because each links all of DataFusion (~200–450 MB in a
//! debug build): fifty of them filled CI's disk and spent minutes linking.
//! Run one file's tests with `cargo test --test integration <module>::`.

mod common;
mod pgwire_common;

mod aggregates;
mod async_snapshots;
mod catalog_statements;
mod changelog_formats;
mod changelog_joins;
mod checkpoints;
mod damaged_state;
mod dashboard;
mod decimal_literals;
mod errors;
mod file_lookup;
mod flink_docs;
mod full_disk;
mod functions;
mod grafana;
mod hints;
mod hostile;
mod identifiers;
mod joins;
mod kafka;
mod kafka_harness;
mod late_data;
mod limit_clause;
mod limits;
mod lookup;
mod match_recognize;
mod nested_types;
mod nexmark;
mod object_store_checkpoints;
mod over_windows;
mod partitioned_files;
mod pending_windows;
mod pgwire;
mod pgwire_limits;
mod postgres_sink;
mod processing_time;
mod queries;
mod repl;
mod restarts;
mod savepoint_evolution;
mod savepoint_inspect;
mod serve_restart;
mod spill;
mod state_ttl;
mod statement_sets;
mod system_tables;
mod temporal_join;
mod time_sort;
mod time_zones;
mod top_n;
mod union;
mod unnest;
mod upsert_kafka;
mod values;
mod views;
mod windows;
