//! The columns of bid events, as Flink nexmark's `BidGenerator` makes them.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMillisecondArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::error::ArrowError;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::config::Config;
use super::random::{Filler, event_rng, price, string};
use super::text::Text;
use super::timeline::{Event, FIRST_AUCTION_ID, FIRST_PERSON_ID};

/// Bids go to the first of each run of this many auctions when hot
/// (`HOT_AUCTION_RATIO`), and hot bidders are the second of each run of
/// this many people (`HOT_BIDDER_RATIO`).
const HOT_AUCTION_RUN: i64 = 100;
const HOT_BIDDER_RUN: u64 = 100;

/// Flink nexmark's `hotAuctionRatio` and `hotBiddersRatio` defaults: a bid
/// is for a hot auction with probability 1 - 1/2, by a hot bidder 1 - 1/4.
const HOT_AUCTION_RATIO: u32 = 2;
const HOT_BIDDERS_RATIO: u32 = 4;

/// Half the bids come through one of the hot channels
/// (`HOT_CHANNELS_RATIO`), the rest through one of `CHANNELS_NUMBER`.
const HOT_CHANNELS_RATIO: u32 = 2;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const CHANNELS_NUMBER: usize = 10_000;

/// Flink nexmark's `avgBidByteSize`, and the bytes it counts for a bid's
/// numbers before its `extra`.
const AVERAGE_SIZE: usize = 100;
const NUMBERS_SIZE: usize = 32;

/// Every channel's name and URL, made once per table from its seed (Flink
/// caches them per process, from an unseeded generator).
#[derive(Debug)]
pub(crate) struct Channels {
    /// The hot channels first, then `channel-0` … `channel-9999`: columns
    /// a batch's channels are taken from by index.
    names: StringArray,
    urls: StringArray,
}

impl Channels {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x6368_616e_6e65_6c73);
        let mut names: Vec<String> = HOT_CHANNELS.iter().map(|c| c.to_string()).collect();
        let mut urls: Vec<String> = (0..HOT_CHANNELS.len()).map(|_| base_url(&mut rng)).collect();
        for n in 0..CHANNELS_NUMBER {
            names.push(format!("channel-{n}"));
            let mut url = base_url(&mut rng);
            if rng.random_range(0..10) > 0 {
                let id = (n as i32).reverse_bits().unsigned_abs();
                url.push_str(&format!("&channel_id={id}"));
            }
            urls.push(url);
        }
        Self {
            names: StringArray::from(names),
            urls: StringArray::from(urls),
        }
    }
}

/// `getBaseUrl`: three random path segments.
fn base_url(rng: &mut SmallRng) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    let mut segment = String::new();
    for _ in 0..3 {
        string(rng, 5, '_', &mut segment);
        url.push_str(&segment);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

/// The bid columns of one batch.
pub(crate) struct BidColumns<'a> {
    config: &'a Config,
    channels: &'a Channels,
    filler: &'a Filler,
    auction: Vec<i64>,
    bidder: Vec<i64>,
    price: Vec<i64>,
    /// Each bid's channel, by index in `Channels`, when the table declares
    /// `channel` or `url`.
    channel: Option<Vec<u32>>,
    date_time: Vec<i64>,
    extra: Option<Text>,
}

impl<'a> BidColumns<'a> {
    /// Room for `rows` bids; text columns the table does not declare are
    /// not built (their random draws are still made, so that the other
    /// columns do not depend on which are declared).
    pub(crate) fn new(config: &'a Config, channels: &'a Channels, filler: &'a Filler, rows: usize) -> Self {
        let text = |name: &str, bytes: usize| config.wants(name).then(|| Text::with_capacity(rows, bytes));
        Self {
            config,
            channels,
            filler,
            auction: Vec::with_capacity(rows),
            bidder: Vec::with_capacity(rows),
            price: Vec::with_capacity(rows),
            channel: (config.wants("channel") || config.wants("url")).then(|| Vec::with_capacity(rows)),
            date_time: Vec::with_capacity(rows),
            extra: text("extra", (AVERAGE_SIZE - NUMBERS_SIZE) * 6 / 5),
        }
    }

    /// Appends bid `e` (an event whose id makes it a bid).
    #[inline]
    pub(crate) fn push(&mut self, e: &Event) {
        let p = &self.config.proportions;
        let mut rng = event_rng(self.config.seed, e.id);
        let auction = if rng.random_range(0..HOT_AUCTION_RATIO) > 0 {
            (p.last_auction(e).max(0) / HOT_AUCTION_RUN) * HOT_AUCTION_RUN
        } else {
            p.random_auction(e, &mut rng) as i64
        };
        let bidder = if rng.random_range(0..HOT_BIDDERS_RATIO) > 0 {
            (p.last_person(e) / HOT_BIDDER_RUN) * HOT_BIDDER_RUN + 1
        } else {
            p.random_person(e, &mut rng)
        };
        self.auction.push(auction + FIRST_AUCTION_ID);
        self.bidder.push(bidder as i64 + FIRST_PERSON_ID);
        self.price.push(price(&mut rng));
        let channel = if rng.random_range(0..HOT_CHANNELS_RATIO) > 0 {
            rng.random_range(0..HOT_CHANNELS.len())
        } else {
            HOT_CHANNELS.len() + rng.random_range(0..CHANNELS_NUMBER)
        };
        if let Some(c) = &mut self.channel {
            c.push(channel as u32);
        }
        self.date_time.push(e.time);
        if let Some(x) = &mut self.extra {
            x.push(self.filler.extra(&mut rng, NUMBERS_SIZE, AVERAGE_SIZE));
        }
    }

    /// The columns, in the order of `Kind::Bid.columns()`; `None` for text
    /// columns not built.
    /// Channels and URLs are copied from `Channels` by arrow's `take`, one
    /// pass per column.
    pub(crate) fn finish(self) -> Result<Vec<Option<ArrayRef>>, ArrowError> {
        let ints = |v: Vec<i64>| Some(Arc::new(Int64Array::from(v)) as ArrayRef);
        let (names, urls) = match self.channel {
            Some(indices) => {
                let indices = UInt32Array::from(indices);
                let wanted = |name: &str, from: &StringArray| {
                    self.config.wants(name).then(|| take(from, &indices, None)).transpose()
                };
                (wanted("channel", &self.channels.names)?, wanted("url", &self.channels.urls)?)
            }
            None => (None, None),
        };
        Ok(vec![
            ints(self.auction),
            ints(self.bidder),
            ints(self.price),
            names,
            urls,
            Some(Arc::new(TimestampMillisecondArray::from(self.date_time))),
            self.extra.map(Text::finish),
        ])
    }
}
