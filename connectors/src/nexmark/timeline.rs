//! The id and time arithmetic of Flink nexmark's generator: which kind each
//! event id is, the ids of the people and auctions that exist by then, and
//! each event's time.
//!
//! Everything is a function of the event number alone (and the seed, in
//! `random.rs`), so that any subtask can make any event: subtask `i` of `p`
//! makes event numbers `i, i + p, i + 2p, …`, and together they make exactly
//! the events one subtask would.

use rand::Rng;

use super::config::{Config, Proportions};

/// Flink nexmark's `FIRST_PERSON_ID`, `FIRST_AUCTION_ID` and
/// `FIRST_CATEGORY_ID`: ids start there so that queries find matches even
/// on small runs.
pub(crate) const FIRST_PERSON_ID: i64 = 1000;
pub(crate) const FIRST_AUCTION_ID: i64 = 1000;
pub(crate) const FIRST_CATEGORY_ID: i64 = 10;

/// People ids ahead of the last person that a bid or auction may name
/// (`PERSON_ID_LEAD`), and the same for auctions (`AUCTION_ID_LEAD`).
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;

/// Flink nexmark's `numActivePeople` and `numInFlightAuctions` defaults.
const NUM_ACTIVE_PEOPLE: u64 = 1000;
pub(crate) const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;

/// One event of a subtask's share: its id (which is its event number, as in
/// a single Flink generator), where it falls in its run of
/// `Proportions::total` ids, and its event time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub(crate) id: u64,
    /// `id / total`.
    pub(crate) epoch: u64,
    /// `id % total`.
    pub(crate) offset: u64,
    pub(crate) time: i64,
}

/// Walks event numbers `first, first + stride, …`, keeping `id / total`
/// and `id % total` by addition rather than a division per event.
pub(crate) struct Cursor {
    next: Event,
    /// `stride / total` and `stride % total`.
    epoch_step: u64,
    offset_step: u64,
    total: u64,
    timeline: Timeline,
}

impl Cursor {
    pub(crate) fn new(config: &Config, first: u64, stride: u64) -> Self {
        let total = config.proportions.total;
        let timeline = Timeline::new(config);
        Self {
            next: Event {
                id: first,
                epoch: first / total,
                offset: first % total,
                time: timeline.time(first),
            },
            epoch_step: stride / total,
            offset_step: stride % total,
            total,
            timeline,
        }
    }

    /// The next event of the share.
    #[inline]
    pub(crate) fn advance(&mut self) -> Event {
        let event = self.next;
        let n = &mut self.next;
        n.id += self.offset_step + self.epoch_step * self.total;
        n.epoch += self.epoch_step;
        n.offset += self.offset_step;
        if n.offset >= self.total {
            n.offset -= self.total;
            n.epoch += 1;
        }
        n.time = self.timeline.time(n.id);
        event
    }
}

/// When each event happens: `first-event-time` plus the event number times
/// the delay between events, computed as Flink's `timestampForEvent` does
/// (microseconds in a double, truncated to milliseconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    base: i64,
    delay_us: f64,
}

impl Timeline {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            base: config.first_event_time,
            delay_us: 1_000_000.0 / config.events_per_second as f64,
        }
    }

    #[inline]
    pub(crate) fn time(&self, event_number: u64) -> i64 {
        self.base
            .saturating_add(((event_number as f64 * self.delay_us) as i64) / 1000)
    }
}

impl Proportions {
    /// The id of the last person made by event `e` (0-based; the person `e`
    /// makes when it is one): `lastBase0PersonId`.
    #[inline]
    pub(crate) fn last_person(&self, e: &Event) -> u64 {
        e.epoch * self.person + e.offset.min(self.person.saturating_sub(1))
    }

    /// The id of the last auction made by event `e` (0-based, -1 before the
    /// first): `lastBase0AuctionId`.
    #[inline]
    pub(crate) fn last_auction(&self, e: &Event) -> i64 {
        let base = (e.epoch * self.auction) as i64;
        if e.offset < self.person {
            base - 1
        } else if e.offset >= self.person + self.auction {
            base + self.auction as i64 - 1
        } else {
            base + (e.offset - self.person) as i64
        }
    }

    /// A person among the last active ones, or a few not made yet
    /// (`nextBase0PersonId`): bids and auctions by people that appear
    /// later, as in Flink.
    #[inline]
    pub(crate) fn random_person(&self, e: &Event, rng: &mut impl Rng) -> u64 {
        let people = self.last_person(e) + 1;
        let active = people.min(NUM_ACTIVE_PEOPLE);
        people - active + rng.random_range(0..active + PERSON_ID_LEAD)
    }

    /// An auction among those likely still in flight, or a few not made yet
    /// (`nextBase0AuctionId`).
    #[inline]
    pub(crate) fn random_auction(&self, e: &Event, rng: &mut impl Rng) -> u64 {
        let last = self.last_auction(e).max(0) as u64;
        let first = last.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
        first + rng.random_range(0..last - first + 1 + AUCTION_ID_LEAD)
    }

    /// Events it takes to make `NUM_IN_FLIGHT_AUCTIONS` auctions: an
    /// auction lasts twice that long on average (`nextAuctionLengthMs`).
    pub(crate) fn events_for_in_flight_auctions(&self) -> u64 {
        (NUM_IN_FLIGHT_AUCTIONS * self.total) / self.auction.max(1)
    }
}
