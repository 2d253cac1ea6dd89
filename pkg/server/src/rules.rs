//! The relationship rules: the built-in pack and the user's file, loaded at start (a bad file
//! stops the server with its file, line, rule and reason) and reloaded when the file changes (a
//! bad edit is refused, logged and counted; the rules in force stay).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use astrolabe_informers::config::{RuleHook, Rules, RulesFeed};
use astrolabe_model::{Kind, Resource};

use astrolabe_rules::{ActiveRules, RuleSet, RulesError};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the rule file is read again to see whether it changed. Polling works the same for
/// an edited file and for a ConfigMap volume, whose update swaps a symlink that file-event APIs
/// report unevenly.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Which rules are in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    /// The user's rule file, if any.
    pub file: Option<PathBuf>,
    /// Whether the built-in pack is in force.
    pub builtin: bool,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            file: None,
            builtin: true,
        }
    }
}

/// Why the rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    /// The file could not be read.
    #[error("reading the relation rules {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid rule file.
    #[error("invalid relation rules: {0}")]
    Invalid(#[source] RulesError),
    /// A rule's edge name cannot be declared.
    #[error("invalid relation rules: {0}")]
    Edge(#[source] astrolabe_model::EdgeDeclError),
}

/// The rules of `config` given the file's text (`None`: no file), their edge kinds declared.
///
/// # Errors
/// [`RulesLoadError`] for an invalid file or an undeclarable edge.
pub fn rules_from(config: &RulesConfig, text: Option<&str>) -> Result<RuleSet, RulesLoadError> {
    let builtin = if config.builtin {
        RuleSet::builtin()
    } else {
        RuleSet::default()
    };
    let set = match (text, &config.file) {
        (Some(text), Some(path)) => {
            let user = RuleSet::parse(text, &path.display().to_string())
                .map_err(RulesLoadError::Invalid)?;
            builtin.merge(user).map_err(RulesLoadError::Invalid)?
        }
        _ => builtin,
    };
    set.declare_edges().map_err(RulesLoadError::Edge)?;
    Ok(set)
}

fn read(path: &Path) -> Result<String, RulesLoadError> {
    std::fs::read_to_string(path).map_err(|source| RulesLoadError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads the rules of `config` (at start).
///
/// # Errors
/// [`RulesLoadError`]: the server does not start with a rule file it cannot use.
pub fn load(config: &RulesConfig) -> Result<(ActiveRules, Option<String>), RulesLoadError> {
    let text = config.file.as_deref().map(read).transpose()?;
    let set = rules_from(config, text.as_deref())?;
    tracing::info!(
        rules = set.rules().len(),
        file = ?config.file,
        builtin = config.builtin,
        "relation rules loaded"
    );
    Ok((ActiveRules::new(set), text))
}

/// The rules' metrics.
#[derive(Clone)]
pub struct RulesMetrics {
    reloads: IntCounterVec,
    active: IntGauge,
}

impl RulesMetrics {
    /// Registers `astrolabe_rules_reloads_total{result}` and `astrolabe_rules_active`.
    ///
    /// # Errors
    /// When they are already registered in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reloads = IntCounterVec::new(
            Opts::new(
                "astrolabe_rules_reloads_total",
                "Reloads of the relation rule file, by result (accepted, refused).",
            ),
            &["result"],
        )?;
        let active = IntGauge::new(
            "astrolabe_rules_active",
            "Relation rules in force (built-in and from the file).",
        )?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(active.clone()))?;
        for result in ["accepted", "refused"] {
            reloads.with_label_values(&[result]);
        }
        Ok(RulesMetrics { reloads, active })
    }
}

/// Watches the rule file of `config` (when there is one) and puts each valid new version in
/// force; `last` is the text loaded at start.
pub fn spawn_reloader(
    config: RulesConfig,
    active: ActiveRules,
    last: Option<String>,
    metrics: RulesMetrics,
    shutdown: CancellationToken,
) -> Option<JoinHandle<()>> {
    metrics.active.set(gauge(active.get().rules().len()));
    let path = config.file.clone()?;
    Some(tokio::spawn(async move {
        let mut last = last;
        let mut tick = tokio::time::interval(RELOAD_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let text = match read(&path) {
                Ok(text) => text,
                Err(err) => {
                    // Reported once per state: a file that stays unreadable is not new.
                    if last.is_some() {
                        refuse(&active, &metrics, &err);
                        last = None;
                    }
                    continue;
                }
            };
            if last.as_deref() == Some(text.as_str()) {
                continue;
            }
            match rules_from(&config, Some(&text)) {
                Ok(set) => {
                    let rules = set.rules().len();
                    let generation = active.replace(set);
                    metrics.reloads.with_label_values(&["accepted"]).inc();
                    metrics.active.set(gauge(rules));
                    tracing::info!(file = %path.display(), rules, generation, "relation rules reloaded");
                }
                Err(err) => refuse(&active, &metrics, &err),
            }
            last = Some(text);
        }
    }))
}

