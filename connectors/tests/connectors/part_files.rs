//! The filesystem sink's two-phase commit: part files become visible only
//! when a checkpoint covering them completes, and recovery restores exactly
//! the output of the last completed checkpoint.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use weir_engine::sink::{Committed, SinkConnector};

use crate::support::{files_in, read_all, schema, table};

/// A JSON filesystem table in `dir` with one INT64 column `id`, rolling
/// part files at `roll` when given.
fn sink(dir: &Path, roll: Option<&str>) -> Arc<dyn SinkConnector> {
    let path = dir.to_string_lossy();
    let mut options = vec![
        ("connector", "filesystem"),
        ("path", path.as_ref()),
        ("format", "json"),
    ];
    if let Some(roll) = roll {
        options.push(("sink.rolling-policy.file-size", roll));
    }
    table(&options, schema(&[("id", DataType::Int64)]))
        .unwrap()
        .sink
        .unwrap()
}

/// A batch of the table's rows with these ids.
fn ids(ids: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        schema(&[("id", DataType::Int64)]),
        vec![Arc::new(Int64Array::from(ids.to_vec()))],
    )
    .unwrap()
}

/// The text of a part file.
fn part(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// The ids visible to readers of `dir`, in file order.
async fn visible_ids(dir: &Path) -> Vec<i64> {
    let source = table(
        &[
            ("connector", "filesystem"),
            ("path", dir.to_string_lossy().as_ref()),
            ("format", "json"),
        ],
        schema(&[("id", DataType::Int64)]),
    )
    .unwrap()
    .source
    .unwrap();
    let rows = read_all(&source).await.unwrap();
    rows.column(0).as_primitive::<Int64Type>().values().to_vec()
}

/// `prepare`'s state, parsed.
fn state(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn prepared_files_stay_hidden_until_their_checkpoint_commits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut writer = sink(out, None).open("job", 0, 1).unwrap();
    writer.write(ids(&[1, 2])).await.unwrap();
    let prepared = writer.prepare(1).await.unwrap();
    assert_eq!(files_in(out), vec![".part-job-0-0.inprogress"]);
    assert_eq!(
        state(&prepared),
        serde_json::json!({
            "version": 2,
            "pending": [{
                "checkpoint": 1,
                "file": ".part-job-0-0.inprogress",
                "final": "part-job-0-0-ckpt1",
            }],
        })
    );
    // Rows after the checkpoint go to a new file.
    writer.write(ids(&[3])).await.unwrap();
    assert_eq!(
        files_in(out),
        vec![".part-job-0-0.inprogress", ".part-job-0-1.inprogress"]
    );
    writer.commit(1).await.unwrap();
    assert_eq!(
        files_in(out),
        vec![".part-job-0-1.inprogress", "part-job-0-0-ckpt1"]
    );
    assert_eq!(part(out, "part-job-0-0-ckpt1"), "{\"id\":1}\n{\"id\":2}\n");
    assert_eq!(visible_ids(out).await, vec![1, 2]);
    // Committing again is harmless.
    writer.commit(1).await.unwrap();
    let prepared = writer.prepare(2).await.unwrap();
    assert_eq!(
        state(&prepared)["pending"],
        serde_json::json!([{
            "checkpoint": 2,
            "file": ".part-job-0-1.inprogress",
            "final": "part-job-0-1-ckpt2",
        }])
    );
    writer.commit(2).await.unwrap();
    assert_eq!(files_in(out), vec!["part-job-0-0-ckpt1", "part-job-0-1-ckpt2"]);
    assert_eq!(visible_ids(out).await, vec![1, 2, 3]);
}

#[tokio::test]
async fn a_commit_covers_earlier_checkpoints_but_not_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut writer = sink(out, None).open("job", 0, 1).unwrap();
    writer.write(ids(&[1])).await.unwrap();
    writer.prepare(1).await.unwrap();
    writer.write(ids(&[2])).await.unwrap();
    // Checkpoint 1's completion was never announced: checkpoint 2 still
    // lists its file.
    let prepared = writer.prepare(2).await.unwrap();
    let second = state(&prepared);
    let files: Vec<&str> = second["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        vec![".part-job-0-0.inprogress", ".part-job-0-1.inprogress"]
    );
    writer.write(ids(&[3])).await.unwrap();
    writer.prepare(3).await.unwrap();
    writer.commit(2).await.unwrap();
    assert_eq!(
        files_in(out),
        vec![".part-job-0-2.inprogress", "part-job-0-0-ckpt1", "part-job-0-1-ckpt2"]
    );
    // A checkpoint without new rows lists what is still pending.
    let prepared = writer.prepare(4).await.unwrap();
    assert_eq!(state(&prepared)["pending"].as_array().unwrap().len(), 1);
    writer.commit(4).await.unwrap();
    assert_eq!(visible_ids(out).await, vec![1, 2, 3]);
    let prepared = writer.prepare(5).await.unwrap();
    assert_eq!(state(&prepared)["pending"], serde_json::json!([]));
}

