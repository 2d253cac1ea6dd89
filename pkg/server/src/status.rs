//! What persistence tells readiness: where the graph came from ([`Origin`]) and the state of
//! Redis and the log ([`PersistStatus`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use astrolabe_api::PersistenceReadiness;
use astrolabe_graph::now_ms;
use astrolabe_model::Change;
use astrolabe_persist::{ChangeSender, Fallback, KeyRole, Keys, PersistMetrics};

use crate::health::{LastPingFailure, PingFailure};

/// What recovery gave the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from Redis (snapshot and/or stream).
    Recovered,
    /// Nothing persisted yet (empty Redis), or persistence off.
    Fresh,
    /// Redis did not answer: started empty; a full snapshot supersedes the old log once it does.
    Unreachable,
}

/// Persistence state shared with readiness.
#[derive(Clone)]
pub struct PersistStatus {
    pub(crate) connected: Arc<AtomicBool>,
    pub(crate) ping_failure: Arc<LastPingFailure>,
    pub(crate) sender: ChangeSender<Change>,
    pub(crate) metrics: PersistMetrics,
    pub(crate) origin: Origin,
    /// Damage recovery found in the store and worked around (named in every report).
    pub(crate) damage: Option<String>,
    /// The store's keys, to name a damaged one.
    pub(crate) keys: Keys,
    /// What recovery fell back to when it refused the committed snapshot.
    pub(crate) fallback: Option<Fallback>,
}

impl PersistStatus {
    /// Readiness detail.
    pub fn report(&self) -> PersistenceReadiness {
        let last = self.metrics.snapshot_last_success.get();
        let connected = self.connected.load(Ordering::Acquire);
        let diverged = self.sender.is_diverged();
        // Why Redis does not answer: refused credentials are named as such, else the error.
        let down = || {
            self.ping_failure
                .get()
                .map_or_else(|| "redis unreachable".to_owned(), |f| f.to_string())
        };
        // Divergence first: it says changes are missing from the log, whatever the connection.
        let state = match (connected, diverged, self.origin) {
            (false, true, _) => Some(format!(
                "log diverged: a full snapshot is pending ({}, serving from memory)",
                down()
            )),
            (true, true, _) => Some("log diverged: a full snapshot is pending".to_owned()),
            (false, false, _) => Some(match self.ping_failure.get() {
                Some(PingFailure::Refused(refused)) => {
                    format!("{refused}; serving from memory, buffering changes")
                }
                Some(down) => format!("{down}: serving from memory, buffering changes"),
                None => "redis unreachable: serving from memory, buffering changes".to_owned(),
            }),
            (true, false, Origin::Unreachable) if last <= 0.0 => Some(
                "redis was down at start: a full snapshot will supersede the old log".to_owned(),
            ),
            _ => None,
        };
        let detail = [state, self.fallback_detail(last > 0.0), self.damage.clone()]
            .into_iter()
            .chain(KeyRole::ALL.into_iter().map(|role| self.wrong_type(role)))
            .flatten()
            .reduce(|a, b| format!("{a}; {b}"));
        PersistenceReadiness {
            enabled: true,
            connected,
            diverged,
            last_snapshot_age_seconds: (last > 0.0)
                .then(|| (now_ms() as f64 / 1000.0 - last).max(0.0)),
            detail,
        }
    }

    /// The readiness detail for a key of `role` holding another Redis type, naming it.
    fn wrong_type(&self, role: KeyRole) -> Option<String> {
        if !self.metrics.is_damaged(role) {
            return None;
        }
        Some(match role {
            KeyRole::Events => format!(
                "damaged store: key {} holds another redis type (WRONGTYPE); changes are not persisted until it is removed or renamed",
                self.keys.events()
            ),
            KeyRole::Snapshot => format!(
                "damaged store: key {} holds another redis type (WRONGTYPE); snapshots are not written until it is removed or renamed",
                self.keys.snapshot_meta()
            ),
            KeyRole::PreviousSnapshot => format!(
                "damaged store: key {} holds another redis type (WRONGTYPE); no previous generation is kept and the stream is not trimmed until it is removed or renamed",
                self.keys.previous_meta()
            ),
        })
    }

    /// That recovery refused the committed snapshot at start, what it used instead, and
    /// whether a snapshot this process committed has `replaced` it.
    fn fallback_detail(&self, replaced: bool) -> Option<String> {
        let used = match self.fallback? {
            Fallback::PreviousSnapshot => "recovered from the previous generation and the stream",
            Fallback::WholeStream => "recovered from the whole stream",
            Fallback::Nothing => "nothing else was complete: started empty",
        };
        let now = if replaced {
            "a fresh snapshot has replaced it"
        } else {
            "a fresh snapshot is pending"
        };
        Some(format!(
            "the committed snapshot was refused at start; {used}; {now}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use astrolabe_persist::{RedisConfig, RedisLog, SnapshotBlob, Writer, WriterConfig};
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// A status whose log is diverged: the writer stopped, so the next change is dropped.
    async fn diverged_status(connected: bool) -> PersistStatus {
        let log = RedisLog::new(&RedisConfig::from_url("redis://127.0.0.1:1", "status").unwrap())
            .unwrap();
        let metrics = PersistMetrics::unregistered().unwrap();
        let source = Arc::new(|| -> astrolabe_persist::Result<SnapshotBlob> {
            Err(astrolabe_persist::PersistError::WriterStopped)
        });
        let cancel = CancellationToken::new();
        let (sender, writer) = Writer::<_, _, Change>::spawn(
            log,
            source,
            WriterConfig::default(),
            metrics.clone(),
            cancel.clone(),
        );
        cancel.cancel();
        writer.join().await.unwrap();
        let pod = astrolabe_model::Resource::new("u", astrolabe_model::Kind::Pod, "ns", "p");
        let change = astrolabe_graph::Graph::new().upsert(pod).unwrap();
        sender.send(change);
        assert!(sender.is_diverged());
        PersistStatus {
            connected: Arc::new(AtomicBool::new(connected)),
            ping_failure: Arc::default(),
            sender,
            metrics,
            origin: Origin::Recovered,
            damage: None,
            keys: Keys::new("status").unwrap(),
            fallback: None,
        }
    }

    #[tokio::test]
    async fn a_diverged_log_is_reported_as_diverged_while_redis_is_unreachable() {
        let report = diverged_status(false).await.report();
        assert!(report.diverged && !report.connected);
        let detail = report.detail.unwrap();
        assert!(detail.starts_with("log diverged"), "{detail}");
    }

    #[tokio::test]
    async fn damage_is_named_alongside_the_state() {
        let mut status = diverged_status(true).await;
        status.damage = Some("damaged store: key k".to_owned());
        let detail = status.report().detail.unwrap();
        assert_eq!(
            detail,
            "log diverged: a full snapshot is pending; damaged store: key k"
        );
    }

    #[tokio::test]
    async fn a_fallback_is_reported_until_a_fresh_snapshot_replaced_it() {
        let mut status = diverged_status(true).await;
        status.fallback = Some(Fallback::PreviousSnapshot);
        let detail = status.report().detail.unwrap();
        assert!(
            detail.ends_with(
                "the committed snapshot was refused at start; recovered from the previous generation and the stream; a fresh snapshot is pending"
            ),
            "{detail}"
        );
        status.metrics.snapshot_last_success.set(1.0);
        let detail = status.report().detail.unwrap();
        assert!(
            detail.ends_with("a fresh snapshot has replaced it"),
            "{detail}"
        );
    }
}
