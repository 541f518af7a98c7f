//! Where results go: the terminal (tables fit its width, live results
//! redraw in place), a pipe, or the file `\o` named (plain ASCII, as
//! scripts and `weir run` print).

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::output::{Expanded, Layout};

/// The standard output or a file.
pub enum Destination {
    Stdout { terminal: bool },
    File { path: PathBuf, file: BufWriter<File> },
}

impl Destination {
    pub fn stdout() -> Self {
        Destination::Stdout {
            terminal: io::stdout().is_terminal(),
        }
    }

    /// `\o FILE`: results go to a new file (an existing one is replaced,
    /// as psql does).
    pub fn file(path: &Path) -> io::Result<Self> {
        Ok(Destination::File {
            path: path.to_path_buf(),
            file: BufWriter::new(File::create(path)?),
        })
    }

    /// Is a person looking at it (colours, widths, redrawing)?
    pub fn is_terminal(&self) -> bool {
        matches!(self, Destination::Stdout { terminal: true })
    }

    /// How tables are laid out here: a terminal's width and borders.
    pub fn layout(&self, expanded: Expanded) -> Layout {
        if self.is_terminal() {
            Layout {
                unicode: true,
                width: console::Term::stdout().size_checked().map(|(_, w)| w),
                expanded,
            }
        } else {
            Layout {
                expanded: if expanded == Expanded::On { Expanded::On } else { Expanded::Off },
                ..Layout::PLAIN
            }
        }
    }

    /// Writes `text` and a newline, flushed so that a file `\o` names is
    /// complete after each statement.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        match self {
            Destination::Stdout { .. } => {
                let mut out = io::stdout().lock();
                writeln!(out, "{text}")?;
                out.flush()
            }
            Destination::File { file, .. } => {
                writeln!(file, "{text}")?;
                file.flush()
            }
        }
    }

    /// The file results go to, if not the standard output.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Destination::File { path, .. } => Some(path),
            Destination::Stdout { .. } => None,
        }
    }
}
