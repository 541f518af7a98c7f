//! Java date-time patterns (`DateTimeFormatter.ofPattern`, which Flink's
//! `DATE_FORMAT`, `FROM_UNIXTIME` and `UNIX_TIMESTAMP` take): `yyyy-MM-dd
//! HH:mm:ss.SSS`, `EEE, d MMM yyyy`, `yyyy-MM-dd'T'HH:mm`. Flink users
//! write these; chrono's strftime patterns (`%Y-%m-%d`, what DataFusion's
//! `date_format` takes) would print such a pattern back as text.
//!
//! A pattern is read once into [`JavaPattern`] (per batch when it is a
//! constant). Formatting is done here, field by field, because Java's
//! widths are the letter counts (`D` is "5", `DD` "05", `DDD` "005") where
//! chrono's are fixed per field; parsing is chrono's, over the items the
//! pattern translates to ([`JavaPattern::parse_items`]).
//!
//! Names (`MMM`, `EEEE`, `a`) are English, as on a JVM in the US locale.
//! Weir's timestamps are UTC wall-clock times: the zone letters `X`, `Z`,
//! `x` print the zero offset and parse any offset.

use std::fmt::Write;

use chrono::format::{Fixed, Item, Numeric, Pad, StrftimeItems};
use chrono::{Datelike, NaiveDateTime, Timelike};

/// What a run of one pattern letter prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// `y`/`u`: the year, at least `width` digits; `yy` its last two.
    Year,
    /// `M`/`L` once or twice: the month number.
    Month,
    /// `MMM`: "Jan".
    MonthShort,
    /// `MMMM`: "January".
    MonthLong,
    /// `d`: the day of the month.
    Day,
    /// `D`: the day of the year (1–366).
    DayOfYear,
    /// `E` to `EEE`: "Tue".
    WeekdayShort,
    /// `EEEE`: "Tuesday".
    WeekdayLong,
    /// `a`: "AM" or "PM".
    AmPm,
    /// `H`: 0–23.
    Hour,
    /// `k`: 1–24.
    HourFrom1,
    /// `K`: 0–11.
    Hour12From0,
    /// `h`: 1–12.
    Hour12,
    /// `m`.
    Minute,
    /// `s`.
    Second,
    /// `S`…: the first `width` digits of the fraction of the second.
    Fraction,
    /// `X`: the offset, "Z" for zero.
    OffsetZ,
    /// `Z`/`x`: the offset as "+0000".
    Offset,
    /// `Y`: the year of the week (US weeks: a week starts on Sunday, and
    /// week 1 is the one holding January 1); `YY` its last two digits.
    WeekYear,
    /// `w`: the week of that year (1–53).
    WeekOfYear,
}

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field { field: Field, width: usize },
}

/// A Java date-time pattern, read once and applied to many values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JavaPattern {
    tokens: Vec<Token>,
}

/// Flink's default pattern of `FROM_UNIXTIME` and `UNIX_TIMESTAMP`.
pub(super) const DEFAULT_PATTERN: &str = "yyyy-MM-dd HH:mm:ss";

