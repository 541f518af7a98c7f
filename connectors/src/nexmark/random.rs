//! The random values of one event, drawn as Flink nexmark draws them.
//!
//! Each event has its own generator, seeded from the table's seed and the
//! event's id: an event is then the same whichever subtask makes it and
//! whatever came before it, which is what makes the split across subtasks
//! and the restore from a checkpoint exact.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Flink's `StringsGenerator.MIN_STRING_LENGTH`.
const MIN_STRING_LENGTH: u32 = 3;

/// The generator of event `id`. The seed is mixed first so that the seeds
/// of nearby events differ in low bits only, far from the odd multiples of
/// the golden ratio that make SplitMix64 seeds overlap.
#[inline]
pub(crate) fn event_rng(seed: u64, id: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed.rotate_left(32).wrapping_mul(0xD134_2543_DE82_EF95) ^ id)
}

/// `PriceGenerator.nextPrice`: log-uniform from 100 to 100 000 000 cents.
/// `exp` rather than `powf(10, …)`: the same value, in a fraction of the time.
#[inline]
pub(crate) fn price(rng: &mut SmallRng) -> i64 {
    ((rng.random::<f64>() * 6.0 * std::f64::consts::LN_10).exp() * 100.0).round() as i64
}

/// `StringsGenerator.nextString`: 3 to `max_length - 1` lowercase letters,
/// about one in 13 replaced by `space`; into `out`, which is cleared first
/// (a buffer reused from row to row). Flink trims spaces off the ends.
pub(crate) fn string(rng: &mut SmallRng, max_length: u32, space: char, out: &mut String) {
    out.clear();
    let len = MIN_STRING_LENGTH + rng.random_range(0..max_length - MIN_STRING_LENGTH);
    for _ in 0..len {
        if rng.random_ratio(1, 13) {
            out.push(space);
        } else {
            out.push(char::from(b'a' + rng.random_range(0..26u8)));
        }
    }
}

/// Random lowercase letters that `extra` columns are cut from: 1 MiB,
/// made once per table from its seed.
#[derive(Debug)]
pub(crate) struct Filler(String);

impl Filler {
    const SIZE: usize = 1 << 20;

    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x6669_6c6c_6572);
        Self((0..Self::SIZE).map(|_| char::from(b'a' + rng.random_range(0..26u8))).collect())
    }

    /// `StringsGenerator.nextExtra`: letters that bring an event of
    /// `current_size` bytes to `average_size` on average (±20 %). This filler is most of a bid's bytes, so rather than a
    /// random letter at a time (as Flink) it is a random window of the
    /// pool: a copy, with one draw.
    #[inline]
    pub(crate) fn extra(&self, rng: &mut SmallRng, current_size: usize, average_size: usize) -> &str {
        if current_size > average_size {
            return "";
        }
        let wanted = average_size - current_size;
        let delta = (wanted as f64 * 0.2).round() as usize;
        let size = wanted - delta
            + if delta == 0 {
                0
            } else {
                rng.random_range(0..2 * delta)
            };
        let start = rng.random_range(0..Self::SIZE - size.min(Self::SIZE));
        // ASCII: every index is a character boundary.
        &self.0[start..start + size]
    }
}
