//! `InformerConfig`: which kinds to watch, where, and how; [`Rules`], the seam through which the
//! relationship rules see whole objects.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use astrolabe_model::{Kind, LabelSelector, Resource};

use crate::select::{Selection, split};
use crate::{Error, Result};

/// The default list page size (as client-go's).
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// The default cap on watched kinds (`--max-watches`).
pub const DEFAULT_MAX_WATCHES: usize = 200;

/// The default time between two lists of a kind past the watch cap (`--list-interval`).
pub const DEFAULT_LIST_INTERVAL: Duration = Duration::from_secs(300);

/// The default time between two discoveries (`--rediscover-interval`).
pub const DEFAULT_REDISCOVER_INTERVAL: Duration = Duration::from_secs(300);

/// Which kinds are candidates (`--discover`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Discover {
    /// The built-in kinds and every kind the API server serves (discovery, CRDs).
    #[default]
    All,
    /// Only the built-in kinds (the table's); no discovery.
    Builtin,
}

/// What a relationship-rule hook gets: the kind, the whole object as JSON, and the resource
/// the processor made of it, to add references to.
pub type RuleHook = Arc<dyn Fn(&Kind, &serde_json::Value, &mut Resource) + Send + Sync>;

/// The kinds that have relationship rules and the hook that applies them. A kind with rules is
/// read whole (`DynamicObject`, or its built-in type) and every object of it goes through the
/// hook; the other kinds outside the table are read metadata-only.
#[derive(Clone, Default)]
pub struct Rules {
    /// The kinds with rules.
    pub kinds: HashSet<Kind>,
    /// Applies them (none: the kinds are still read whole, nothing is added).
    pub hook: Option<RuleHook>,
    /// A fingerprint of each kind's rules: when a new set gives a kind another one, its
    /// watchers list it again, so every object is judged by the rules now in force.
    pub fingerprints: HashMap<Kind, u64>,
}

impl Rules {
    /// The fingerprint of `kind`'s rules (0 without rules).
    pub fn fingerprint(&self, kind: &Kind) -> u64 {
        self.fingerprints.get(kind).copied().unwrap_or(0)
    }

    /// Runs the hook on `resource` when `kind` has rules, with the object as `json` makes it
    /// (called only then: a kind without rules costs no JSON).
    pub(crate) fn apply(
        &self,
        kind: &Kind,
        resource: &mut Resource,
        json: impl FnOnce() -> Option<serde_json::Value>,
    ) {
        if let Some(hook) = &self.hook
            && self.kinds.contains(kind)
            && let Some(value) = json()
        {
            hook(kind, &value, resource);
            resource.normalize();
        }
    }
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("kinds", &self.kinds)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// The rules in force, which can change while the informers run (a reloaded rules file): a
/// kind that gains or loses rules is watched again in its new [`Mode`](crate::select::Mode).
/// Cheap to clone; clones see the same rules.
#[derive(Clone, Debug)]
pub struct RulesFeed(tokio::sync::watch::Receiver<Arc<Rules>>);

/// Changes the rules a [`RulesFeed`] gives.
#[derive(Debug)]
pub struct RulesSender(tokio::sync::watch::Sender<Arc<Rules>>);

impl RulesFeed {
    /// Fixed rules.
    pub fn fixed(rules: Rules) -> RulesFeed {
        RulesFeed::channel(rules).1
    }

    /// Rules that [`RulesSender::set`] replaces.
    pub fn channel(rules: Rules) -> (RulesSender, RulesFeed) {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(rules));
        (RulesSender(tx), RulesFeed(rx))
    }

    /// The rules in force.
    pub fn current(&self) -> Arc<Rules> {
        self.0.borrow().clone()
    }

