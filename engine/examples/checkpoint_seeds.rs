//! Writes the seed corpus of the checkpoint fuzz target (real snapshots of
//! every stateful operator and of a source, see `weir_engine::fuzzing`)
//! into the directory given, one file per part:
//! `cargo run -p weir-engine --example checkpoint_seeds -- fuzz/seeds/checkpoint`.
//! `scripts/fuzz_seeds.py` runs it with the other targets' seeds.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: checkpoint_seeds DIR")?);
    std::fs::create_dir_all(&dir)?;
    for (part, input) in weir_engine::fuzzing::seeds()? {
        std::fs::write(dir.join(format!("{part:?}").to_lowercase()), input)?;
    }
    Ok(())
}
