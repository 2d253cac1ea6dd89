//! The change stream of a server that writes the log carries only changes the log holds.
//!
//! Event ids are change sequences, and a client resumes with one on any replica or after a
//! restart ([`astrolabe_api::feed`]). A sequence names the same change everywhere only once
//! the log has it: a leader that dies (or a server that crashes) before appending a change
//! leaves it out of the log, and the next writer gives its sequence to another change. So a
//! writing server hands its graph events to [`Publisher::publish`], which holds them until the
//! writer acknowledges their changes ([`astrolabe_persist::WriterHandle::acked_seq`]) and then
//! publishes them. Followers publish what they read from the log directly. A server without
//! persistence publishes at once (its sequences are its own).
//!
//! While the log does not acknowledge (Redis down), events wait, at most as many as the feed
//! retains; past that they are dropped and the feed jumps past them, so that its clients
//! re-read the state instead of missing changes.

use std::collections::VecDeque;

use astrolabe_api::ChangeFeed;
use astrolabe_graph::GraphEvent;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where the apply loop's graph events go.
#[derive(Clone, Debug)]
pub enum Publisher {
    /// Straight to the feed.
    Now(ChangeFeed),
    /// To the task that publishes them once durable.
    Durable(mpsc::UnboundedSender<Vec<GraphEvent>>),
}

impl Publisher {
    /// Publishes `events` (whole changes, in order), at once or once their changes are durable.
    pub fn publish(&self, events: Vec<GraphEvent>) {
        match self {
            Publisher::Now(feed) => feed.publish(events),
            Publisher::Durable(tx) => {
                // The task ends only with the writer (the process is stopping).
                let _ = tx.send(events);
            }
        }
    }

    /// A publisher that holds events until `acked` covers their changes, publishing to `feed`
    /// and holding at most `max_held` events; stops with `stop` or when the writer ends.
    #[must_use]
    pub fn durable(
        feed: ChangeFeed,
        acked: watch::Receiver<u64>,
        max_held: usize,
        stop: CancellationToken,
    ) -> Publisher {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(hold_until_durable(feed, acked, rx, max_held.max(1), stop));
        Publisher::Durable(tx)
    }
}

async fn hold_until_durable(
    feed: ChangeFeed,
    mut acked: watch::Receiver<u64>,
    mut rx: mpsc::UnboundedReceiver<Vec<GraphEvent>>,
    max_held: usize,
    stop: CancellationToken,
) {
    let mut held: VecDeque<GraphEvent> = VecDeque::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            events = rx.recv() => match events {
                Some(events) => held.extend(events),
                None => return,
            },
            changed = acked.changed() => if changed.is_err() {
                return;
            },
        }
        let durable = *acked.borrow_and_update();
        let ready = held.partition_point(|e| e.seq <= durable);
        if ready > 0 {
            feed.publish(held.drain(..ready).collect());
        }
        if held.len() > max_held
            && let Some(last) = held.back().map(|e| e.seq)
        {
            tracing::warn!(
                events = held.len(),
                up_to = last,
                "watch: the log has not acknowledged these changes; their events are dropped \
                 and the change stream's clients re-read the state"
            );
            held.clear();
            feed.jump(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use astrolabe_api::feed::Since;
    use astrolabe_graph::GraphChange;
    use astrolabe_model::{Kind, ObjectKey, Uid};

    use super::*;

    fn event(seq: u64) -> GraphEvent {
        GraphEvent {
            seq,
            ts_ms: 0,
            change: GraphChange::NodeRemoved {
                uid: Uid::from(format!("u{seq}")),
                key: ObjectKey::new(Kind::Pod, "ns", format!("p{seq}")),
            },
        }
    }

    #[tokio::test]
    async fn events_are_published_once_the_log_holds_their_changes() {
        let feed = ChangeFeed::new(100, 16);
        let (acked_tx, acked) = watch::channel(0);
        let publisher = Publisher::durable(feed.clone(), acked, 100, CancellationToken::new());
        let mut live = feed.subscribe_live();
        publisher.publish(vec![event(1), event(1), event(2), event(3)]);
        acked_tx.send_replace(2);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(live.recv().await.map(|e| e.seq()).ok());
        }
        assert_eq!(got, [Some(1), Some(1), Some(2)]);
        assert_eq!(feed.last_seq(), 2, "change 3 is not durable yet");
        acked_tx.send_replace(3);
        assert_eq!(live.recv().await.map(|e| e.seq()).ok(), Some(3));
    }

    #[tokio::test]
    async fn past_the_bound_the_held_events_go_and_the_feed_jumps() {
        let feed = ChangeFeed::new(100, 16);
        let (_acked_tx, acked) = watch::channel(0);
        let publisher = Publisher::durable(feed.clone(), acked, 3, CancellationToken::new());
        let sub = feed.subscribe(None, 0, CancellationToken::new());
        publisher.publish((1..=4).map(event).collect());
        sub.cursor.close().cancelled().await;
        assert!(matches!(feed.since(3, 4), Since::TooFarBehind));
        assert_eq!(feed.last_seq(), 4);
    }
}
