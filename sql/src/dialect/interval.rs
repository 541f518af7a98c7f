//! Flink's interval literals with a range qualifier, `INTERVAL '10
//! 00:00:00.004' DAY TO SECOND`, `INTERVAL '2-10' YEAR TO MONTH`, `INTERVAL
//! '1:30' HOUR TO MINUTE`: DataFusion refuses any qualifier with a last
//! field ("Unsupported Interval Expression with last_field") or a leading
//! precision (`DAY(3)`), so the reader turns the text into the unit words
//! DataFusion reads (`'10 days 0 hours 0 minutes 0 seconds 4000000
//! nanoseconds'`) while parsing. Being done in the dialect, it holds
//! wherever an interval is written: queries, computed columns, watermarks,
//! window sizes, interval join bounds.
//!
//! The text is read as Calcite reads it: an optional sign for the whole
//! interval, then the fields from the leading to the last one, `y-m` for
//! years and months, `d h:m:s.fff` for days to seconds; the fields after
//! the first are bounded (months below 12, hours below 24, minutes and
//! seconds below 60). Anything else is an error at the literal.

use datafusion::sql::sqlparser::ast::{DateTimeField, Expr, Value};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Location;

/// A field of an interval qualifier, in the order they nest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Unit {
    fn of(field: &DateTimeField) -> Option<Unit> {
        Some(match field {
            DateTimeField::Year | DateTimeField::Years => Unit::Year,
            DateTimeField::Month | DateTimeField::Months => Unit::Month,
            DateTimeField::Day | DateTimeField::Days => Unit::Day,
            DateTimeField::Hour | DateTimeField::Hours => Unit::Hour,
            DateTimeField::Minute | DateTimeField::Minutes => Unit::Minute,
            DateTimeField::Second | DateTimeField::Seconds => Unit::Second,
            _ => return None,
        })
    }

    /// The word DataFusion's interval text takes.
    fn plural(self) -> &'static str {
        match self {
            Unit::Year => "years",
            Unit::Month => "months",
            Unit::Day => "days",
            Unit::Hour => "hours",
            Unit::Minute => "minutes",
            Unit::Second => "seconds",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Year => "YEAR",
            Unit::Month => "MONTH",
            Unit::Day => "DAY",
            Unit::Hour => "HOUR",
            Unit::Minute => "MINUTE",
            Unit::Second => "SECOND",
        }
    }

    /// The largest value the field takes when it is not the leading one.
    fn bound(self) -> u64 {
        match self {
            Unit::Month => 11,
            Unit::Hour => 23,
            Unit::Minute | Unit::Second => 59,
            Unit::Year | Unit::Day => u64::MAX,
        }
    }

    /// What separates the field from the one before it in the text.
    fn separator(self) -> &'static str {
        match self {
            Unit::Month => "-",
            Unit::Hour => " ",
            _ => ":",
        }
    }

    /// How the field is written in the text, for messages.
    fn shape(self) -> &'static str {
        match self {
            Unit::Year => "y",
            Unit::Month => "m",
            Unit::Day => "d",
            Unit::Hour => "h",
            Unit::Minute => "m",
            Unit::Second => "s[.fff]",
        }
    }
}

/// `INTERVAL …` at the parser's position, if there, with a range
/// qualifier's text rewritten and any leading precision dropped.
pub(super) fn parse_interval(parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
    if !parser.peek_keyword(Keyword::INTERVAL) {
        return None;
    }
    parser.next_token();
    let at = parser.peek_token_ref().span.start;
    Some(parser.parse_interval().and_then(|e| normalize(e, at)))
}

fn normalize(expr: Expr, at: Location) -> Result<Expr, ParserError> {
    let Expr::Interval(mut interval) = expr else {
        return Ok(expr);
    };
    interval.leading_precision = None;
    let Some(last) = interval.last_field.take() else {
        return Ok(Expr::Interval(interval));
    };
    interval.fractional_seconds_precision = None;
    let error =
        |message: String| ParserError::ParserError(format!("{message} at Line: {}, Column: {}", at.line, at.column));
    let lead = interval.leading_field.take();
    let (Some(lead), Some(last)) = (lead.as_ref().and_then(Unit::of), Unit::of(&last)) else {
        return Err(error(format!(
            "unsupported interval qualifier {} TO {last}",
            lead.map_or(String::new(), |l| l.to_string())
        )));
    };
    let text = match interval.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => s.clone(),
            _ => {
                return Err(error(format!(
                    "INTERVAL … {} TO {} takes a string",
                    lead.name(),
                    last.name()
                )));
            }
        },
        _ => {
            return Err(error(format!(
                "INTERVAL … {} TO {} takes a string",
                lead.name(),
                last.name()
            )));
        }
    };
    let words = range_text(&text, lead, last).map_err(error)?;
    interval.value = Box::new(Expr::value(Value::SingleQuotedString(words)));
    Ok(Expr::Interval(interval))
}

