//! Prometheus metrics of the persistence layer (`astrolabe_persist_*`), registered into a
//! registry the caller owns.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::error::{KeyRole, PersistError, Result};

/// All persistence metrics. Cheap to clone (each metric is reference counted).
#[derive(Clone, Debug)]
pub struct PersistMetrics {
    /// Changes appended (acknowledged by Redis), including ones found already present.
    pub appended_changes: IntCounter,
    /// Batches appended.
    pub batches: IntCounter,
    /// Changes per batch.
    pub batch_size: Histogram,
    /// Duration of one batch append round trip.
    pub append_seconds: Histogram,
    /// Changes waiting in the writer's channel and buffer.
    pub queue_depth: IntGauge,
    /// Redis errors by operation.
    pub redis_errors: IntCounterVec,
    /// 1 while a key of the store holds another Redis type (WRONGTYPE), by key role
    /// ([`KeyRole::label`]): set by [`PersistMetrics::redis_error`], cleared by the next success
    /// on that key ([`PersistMetrics::key_ok`]).
    pub damaged_keys: IntGaugeVec,
    /// 1 while the log is diverged (changes dropped, snapshot pending), else 0.
    pub diverged: IntGauge,
    /// Changes the producer could not queue (each one makes the log diverge).
    pub dropped_changes: IntCounter,
    /// Duration of a snapshot (take + compress + upload + commit).
    pub snapshot_seconds: Histogram,
    /// Compressed size of the last committed snapshot.
    pub snapshot_bytes: IntGauge,
    /// Unix time (seconds) of the last committed snapshot.
    pub snapshot_last_success: Gauge,
    /// Changes (and defective stream entries) replayed during recovery.
    pub replayed_entries: IntCounter,
    /// Corrupt changes or stream entries skipped during recovery.
    pub corrupt_entries: IntCounter,
    /// Changes read during recovery but not decoded, because a later change to the same object
    /// superseded them (see [`crate::Decoder::change_key`]).
    pub superseded_entries: IntCounter,
    /// Committed snapshots refused during recovery (corrupt or of an unknown format).
    pub refused_snapshots: IntCounter,
    /// Event streams set aside by recovery because their top was beyond any plausible sequence
    /// (see [`crate::plausible`]).
    pub streams_set_aside: IntCounter,
    /// Duration of recovery.
    pub recovery_seconds: Histogram,
    /// Recoveries that fell back after refusing the committed snapshot, by what they used
    /// (`source`: see [`crate::recovery::Fallback::as_str`]).
    pub recovery_fallbacks: IntCounterVec,
    /// Snapshots not committed because they would have shrunk the persisted state before the
    /// graph was complete (see [`crate::snapshotter::ShrinkGuard`]).
    pub skipped_snapshots: IntCounter,
}

fn counter(name: &str, help: &str) -> Result<IntCounter> {
    IntCounter::new(name, help).map_err(PersistError::Metrics)
}

fn gauge(name: &str, help: &str) -> Result<IntGauge> {
    IntGauge::new(name, help).map_err(PersistError::Metrics)
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .map_err(PersistError::Metrics)
}