#[tokio::test]
async fn finish_commits_everything_without_checkpoints_or_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut writer = sink(out, None).open("job", 0, 1).unwrap();
    writer.write(ids(&[1])).await.unwrap();
    writer.prepare(1).await.unwrap();
    writer.write(ids(&[2])).await.unwrap();
    writer.finish().await.unwrap();
    assert_eq!(files_in(out), vec!["part-job-0-0", "part-job-0-1"]);
    assert_eq!(visible_ids(out).await, vec![1, 2]);
}

#[tokio::test]
async fn rolled_files_wait_for_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut writer = sink(out, Some("1 b")).open("job", 0, 1).unwrap();
    writer.write(ids(&[1])).await.unwrap();
    writer.write(ids(&[2])).await.unwrap();
    assert_eq!(
        files_in(out),
        vec![".part-job-0-0.inprogress", ".part-job-0-1.inprogress"]
    );
    let prepared = writer.prepare(1).await.unwrap();
    assert_eq!(state(&prepared)["pending"].as_array().unwrap().len(), 2);
    writer.commit(1).await.unwrap();
    assert_eq!(files_in(out), vec!["part-job-0-0-ckpt1", "part-job-0-1-ckpt1"]);
}

/// What a job that died left behind: checkpoint 1 (part 0) committed;
/// checkpoint 2 (part 1, closed by rolling, and part 2) prepared but not
/// committed; part 3 in progress. Returns checkpoint 1's and 2's states.
async fn crashed_job(out: &Path) -> (Vec<u8>, Vec<u8>) {
    // `{"id":n}\n` is 9 bytes: two rows roll a part file, one does not.
    let mut writer = sink(out, Some("15 b")).open("job", 0, 1).unwrap();
    writer.write(ids(&[1])).await.unwrap();
    let first = writer.prepare(1).await.unwrap();
    writer.commit(1).await.unwrap();
    writer.write(ids(&[2, 3])).await.unwrap();
    writer.write(ids(&[4])).await.unwrap();
    let second = writer.prepare(2).await.unwrap();
    writer.write(ids(&[5])).await.unwrap();
    drop(writer);
    assert_eq!(
        files_in(out),
        vec![
            ".part-job-0-1.inprogress",
            ".part-job-0-2.inprogress",
            ".part-job-0-3.inprogress",
            "part-job-0-0-ckpt1"
        ]
    );
    (first, second)
}

/// Files of other jobs and subtasks, whose names share prefixes with the
/// recovered subtask's: recovery must leave them alone.
const NEIGHBOURS: [&str; 5] = [
    ".part-job-1-0.inprogress",
    ".part-job-0-1-0.inprogress",
    "part-job-0-1-7",
    "part-job-0-1-7-ckpt9",
    ".part-job-late0-0-0.inprogress",
];

#[tokio::test]
async fn recovery_commits_the_prepared_files_and_discards_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let (_, second) = crashed_job(out).await;
    for name in NEIGHBOURS {
        std::fs::write(out.join(name), "{\"id\":99}\n").unwrap();
    }
    let connector = sink(out, None);
    connector.recover("job", 0, Some(&second), None).unwrap();
    let mut expected = vec!["part-job-0-0-ckpt1", "part-job-0-1-ckpt2", "part-job-0-2-ckpt2"];
    expected.extend(NEIGHBOURS);
    expected.sort_unstable();
    assert_eq!(files_in(out), expected);
    assert_eq!(part(out, "part-job-0-1-ckpt2"), "{\"id\":2}\n{\"id\":3}\n");
    assert_eq!(part(out, "part-job-0-2-ckpt2"), "{\"id\":4}\n");
    // Recovering again (the restarted job died too) changes nothing.
    connector.recover("job", 0, Some(&second), None).unwrap();
    assert_eq!(files_in(out), expected);
    // The restarted writer numbers its files after every existing one.
    let mut writer = connector.open("job", 0, 1).unwrap();
    writer.write(ids(&[5])).await.unwrap();
    writer.finish().await.unwrap();
    assert_eq!(part(out, "part-job-0-3"), "{\"id\":5}\n");
    assert_eq!(part(out, "part-job-0-1-ckpt2"), "{\"id\":2}\n{\"id\":3}\n");
}

#[tokio::test]
async fn recovery_from_an_older_checkpoint_discards_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let (first, _) = crashed_job(out).await;
    let connector = sink(out, None);
    // Checkpoint 1's file was committed before the crash: fine.
    connector.recover("job", 0, Some(&first), None).unwrap();
    assert_eq!(files_in(out), vec!["part-job-0-0-ckpt1"]);
    assert_eq!(visible_ids(out).await, vec![1]);
}