    /// Waits for the next change; `false` when no sender remains (the rules stay as they are).
    pub(crate) async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

impl Default for RulesFeed {
    fn default() -> Self {
        RulesFeed::fixed(Rules::default())
    }
}

impl PartialEq for RulesFeed {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl RulesSender {
    /// Puts `rules` in force.
    pub fn set(&self, rules: Rules) {
        self.0.send_replace(Arc::new(rules));
    }
}

/// What the informers watch and how.
#[derive(Clone, Debug, PartialEq)]
pub struct InformerConfig {
    /// The built-in kinds to watch with their types (default: every one).
    pub kinds: Vec<Kind>,
    /// Which kinds are candidates: the built-in ones only, or every kind discovery finds.
    pub discover: Discover,
    /// The `--kinds` / `--exclude-kinds` patterns, applied to every discovered kind.
    pub selection: Selection,
    /// The namespaces to watch namespaced kinds in; empty means all namespaces. Cluster-scoped
    /// kinds are always watched cluster-wide.
    pub namespaces: Vec<String>,
    /// A label selector applied server-side on every watcher.
    pub label_selector: Option<String>,
    /// The list page size.
    pub page_size: u32,
    /// Use streaming lists (`sendInitialEvents`) instead of paginated lists.
    pub streaming_lists: bool,
    /// At most this many kinds are watched; the rest are listed every `list_interval`.
    pub max_watches: usize,
    /// Time between two lists of a kind past the cap.
    pub list_interval: Duration,
    /// Time between two discoveries (new aggregated APIs, anything a CRD watch missed).
    pub rediscover_interval: Duration,
    /// The kinds with relationship rules and their hook.
    pub rules: RulesFeed,
}

impl Default for InformerConfig {
    fn default() -> Self {
        InformerConfig {
            kinds: Kind::WATCHED.to_vec(),
            discover: Discover::All,
            selection: Selection::default(),
            namespaces: Vec::new(),
            label_selector: None,
            page_size: DEFAULT_PAGE_SIZE,
            streaming_lists: false,
            max_watches: DEFAULT_MAX_WATCHES,
            list_interval: DEFAULT_LIST_INTERVAL,
            rediscover_interval: DEFAULT_REDISCOVER_INTERVAL,
            rules: RulesFeed::default(),
        }
    }
}

impl InformerConfig {
    /// Builds a configuration from command-line values. `kinds` empty means every kind;
    /// `exclude` `None` means the [default exclusions](crate::select::DEFAULT_EXCLUDED). Both
    /// take comma-separated patterns ([`crate::select`]). A plain name (no group, no glob) must
    /// name a built-in kind, or with [`Discover::All`] a kind the API server serves at start
    /// (checked after discovery): a kind that may appear later is written with its group or as
    /// a glob. The cap, intervals and rules keep their defaults; set the fields.
    ///
    /// # Errors
    /// [`Error::UnknownKind`] (listing the valid names) for a plain name that is not a built-in
    /// kind when only those are watched, [`Error::KindPattern`] for a bad glob,
    /// [`Error::NoKinds`] when no built-in kind is left and nothing is discovered,
    /// [`Error::LabelSelector`] for an invalid selector and [`Error::PageSize`] for a zero page
    /// size.
    pub fn from_flags(
        kinds: &[String],
        exclude: Option<&[String]>,
        discover: Discover,
        namespaces: &[String],
        label_selector: Option<&str>,
        page_size: u32,
        streaming_lists: bool,
    ) -> Result<Self> {
        let selection = Selection::new(kinds, exclude)?;
        if discover == Discover::Builtin
            && let Some(name) = selection.unknown_name(Kind::WATCHED)
        {
            return Err(Error::UnknownKind {
                name: name.to_owned(),
                valid: valid_kind_names(),
            });
        }
        let chosen: Vec<Kind> = Kind::WATCHED
            .iter()
            .filter(|k| selection.selects(k))
            .cloned()
            .collect();
        if chosen.is_empty() && discover == Discover::Builtin {
            return Err(Error::NoKinds);
        }
        let label_selector = label_selector.map(str::trim).filter(|s| !s.is_empty());
        if let Some(sel) = label_selector {
            LabelSelector::parse(sel).map_err(Error::LabelSelector)?;
        }
        if page_size == 0 {
            return Err(Error::PageSize);
        }
        let mut namespaces: Vec<String> = split(namespaces).map(str::to_owned).collect();
        namespaces.sort();
        namespaces.dedup();
        Ok(InformerConfig {
            kinds: chosen,
            discover,
            selection,
            namespaces,
            label_selector: label_selector.map(str::to_owned),
            page_size,
            streaming_lists,
            ..InformerConfig::default()
        })
    }

    /// [`InformerConfig::from_flags`] with every other setting at its default: the kinds
    /// `kinds` and `exclude` select (patterns, as the flags take them).
    ///
    /// # Errors
    /// As [`InformerConfig::from_flags`].
    pub fn selecting(kinds: &[&str], exclude: Option<&[&str]>, discover: Discover) -> Result<Self> {
        let owned = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let exclude = exclude.map(owned);
        let page_size = DEFAULT_PAGE_SIZE;
        Self::from_flags(
            &owned(kinds),
            exclude.as_deref(),
            discover,
            &[],
            None,
            page_size,
            false,
        )
    }

