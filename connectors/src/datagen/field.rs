//! How datagen makes one column's values, from its `fields.<column>.*` options.

use std::collections::BTreeMap;

use datafusion::arrow::compute::kernels::cast_utils::parse_decimal;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field};
use rand::distr::Bernoulli;
use rand::distr::uniform::{SampleUniform, Uniform};

use crate::error::ConnectorError;
use crate::types::sql_name;

/// Longest random VARCHAR, so that a typo cannot ask for gigabytes a batch.
const MAX_LENGTH: usize = 1 << 16;

/// Flink's default length of random VARCHAR values.
const DEFAULT_LENGTH: usize = 100;

/// The `fields.<column>.<option>` entries of one column, by option name,
/// each with its full key (for errors) and value.
pub(crate) type FieldOptions<'a> = BTreeMap<&'a str, (&'a str, &'a str)>;

/// The generator of one column.
#[derive(Debug, Clone)]
pub(crate) struct FieldGen {
    pub(crate) data_type: DataType,
    pub(crate) kind: Kind,
    /// `'fields.<column>.null-rate'` when above zero.
    pub(crate) null_rate: Option<Bernoulli>,
}

/// `'fields.<column>.kind'`.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `start..=end` in order, split into contiguous ranges across partitions.
    Sequence {
        start: i64,
        end: i64,
    },
    Random(Random),
    /// A random column the job does not read: nulls, made for nothing
    /// (`SourceConnector::only_columns`).
    Unread,
}

/// Distributions of random values, one per column type.
#[derive(Debug, Clone)]
pub(crate) enum Random {
    Int8(Uniform<i8>),
    Int16(Uniform<i16>),
    Int32(Uniform<i32>),
    Int64(Uniform<i64>),
    Float32(Uniform<f32>),
    Float64(Uniform<f64>),
    /// Unscaled values of a DECIMAL(precision, scale).
    Decimal {
        unscaled: Uniform<i128>,
        precision: u8,
        scale: i8,
    },
    Boolean,
    /// Hexadecimal text of `length` characters, as Flink generates; of a
    /// random length from 1 to `length` with `'var-len'`.
    Text {
        length: usize,
        var_len: bool,
    },
    /// A ROW: each field from its own generator (`fields.<column>.<field>.*`).
    Row(Vec<FieldGen>),
    /// An ARRAY of `length` elements (`fields.<column>.element.*`).
    List {
        element: Box<FieldGen>,
        length: usize,
    },
    /// A MAP of `length` entries (`fields.<column>.key.*`, `.value.*`).
    Map {
        key: Box<FieldGen>,
        value: Box<FieldGen>,
        length: usize,
    },
    /// TIMESTAMP and DATE: now, minus a uniform amount of milliseconds up
    /// to `'max-past'` when set.
    Time {
        past_ms: Option<Uniform<i64>>,
    },
}

/// Which options apply to a column, for error messages and checks.
fn applies(option: &str, sequence: bool, dt: &DataType) -> Result<(), &'static str> {
    let numeric = dt.is_integer() || dt.is_floating() || matches!(dt, DataType::Decimal128(..));
    let temporal = matches!(dt, DataType::Timestamp(..) | DataType::Date32);
    match option {
        "kind" => Ok(()),
        "start" | "end" if sequence => Ok(()),
        "start" | "end" => Err("applies only to 'sequence' fields"),
        _ if sequence => Err("applies only to 'random' fields"),
        "null-rate" => Ok(()),
        "min" | "max" if numeric => Ok(()),
        "min" | "max" => Err("applies only to numeric fields"),
        "max-past" if temporal => Ok(()),
        "max-past" => Err("applies only to TIMESTAMP and DATE fields"),
        "length" if dt == &DataType::Utf8 || nested(dt) && !matches!(dt, DataType::Struct(_)) => Ok(()),
        "length" => Err("applies only to VARCHAR, ARRAY and MAP fields"),
        "var-len" if dt == &DataType::Utf8 => Ok(()),
        "var-len" => Err("applies only to VARCHAR fields"),
        _ => Err("is not a datagen field option"),
    }
}

/// Whether values of `dt` are made of other values, each from a generator
/// of its own.
fn nested(dt: &DataType) -> bool {
    matches!(dt, DataType::Struct(_) | DataType::List(_) | DataType::Map(..))
}

/// The collection size when `'length'` is not set (Flink's).
const DEFAULT_COLLECTION_LENGTH: usize = 3;

