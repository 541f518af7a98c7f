//! The partition directories under a table's path: one `key=value` level
//! per partition column, as the sink writes them and the source reads them.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use weir_engine::EngineError;

use super::layout::PartitionLayout;

/// A partition directory: its path relative to the table's (`dt=…/hm=…`;
/// empty for an unpartitioned table's path itself) and its full path.
#[derive(Debug, Clone)]
pub(crate) struct PartitionDir {
    pub(crate) rel: String,
    pub(crate) path: PathBuf,
}

/// The partition directories under `root`, in name order: every
/// directory at the depth of the partition columns whose name at each
/// level is that level's `key=value`; `root` itself without a layout.
/// Hidden names (`.`, `_`) and other directories are skipped, as Flink
/// skips them; a missing `root` has none.
///
/// Runs at job start, from synchronous connector calls, hence `std::fs`.
pub(crate) fn partition_dirs(root: &Path, layout: Option<&PartitionLayout>) -> Result<Vec<PartitionDir>, EngineError> {
    let mut level = vec![PartitionDir {
        rel: String::new(),
        path: root.to_path_buf(),
    }];
    let Some(layout) = layout else {
        return Ok(match root.try_exists() {
            Ok(true) => level,
            Ok(false) => Vec::new(),
            Err(e) => return Err(list_error(root, e)),
        });
    };
    for depth in 0..layout.keys().len() {
        let mut next = Vec::new();
        for dir in &level {
            let entries = match std::fs::read_dir(&dir.path) {
                Ok(entries) => entries,
                // Gone since its parent was listed, or never written.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(list_error(&dir.path, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| list_error(&dir.path, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(['.', '_']) || !layout.is_level(depth, name) {
                    continue;
                }
                // `metadata` follows symbolic links, as the source does for files.
                match std::fs::metadata(entry.path()) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(list_error(&entry.path(), e)),
                }
                let rel = if dir.rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{}/{name}", dir.rel)
                };
                next.push(PartitionDir {
                    rel,
                    path: entry.path(),
                });
            }
        }
        next.sort_by(|a, b| a.rel.cmp(&b.rel));
        level = next;
    }
    Ok(level)
}

fn list_error(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        context: format!("listing partition directory '{}'", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::super::layout::DEFAULT_PARTITION_NAME;
    use super::*;

    #[test]
    fn only_directories_of_each_key_at_the_depth_of_the_keys() {
        let root = tempfile::tempdir().unwrap();
        for d in [
            "dt=1/hm=a",
            "dt=1/hm=b",
            "dt=2/hm=a",
            "dt=1/_tmp",
            "dt=1/other",
            "hm=x/dt=1",
            ".dt=3/hm=a",
            "dt=4",
        ] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        std::fs::write(root.path().join("dt=1/hm=file"), "").unwrap();
        std::fs::write(root.path().join("part-0"), "").unwrap();
        let schema = Schema::new(vec![
            Field::new("v", DataType::Int64, true),
            Field::new("dt", DataType::Utf8, true),
            Field::new("hm", DataType::Utf8, true),
        ]);
        let layout = PartitionLayout::new(&schema, &["dt".into(), "hm".into()], DEFAULT_PARTITION_NAME.into()).unwrap();
        let dirs = partition_dirs(root.path(), Some(&layout)).unwrap();
        let rels: Vec<&str> = dirs.iter().map(|d| d.rel.as_str()).collect();
        assert_eq!(rels, ["dt=1/hm=a", "dt=1/hm=b", "dt=2/hm=a"]);
        assert_eq!(dirs[2].path, root.path().join("dt=2/hm=a"));
        assert!(
            partition_dirs(&root.path().join("missing"), Some(&layout))
                .unwrap()
                .is_empty()
        );
        assert_eq!(partition_dirs(root.path(), None).unwrap().len(), 1);
        assert!(partition_dirs(&root.path().join("missing"), None).unwrap().is_empty());
    }
}
