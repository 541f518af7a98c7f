//! The shell's own backslash commands, as psql spells them.

use std::path::PathBuf;

use crate::output::Expanded;

use super::complete::META;

/// One backslash command.
#[derive(Debug, PartialEq, Eq)]
pub enum Meta {
    Help,
    /// `\d` (tables) or `\d NAME` (a table's columns).
    Describe(Option<String>),
    Jobs,
    Quit,
    /// `\timing` toggles; `\timing on|off` sets.
    Timing(Option<bool>),
    /// `\x` toggles on and off; `\x on|off|auto` sets.
    Expanded(Option<Expanded>),
    /// `\i FILE`: run its statements.
    Include(PathBuf),
    /// `\o FILE` sends results there; `\o` alone, back to the terminal.
    Output(Option<PathBuf>),
}

/// Why a backslash command cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaError {
    #[error("unknown command '{0}' (\\? lists them)")]
    Unknown(String),
    #[error("{command} takes {expected}, not '{found}'")]
    BadArgument {
        command: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{0} needs a file name")]
    MissingFile(&'static str),
}

impl Meta {
    /// Parses a line that starts with `\`.
    pub fn parse(line: &str) -> Result<Meta, MetaError> {
        let line = line.trim().trim_end_matches(';').trim_end();
        let (command, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, Some(a.trim()).filter(|a| !a.is_empty())),
            None => (line, None),
        };
        let on_off = |command: &'static str, a: &str| match a.to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(MetaError::BadArgument {
                command,
                expected: "on or off",
                found: a.to_string(),
            }),
        };
        Ok(match command {
            "\\?" | "\\h" | "\\help" => Meta::Help,
            "\\d" => Meta::Describe(arg.map(str::to_string)),
            "\\jobs" => Meta::Jobs,
            "\\q" | "\\quit" => Meta::Quit,
            "\\timing" => Meta::Timing(arg.map(|a| on_off("\\timing", a)).transpose()?),
            "\\x" => Meta::Expanded(match arg {
                None => None,
                Some(a) if a.eq_ignore_ascii_case("auto") => Some(Expanded::Auto),
                Some(a) => Some(if on_off("\\x", a).map_err(|_| MetaError::BadArgument {
                    command: "\\x",
                    expected: "on, off or auto",
                    found: a.to_string(),
                })? {
                    Expanded::On
                } else {
                    Expanded::Off
                }),
            }),
            "\\i" => Meta::Include(arg.map(PathBuf::from).ok_or(MetaError::MissingFile("\\i"))?),
            "\\o" => Meta::Output(arg.map(PathBuf::from)),
            other => return Err(MetaError::Unknown(other.to_string())),
        })
    }
}

/// `\?`: the commands and what they do.
pub fn help() -> String {
    let mut s = String::from("Statements end with ';' and may span lines. Ctrl-C cancels the input or the running query; Ctrl-D quits.\n");
    for (command, what) in META {
        s.push_str(&format!("  {command:<8} {what}\n"));
    }
    s.pop();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_their_arguments() {
        assert_eq!(Meta::parse("\\d"), Ok(Meta::Describe(None)));
        assert_eq!(Meta::parse("\\d bids;"), Ok(Meta::Describe(Some("bids".into()))));
        assert_eq!(Meta::parse("\\x auto"), Ok(Meta::Expanded(Some(Expanded::Auto))));
        assert_eq!(Meta::parse("\\timing on"), Ok(Meta::Timing(Some(true))));
        assert_eq!(Meta::parse("\\o"), Ok(Meta::Output(None)));
        assert_eq!(Meta::parse("\\i  q.sql "), Ok(Meta::Include("q.sql".into())));
        assert_eq!(Meta::parse("\\i"), Err(MetaError::MissingFile("\\i")));
        assert!(matches!(Meta::parse("\\x maybe"), Err(MetaError::BadArgument { .. })));
        assert_eq!(Meta::parse("\\z"), Err(MetaError::Unknown("\\z".into())));
    }
}
