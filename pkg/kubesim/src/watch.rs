//! Watch streams: replay from a resourceVersion, streaming lists, live events, bookmarks, ERROR 410.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, interval_at, sleep_until};

use crate::error::{Result, SimError, status_object};
use crate::kinds::KindInfo;
use crate::list::ListQuery;
use crate::partial::{META_API_VERSION, Shape};
use crate::sim::Inner;
use crate::store::{Event, EventType};

/// The parsed options of a watch request.
#[derive(Debug, Default, Clone)]
pub struct WatchQuery {
    /// Namespace and selectors (limit/continue are ignored).
    pub scope: ListQuery,
    /// `resourceVersion` (None or "0": start with the current state).
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `sendInitialEvents`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Whole objects, or their metadata only (from the `Accept` header).
    pub shape: Shape,
}

impl WatchQuery {
    fn validate(&self) -> Result<()> {
        let invalid = |m: &str| {
            Err(SimError::Invalid(format!(
                "ListOptions.meta.k8s.io \"\" is invalid: {m}"
            )))
        };
        if self.send_initial_events {
            if self.resource_version_match.as_deref() != Some("NotOlderThan") {
                return invalid(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                );
            }
            if !self.bookmarks {
                return invalid(
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires allowWatchBookmarks=true",
                );
            }
        } else if self.resource_version_match.is_some() {
            return invalid(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            );
        }
        if self.scope.continue_token.is_some() && self.resource_version_match.is_some() {
            return invalid(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
            );
        }
        Ok(())
    }
}

/// One newline-terminated watch event line.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(kind.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buf, object);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}

/// One event line carrying `object` of `info`'s kind (in its version) in `shape`.
fn object_line(info: &KindInfo, kind: &str, object: &Value, shape: Shape) -> Bytes {
    line(kind, &shape.object(&info.as_served(object)))
}

fn bookmark(info: &KindInfo, rv: u64, initial_end: bool, shape: Shape) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = match shape {
        Shape::Full => {
            json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta})
        }
        Shape::Metadata => json!({
            "kind": "PartialObjectMetadata", "apiVersion": META_API_VERSION, "metadata": meta,
        }),
    };
    line("BOOKMARK", &object)
}

/// The ERROR event sent for a resourceVersion older than the retained history.
fn expired_line(requested: u64, oldest: u64) -> Bytes {
    let mut status = status_object(
        410,
        "Expired",
        &format!("too old resource version: {requested} ({oldest})"),
    );
    status["details"] = json!({});
    line("ERROR", &status)
}

/// What one event looks like to a watcher with this query's scope (selector transitions as in
/// `cache_watcher.go`) and shape.
fn convert(info: &KindInfo, q: &WatchQuery, ev: &Event) -> Option<Bytes> {
    let (scope, shape) = (&q.scope, q.shape);
    let now = scope.matches(&ev.object);
    match ev.kind {
        EventType::Added => now.then(|| object_line(info, "ADDED", &ev.object, shape)),
        EventType::Deleted => now.then(|| object_line(info, "DELETED", &ev.object, shape)),
        EventType::Modified => {
            let before = ev.prev.as_ref().is_some_and(|p| scope.matches(p));
            match (before, now) {
                (true, true) => Some(object_line(info, "MODIFIED", &ev.object, shape)),
                (false, true) => Some(object_line(info, "ADDED", &ev.object, shape)),
                (true, false) => {
                    let mut last = ev.prev.as_deref().cloned().unwrap_or(Value::Null);
                    if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.insert("resourceVersion".into(), json!(ev.rv.to_string()));
                    }
                    Some(object_line(info, "DELETED", &last, shape))
                }
                (false, false) => None,
            }
        }
    }
}

