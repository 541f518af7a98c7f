//! The line editor's helper: completion (SQL, meta commands, file names
//! for `\i` and `\o`) and keyword colouring.

use std::borrow::Cow;

use console::Style;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::complete::{self, Names};
use super::input::{self, Kind};

/// Completes and colours what is typed at the `weir>` prompt.
pub struct WeirHelper {
    names: Names,
    /// The earlier lines of the statement being typed: completion looks at
    /// them (the tables it names) although the editor has only this line.
    pending: String,
    files: FilenameCompleter,
}

impl WeirHelper {
    pub fn new() -> Self {
        Self {
            names: Names::default(),
            pending: String::new(),
            files: FilenameCompleter::new(),
        }
    }

    /// Tables and columns changed (a statement ran).
    pub fn set_names(&mut self, names: Names) {
        self.names = names;
    }

    /// The lines typed before the one being edited.
    pub fn set_pending(&mut self, pending: &str) {
        self.pending = pending.to_string();
    }
}

impl Completer for WeirHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = line[..pos].trim_start();
        if self.pending.trim().is_empty() && (head.starts_with("\\i ") || head.starts_with("\\o ")) {
            return self.files.complete(line, pos, ctx);
        }
        let (start, words) = complete::complete(&self.names, &self.pending, line, pos);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Highlighter for WeirHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if line.trim_start().starts_with('\\') {
            return Cow::Borrowed(line);
        }
        let spans = input::spans(line);
        if spans.is_empty() {
            return Cow::Borrowed(line);
        }
        let mut out = String::with_capacity(line.len() + spans.len() * 10);
        let mut at = 0;
        for (range, kind) in spans {
            out.push_str(&line[at..range.start]);
            let style = match kind {
                Kind::Keyword => Style::new().blue().bold(),
                Kind::String => Style::new().green(),
                Kind::Number => Style::new().cyan(),
                Kind::Comment => Style::new().dim(),
            };
            // Forced: the editor knows the terminal takes colours, and
            // console's own check looks at stdout, which `\o` may redirect.
            out.push_str(&style.force_styling(true).apply_to(&line[range.clone()]).to_string());
            at = range.end;
        }
        out.push_str(&line[at..]);
        Cow::Owned(out)
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        // Any edit may start or end a keyword or string.
        kind != CmdKind::MoveCursor
    }
}

impl Hinter for WeirHelper {
    type Hint = String;
}

impl Validator for WeirHelper {}

impl Helper for WeirHelper {}