impl JavaPattern {
    /// Reads `pattern`; the error says which letter or quote is wrong (the
    /// caller names the function and argument).
    pub(super) fn new(pattern: &str) -> Result<Self, String> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut literal = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                // `''` is a quote; `'text'` is text, in which `''` is a quote.
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    literal.push('\'');
                    continue;
                }
                let mut closed = false;
                while let Some(q) = chars.next() {
                    if q == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                            literal.push('\'');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        literal.push(q);
                    }
                }
                if !closed {
                    return Err(format!("unterminated quote in pattern '{pattern}'"));
                }
            } else if c.is_ascii_alphabetic() {
                let mut width = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    width += 1;
                }
                let field = field_of(c, width)
                    .ok_or_else(|| format!("pattern letter '{c}' is not supported (in '{pattern}')"))?;
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(Token::Field { field, width });
            } else if matches!(c, '[' | ']' | '{' | '}' | '#') {
                // Java reserves these (optional sections, future use).
                return Err(format!(
                    "'{c}' is not supported in pattern '{pattern}'; quote it as '''{c}'''"
                ));
            } else {
                literal.push(c);
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Self { tokens })
    }

    /// Appends `t` formatted to `out` (an Arrow string builder, so that no
    /// row allocates).
    pub(super) fn format(&self, t: &NaiveDateTime, out: &mut impl Write) -> std::fmt::Result {
        for token in &self.tokens {
            let (field, width) = match token {
                Token::Literal(s) => {
                    out.write_str(s)?;
                    continue;
                }
                Token::Field { field, width } => (*field, *width),
            };
            let number = |out: &mut _, n: i64| write_padded(out, n, width);
            match field {
                Field::Year if width == 2 => write_padded(out, i64::from(t.year()).rem_euclid(100), 2)?,
                Field::Year => number(out, i64::from(t.year()))?,
                Field::WeekYear if width == 2 => write_padded(out, i64::from(us_week(t).0).rem_euclid(100), 2)?,
                Field::WeekYear => number(out, i64::from(us_week(t).0))?,
                Field::WeekOfYear => number(out, i64::from(us_week(t).1))?,
                Field::Month => number(out, i64::from(t.month()))?,
                Field::MonthShort => out.write_str(&MONTHS[t.month0() as usize][..3])?,
                Field::MonthLong => out.write_str(MONTHS[t.month0() as usize])?,
                Field::Day => number(out, i64::from(t.day()))?,
                Field::DayOfYear => number(out, i64::from(t.ordinal()))?,
                Field::WeekdayShort => out.write_str(&WEEKDAYS[t.weekday().num_days_from_monday() as usize][..3])?,
                Field::WeekdayLong => out.write_str(WEEKDAYS[t.weekday().num_days_from_monday() as usize])?,
                Field::AmPm => out.write_str(if t.hour() < 12 { "AM" } else { "PM" })?,
                Field::Hour => number(out, i64::from(t.hour()))?,
                Field::HourFrom1 => number(out, i64::from(if t.hour() == 0 { 24 } else { t.hour() }))?,
                Field::Hour12From0 => number(out, i64::from(t.hour() % 12))?,
                Field::Hour12 => number(
                    out,
                    i64::from(if t.hour().is_multiple_of(12) { 12 } else { t.hour() % 12 }),
                )?,
                Field::Minute => number(out, i64::from(t.minute()))?,
                Field::Second => number(out, i64::from(t.second()))?,
                Field::Fraction => {
                    // Nine digits of nanoseconds, cut to `width` (at most 9).
                    let nanos = t.nanosecond() % 1_000_000_000;
                    let digits = width.min(9);
                    let cut = nanos / 10u32.pow(9 - digits as u32);
                    write!(out, "{cut:0digits$}")?;
                }
                Field::OffsetZ => out.write_char('Z')?,
                Field::Offset => out.write_str("+0000")?,
            }
        }
        Ok(())
    }

    /// The chrono items that parse text of this pattern, or why it cannot
    /// be parsed (`k`, `K` and fractions other than 3, 6 or 9 digits).
    pub(super) fn parse_items(&self) -> Result<Vec<Item<'static>>, String> {
        let mut items = Vec::with_capacity(self.tokens.len());
        for token in &self.tokens {
            match token {
                Token::Literal(s) => {
                    // Chrono skips any whitespace at a space item, as Java
                    // matches a space of the pattern with one of the text.
                    let mut rest = s.as_str();
                    while !rest.is_empty() {
                        let split = rest
                            .find(|c: char| c.is_whitespace() != rest.starts_with(char::is_whitespace))
                            .unwrap_or(rest.len());
                        let (run, tail) = rest.split_at(split);
                        items.push(if run.starts_with(char::is_whitespace) {
                            Item::OwnedSpace(run.into())
                        } else {
                            Item::OwnedLiteral(run.into())
                        });
                        rest = tail;
                    }
                }
                Token::Field { field, width } => items.push(match field {
                    Field::Year if *width == 2 => Item::Numeric(Numeric::YearMod100, Pad::Zero),
                    Field::Year => Item::Numeric(Numeric::Year, Pad::Zero),
                    Field::Month => Item::Numeric(Numeric::Month, Pad::Zero),
                    Field::MonthShort => Item::Fixed(Fixed::ShortMonthName),
                    Field::MonthLong => Item::Fixed(Fixed::LongMonthName),
                    Field::Day => Item::Numeric(Numeric::Day, Pad::Zero),
                    Field::DayOfYear => Item::Numeric(Numeric::Ordinal, Pad::Zero),
                    Field::WeekdayShort => Item::Fixed(Fixed::ShortWeekdayName),
                    Field::WeekdayLong => Item::Fixed(Fixed::LongWeekdayName),
                    Field::AmPm => Item::Fixed(Fixed::UpperAmPm),
                    Field::Hour => Item::Numeric(Numeric::Hour, Pad::Zero),
                    Field::Hour12 => Item::Numeric(Numeric::Hour12, Pad::Zero),
                    Field::Minute => Item::Numeric(Numeric::Minute, Pad::Zero),
                    Field::Second => Item::Numeric(Numeric::Second, Pad::Zero),
                    Field::Fraction if matches!(width, 3 | 6 | 9) => {
                        // Chrono's digits-without-a-dot items exist only
                        // behind its strftime syntax.
                        let spec = format!("%{width}f");
                        match StrftimeItems::new(&spec).next() {
                            Some(Item::Fixed(fixed)) => Item::Fixed(fixed),
                            _ => return Err(format!("cannot parse a fraction of {width} digits")),
                        }
                    }
                    Field::OffsetZ => Item::Fixed(Fixed::TimezoneOffsetZ),
                    Field::Offset => Item::Fixed(Fixed::TimezoneOffset),
                    Field::Fraction | Field::HourFrom1 | Field::Hour12From0 | Field::WeekYear | Field::WeekOfYear => {
                        return Err(format!(
                            "pattern letter run of {width} '{}' cannot be parsed",
                            letter_of(*field)
                        ));
                    }
                }),
            }
        }
        Ok(items)
    }
}

