//! Tests of the connectors through the public API the SQL layer uses.

mod bounds;
mod datagen;
mod filesystem;
mod limits;
mod nexmark;
mod options;
mod part_files;
mod support;