fn refuse(active: &ActiveRules, metrics: &RulesMetrics, err: &RulesLoadError) {
    let reason = astrolabe_persist::ErrorChain(err).to_string();
    tracing::warn!(error = %reason, "relation rules not reloaded; the rules in force stay");
    metrics.reloads.with_label_values(&["refused"]).inc();
    active.refused(reason);
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the informers need of a rule set: the kinds with rules, a fingerprint of each kind's
/// rules, and the hook that adds the references the rules find to a resource.
pub fn informer_rules(set: Arc<RuleSet>) -> Rules {
    let mut kinds = HashSet::new();
    let mut fingerprints = HashMap::new();
    for from in set.kinds() {
        let kind = from.to_kind();
        let mut hasher = std::hash::DefaultHasher::new();
        for rule in set.rules_for(&from.group, &from.kind) {
            format!("{rule:?}").hash(&mut hasher);
        }
        fingerprints.insert(kind.clone(), hasher.finish());
        kinds.insert(kind);
    }
    let hook: RuleHook = Arc::new(
        move |kind: &Kind, object: &serde_json::Value, r: &mut Resource| {
            let namespace = (!r.namespace.is_empty()).then_some(r.namespace.as_str());
            let found = set.evaluate(kind.group(), kind.as_str(), namespace, object);
            let references: Vec<_> = found
                .iter()
                .filter_map(|found| found.to_reference(&r.namespace))
                .collect();
            r.references.extend(references);
        },
    );
    Rules {
        kinds,
        hook: Some(hook),
        fingerprints,
    }
}

/// Keeps the informers' rules in step with the rules in force: each accepted reload is handed
/// on, and the watchers of kinds whose rules changed list them again.
pub fn spawn_informer_feed(
    active: &ActiveRules,
    shutdown: CancellationToken,
) -> (RulesFeed, JoinHandle<()>) {
    let (sender, feed) = RulesFeed::channel(informer_rules(active.get()));
    let mut changes = active.subscribe();
    let active = active.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    sender.set(informer_rules(active.get()));
                }
            }
        }
    });
    (feed, task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrolabe_testkit::until;

    const RULE: &str = "- name: widget-config\n  from: {group: example.com, kind: Widget}\n  path: spec.config\n  match: name\n  to: {group: \"\", kind: ConfigMap}\n  edge: configured-by\n  dependency: source-needs-target\n";

    fn config(dir: &Path, builtin: bool) -> RulesConfig {
        RulesConfig {
            file: Some(dir.join("rules.yaml")),
            builtin,
        }
    }

    #[test]
    fn a_bad_file_at_start_names_its_file_line_and_rule() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), true);
        std::fs::write(
            dir.path().join("rules.yaml"),
            RULE.replace("edge: configured-by", "edge: Configured_By"),
        )
        .unwrap();
        let err = load(&config).unwrap_err().to_string();
        assert!(err.contains("rules.yaml:"), "{err}");
        assert!(err.contains("widget-config"), "{err}");
        assert!(err.contains("Configured_By"), "{err}");
        std::fs::remove_file(dir.path().join("rules.yaml")).unwrap();
        assert!(matches!(load(&config), Err(RulesLoadError::Read { .. })));
    }

    #[test]
    fn the_builtin_pack_can_be_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yaml"), RULE).unwrap();
        let (with, _) = load(&config(dir.path(), true)).unwrap();
        let (without, _) = load(&config(dir.path(), false)).unwrap();
        assert_eq!(without.get().rules().len(), 1);
        assert!(with.get().rules().len() > 20);
        let (none, _) = load(&RulesConfig {
            file: None,
            builtin: false,
        })
        .unwrap();
        assert!(none.get().is_empty());
    }

    #[tokio::test]
    async fn an_edit_is_put_in_force_and_a_bad_edit_is_refused_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(&path, RULE).unwrap();
        let config = config(dir.path(), false);
        let (active, text) = load(&config).unwrap();
        let registry = Registry::new();
        let metrics = RulesMetrics::register(&registry).unwrap();
        let stop = CancellationToken::new();
        let mut changes = active.subscribe();
        let task = spawn_reloader(config, active.clone(), text, metrics.clone(), stop.clone())
            .expect("a file to watch");
        let bound = RELOAD_POLL * 10;

        // A second rule: in force, generation 2, subscribers told.
        let two = format!("{RULE}{}", RULE.replace("widget-config", "widget-secret"));
        std::fs::write(&path, &two).unwrap();
        until("the edit is in force", bound, || active.generation() == 2).await;
        assert_eq!(active.get().rules().len(), 2);
        assert_eq!(*changes.borrow_and_update(), 2);
        assert_eq!(metrics.active.get(), 2);

        // A broken edit: refused, counted, the two rules stay.
        std::fs::write(&path, "- name: [oops\n").unwrap();
        until("the bad edit is refused", bound, || {
            active.refusals().0 == 1
        })
        .await;
        assert_eq!(active.generation(), 2);
        assert_eq!(active.get().rules().len(), 2);
        let (_, reason) = active.refusals();
        assert!(reason.unwrap().contains("rules.yaml"));
        assert_eq!(
            metrics.reloads.with_label_values(&["refused"]).get(),
            1,
            "refused once, not on every poll"
        );

        // Fixed again: in force, the refusal forgotten.
        std::fs::write(&path, RULE).unwrap();
        until("the fix is in force", bound, || active.generation() == 3).await;
        assert_eq!(active.get().rules().len(), 1);
        assert_eq!(active.refusals().1, None);
        assert_eq!(metrics.reloads.with_label_values(&["accepted"]).get(), 2);
        stop.cancel();
        task.await.unwrap();
    }
}