impl PersistMetrics {
    /// Create the metrics without registering them (tests, or when metrics are off).
    ///
    /// # Errors
    /// [`PersistError::Metrics`] only if a metric definition is invalid.
    pub fn unregistered() -> Result<Self> {
        let seconds =
            prometheus::exponential_buckets(0.0005, 2.0, 16).map_err(PersistError::Metrics)?;
        let slow = prometheus::exponential_buckets(0.01, 2.0, 14).map_err(PersistError::Metrics)?;
        let sizes = prometheus::exponential_buckets(1.0, 2.0, 14).map_err(PersistError::Metrics)?;
        Ok(Self {
            appended_changes: counter(
                "astrolabe_persist_appended_changes_total",
                "Changes acknowledged by Redis.",
            )?,
            batches: counter(
                "astrolabe_persist_batches_total",
                "Batches appended to Redis.",
            )?,
            batch_size: histogram(
                "astrolabe_persist_batch_size",
                "Changes per appended batch.",
                sizes,
            )?,
            append_seconds: histogram(
                "astrolabe_persist_append_seconds",
                "Duration of one pipelined batch append.",
                seconds,
            )?,
            queue_depth: gauge(
                "astrolabe_persist_queue_depth",
                "Changes queued for the writer and not yet acknowledged.",
            )?,
            redis_errors: IntCounterVec::new(
                Opts::new(
                    "astrolabe_persist_redis_errors_total",
                    "Redis errors by operation.",
                ),
                &["op"],
            )
            .map_err(PersistError::Metrics)?,
            damaged_keys: IntGaugeVec::new(
                Opts::new(
                    "astrolabe_persist_damaged_key",
                    "1 while a key of the store holds another Redis type (WRONGTYPE), by key role.",
                ),
                &["key"],
            )
            .map_err(PersistError::Metrics)?,
            diverged: gauge(
                "astrolabe_persist_diverged",
                "1 while changes were dropped and no snapshot has superseded the log yet.",
            )?,
            dropped_changes: counter(
                "astrolabe_persist_dropped_changes_total",
                "Changes the writer's channel could not accept.",
            )?,
            snapshot_seconds: histogram(
                "astrolabe_persist_snapshot_seconds",
                "Duration of a snapshot (take, compress, upload, commit).",
                slow.clone(),
            )?,
            snapshot_bytes: gauge(
                "astrolabe_persist_snapshot_bytes",
                "Compressed size of the last committed snapshot.",
            )?,
            snapshot_last_success: Gauge::new(
                "astrolabe_persist_snapshot_last_success_timestamp_seconds",
                "Unix time of the last committed snapshot.",
            )
            .map_err(PersistError::Metrics)?,
            replayed_entries: counter(
                "astrolabe_persist_replayed_entries_total",
                "Changes (and defective stream entries) replayed during recovery.",
            )?,
            corrupt_entries: counter(
                "astrolabe_persist_corrupt_entries_total",
                "Corrupt changes or stream entries skipped during recovery.",
            )?,
            superseded_entries: counter(
                "astrolabe_persist_superseded_entries_total",
                "Changes read during recovery but not replayed: a later change to the same object superseded them.",
            )?,
            refused_snapshots: counter(
                "astrolabe_persist_refused_snapshots_total",
                "Committed snapshots refused during recovery (corrupt or of an unknown format).",
            )?,
            streams_set_aside: counter(
                "astrolabe_persist_streams_set_aside_total",
                "Event streams set aside by recovery: their top was beyond any plausible sequence.",
            )?,
            recovery_seconds: histogram(
                "astrolabe_persist_recovery_seconds",
                "Duration of recovery (snapshot load and replay).",
                slow,
            )?,
            recovery_fallbacks: IntCounterVec::new(
                Opts::new(
                    "astrolabe_persist_recovery_fallbacks_total",
                    "Recoveries that refused the committed snapshot, by what they used instead.",
                ),
                &["source"],
            )
            .map_err(PersistError::Metrics)?,
            skipped_snapshots: counter(
                "astrolabe_persist_skipped_snapshots_total",
                "Snapshots not committed: taken before the graph was complete, they would have shrunk the persisted state.",
            )?,
        })
    }

    /// Create the metrics and register them into `registry`.
    ///
    /// # Errors
    /// [`PersistError::Metrics`] if a metric with the same name is already registered.
    pub fn register(registry: &Registry) -> Result<Self> {
        let m = Self::unregistered()?;
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.appended_changes.clone()),
            Box::new(m.batches.clone()),
            Box::new(m.batch_size.clone()),
            Box::new(m.append_seconds.clone()),
            Box::new(m.queue_depth.clone()),
            Box::new(m.redis_errors.clone()),
            Box::new(m.damaged_keys.clone()),
            Box::new(m.diverged.clone()),
            Box::new(m.dropped_changes.clone()),
            Box::new(m.snapshot_seconds.clone()),
            Box::new(m.snapshot_bytes.clone()),
            Box::new(m.snapshot_last_success.clone()),
            Box::new(m.replayed_entries.clone()),
            Box::new(m.corrupt_entries.clone()),
            Box::new(m.superseded_entries.clone()),
            Box::new(m.refused_snapshots.clone()),
            Box::new(m.streams_set_aside.clone()),
            Box::new(m.recovery_seconds.clone()),
            Box::new(m.recovery_fallbacks.clone()),
            Box::new(m.skipped_snapshots.clone()),
        ];
        for c in collectors {
            registry.register(c).map_err(PersistError::Metrics)?;
        }
        Ok(m)
    }

    /// Count a Redis error under its operation label; a key of the wrong type marks it damaged.
    pub fn redis_error(&self, err: &PersistError) {
        self.redis_errors.with_label_values(&[err.op()]).inc();
        if let Some(role) = err.wrong_type_key() {
            self.damaged_keys.with_label_values(&[role.label()]).set(1);
        }
    }

    /// An operation on the key of `role` succeeded: it is no longer damaged.
    pub fn key_ok(&self, role: KeyRole) {
        self.set_damaged(role, false);
    }

    /// Whether the key of `role` holds another Redis type, as a check of the key's type found.
    pub fn set_damaged(&self, role: KeyRole, damaged: bool) {
        self.damaged_keys
            .with_label_values(&[role.label()])
            .set(i64::from(damaged));
    }

    /// Whether the key of `role` was last seen holding another Redis type.
    #[must_use]
    pub fn is_damaged(&self, role: KeyRole) -> bool {
        self.damaged_keys.with_label_values(&[role.label()]).get() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once() {
        let registry = Registry::new();
        assert!(PersistMetrics::register(&registry).is_ok());
        assert!(PersistMetrics::register(&registry).is_err());
    }
}