/// Starts a watch; returns the receiving end of its body lines.
///
/// # Errors
/// 422 for invalid options, 400 for a malformed resourceVersion. A too-old resourceVersion is not an
/// error here: the stream carries one ERROR 410 event and ends.
pub(crate) fn start(
    inner: &Arc<Inner>,
    info: &'static KindInfo,
    q: WatchQuery,
) -> Result<mpsc::Receiver<Bytes>> {
    q.validate()?;
    let requested = match q.resource_version.as_deref() {
        None | Some("" | "0") => None,
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| SimError::BadRequest(format!("invalid resource version: {r}")))?,
        ),
    };
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let (rx, floor, cancel) = {
        let state = inner.state.lock();
        let ks = state.kind(info)?;
        if let Some(x) = requested.filter(|_| !q.send_initial_events) {
            if x < ks.compacted_rv {
                first.push(expired_line(x, ks.compacted_rv));
                drop(state);
                tokio::spawn(async move {
                    for l in first {
                        if out_tx.send(l).await.is_err() {
                            break;
                        }
                    }
                });
                return Ok(out_rx);
            }
            first.extend(
                ks.history
                    .iter()
                    .filter(|e| e.rv > x)
                    .filter_map(|e| convert(info, &q, e)),
            );
        } else {
            first.extend(
                ks.objects
                    .values()
                    .filter(|o| q.scope.matches(o))
                    .map(|o| object_line(info, "ADDED", o, q.shape)),
            );
            if q.send_initial_events {
                first.push(bookmark(info, state.rv, true, q.shape));
            }
        }
        (ks.tx.subscribe(), state.rv, state.watch_cancel.clone())
    };
    let timeout = q.timeout.unwrap_or(inner.config.default_watch_timeout);
    let task = WatchTask {
        inner: inner.clone(),
        info,
        q,
        rx,
        floor,
        cancel,
        out: out_tx,
    };
    tokio::spawn(task.run(first, Instant::now() + timeout));
    Ok(out_rx)
}

struct WatchTask {
    inner: Arc<Inner>,
    info: &'static KindInfo,
    q: WatchQuery,
    rx: broadcast::Receiver<Arc<Event>>,
    floor: u64,
    cancel: tokio_util::sync::CancellationToken,
    out: mpsc::Sender<Bytes>,
}

impl WatchTask {
    async fn send(&self, l: Bytes) -> bool {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => false,
            r = self.out.send(l) => r.is_ok(),
        }
    }

    /// Drains pending events and returns them plus a bookmark at the current RV, or None if cancelled.
    fn bookmark_batch(&mut self) -> Option<Vec<Bytes>> {
        let mut batch = Vec::new();
        let rv = {
            let state = self.inner.state.lock();
            // Every event <= state.rv is already in the channel (sent under this lock).
            loop {
                match self.rx.try_recv() {
                    Ok(ev) if ev.rv > self.floor => batch.extend(convert(self.info, &self.q, &ev)),
                    Ok(_) => {}
                    Err(broadcast::error::TryRecvError::Lagged(_)) => return None,
                    Err(_) => break,
                }
            }
            if self.cancel.is_cancelled() {
                return None;
            }
            state.rv
        };
        self.floor = self.floor.max(rv);
        batch.push(bookmark(self.info, rv, false, self.q.shape));
        Some(batch)
    }

    async fn run(mut self, first: Vec<Bytes>, deadline: Instant) {
        for l in first {
            if !self.send(l).await {
                return;
            }
        }
        let period = self
            .inner
            .config
            .bookmark_interval
            .max(Duration::from_millis(10));
        let mut ticks = interval_at(Instant::now() + period, period);
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                () = self.out.closed() => return,
                () = sleep_until(deadline) => {
                    if self.q.bookmarks
                        && let Some(batch) = self.bookmark_batch() {
                            for l in batch {
                                if !self.send(l).await {
                                    return;
                                }
                            }
                        }
                    return;
                }
                _ = ticks.tick(), if self.q.bookmarks => {
                    let Some(batch) = self.bookmark_batch() else { return };
                    for l in batch {
                        if !self.send(l).await {
                            return;
                        }
                    }
                }
                r = self.rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv > self.floor
                            && let Some(l) = convert(self.info, &self.q, &ev)
                                && !self.send(l).await {
                                    return;
                                }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too slow to keep up: make the client relist, as the real server would.
                        let _ = self.send(expired_line(self.floor, self.floor)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    }
}
