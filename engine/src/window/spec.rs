//! Window shapes and the slice arithmetic behind them.
//!
//! As in Flink's slicing window aggregation, every window is a run of equal,
//! non-overlapping *slices*: a tumbling window is one slice; a hopping window
//! of `size` sliding by `slide` is `size / gcd(size, slide)` slices of
//! `gcd(size, slide)`. Rows are aggregated once into their slice, and a
//! window merges its slices' partial states when it fires, so a row is never
//! copied into each of its hopping windows.

use std::fmt;

use crate::message::EventTime;

/// The window table-valued function a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset])`
    Tumble { size: i64 },
    /// `HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset])`
    Hop { slide: i64, size: i64 },
    /// `CUMULATE(TABLE t, DESCRIPTOR(ts), step, max_size [, offset])`:
    /// windows `[start, start + k * step)` for `k = 1 ..= max_size / step`,
    /// with `start` on the grid of `max_size`.
    Cumulate { step: i64, max_size: i64 },
}

/// A window assignment: its shape and epoch offset, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub kind: WindowKind,
    /// Windows start at `offset + k * slide` (Flink's optional offset).
    pub offset: i64,
    /// What a window's bounds are shown as, added to them: the session
    /// zone's offset for windows over a `TIMESTAMP_LTZ` rowtime, whose
    /// `window_start` and `window_end` are wall-clock times there (Flink's
    /// `TIMESTAMP(3)`); 0 otherwise. Windows are aligned to that zone's
    /// clock (`offset` includes it) and fire by the instant they end.
    pub local_shift: i64,
    /// CUMULATE's `emitOnlyOnUpdate` (Flink): a window fires only for the
    /// groups that received rows in its last step, so a group's total is
    /// not repeated unchanged at every step of the cycle.
    pub emit_only_on_update: bool,
}

impl WindowSpec {
    /// Checks the shape is one Flink accepts: positive sizes, a slide that is
    /// not larger than the size, an offset smaller than the size.
    pub fn new(kind: WindowKind, offset: i64) -> Result<Self, String> {
        match kind {
            WindowKind::Tumble { size } if size <= 0 => {
                return Err(format!("TUMBLE size must be positive, got {size} ms"));
            }
            WindowKind::Hop { slide, size } if slide <= 0 || size <= 0 => {
                return Err(format!(
                    "HOP slide and size must be positive, got slide {slide} ms, size {size} ms"
                ));
            }
            WindowKind::Hop { slide, size } if slide > size => {
                return Err(format!(
                    "HOP slide ({slide} ms) must not be larger than its size ({size} ms)"
                ));
            }
            WindowKind::Cumulate { step, max_size } if step <= 0 || max_size <= 0 || max_size % step != 0 => {
                return Err(format!(
                    "CUMULATE step and max size must be positive, the max size a multiple of the step; got step {step} ms, max size {max_size} ms"
                ));
            }
            _ => {}
        }
        let spec = Self {
            kind,
            offset,
            local_shift: 0,
            emit_only_on_update: false,
        };
        if offset.abs() >= spec.size() {
            return Err(format!(
                "window offset ({offset} ms) must be smaller than the window size ({} ms)",
                spec.size()
            ));
        }
        Ok(spec)
    }

    /// The same windows on the wall clock of a zone `zone_offset` ms ahead
    /// of UTC: a day starts at the zone's midnight, and the bounds are
    /// shown in the zone's time.
    pub fn in_zone(self, zone_offset: i64) -> Self {
        let offset = (self.offset - zone_offset).rem_euclid(self.slide());
        Self {
            offset,
            local_shift: zone_offset,
            ..self
        }
    }

    /// The same windows, each fired only for the groups its last slice
    /// updated (CUMULATE's `emitOnlyOnUpdate`; a window of one slice fires
    /// as always).
    pub fn emitting_only_updates(self) -> Self {
        Self {
            emit_only_on_update: true,
            ..self
        }
    }

