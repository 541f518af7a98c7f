//! The columns of auction events, as Flink nexmark's `AuctionGenerator`
//! makes them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMillisecondArray};
use rand::Rng;

use super::config::Config;
use super::random::{Filler, event_rng, price, string};
use super::text::Text;
use super::timeline::{Event, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID, Timeline};

/// Few categories, so that queries grouping by them find results on small
/// runs (`NUM_CATEGORIES`).
const NUM_CATEGORIES: i64 = 5;

/// Hot sellers are the first of each run of this many people
/// (`HOT_SELLER_RATIO`); an auction is by one with probability 1 - 1/4
/// (`hotSellersRatio`).
const HOT_SELLER_RUN: u64 = 100;
const HOT_SELLERS_RATIO: u32 = 4;

/// Flink nexmark's `avgAuctionByteSize`.
const AVERAGE_SIZE: usize = 500;

/// The auction columns of one batch. Auctions are 3 events in 50, so every
/// column is built whether declared or not.
pub(crate) struct AuctionColumns<'a> {
    config: &'a Config,
    filler: &'a Filler,
    timeline: Timeline,
    /// Events it takes to make the in-flight auctions: auctions last about
    /// twice as long.
    horizon_events: u64,
    id: Vec<i64>,
    item_name: Text,
    description: Text,
    initial_bid: Vec<i64>,
    reserve: Vec<i64>,
    date_time: Vec<i64>,
    expires: Vec<i64>,
    seller: Vec<i64>,
    category: Vec<i64>,
    extra: Text,
    /// Where a random string is made before it is trimmed.
    scratch: String,
}

impl<'a> AuctionColumns<'a> {
    pub(crate) fn new(config: &'a Config, filler: &'a Filler, rows: usize) -> Self {
        Self {
            config,
            filler,
            timeline: Timeline::new(config),
            horizon_events: config.proportions.events_for_in_flight_auctions(),
            id: Vec::with_capacity(rows),
            item_name: Text::with_capacity(rows, 11),
            description: Text::with_capacity(rows, 50),
            initial_bid: Vec::with_capacity(rows),
            reserve: Vec::with_capacity(rows),
            date_time: Vec::with_capacity(rows),
            expires: Vec::with_capacity(rows),
            seller: Vec::with_capacity(rows),
            category: Vec::with_capacity(rows),
            extra: Text::with_capacity(rows, 400),
            scratch: String::new(),
        }
    }

    /// Appends auction `e` (an event whose id makes it an auction).
    pub(crate) fn push(&mut self, e: &Event) {
        let p = &self.config.proportions;
        let mut rng = event_rng(self.config.seed, e.id);
        self.id.push(p.last_auction(e) + FIRST_AUCTION_ID);
        let seller = if rng.random_range(0..HOT_SELLERS_RATIO) > 0 {
            (p.last_person(e) / HOT_SELLER_RUN) * HOT_SELLER_RUN
        } else {
            p.random_person(e, &mut rng)
        };
        self.seller.push(seller as i64 + FIRST_PERSON_ID);
        self.category.push(FIRST_CATEGORY_ID + rng.random_range(0..NUM_CATEGORIES));
        let initial_bid = price(&mut rng);
        self.initial_bid.push(initial_bid);
        let horizon = self.timeline.time(e.id + self.horizon_events) - e.time;
        let length = 1 + rng.random_range(0..(horizon * 2).max(1));
        self.date_time.push(e.time);
        // Event times saturate at the end of time rather than wrap.
        self.expires.push(e.time.saturating_add(length));
        let s = &mut self.scratch;
        string(&mut rng, 20, ' ', s);
        self.item_name.push(s.trim());
        let mut texts = s.trim().len();
        string(&mut rng, 100, ' ', s);
        self.description.push(s.trim());
        texts += s.trim().len();
        self.reserve.push(initial_bid + price(&mut rng));
        self.extra.push(self.filler.extra(&mut rng, 8 + texts + 40, AVERAGE_SIZE));
    }

    /// The columns, in the order of `Kind::Auction.columns()`.
    pub(crate) fn finish(self) -> Vec<Option<ArrayRef>> {
        let ints = |v: Vec<i64>| Some(Arc::new(Int64Array::from(v)) as ArrayRef);
        let times = |v: Vec<i64>| Some(Arc::new(TimestampMillisecondArray::from(v)) as ArrayRef);
        vec![
            ints(self.id),
            Some(self.item_name.finish()),
            Some(self.description.finish()),
            ints(self.initial_bid),
            ints(self.reserve),
            times(self.date_time),
            times(self.expires),
            ints(self.seller),
            ints(self.category),
            Some(self.extra.finish()),
        ]
    }
}
