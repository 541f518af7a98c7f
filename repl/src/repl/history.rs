//! Where the shell keeps its history: `WEIR_HISTORY` if set (empty: no
//! history), else `weir/history` in the user's data directory
//! (`$XDG_DATA_HOME`, `~/.local/share` on Linux).

use std::path::PathBuf;

/// The history file, its directory created; `None` when there is to be
/// none or no data directory is known.
pub fn path() -> Option<PathBuf> {
    let file = match std::env::var_os("WEIR_HISTORY") {
        Some(p) if p.is_empty() => return None,
        Some(p) => PathBuf::from(p),
        None => dirs::data_dir()?.join("weir").join("history"),
    };
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("warning: no history: cannot create {}: {e}", dir.display());
        return None;
    }
    Some(file)
}