    /// Length of the longest window.
    pub fn size(&self) -> i64 {
        match self.kind {
            WindowKind::Tumble { size } | WindowKind::Hop { size, .. } => size,
            WindowKind::Cumulate { max_size, .. } => max_size,
        }
    }

    /// Distance between the starts of consecutive windows.
    pub fn slide(&self) -> i64 {
        match self.kind {
            WindowKind::Tumble { size } => size,
            WindowKind::Hop { slide, .. } => slide,
            WindowKind::Cumulate { max_size, .. } => max_size,
        }
    }

    /// Length of one slice: the largest unit that tiles every window.
    pub fn slice_size(&self) -> i64 {
        match self.kind {
            WindowKind::Cumulate { step, .. } => step,
            _ => gcd(self.size(), self.slide()),
        }
    }

    /// Start of the window that ends at `end`.
    #[inline]
    pub fn window_start(&self, end: EventTime) -> EventTime {
        match self.kind {
            WindowKind::Cumulate { max_size, .. } => align(end - 1, self.offset, max_size),
            _ => end - self.size(),
        }
    }

    /// Start of the slice holding `ts`.
    #[inline]
    pub fn slice_start(&self, ts: EventTime) -> EventTime {
        align(ts, self.offset, self.slice_size())
    }

    /// End of the last window that holds `ts`: once the watermark reaches
    /// `last_window_end(ts) - 1`, a row at `ts` is late.
    #[inline]
    pub fn last_window_end(&self, ts: EventTime) -> EventTime {
        align(ts, self.offset, self.slide()).saturating_add(self.size())
    }

    /// Ends of every window that holds the slice starting at `slice_start`,
    /// in increasing order.
    pub fn window_ends_of_slice(&self, slice_start: EventTime) -> impl Iterator<Item = EventTime> {
        let (first_end, last_end, step) = match self.kind {
            // Every window of the cycle from this slice's end on.
            WindowKind::Cumulate { step, max_size } => (
                slice_start + step,
                align(slice_start, self.offset, max_size) + max_size,
                step,
            ),
            // Windows start on the slide grid, at most at the slice's start
            // and at least `size - slice` before it.
            _ => {
                let slide = self.slide();
                let earliest_start = slice_start + self.slice_size() - self.size();
                (
                    ceil_align(earliest_start, self.offset, slide) + self.size(),
                    align(slice_start, self.offset, slide) + self.size(),
                    slide,
                )
            }
        };
        (0..)
            .map(move |k: i64| first_end + k * step)
            .take_while(move |e| *e <= last_end)
    }

    /// Slices starting before this hold no window after the one ending at
    /// `fired_end`, and can be dropped once it has fired.
    pub fn first_live_slice_after(&self, fired_end: EventTime) -> EventTime {
        match self.kind {
            // A cycle's slices serve every window of the cycle.
            WindowKind::Cumulate { max_size, .. } => {
                if (fired_end - self.offset).rem_euclid(max_size) == 0 {
                    fired_end
                } else {
                    align(fired_end - 1, self.offset, max_size)
                }
            }
            _ => fired_end.saturating_sub(self.size()).saturating_add(self.slide()),
        }
    }
}

/// `ts` rounded down to the grid `offset + k * step` (Flink's
/// `TimeWindow.getWindowStartWithOffset`).
#[inline]
pub fn align(ts: EventTime, offset: i64, step: i64) -> EventTime {
    ts - (ts - offset).rem_euclid(step)
}