    /// The scopes one kind is watched in: each namespace for a namespaced kind when namespaces
    /// are given, else one cluster-wide scope (`None`).
    pub fn scopes(&self, kind: &Kind) -> Vec<Option<String>> {
        if kind.is_namespaced() && !self.namespaces.is_empty() {
            self.namespaces.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        }
    }
}

/// Every watched kind's name, comma-separated.
pub fn valid_kind_names() -> String {
    Kind::WATCHED
        .iter()
        .map(Kind::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn flags(
        kinds: &[&str],
        exclude: Option<&[&str]>,
        discover: Discover,
    ) -> Result<InformerConfig> {
        InformerConfig::selecting(kinds, exclude, discover)
    }

    #[test]
    fn default_is_every_kind() {
        let c = flags(&[], None, Discover::All).expect("valid");
        assert_eq!(c.kinds, Kind::WATCHED);
        assert_eq!(c.selection, Selection::default());
        assert_eq!(c.discover, Discover::All);
        assert_eq!(c.max_watches, DEFAULT_MAX_WATCHES);
    }

    #[test]
    fn names_in_any_form() {
        let c = InformerConfig::from_flags(
            &s(&[
                "pods,Deployment",
                "ingresses",
                "networkpolicies",
                "SERVICES",
            ]),
            None,
            Discover::Builtin,
            &s(&["b,a", "a"]),
            Some("app=web"),
            100,
            true,
        )
        .expect("valid");
        assert_eq!(
            c.kinds,
            vec![
                Kind::Pod,
                Kind::Service,
                Kind::Deployment,
                Kind::Ingress,
                Kind::NetworkPolicy,
            ]
        );
        assert_eq!(c.namespaces, s(&["a", "b"]));
        assert_eq!(
            c.scopes(&Kind::Pod),
            vec![Some("a".into()), Some("b".into())]
        );
        assert_eq!(c.scopes(&Kind::Node), vec![None]);
        assert_eq!(c.label_selector.as_deref(), Some("app=web"));
        let apps = flags(&["*.apps"], None, Discover::Builtin).expect("valid");
        assert_eq!(apps.kinds.len(), 4);
    }

    #[test]
    fn exclusions_and_errors() {
        let c = flags(&[], Some(&["secrets"]), Discover::All).expect("valid");
        assert_eq!(c.kinds.len(), 25);
        assert!(!c.kinds.contains(&Kind::Secret));

        // A misspelt plain name is refused with the valid names when only the table is watched.
        let err = flags(&["Rollout"], None, Discover::Builtin).expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("Rollout") && text.contains("PodDisruptionBudget"),
            "{text}"
        );
        assert!(flags(&["Podz"], None, Discover::Builtin).is_err());
        assert!(flags(&[], Some(&["Podz"]), Discover::Builtin).is_err());
        // With discovery it may be a kind the server serves: checked after discovery.
        let later = flags(&["Rollout"], None, Discover::All).expect("checked later");
        assert!(later.kinds.is_empty());
        assert!(flags(&["Rollout.argoproj.io"], None, Discover::Builtin).is_err());
        assert!(matches!(
            flags(&["Pod"], Some(&["pods"]), Discover::Builtin),
            Err(Error::NoKinds)
        ));
        assert!(matches!(
            flags(&["[x"], None, Discover::All),
            Err(Error::KindPattern { .. })
        ));
        assert!(matches!(
            InformerConfig::from_flags(&[], None, Discover::All, &[], Some("a in (b"), 500, false),
            Err(Error::LabelSelector(_))
        ));
        assert!(matches!(
            InformerConfig::from_flags(&[], None, Discover::All, &[], None, 0, false),
            Err(Error::PageSize)
        ));
    }

    #[test]
    fn rules_run_only_for_their_kinds() {
        let hook: RuleHook = Arc::new(|_, value, r| {
            r.labels = [("seen", value["spec"]["x"].as_str().unwrap_or(""))]
                .into_iter()
                .collect();
        });
        let rules = Rules {
            kinds: [Kind::ConfigMap].into_iter().collect(),
            hook: Some(hook),
            ..Rules::default()
        };
        let mut r = Resource::new("u", Kind::ConfigMap, "ns", "a");
        rules.apply(&Kind::ConfigMap, &mut r, || {
            Some(serde_json::json!({"spec": {"x": "y"}}))
        });
        assert_eq!(r.labels.get("seen"), Some("y"));
        let mut other = Resource::new("v", Kind::Pod, "ns", "b");
        rules.apply(&Kind::Pod, &mut other, || {
            panic!("no JSON for a kind without rules")
        });
        assert!(other.labels.is_empty());
        let (tx, feed) = RulesFeed::channel(Rules::default());
        assert!(feed.current().kinds.is_empty());
        tx.set(rules);
        assert_eq!(feed.current().kinds.len(), 1);
    }
}
