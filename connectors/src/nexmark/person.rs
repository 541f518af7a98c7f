//! The columns of person events, as Flink nexmark's `PersonGenerator`
//! makes them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
use rand::Rng;

use super::config::Config;
use super::random::{Filler, event_rng, string};
use super::text::Text;
use super::timeline::{Event, FIRST_PERSON_ID};

/// Few states and cities, so that queries grouping by them find results
/// on small runs (Flink's lists).
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];

/// Flink nexmark's `avgPersonByteSize`.
const AVERAGE_SIZE: usize = 200;

/// The person columns of one batch. People are 1 event in 50, so every
/// column is built whether declared or not.
pub(crate) struct PersonColumns<'a> {
    config: &'a Config,
    filler: &'a Filler,
    id: Vec<i64>,
    name: Text,
    email: Text,
    credit_card: Text,
    city: Text,
    state: Text,
    date_time: Vec<i64>,
    extra: Text,
    /// Where a random string is made before it is trimmed.
    scratch: String,
}

impl<'a> PersonColumns<'a> {
    pub(crate) fn new(config: &'a Config, filler: &'a Filler, rows: usize) -> Self {
        Self {
            config,
            filler,
            id: Vec::with_capacity(rows),
            name: Text::with_capacity(rows, 12),
            email: Text::with_capacity(rows, 14),
            credit_card: Text::with_capacity(rows, 19),
            city: Text::with_capacity(rows, 8),
            state: Text::with_capacity(rows, 2),
            date_time: Vec::with_capacity(rows),
            extra: Text::with_capacity(rows, 150),
            scratch: String::new(),
        }
    }

    /// Appends person `e` (an event whose id makes it a person).
    pub(crate) fn push(&mut self, e: &Event) {
        let mut rng = event_rng(self.config.seed, e.id);
        self.id.push(self.config.proportions.last_person(e) as i64 + FIRST_PERSON_ID);
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        self.name.write(first);
        self.name.write(" ");
        self.name.write(last);
        self.name.end_value();
        let mut size = 8 + first.len() + 1 + last.len();

        let s = &mut self.scratch;
        string(&mut rng, 7, ' ', s);
        self.email.write(s.trim());
        size += s.trim().len() + 1;
        string(&mut rng, 5, ' ', s);
        self.email.write("@");
        self.email.write(s.trim());
        self.email.write(".com");
        self.email.end_value();
        size += s.trim().len() + 4;

        s.clear();
        for i in 0..4 {
            if i > 0 {
                s.push(' ');
            }
            // Four digits, zero-padded, as Java's `%04d`.
            let digits = rng.random_range(0..10_000u32);
            for place in [1000, 100, 10, 1] {
                s.push(char::from(b'0' + (digits / place % 10) as u8));
            }
        }
        self.credit_card.push(s);
        size += s.len();

        let city = US_CITIES[rng.random_range(0..US_CITIES.len())];
        let state = US_STATES[rng.random_range(0..US_STATES.len())];
        self.city.push(city);
        self.state.push(state);
        size += city.len() + state.len();
        self.date_time.push(e.time);
        self.extra.push(self.filler.extra(&mut rng, size, AVERAGE_SIZE));
    }

    /// The columns, in the order of `Kind::Person.columns()`.
    pub(crate) fn finish(self) -> Vec<Option<ArrayRef>> {
        vec![
            Some(Arc::new(Int64Array::from(self.id))),
            Some(self.name.finish()),
            Some(self.email.finish()),
            Some(self.credit_card.finish()),
            Some(self.city.finish()),
            Some(self.state.finish()),
            Some(Arc::new(TimestampMillisecondArray::from(self.date_time))),
            Some(self.extra.finish()),
        ]
    }
}
