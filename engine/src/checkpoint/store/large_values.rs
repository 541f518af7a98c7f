//! Large checkpoint values as files beside the sled database.
//!
//! sled 0.34 keeps a value it wrote as a blob in memory for as long as its
//! page is cached, and charges its cache only the blob's pointer, about 30
//! bytes (spacejam/sled#976): the retained checkpoints' chunks and task
//! states would stay resident however large they are. A value over
//! [`LARGE`] bytes is therefore written to a file of its own under
//! `<store>/values/`, and sled holds a small [reference](reference) to it:
//! the file's length and CRC32. Smaller values stay in sled, checksummed as
//! before, so a store written before this change reads unchanged.
//!
//! Order of writes: the reference is inserted before its file is written,
//! so that a file never exists without the key that keeps it (a crash in
//! between leaves a reference whose file is missing or short, which reads
//! as damaged state of an incomplete checkpoint). Files are synced before
//! the checkpoint that needs them is marked complete ([`LargeValues::sync`]),
//! deleted with their key, and swept when the store opens if a crash left
//! one whose key is gone.

use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::checkpoint::chunk::ChunkFile;

/// Values larger than this many bytes are written to files.
pub(super) const LARGE: usize = 64 * 1024;

/// What a reference's body starts with. Every other value's body starts
/// with a length or a count (a little-endian u64 far below this one's) or
/// is a list of 16-byte chunk ids, so a reference is never mistaken for a
/// value, nor a value for a reference.
const MAGIC: &[u8; 10] = b"weir:file\0";

/// The byte length of a reference: its CRC, the magic, the file's length
/// and the file's CRC.
const REFERENCE_LEN: usize = 4 + MAGIC.len() + 8 + 4;

/// The files of one store.
#[derive(Debug, Clone)]
pub(super) struct LargeValues {
    dir: PathBuf,
    /// Files written since the last [`Self::sync`].
    unsynced: Arc<Mutex<Vec<PathBuf>>>,
}

/// Counts and checksums what a value's writer writes, without keeping it.
struct Summing {
    hasher: crc32fast::Hasher,
    len: usize,
}

impl Write for Summing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.len += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A value to store: written by its function, once to size and checksum
/// it, then once more where it goes, so that a large value is never copied
/// into one buffer.
pub(super) type WriteValue<'a> = &'a dyn Fn(&mut dyn Write) -> std::io::Result<()>;

impl LargeValues {
    /// The files of the store in `store_dir`; the directory is made when
    /// the first file is written.
    pub(super) fn new(store_dir: &Path) -> Self {
        Self { dir: store_dir.join("values"), unsynced: Arc::default() }
    }

    fn path(&self, tree: &str, key: &[u8]) -> PathBuf {
        self.dir.join(format!("{tree}-{}", hex::encode(key)))
    }

    /// Stores the value `write` writes under `key` of `tree` (named
    /// `name`): checksummed in sled if small, else in a file with a
    /// reference in sled.
    pub(super) fn insert(&self, tree: &sled::Tree, name: &str, key: &[u8], write: WriteValue) -> Result<(), Failed> {
        self.insert_from(tree, name, key, write, None)
    }