impl FieldGen {
    /// Bytes a value of this column takes in a batch, at most: what bounds
    /// a batch of long strings.
    pub(crate) fn value_bytes(&self) -> usize {
        match &self.kind {
            // The text and its offset.
            Kind::Random(Random::Text { length, .. }) => length + 4,
            Kind::Random(Random::Row(fields)) => fields.iter().map(FieldGen::value_bytes).sum(),
            Kind::Random(Random::List { element, length }) => length * element.value_bytes() + 4,
            Kind::Random(Random::Map { key, value, length }) => length * (key.value_bytes() + value.value_bytes()) + 4,
            // A sequence as text: at most 20 digits and a sign.
            Kind::Sequence { .. } if self.data_type == DataType::Utf8 => 21 + 4,
            // The widest primitive, DECIMAL's 128 bits.
            _ => 16,
        }
    }

    /// Reads the options of `field` (all of which are `fields.<column>.*`).
    pub(crate) fn from_options(field: &Field, options: &FieldOptions) -> Result<Self, ConnectorError> {
        let dt = field.data_type();
        if nested(dt) {
            return Self::nested_from_options(field, options);
        }
        let get = |option: &str| options.get(option).copied();
        // The `kind` option when it asks for a sequence.
        let sequence = match get("kind") {
            None => None,
            Some((_, v)) if v.eq_ignore_ascii_case("random") => None,
            Some(entry @ (_, v)) if v.eq_ignore_ascii_case("sequence") => Some(entry),
            Some((key, v)) => {
                return Err(ConnectorError::invalid(key, v, "expected 'random' or 'sequence'"));
            }
        };
        for (option, (key, value)) in options {
            applies(option, sequence.is_some(), dt).map_err(|reason| {
                ConnectorError::invalid(
                    key,
                    value,
                    format!("{reason} (column '{}' is {})", field.name(), sql_name(dt)),
                )
            })?;
        }
        let null_rate = null_rate(field, get("null-rate"))?;
        let kind = match sequence {
            Some(kind) => sequence_kind(field, kind, get("start"), get("end"))?,
            None => Kind::Random(random(field, &get)?),
        };
        Ok(Self {
            data_type: dt.clone(),
            kind,
            null_rate,
        })
    }
}

impl FieldGen {
    /// A ROW, ARRAY or MAP column (or field): its own options (`length`,
    /// `null-rate`) and its parts', by the part's name before a dot, as
    /// Flink names them (`buyer.first_name.length`, `tags.element.min`).
    fn nested_from_options(field: &Field, options: &FieldOptions) -> Result<Self, ConnectorError> {
        let dt = field.data_type();
        let parts: Vec<&Field> = match dt {
            DataType::Struct(fields) => fields.iter().map(|f| f.as_ref()).collect(),
            DataType::List(element) => vec![element.as_ref()],
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) => kv.iter().map(|f| f.as_ref()).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let part_name = |i: usize, f: &Field| match dt {
            DataType::List(_) => "element".to_string(),
            DataType::Map(..) if i == 0 => "key".to_string(),
            DataType::Map(..) => "value".to_string(),
            _ => f.name().clone(),
        };
        let mut own = FieldOptions::new();
        let mut per_part: Vec<FieldOptions> = vec![FieldOptions::new(); parts.len()];
        for (option, entry @ (key, value)) in options {
            let part = option.split_once('.').and_then(|(name, rest)| {
                let i = parts.iter().enumerate().position(|(i, f)| part_name(i, f) == name)?;
                Some((i, rest))
            });
            match part {
                Some((i, rest)) => {
                    per_part[i].insert(rest, *entry);
                }
                None if option.contains('.') => {
                    let names: Vec<String> = parts.iter().enumerate().map(|(i, f)| part_name(i, f)).collect();
                    return Err(ConnectorError::invalid(
                        key,
                        value,
                        format!(
                            "'{}' has no part named so (its parts: {})",
                            field.name(),
                            names.join(", ")
                        ),
                    ));
                }
                None => {
                    applies(option, false, dt).map_err(|reason| {
                        ConnectorError::invalid(
                            key,
                            value,
                            format!("{reason} (column '{}' is {})", field.name(), sql_name(dt)),
                        )
                    })?;
                    own.insert(option, *entry);
                }
            }
        }
        let generators = parts
            .iter()
            .zip(&per_part)
            .map(|(part, opts)| FieldGen::from_options(part, opts))
            .collect::<Result<Vec<_>, _>>()?;
        let length = match own.get("length") {
            None => DEFAULT_COLLECTION_LENGTH,
            Some((key, v)) => length_option(key, v)?,
        };
        let kind = match (dt, generators.len()) {
            (DataType::List(_), 1) => Random::List {
                element: Box::new(generators[0].clone()),
                length,
            },
            (DataType::Map(..), 2) => Random::Map {
                key: Box::new(generators[0].clone()),
                value: Box::new(generators[1].clone()),
                length,
            },
            _ => Random::Row(generators),
        };
        let null_rate = null_rate(field, own.get("null-rate").copied())?;
        Ok(Self {
            data_type: dt.clone(),
            kind: Kind::Random(kind),
            null_rate,
        })
    }
}