/// The field a run of `width` letters `c` stands for, if Weir knows it.
fn field_of(c: char, width: usize) -> Option<Field> {
    Some(match c {
        'y' | 'u' => Field::Year,
        'M' | 'L' => match width {
            1 | 2 => Field::Month,
            3 => Field::MonthShort,
            _ => Field::MonthLong,
        },
        'd' if width <= 2 => Field::Day,
        'D' if width <= 3 => Field::DayOfYear,
        'E' if width <= 3 => Field::WeekdayShort,
        'E' => Field::WeekdayLong,
        'a' if width == 1 => Field::AmPm,
        'H' if width <= 2 => Field::Hour,
        'k' if width <= 2 => Field::HourFrom1,
        'K' if width <= 2 => Field::Hour12From0,
        'h' if width <= 2 => Field::Hour12,
        'm' if width <= 2 => Field::Minute,
        's' if width <= 2 => Field::Second,
        'S' if width <= 9 => Field::Fraction,
        'X' if width <= 3 => Field::OffsetZ,
        'Z' | 'x' if width <= 3 => Field::Offset,
        'Y' => Field::WeekYear,
        'w' if width <= 2 => Field::WeekOfYear,
        _ => return None,
    })
}

/// The letter of `field`, for messages.
fn letter_of(field: Field) -> char {
    match field {
        Field::HourFrom1 => 'k',
        Field::Hour12From0 => 'K',
        Field::WeekYear => 'Y',
        Field::WeekOfYear => 'w',
        _ => 'S',
    }
}

