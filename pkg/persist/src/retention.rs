//! [`HistoryRetention`]: which snapshot checkpoints a log keeps when a snapshot is committed,
//! so that every point of the log inside retention can still be materialised.

use std::time::Duration;

use crate::log::SnapshotMeta;

/// How much history a log keeps: its checkpoints (retained snapshots) and the changes after the
/// oldest of them.
///
/// A point of the log is inside retention when it is at most `max_age` old and at most
/// `max_changes` behind the newest checkpoint's covered sequence. A checkpoint is dropped only
/// when the next newer checkpoint is itself outside retention: every point inside retention
/// then still has a checkpoint at or before it. The committed and the previous generation are
/// always kept (recovery falls back to the previous one), so the default, which keeps nothing
/// for history, keeps exactly those two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryRetention {
    /// How far back in time history reaches.
    pub max_age: Duration,
    /// How many changes behind the newest checkpoint history reaches.
    pub max_changes: u64,
}

impl HistoryRetention {
    /// Whether a checkpoint is inside retention, given the newest covered sequence and the
    /// current time (Unix milliseconds).
    #[must_use]
    pub fn covers(&self, checkpoint: &SnapshotMeta, newest_seq: u64, now_ms: i64) -> bool {
        let max_age_ms = i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
        let young = checkpoint.created_at_ms >= now_ms.saturating_sub(max_age_ms);
        let recent = newest_seq.saturating_sub(checkpoint.covered_seq) <= self.max_changes;
        young && recent
    }

    /// Splits `checkpoints` (ordered by `covered_seq` ascending, the committed one last) into
    /// the ones to keep and the ones to drop at `now_ms`. Both keep that order.
    #[must_use]
    pub fn select(
        &self,
        checkpoints: Vec<SnapshotMeta>,
        now_ms: i64,
    ) -> (Vec<SnapshotMeta>, Vec<SnapshotMeta>) {
        let newest = checkpoints.last().map_or(0, |m| m.covered_seq);
        // The committed and the previous generation are always kept.
        let always = checkpoints.len().saturating_sub(2);
        let drop: Vec<bool> = (0..checkpoints.len())
            .map(|i| i < always && !self.covers(&checkpoints[i + 1], newest, now_ms))
            .collect();
        let mut keep = Vec::with_capacity(checkpoints.len());
        let mut dropped = Vec::new();
        for (meta, drop) in checkpoints.into_iter().zip(drop) {
            if drop {
                dropped.push(meta);
            } else {
                keep.push(meta);
            }
        }
        (keep, dropped)
    }
}

/// The sequence up to which the stream may be trimmed: the oldest retained checkpoint's
/// covered sequence (`checkpoints` ordered ascending), and nothing (`0`) while fewer than two
/// checkpoints exist, so a damaged committed snapshot always has a fallback.
#[must_use]
pub fn trim_limit(checkpoints: &[SnapshotMeta]) -> u64 {
    match checkpoints {
        [] | [_] => 0,
        all => all.iter().map(|m| m.covered_seq).min().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::entry_id;
    use crate::log::SNAPSHOT_FORMAT;

    fn meta(generation: u64, covered_seq: u64, created_at_ms: i64) -> SnapshotMeta {
        SnapshotMeta {
            taken_at_ms: 0,
            format: SNAPSHOT_FORMAT,
            generation,
            chunks: 1,
            covered_seq,
            stream_id: entry_id(covered_seq),
            created_at_ms,
            resource_count: 0,
            bytes: 0,
            raw_bytes: 0,
            checksum: 0,
        }
    }

    fn kept(retention: HistoryRetention, all: &[SnapshotMeta], now: i64) -> Vec<u64> {
        let (keep, dropped) = retention.select(all.to_vec(), now);
        assert_eq!(keep.len() + dropped.len(), all.len());
        keep.iter().map(|m| m.generation).collect()
    }

    #[test]
    fn the_default_keeps_the_committed_and_the_previous_generation() {
        let all = [
            meta(1, 10, 0),
            meta(2, 20, 0),
            meta(3, 30, 0),
            meta(4, 40, 0),
        ];
        assert_eq!(kept(HistoryRetention::default(), &all, 0), vec![3, 4]);
        assert_eq!(kept(HistoryRetention::default(), &all[..1], 0), vec![1]);
    }

    #[test]
    fn a_checkpoint_goes_only_when_the_next_newer_one_is_outside_retention() {
        let all = [
            meta(1, 100, 1_000),
            meta(2, 200, 2_000),
            meta(3, 300, 3_000),
            meta(4, 400, 4_000),
            meta(5, 500, 5_000),
        ];
        // By changes: points from 500 - 250 = 250 on are inside; 250 lies between 200 and
        // 300, so 2 is still needed and 1 is not.
        let by_changes = HistoryRetention {
            max_age: Duration::from_secs(3600),
            max_changes: 250,
        };
        assert_eq!(kept(by_changes, &all, 5_000), vec![2, 3, 4, 5]);
        // By age: points from 5_000 - 1_500 = 3_500 ms on are inside; 3 covers up to 400.
        let by_age = HistoryRetention {
            max_age: Duration::from_millis(1_500),
            max_changes: u64::MAX,
        };
        assert_eq!(kept(by_age, &all, 5_000), vec![3, 4, 5]);
        // Both bounds apply: the tighter one wins.
        let both = HistoryRetention {
            max_age: Duration::from_millis(2_500),
            max_changes: 50,
        };
        assert_eq!(kept(both, &all, 5_000), vec![4, 5]);
        let everything = HistoryRetention {
            max_age: Duration::from_secs(3600),
            max_changes: u64::MAX,
        };
        assert_eq!(kept(everything, &all, 5_000), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_stream_is_trimmed_behind_the_oldest_kept_checkpoint_only() {
        assert_eq!(trim_limit(&[]), 0);
        assert_eq!(trim_limit(&[meta(1, 10, 0)]), 0);
        assert_eq!(trim_limit(&[meta(1, 10, 0), meta(2, 20, 0)]), 10);
        assert_eq!(
            trim_limit(&[meta(1, 10, 0), meta(2, 20, 0), meta(3, 30, 0)]),
            10
        );
    }
}