/// `'null-rate'`: a Bernoulli of that rate when above zero; a NOT NULL
/// column takes none.
fn null_rate(field: &Field, entry: Entry) -> Result<Option<Bernoulli>, ConnectorError> {
    let Some((key, v)) = entry else { return Ok(None) };
    let rate = v
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|r| Bernoulli::new(r).ok().map(|b| (r, b)));
    match rate {
        None => Err(ConnectorError::invalid(key, v, "expected a number from 0 to 1")),
        Some((r, _)) if r > 0.0 && !field.is_nullable() => Err(ConnectorError::invalid(
            key,
            v,
            format!("column '{}' is NOT NULL", field.name()),
        )),
        Some((r, b)) => Ok((r > 0.0).then_some(b)),
    }
}

/// A `'length'` value: at most [`MAX_LENGTH`].
fn length_option(key: &str, v: &str) -> Result<usize, ConnectorError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n <= MAX_LENGTH => Ok(n),
        _ => Err(ConnectorError::invalid(
            key,
            v,
            format!("expected an integer from 0 to {MAX_LENGTH}"),
        )),
    }
}

fn sequence_kind<'a>(
    field: &Field,
    kind: (&str, &str),
    start: Entry<'a>,
    end: Entry<'a>,
) -> Result<Kind, ConnectorError> {
    let dt = field.data_type();
    let (lo, hi) = match dt {
        DataType::Int8 => (i64::from(i8::MIN), i64::from(i8::MAX)),
        DataType::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        DataType::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        DataType::Int64 | DataType::Utf8 => (i64::MIN, i64::MAX),
        _ => {
            let (key, v) = kind;
            return Err(ConnectorError::invalid(
                key,
                v,
                format!(
                    "needs an integer or VARCHAR column (column '{}' is {})",
                    field.name(),
                    sql_name(dt)
                ),
            ));
        }
    };
    let bound = |entry: Entry<'a>, option: &str| -> Result<(i64, &'a str, &'a str), ConnectorError> {
        let (key, v) = entry.ok_or_else(|| ConnectorError::MissingOption {
            connector: "datagen".into(),
            key: format!("fields.{}.{option}", field.name()),
        })?;
        match v.trim().parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok((n, key, v)),
            _ => Err(ConnectorError::invalid(
                key,
                v,
                format!("expected an integer from {lo} to {hi}"),
            )),
        }
    };
    let (first, _, _) = bound(start, "start")?;
    let (last, key, v) = bound(end, "end")?;
    if last < first {
        return Err(ConnectorError::invalid(
            key,
            v,
            format!("must not be less than the start, {first}"),
        ));
    }
    Ok(Kind::Sequence {
        start: first,
        end: last,
    })
}

type Entry<'a> = Option<(&'a str, &'a str)>;