/// Checkpoint 2 committed its files, then was found damaged: the job
/// resumes from checkpoint 1 and writes checkpoint 2's rows again, so the
/// files checkpoint 2 committed are withdrawn; other jobs' files stay.
/// Files numbered before a finished run's last part belong to that earlier
/// run, whose output a later run's recovery never withdraws.
#[tokio::test]
async fn recovery_past_a_damaged_checkpoint_withdraws_what_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let (first, second) = crashed_job(out).await;
    let connector = sink(out, None);
    connector.recover("job", 0, Some(&second), None).unwrap();
    for name in NEIGHBOURS {
        std::fs::write(out.join(name), "{\"id\":99}\n").unwrap();
    }
    assert_eq!(connector.committed_checkpoint("job").unwrap(), Committed::Withdrawable(2));
    connector.recover("job", 0, Some(&first), Some(1)).unwrap();
    let mut expected = vec!["part-job-0-0-ckpt1"];
    expected.extend(NEIGHBOURS);
    expected.sort_unstable();
    assert_eq!(files_in(out), expected);
    // Every checkpoint damaged: all that checkpoints committed goes.
    connector.recover("job", 0, None, Some(0)).unwrap();
    assert!(!files_in(out).contains(&"part-job-0-0-ckpt1".to_string()));
    assert_eq!(connector.committed_checkpoint("job").unwrap(), Committed::Withdrawable(0));
    // A finished run (its last part unstamped) after a checkpointed part:
    // both are that run's, and stay when the next run starts from nothing.
    std::fs::write(out.join("part-job-0-5-ckpt3"), "{\"id\":5}\n").unwrap();
    std::fs::write(out.join("part-job-0-6"), "{\"id\":6}\n").unwrap();
    assert_eq!(connector.committed_checkpoint("job").unwrap(), Committed::Withdrawable(0));
    connector.recover("job", 0, None, Some(0)).unwrap();
    assert!(files_in(out).contains(&"part-job-0-5-ckpt3".to_string()));
    assert!(files_in(out).contains(&"part-job-0-6".to_string()));
}

#[tokio::test]
async fn recovery_without_a_checkpoint_discards_every_hidden_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    crashed_job(out).await;
    let connector = sink(out, None);
    connector.recover("job", 0, None, None).unwrap();
    assert_eq!(files_in(out), vec!["part-job-0-0-ckpt1"]);
    // A directory that was never created has nothing to recover.
    sink(&out.join("never"), None)
        .recover("job", 0, None, None)
        .unwrap();
}

#[tokio::test]
async fn a_new_writer_never_reuses_a_part_number() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    std::fs::write(out.join("part-job-0-7"), "{\"id\":7}\n").unwrap();
    std::fs::write(out.join(".part-job-0-9.inprogress"), "").unwrap();
    std::fs::write(out.join("part-job-0-11-ckpt4"), "").unwrap();
    std::fs::write(out.join("part-job-1-20"), "").unwrap();
    let mut writer = sink(out, None).open("job", 0, 1).unwrap();
    writer.write(ids(&[1])).await.unwrap();
    writer.prepare(1).await.unwrap();
    writer.commit(1).await.unwrap();
    assert!(files_in(out).contains(&"part-job-0-12-ckpt1".to_string()));
    assert_eq!(part(out, "part-job-0-7"), "{\"id\":7}\n");
}

#[tokio::test]
async fn recovery_refuses_state_naming_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let connector = sink(out, None);
    let foreign = serde_json::json!({
        "version": 2,
        "pending": [{"checkpoint": 1, "file": ".part-job-1-0.inprogress", "final": "part-job-1-0"}],
    });
    let escaping = serde_json::json!({
        "version": 2,
        "pending": [{"checkpoint": 1, "file": ".part-job-0-0.inprogress", "final": "../part-job-0-0"}],
    });
    let newer = serde_json::json!({"version": 4, "pending": []});
    for (state, error) in [
        (
            foreign.to_string(),
            "state: filesystem sink: prepared entry {\"checkpoint\":1,\"file\":\".part-job-1-0.inprogress\",\
             \"final\":\"part-job-1-0\"} is not a part file of 'part-job-0-*'",
        ),
        (
            escaping.to_string(),
            "state: filesystem sink: prepared entry {\"checkpoint\":1,\"file\":\".part-job-0-0.inprogress\",\
             \"final\":\"../part-job-0-0\"} is not a part file of 'part-job-0-*'",
        ),
        (
            newer.to_string(),
            "state: filesystem sink: prepared output has version 4, this Weir reads versions 2 and 3",
        ),
        (
            "not json".to_string(),
            "state: filesystem sink: prepared output is not JSON: expected ident at line 1 column 2",
        ),
    ] {
        let err = connector
            .recover("job", 0, Some(state.as_bytes()), None)
            .unwrap_err();
        assert_eq!(err.to_string(), error);
    }
}