/// `ts` rounded up to the grid `offset + k * step`.
#[inline]
fn ceil_align(ts: EventTime, offset: i64, step: i64) -> EventTime {
    ts + (offset - ts).rem_euclid(step)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Formats milliseconds the way Flink writes intervals (`10 s`, `1 h`).
pub struct Millis(pub i64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, name) in [(86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1_000, "s")] {
            if ms != 0 && ms % unit == 0 {
                return write!(f, "{} {name}", ms / unit);
            }
        }
        write!(f, "{ms} ms")
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WindowKind::Tumble { size } => write!(f, "TUMBLE(size {})", Millis(size))?,
            WindowKind::Hop { slide, size } => write!(f, "HOP(slide {}, size {})", Millis(slide), Millis(size))?,
            WindowKind::Cumulate { step, max_size } => {
                write!(f, "CUMULATE(step {}, max size {})", Millis(step), Millis(max_size))?
            }
        }
        if self.local_shift != 0 {
            let sign = if self.local_shift < 0 { "-" } else { "+" };
            write!(f, " on the clock of UTC{sign}{}", Millis(self.local_shift.abs()))?;
            let declared = (self.offset + self.local_shift).rem_euclid(self.slide());
            if declared != 0 {
                write!(f, " offset {}", Millis(declared))?;
            }
        } else if self.offset != 0 {
            write!(f, " offset {}", Millis(self.offset))?;
        }
        if self.emit_only_on_update {
            write!(f, " emitting updated windows only")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumble_alignment_with_negative_offset() {
        let day = 86_400_000;
        let w = WindowSpec::new(WindowKind::Tumble { size: day }, -8 * 3_600_000).unwrap();
        // 2026-01-01T15:59:59.999Z is 23:59:59.999 at UTC+8: the day began at 16:00Z the day before.
        let ts = 1_767_283_199_999;
        assert_eq!(w.slice_start(ts), 1_767_283_200_000 - day);
        assert_eq!(w.last_window_end(ts), 1_767_283_200_000);
    }

    #[test]
    fn negative_timestamps_align_down() {
        let w = WindowSpec::new(WindowKind::Tumble { size: 10 }, 0).unwrap();
        assert_eq!(w.slice_start(-1), -10);
        assert_eq!(w.slice_start(-10), -10);
        assert_eq!(w.slice_start(9), 0);
    }

    #[test]
    fn hop_slices_and_windows() {
        let w = WindowSpec::new(WindowKind::Hop { slide: 4, size: 10 }, 0).unwrap();
        assert_eq!(w.slice_size(), 2);
        assert_eq!(w.slice_start(7), 6);
        // 7 is in windows [0,10) and [4,14): the last ends at 14.
        assert_eq!(w.last_window_end(7), 14);
        // Slice [6,8) is in the windows starting at 0 and 4.
        assert_eq!(w.window_ends_of_slice(6).collect::<Vec<_>>(), vec![10, 14]);
        // Slice [8,10) is in the windows starting at 0, 4 and 8.
        assert_eq!(w.window_ends_of_slice(8).collect::<Vec<_>>(), vec![10, 14, 18]);
        let t = WindowSpec::new(WindowKind::Tumble { size: 10 }, 0).unwrap();
        assert_eq!(t.window_ends_of_slice(20).collect::<Vec<_>>(), vec![30]);
    }

    #[test]
    fn cumulate_slices_and_windows() {
        let w = WindowSpec::new(WindowKind::Cumulate { step: 10, max_size: 30 }, 0).unwrap();
        assert_eq!(w.slice_size(), 10);
        assert_eq!(w.slice_start(45), 40);
        // 45 is in [30,50) and [30,60).
        assert_eq!(w.last_window_end(45), 60);
        assert_eq!(w.window_ends_of_slice(40).collect::<Vec<_>>(), vec![50, 60]);
        assert_eq!(w.window_ends_of_slice(30).collect::<Vec<_>>(), vec![40, 50, 60]);
        assert_eq!(w.window_start(50), 30);
        assert_eq!(w.first_live_slice_after(50), 30);
        assert_eq!(w.first_live_slice_after(60), 60);
        assert!(WindowSpec::new(WindowKind::Cumulate { step: 7, max_size: 30 }, 0).is_err());
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(WindowSpec::new(WindowKind::Tumble { size: 0 }, 0).is_err());
        assert!(WindowSpec::new(WindowKind::Hop { slide: 20, size: 10 }, 0).is_err());
        assert!(WindowSpec::new(WindowKind::Tumble { size: 10 }, 10).is_err());
    }
}
