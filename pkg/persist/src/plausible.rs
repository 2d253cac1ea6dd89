//! The plausible range of change sequences: the bound past which a stream entry cannot have
//! been written by this design, and is corrupt (see `docs/adr/0013-plausible-sequences-and-two-snapshot-generations.md`).
//!
//! A history's sequences either run densely from 1 or start at an epoch base
//! `unix_millis × 1000` and then grow by one per change. Unless a run sustained more than a
//! million changes per second for its whole life (which the epoch scheme already rules out),
//! every sequence it wrote is at most `unix_millis × 1000` of the moment it wrote it. The
//! ceiling adds a day of clock skew between writers on top of the reader's clock, and never uses
//! a clock earlier than [`CLOCK_FLOOR_MS`] (a clock reset to 1970 must not make real entries look
//! corrupt). With today's clocks the ceiling is about 1.8 × 10^15, far below `u64::MAX`
//! (1.8 × 10^19): a sequence at or below it can never wrap.

use astrolabe_model::now_ms;

use crate::log::SetAside;
use crate::metrics::PersistMetrics;

/// Clock skew allowed between the writer of an entry and its reader: one day, in milliseconds.
pub const CLOCK_SKEW_MS: u64 = 24 * 60 * 60 * 1000;
/// The earliest clock reading trusted for the ceiling: 2026-01-01T00:00:00Z, in milliseconds.
pub const CLOCK_FLOOR_MS: u64 = 1_767_225_600_000;
/// Sequences an epoch base allows per millisecond (the epoch base is `unix_millis × 1000`).
const SEQ_PER_MS: u64 = 1000;

/// The highest plausible sequence when the clock reads `now_ms` (Unix milliseconds):
/// `(max(now_ms, CLOCK_FLOOR_MS) + CLOCK_SKEW_MS) × 1000`.
#[must_use]
pub fn seq_ceiling(now_ms: i64) -> u64 {
    u64::try_from(now_ms)
        .unwrap_or(0)
        .max(CLOCK_FLOOR_MS)
        .saturating_add(CLOCK_SKEW_MS)
        .saturating_mul(SEQ_PER_MS)
}

/// [`seq_ceiling`] for the current time.
#[must_use]
pub fn seq_ceiling_now() -> u64 {
    seq_ceiling(now_ms())
}

/// Count and log, loudly, a stream whose top `top` was above `ceiling` and that was set aside
/// ([`crate::EventLog::set_aside_beyond`]): the sequence continues from its last plausible
/// entry.
pub(crate) fn set_aside_reported(
    metrics: &PersistMetrics,
    aside: &SetAside,
    top: u64,
    ceiling: u64,
) {
    metrics.streams_set_aside.inc();
    tracing::error!(
        top,
        ceiling,
        set_aside_to = %aside.key,
        beyond = aside.entries,
        kept = aside.kept,
        "event stream top is beyond any plausible sequence: the stream was renamed and its plausible entries written back; the sequence continues from the last plausible one"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_a_day_of_epoch_bases_ahead_of_the_clock() {
        let now = 1_800_000_000_000_i64;
        assert_eq!(seq_ceiling(now), (1_800_000_000_000 + CLOCK_SKEW_MS) * 1000);
        // An epoch base taken now, and a million changes per second after it, stay below.
        assert!(1_800_000_000_000 * 1000 + 86_400 * 1_000_000 <= seq_ceiling(now));
    }

    #[test]
    fn a_clock_before_the_floor_does_not_lower_the_ceiling() {
        assert_eq!(seq_ceiling(0), seq_ceiling(-5));
        assert_eq!(seq_ceiling(0), (CLOCK_FLOOR_MS + CLOCK_SKEW_MS) * 1000);
    }

    #[test]
    fn the_ceiling_leaves_room_below_wraparound() {
        let ceiling = seq_ceiling(i64::MAX);
        assert_eq!(ceiling, u64::MAX);
        // Today's ceiling is four orders of magnitude below u64::MAX.
        assert!(seq_ceiling_now() < u64::MAX / 10_000);
        assert!(18_446_744_073_709_551_000 > seq_ceiling_now());
    }
}
