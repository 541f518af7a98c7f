//! What the shell reads: when an entry is complete (a meta command, or
//! statements ending with `;` outside strings and comments), and where its
//! keywords, strings and comments are (for highlighting). Both use
//! sqlparser's tokenizer with Weir's dialect, so they agree with the parser.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};
use weir_sql::dialect::WeirDialect;

use super::complete;

/// Is `text` (the lines typed so far) ready to run: a `\` command, or SQL
/// whose last token is `;`? An unterminated string or comment is not.
pub fn is_complete(text: &str) -> bool {
    let trimmed = text.trim_start();
    if trimmed.starts_with('\\') {
        return true;
    }
    let dialect = WeirDialect::default();
    match Tokenizer::new(&dialect, text).tokenize() {
        Ok(tokens) => matches!(
            tokens.iter().rev().find(|t| !matches!(t, Token::Whitespace(_))),
            Some(Token::SemiColon)
        ),
        Err(_) => false,
    }
}

/// What a stretch of the line is, for colouring it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    String,
    Number,
    Comment,
}

/// Byte ranges of `line` worth colouring: keywords are those Weir's
/// statements use (sqlparser's list has column names such as `name`). Empty when the line does not
/// tokenize (an unterminated string): then it shows uncoloured.
pub fn spans(line: &str) -> Vec<(std::ops::Range<usize>, Kind)> {
    let dialect = WeirDialect::default();
    let Ok(tokens) = Tokenizer::new(&dialect, line).tokenize_with_location() else {
        return Vec::new();
    };
    let starts = line_starts(line);
    let offset = |l: u64, c: u64| -> Option<usize> {
        let start = *starts.get(usize::try_from(l).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(c).ok()?.checked_sub(1)?;
        match line[start..].char_indices().nth(column) {
            Some((i, _)) => Some(start + i),
            None => Some(line.len()),
        }
    };
    tokens
        .iter()
        .filter_map(|TokenWithSpan { token, span }| {
            let kind = match token {
                Token::Word(w) if w.quote_style.is_none() && complete::is_keyword(&w.value) => Kind::Keyword,
                Token::SingleQuotedString(_) => Kind::String,
                Token::Number(..) => Kind::Number,
                Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                    Kind::Comment
                }
                _ => return None,
            };
            let from = offset(span.start.line, span.start.column)?;
            let to = offset(span.end.line, span.end.column)?;
            (from < to).then_some((from..to, kind))
        })
        .collect()
}

/// Byte offset of each line's start.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_complete_at_a_semicolon_outside_strings_and_comments() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1;  -- done\n"));
        assert!(is_complete("\\d t"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1 -- ;"));
        assert!(!is_complete("CREATE TABLE t (\n  a BIGINT"));
        assert!(!is_complete(""));
    }

    #[test]
    fn spans_cover_keywords_strings_and_numbers() {
        let line = "SELECT 'a', 10 FROM t -- c";
        let kinds: Vec<(&str, Kind)> = spans(line).into_iter().map(|(r, k)| (&line[r], k)).collect();
        assert_eq!(
            kinds,
            vec![
                ("SELECT", Kind::Keyword),
                ("'a'", Kind::String),
                ("10", Kind::Number),
                ("FROM", Kind::Keyword),
                ("-- c", Kind::Comment),
            ]
        );
    }
}