fn random<'a>(field: &Field, get: &dyn Fn(&str) -> Entry<'a>) -> Result<Random, ConnectorError> {
    Ok(match field.data_type() {
        DataType::Int8 => Random::Int8(int_range(get("min"), get("max"), i8::MIN, i8::MAX)?),
        DataType::Int16 => Random::Int16(int_range(get("min"), get("max"), i16::MIN, i16::MAX)?),
        DataType::Int32 => Random::Int32(int_range(get("min"), get("max"), i32::MIN, i32::MAX)?),
        DataType::Int64 => Random::Int64(int_range(get("min"), get("max"), i64::MIN, i64::MAX)?),
        DataType::Float32 => Random::Float32(float_range(get("min"), get("max"), f32::MAX)?),
        DataType::Float64 => Random::Float64(float_range(get("min"), get("max"), f64::MAX)?),
        DataType::Decimal128(precision, scale) => {
            let largest = 10_i128.pow(u32::from(*precision)) - 1;
            let parse = |entry: Entry, default: i128| match entry {
                None => Ok(default),
                Some((key, v)) => parse_decimal::<Decimal128Type>(v.trim(), *precision, *scale).map_err(|_| {
                    ConnectorError::invalid(
                        key,
                        v,
                        format!("expected a number that fits DECIMAL({precision}, {scale})"),
                    )
                }),
            };
            let (min, max) = (parse(get("min"), -largest)?, parse(get("max"), largest)?);
            Random::Decimal {
                unscaled: uniform_inclusive(min, max, get("max").or(get("min")))?,
                precision: *precision,
                scale: *scale,
            }
        }
        DataType::Boolean => Random::Boolean,
        DataType::Utf8 => {
            let length = match get("length") {
                None => DEFAULT_LENGTH,
                Some((key, v)) => length_option(key, v)?,
            };
            let var_len = match get("var-len") {
                None => false,
                Some((_, v)) if v.trim().eq_ignore_ascii_case("true") => true,
                Some((_, v)) if v.trim().eq_ignore_ascii_case("false") => false,
                Some((key, v)) => return Err(ConnectorError::invalid(key, v, "expected 'true' or 'false'")),
            };
            Random::Text { length, var_len }
        }
        DataType::Timestamp(..) | DataType::Date32 => {
            let past_ms = match get("max-past") {
                None => None,
                Some((key, v)) => {
                    let past = weir_engine::duration::parse_duration(v)
                        .map_err(|reason| ConnectorError::invalid(key, v, reason))?;
                    let ms = i64::try_from(past.as_millis())
                        .map_err(|_| ConnectorError::invalid(key, v, "too long a duration"))?;
                    Some(uniform_inclusive(0, ms, Some((key, v)))?)
                }
            };
            Random::Time { past_ms }
        }
        // The schema was checked against the supported types already.
        other => {
            return Err(ConnectorError::Unsupported {
                connector: "datagen".into(),
                what: format!("random values of type {other} (column '{}')", field.name()),
            });
        }
    })
}

fn int_range<T>(min: Entry, max: Entry, lo: T, hi: T) -> Result<Uniform<T>, ConnectorError>
where
    T: SampleUniform + PartialOrd + Copy + std::fmt::Display + std::str::FromStr,
{
    let parse = |entry: Entry, default: T| match entry {
        None => Ok(default),
        Some((key, v)) => v
            .trim()
            .parse::<T>()
            .map_err(|_| ConnectorError::invalid(key, v, format!("expected an integer from {lo} to {hi}"))),
    };
    uniform_inclusive(parse(min, lo)?, parse(max, hi)?, max.or(min))
}

/// Floats sample from `[min, max)`, which, unlike `[min, max]`, covers the
/// default range up to the type's largest value without overflowing.
fn float_range<T>(min: Entry, max: Entry, largest: T) -> Result<Uniform<T>, ConnectorError>
where
    T: SampleUniform + PartialOrd + Copy + std::str::FromStr + Default,
{
    let parse = |entry: Entry, default: T| match entry {
        None => Ok(default),
        Some((key, v)) => v
            .trim()
            .parse::<T>()
            .map_err(|_| ConnectorError::invalid(key, v, "expected a number")),
    };
    let (lo, hi) = (parse(min, T::default())?, parse(max, largest)?);
    let range = if lo == hi {
        Uniform::new_inclusive(lo, hi)
    } else {
        Uniform::new(lo, hi)
    };
    range.map_err(|e| range_error(max.or(min), e))
}

/// `blame` is the option reported if the range is unusable: the max when
/// set (it is what makes a range empty), else the min.
fn uniform_inclusive<T: SampleUniform>(min: T, max: T, blame: Entry) -> Result<Uniform<T>, ConnectorError> {
    Uniform::new_inclusive(min, max).map_err(|e| range_error(blame, e))
}

fn range_error(blame: Entry, e: rand::distr::uniform::Error) -> ConnectorError {
    // Default ranges are all usable, so some option is always to blame.
    let (key, v) = blame.unwrap_or_default();
    let reason = match e {
        rand::distr::uniform::Error::EmptyRange => "must not be less than the min".to_string(),
        other => format!("unusable range: {other}"),
    };
    ConnectorError::invalid(key, v, reason)
}
