//! A small disk for full-disk tests: a tmpfs the test mounts (the tests run
//! as root, as the project's test script does), unmounted when dropped.

use std::path::Path;
use std::process::Command;

/// A tmpfs mounted for one test.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s notation, e.g. `1m`).
    pub fn mount(size: &str) -> Tmpfs {
        let dir = super::scratch();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs of {size} failed: the full-disk tests need root (scripts/test.sh)");
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives the mounted disk room, keeping what it holds.
    pub fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remounting the tmpfs with {size} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