/// The week-based year and week of `t` in the US locale (the JVM's
/// default locale, as Flink's `DateTimeFormatter` uses it): weeks start on
/// Sunday and week 1 holds January 1, so the last days of December can be
/// week 1 of the next year.
fn us_week(t: &NaiveDateTime) -> (i32, u32) {
    let from_sunday = t.weekday().num_days_from_sunday();
    let saturday = t.date() + chrono::Days::new(u64::from(6 - from_sunday));
    if saturday.year() > t.year() {
        return (t.year() + 1, 1);
    }
    let january_first = t.date() - chrono::Days::new(u64::from(t.ordinal0()));
    let offset = january_first.weekday().num_days_from_sunday();
    (t.year(), (t.ordinal0() + offset) / 7 + 1)
}

/// `n` in at least `width` digits (a sign before a negative year).
fn write_padded(out: &mut impl Write, n: i64, width: usize) -> std::fmt::Result {
    if n < 0 {
        write!(out, "-{:0width$}", n.unsigned_abs())
    } else {
        write!(out, "{n:0width$}")
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(pattern: &str, t: &str) -> String {
        let t = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        let mut out = String::new();
        JavaPattern::new(pattern).unwrap().format(&t, &mut out).unwrap();
        out
    }

    /// Java's widths are letter counts; names are English.
    #[test]
    fn formats_as_java_does() {
        let t = "2026-01-02 03:04:05.678";
        assert_eq!(fmt("yyyy-MM-dd HH:mm:ss.SSS", t), "2026-01-02 03:04:05.678");
        assert_eq!(fmt("yy/M/d H:m:s S", t), "26/1/2 3:4:5 6");
        assert_eq!(fmt("D DD DDD", t), "2 02 002");
        assert_eq!(fmt("EEE, d MMM yyyy", t), "Fri, 2 Jan 2026");
        assert_eq!(fmt("EEEE MMMM", t), "Friday January");
        assert_eq!(fmt("yyyy-MM-dd'T'HH:mm:ss", t), "2026-01-02T03:04:05");
        assert_eq!(fmt("hh:mm a", "2026-01-02 15:04:05"), "03:04 PM");
        assert_eq!(fmt("h a k K", "2026-01-02 00:30:00"), "12 AM 24 0");
        assert_eq!(fmt("'o''clock' ''", t), "o'clock '");
        assert_eq!(fmt("SSSSSS", t), "678000");
    }

    /// Java's week fields in the US locale: a week starts on Sunday and
    /// week 1 holds January 1. Each day of 2015–2030 against the weeks
    /// counted from the Sunday on or before that year's January 1.
    #[test]
    fn week_fields_as_in_the_us_locale() {
        assert_eq!(fmt("YYYYww", "2019-12-29 00:00:00"), "202001");
        assert_eq!(fmt("YYYY-w", "2020-01-05 00:00:00"), "2020-2");
        assert_eq!(fmt("YY w", "2020-12-26 00:00:00"), "20 52");
        let mut day = chrono::NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
        while day.year() <= 2030 {
            let week_start = day - chrono::Days::new(u64::from(day.weekday().num_days_from_sunday()));
            let week_end = week_start + chrono::Days::new(6);
            let year = if week_end.year() != week_start.year() {
                week_end.year()
            } else {
                day.year()
            };
            let january_first = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            let first_week =
                january_first - chrono::Days::new(u64::from(january_first.weekday().num_days_from_sunday()));
            let week = (week_start - first_week).num_days() / 7 + 1;
            let t = day.and_hms_opt(12, 0, 0).unwrap();
            let mut out = String::new();
            JavaPattern::new("YYYY ww").unwrap().format(&t, &mut out).unwrap();
            assert_eq!(out, format!("{year} {week:02}"), "{day}");
            day = day.succ_opt().unwrap();
        }
        assert!(JavaPattern::new("YYYY").unwrap().parse_items().is_err());
    }

    #[test]
    fn refuses_unknown_letters_and_open_quotes() {
        assert!(JavaPattern::new("yyyy-qq").unwrap_err().contains("'q'"));
        assert!(JavaPattern::new("yyyy 'T").unwrap_err().contains("unterminated quote"));
        assert!(JavaPattern::new("ddd").is_err());
        assert!(JavaPattern::new("[yyyy]").is_err());
    }
}