/// The text of an interval `lead TO last` in DataFusion's unit words, or
/// why it is not one.
fn range_text(text: &str, lead: Unit, last: Unit) -> Result<String, String> {
    let months = [Unit::Year, Unit::Month];
    let days = [Unit::Day, Unit::Hour, Unit::Minute, Unit::Second];
    let family = if months.contains(&lead) { &months[..] } else { &days[..] };
    let units: Vec<Unit> = family.iter().copied().filter(|u| (lead..=last).contains(u)).collect();
    let qualifier = format!("{} TO {}", lead.name(), last.name());
    if lead >= last || !family.contains(&last) {
        return Err(format!("unsupported interval qualifier {qualifier}"));
    }
    let shape: String = units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            if i == 0 {
                u.shape().to_string()
            } else {
                format!("{}{}", u.separator(), u.shape())
            }
        })
        .collect();
    let invalid = || format!("invalid interval '{text}' for {qualifier}: expected '[+|-]{shape}'");
    let trimmed = text.trim();
    let (negative, mut rest) = match trimmed.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let mut values = Vec::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        if i > 0 {
            rest = if unit.separator() == " " {
                let after = rest.trim_start();
                if after.len() == rest.len() {
                    return Err(invalid());
                }
                after
            } else {
                rest.strip_prefix(unit.separator()).ok_or_else(invalid)?
            };
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        if i > 0 && value > unit.bound() {
            return Err(format!(
                "invalid interval '{text}' for {qualifier}: {} {value} is out of range 0..={}",
                unit.name(),
                unit.bound()
            ));
        }
        values.push((value, *unit));
        rest = &rest[digits..];
    }
    let mut nanos = 0u64;
    if last == Unit::Second
        && let Some(fraction) = rest.strip_prefix('.')
    {
        let digits = fraction.len() - fraction.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 || digits > 9 {
            return Err(invalid());
        }
        nanos = fraction[..digits].parse::<u64>().map_err(|_| invalid())? * 10u64.pow(9 - digits as u32);
        rest = &fraction[digits..];
    }
    if !rest.is_empty() {
        return Err(invalid());
    }
    let sign = if negative { "-" } else { "" };
    let mut words: Vec<String> = values
        .iter()
        .map(|(v, u)| format!("{sign}{v} {}", u.plural()))
        .collect();
    if nanos > 0 {
        words.push(format!("{sign}{nanos} nanoseconds"));
    }
    Ok(words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_become_unit_words() {
        assert_eq!(
            range_text("10 00:00:00.004", Unit::Day, Unit::Second).unwrap(),
            "10 days 0 hours 0 minutes 0 seconds 4000000 nanoseconds"
        );
        assert_eq!(
            range_text("2-10", Unit::Year, Unit::Month).unwrap(),
            "2 years 10 months"
        );
        assert_eq!(
            range_text(" -2-10 ", Unit::Year, Unit::Month).unwrap(),
            "-2 years -10 months"
        );
        assert_eq!(range_text("1 5", Unit::Day, Unit::Hour).unwrap(), "1 days 5 hours");
        assert_eq!(
            range_text("+1 05:30", Unit::Day, Unit::Minute).unwrap(),
            "1 days 5 hours 30 minutes"
        );
        assert_eq!(
            range_text("25:30", Unit::Hour, Unit::Minute).unwrap(),
            "25 hours 30 minutes"
        );
        assert_eq!(
            range_text("1:02:03.5", Unit::Hour, Unit::Second).unwrap(),
            "1 hours 2 minutes 3 seconds 500000000 nanoseconds"
        );
        assert_eq!(
            range_text("90:59", Unit::Minute, Unit::Second).unwrap(),
            "90 minutes 59 seconds"
        );
    }

    #[test]
    fn bad_texts_and_qualifiers_are_errors() {
        for (text, lead, last) in [
            ("10", Unit::Day, Unit::Second),
            ("2-12", Unit::Year, Unit::Month),
            ("1 24", Unit::Day, Unit::Hour),
            ("1:60", Unit::Hour, Unit::Minute),
            ("1 00:00:00.", Unit::Day, Unit::Second),
            ("a-1", Unit::Year, Unit::Month),
            ("1-1 x", Unit::Year, Unit::Month),
            ("1-1", Unit::Year, Unit::Day),
            ("1 1", Unit::Hour, Unit::Day),
        ] {
            let e = range_text(text, lead, last).unwrap_err();
            assert!(e.contains("interval"), "{text}: {e}");
        }
        assert_eq!(
            range_text("1:60", Unit::Hour, Unit::Minute).unwrap_err(),
            "invalid interval '1:60' for HOUR TO MINUTE: MINUTE 60 is out of range 0..=59"
        );
        assert_eq!(
            range_text("10", Unit::Day, Unit::Second).unwrap_err(),
            "invalid interval '10' for DAY TO SECOND: expected '[+|-]d h:m:s[.fff]'"
        );
    }
}
