//! `InformerMetrics`: Prometheus metrics of the watchers.

use astrolabe_model::Kind;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::select::{Access, Mode};
use crate::status::kind_name;
use crate::{Error, Result};

/// The informers' metrics. Cheap to clone; clones share the series.
#[derive(Clone, Debug)]
pub struct InformerMetrics {
    events: IntCounterVec,
    relists: IntCounterVec,
    watch_restarts: IntCounterVec,
    errors: IntCounterVec,
    last_sync: GaugeVec,
    forbidden: IntGaugeVec,
    retrying: IntGaugeVec,
    watched: IntGaugeVec,
}

impl InformerMetrics {
    /// Creates the metrics and registers them into `registry`.
    ///
    /// # Errors
    /// [`Error::Metrics`] when a metric cannot be registered (already registered, say).
    pub fn new(registry: &Registry) -> Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "astrolabe_informer_events_total",
                "Watch events received, by kind and type (init_apply, apply, delete).",
            ),
            &["kind", "type"],
        )
        .map_err(Error::Metrics)?;
        let relists = IntCounterVec::new(
            Opts::new(
                "astrolabe_informer_relists_total",
                "Lists started (initial list and every relist), by kind.",
            ),
            &["kind"],
        )
        .map_err(Error::Metrics)?;
        let watch_restarts = IntCounterVec::new(
            Opts::new(
                "astrolabe_informer_watch_restarts_total",
                "Watches restarted after an error (failed start, error event, broken stream), by kind.",
            ),
            &["kind"],
        )
        .map_err(Error::Metrics)?;
        let errors = IntCounterVec::new(
            Opts::new(
                "astrolabe_informer_errors_total",
                "Errors from the API server or the connection, by kind and reason.",
            ),
            &["kind", "reason"],
        )
        .map_err(Error::Metrics)?;
        let last_sync = GaugeVec::new(
            Opts::new(
                "astrolabe_informer_last_sync_timestamp_seconds",
                "When the last list of the kind completed, in seconds since the epoch.",
            ),
            &["kind"],
        )
        .map_err(Error::Metrics)?;
        let forbidden = IntGaugeVec::new(
            Opts::new(
                "astrolabe_informer_forbidden",
                "1 while the API server refuses access to the kind (403), else 0.",
            ),
            &["kind"],
        )
        .map_err(Error::Metrics)?;
        let retrying = IntGaugeVec::new(
            Opts::new(
                "astrolabe_informer_retrying",
                "1 while the kind's watcher retries after errors (nothing succeeded since), else 0.",
            ),
            &["kind"],
        )
        .map_err(Error::Metrics)?;
        let watched = IntGaugeVec::new(
            Opts::new(
                "astrolabe_informer_kind_watched",
                "1 for each kind read, by kind, mode (typed, metadata, full) and access (watch, \
                 or poll: listed periodically past the watch cap).",
            ),
            &["kind", "mode", "access"],
        )
        .map_err(Error::Metrics)?;
        for c in [&events, &relists, &watch_restarts, &errors] {
            registry
                .register(Box::new(c.clone()))
                .map_err(Error::Metrics)?;
        }
        registry
            .register(Box::new(last_sync.clone()))
            .map_err(Error::Metrics)?;
        for g in [&forbidden, &retrying, &watched] {
            registry
                .register(Box::new(g.clone()))
                .map_err(Error::Metrics)?;
        }
        Ok(InformerMetrics {
            events,
            relists,
            watch_restarts,
            errors,
            last_sync,
            forbidden,
            retrying,
            watched,
        })
    }

    /// Metrics registered into a private registry (for tests and tools).
    pub fn unregistered() -> Self {
        // A fresh registry has no names yet, so registration cannot collide.
        match Self::new(&Registry::new()) {
            Ok(m) => m,
            Err(err) => unreachable!("fresh registry refused informer metrics: {err}"),
        }
    }

    pub(crate) fn event(&self, kind: &Kind, kind_of_event: &str) {
        self.events
            .with_label_values(&[&kind_name(kind), kind_of_event])
            .inc();
    }

    pub(crate) fn relist(&self, kind: &Kind) {
        self.relists.with_label_values(&[&kind_name(kind)]).inc();
    }

    pub(crate) fn watch_restart(&self, kind: &Kind) {
        self.watch_restarts
            .with_label_values(&[&kind_name(kind)])
            .inc();
    }

    pub(crate) fn error(&self, kind: &Kind, reason: &str) {
        self.errors
            .with_label_values(&[&kind_name(kind), reason])
            .inc();
    }

    pub(crate) fn synced(&self, kind: &Kind, at: i64) {
        #[allow(clippy::cast_precision_loss)]
        self.last_sync
            .with_label_values(&[&kind_name(kind)])
            .set(at as f64);
    }

    pub(crate) fn forbidden(&self, kind: &Kind, forbidden: bool) {
        self.forbidden
            .with_label_values(&[&kind_name(kind)])
            .set(i64::from(forbidden));
    }

    /// `kind` is read in `mode` with `access`; `None`: it no longer is (its series go).
    pub(crate) fn watched(&self, kind: &Kind, how: Option<(Mode, Access)>) {
        let name = kind_name(kind);
        for mode in [Mode::Typed, Mode::Metadata, Mode::Full] {
            for access in [Access::Watch, Access::Poll] {
                let labels = [&*name, mode.as_str(), access.as_str()];
                if how == Some((mode, access)) {
                    self.watched.with_label_values(&labels).set(1);
                } else {
                    let _ = self.watched.remove_label_values(&labels);
                }
            }
        }
        if how.is_none() {
            for gauge in [&self.forbidden, &self.retrying] {
                let _ = gauge.remove_label_values(&[&*name]);
            }
        }
    }

    pub(crate) fn retrying(&self, kind: &Kind, retrying: bool) {
        self.retrying
            .with_label_values(&[&kind_name(kind)])
            .set(i64::from(retrying));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn registers_and_exports() {
        let registry = Registry::new();
        let m = InformerMetrics::new(&registry).expect("registers");
        m.event(&Kind::Pod, "apply");
        m.relist(&Kind::Pod);
        m.watch_restart(&Kind::Pod);
        m.error(&Kind::Secret, "forbidden");
        m.synced(&Kind::Pod, 1_700_000_000);
        m.forbidden(&Kind::Secret, true);
        m.retrying(&Kind::Pod, true);
        m.watched(&Kind::Pod, Some((Mode::Typed, Access::Watch)));
        let cert = Kind::other("cert-manager.io", "Certificate");
        m.watched(&cert, Some((Mode::Metadata, Access::Watch)));
        m.watched(&cert, Some((Mode::Metadata, Access::Poll)));
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .expect("encodes");
        let text = String::from_utf8(buf).expect("utf-8");
        for name in [
            "astrolabe_informer_events_total{kind=\"Pod\",type=\"apply\"} 1",
            "astrolabe_informer_relists_total{kind=\"Pod\"} 1",
            "astrolabe_informer_watch_restarts_total{kind=\"Pod\"} 1",
            "astrolabe_informer_errors_total{kind=\"Secret\",reason=\"forbidden\"} 1",
            "astrolabe_informer_last_sync_timestamp_seconds{kind=\"Pod\"} 1700000000",
            "astrolabe_informer_forbidden{kind=\"Secret\"} 1",
            "astrolabe_informer_retrying{kind=\"Pod\"} 1",
            "astrolabe_informer_kind_watched{access=\"watch\",kind=\"Pod\",mode=\"typed\"} 1",
            "astrolabe_informer_kind_watched{access=\"poll\",kind=\"Certificate.cert-manager.io\",mode=\"metadata\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        assert!(
            !text.contains("access=\"watch\",kind=\"Certificate"),
            "{text}"
        );
        assert!(InformerMetrics::new(&registry).is_err());
    }
}