    /// As [`Self::insert`], where `file` holds exactly the bytes `write`
    /// writes and is never changed (a spill file): a large value is then a
    /// hard link to it, no second copy on disk, unless the two directories
    /// are on different file systems.
    pub(super) fn insert_from(
        &self,
        tree: &sled::Tree,
        name: &str,
        key: &[u8],
        write: WriteValue,
        file: Option<&Path>,
    ) -> Result<(), Failed> {
        let mut sum = Summing { hasher: crc32fast::Hasher::new(), len: 0 };
        write(&mut sum).map_err(Failed::Io)?;
        let crc = sum.hasher.finalize();
        if sum.len <= LARGE {
            let mut value = Vec::with_capacity(4 + sum.len);
            value.extend_from_slice(&crc.to_le_bytes());
            write(&mut value).map_err(Failed::Io)?;
            tree.insert(key, value).map_err(Failed::Sled)?;
            return Ok(());
        }
        tree.insert(key, reference(sum.len as u64, crc)).map_err(Failed::Sled)?;
        std::fs::create_dir_all(&self.dir).map_err(Failed::Io)?;
        let path = self.path(name, key);
        // A value sent with an abandoned checkpoint is sent again whole.
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Failed::Io(e)),
            _ => {}
        }
        if file.is_none_or(|file| std::fs::hard_link(file, &path).is_err()) {
            let mut out = BufWriter::with_capacity(LARGE, std::fs::File::create(&path).map_err(Failed::Io)?);
            write(&mut out).map_err(Failed::Io)?;
            out.flush().map_err(Failed::Io)?;
        }
        self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).push(path);
        Ok(())
    }

    /// The body of `value`, stored under `key` of `tree` `name`: read from
    /// its file if it is a reference. `None` when it is damaged: its
    /// checksum fails, or its file is missing, short or fails its own.
    pub(super) fn body<'a>(&self, name: &str, key: &[u8], value: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let Some((len, crc)) = as_reference(value) else {
            return super::verified(value).map(Cow::Borrowed);
        };
        ChunkFile { path: self.path(name, key), len, crc }.read().ok().map(Cow::Owned)
    }

    /// As [`Self::body`], but a file is only verified, by streaming it
    /// through its checksum, and handed back to be read when needed: a
    /// restore reads a checkpoint's chunks one at a time.
    pub(super) fn verified_lazily<'a>(&self, name: &str, key: &[u8], value: &'a [u8]) -> Option<Lazy<'a>> {
        let Some((len, crc)) = as_reference(value) else {
            return super::verified(value).map(Lazy::Bytes);
        };
        let path = self.path(name, key);
        let mut sum = Summing { hasher: crc32fast::Hasher::new(), len: 0 };
        std::io::copy(&mut std::fs::File::open(&path).ok()?, &mut sum).ok()?;
        (sum.len as u64 == len && sum.hasher.finalize() == crc).then_some(Lazy::File(ChunkFile { path, len, crc }))
    }

    /// Removes `key` from `tree` `name`, and its file if it has one.
    pub(super) fn remove(&self, tree: &sled::Tree, name: &str, key: &[u8]) -> Result<(), Failed> {
        let old = tree.remove(key).map_err(Failed::Sled)?;
        if old.as_deref().and_then(as_reference).is_some() {
            match std::fs::remove_file(self.path(name, key)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Failed::Io(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Makes the files written so far durable, and their names in the
    /// directory: before a checkpoint that reads them is marked complete.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        let paths = std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|p| p.into_inner()));
        if paths.is_empty() {
            return Ok(());
        }
        for path in &paths {
            match std::fs::File::open(path) {
                Ok(file) => file.sync_all()?,
                // Deleted since: its checkpoint was abandoned and pruned.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        std::fs::File::open(&self.dir)?.sync_all()
    }

    /// Deletes the files whose key is gone from `trees` (a crash between
    /// deleting a key and its file): run when the store opens, before
    /// anything writes.
    pub(super) fn sweep(&self, trees: &[(&str, &sled::Tree)]) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let kept = name.to_str().and_then(|n| n.split_once('-')).and_then(|(tree, hex)| {
                let (_, tree) = trees.iter().find(|(n, _)| *n == tree)?;
                let key = hex::decode(hex).ok()?;
                tree.get(key).ok().flatten().filter(|v| as_reference(v).is_some())
            });
            if kept.is_none() {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

/// A verified value: its bytes, or the file that holds them.
pub(super) enum Lazy<'a> {
    Bytes(&'a [u8]),
    File(ChunkFile),
}

/// Why a value could not be written or deleted.
#[derive(Debug)]
pub(super) enum Failed {
    Sled(sled::Error),
    Io(std::io::Error),
}

/// The sled value that stands for a file of `len` bytes with CRC32 `crc`.
fn reference(len: u64, crc: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(REFERENCE_LEN - 4);
    body.extend_from_slice(MAGIC);
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&crc.to_le_bytes());
    super::checked(&body)
}

/// The file length and CRC of a [`reference`].
fn as_reference(value: &[u8]) -> Option<(u64, u32)> {
    if value.len() != REFERENCE_LEN {
        return None;
    }
    let body = super::verified(value)?;
    let rest = body.strip_prefix(MAGIC.as_slice())?;
    let (len, crc) = rest.split_at(8);
    Some((u64::from_le_bytes(len.try_into().ok()?), u32::from_le_bytes(crc.try_into().ok()?)))
}
