//! `InformerConfig`: which kinds to watch, where, and how.

use astrolabe_model::{Kind, LabelSelector};

use crate::{Error, Result};

/// The default list page size (as client-go's).
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// What the informers watch and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InformerConfig {
    /// The kinds to watch (default: every watched kind).
    pub kinds: Vec<Kind>,
    /// The namespaces to watch namespaced kinds in; empty means all namespaces. Cluster-scoped
    /// kinds are always watched cluster-wide.
    pub namespaces: Vec<String>,
    /// A label selector applied server-side on every watcher.
    pub label_selector: Option<String>,
    /// The list page size.
    pub page_size: u32,
    /// Use streaming lists (`sendInitialEvents`) instead of paginated lists.
    pub streaming_lists: bool,
}

impl Default for InformerConfig {
    fn default() -> Self {
        InformerConfig {
            kinds: Kind::WATCHED.to_vec(),
            namespaces: Vec::new(),
            label_selector: None,
            page_size: DEFAULT_PAGE_SIZE,
            streaming_lists: false,
        }
    }
}

impl InformerConfig {
    /// Builds a configuration from command-line values. `kinds` empty means every kind; both
    /// `kinds` and `exclude` accept kind names in any case, singular or plural, and
    /// comma-separated lists.
    ///
    /// # Errors
    /// [`Error::UnknownKind`] (listing the valid names) for a name that is not a watched kind,
    /// [`Error::NoKinds`] when everything is excluded, [`Error::LabelSelector`] for an invalid
    /// selector and [`Error::PageSize`] for a zero page size.
    pub fn from_flags(
        kinds: &[String],
        exclude: &[String],
        namespaces: &[String],
        label_selector: Option<&str>,
        page_size: u32,
        streaming_lists: bool,
    ) -> Result<Self> {
        let mut chosen = if split(kinds).next().is_none() {
            Kind::WATCHED.to_vec()
        } else {
            let mut v = Vec::new();
            for name in split(kinds) {
                let kind = parse_kind(name)?;
                if !v.contains(&kind) {
                    v.push(kind);
                }
            }
            v
        };
        for name in split(exclude) {
            let kind = parse_kind(name)?;
            chosen.retain(|k| k != &kind);
        }
        if chosen.is_empty() {
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
            namespaces,
            label_selector: label_selector.map(str::to_owned),
            page_size,
            streaming_lists,
        })
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

fn split(values: &[String]) -> impl Iterator<Item = &str> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Parses a watched kind name: exact or case-insensitive, singular or plural (`pods`,
/// `ingresses`, `networkpolicies`).
///
/// # Errors
/// [`Error::UnknownKind`] listing the valid names.
pub fn parse_kind(name: &str) -> Result<Kind> {
    let lower = name.to_ascii_lowercase();
    let singular = [
        Some(lower.clone()),
        lower.strip_suffix("ies").map(|s| format!("{s}y")),
        lower.strip_suffix("es").map(str::to_owned),
        lower.strip_suffix('s').map(str::to_owned),
    ];
    singular
        .into_iter()
        .flatten()
        .map(|n| Kind::parse(&n))
        .find(Kind::is_watched)
        .ok_or_else(|| Error::UnknownKind {
            name: name.to_owned(),
            valid: valid_kind_names(),
        })
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

    #[test]
    fn default_is_every_kind() {
        let c = InformerConfig::from_flags(&[], &[], &[], None, 500, false).expect("valid");
        assert_eq!(c, InformerConfig::default());
        assert_eq!(c.kinds, Kind::WATCHED);
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
            &[],
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
                Kind::Deployment,
                Kind::Ingress,
                Kind::NetworkPolicy,
                Kind::Service
            ]
        );
        assert_eq!(c.namespaces, s(&["a", "b"]));
        assert_eq!(
            c.scopes(&Kind::Pod),
            vec![Some("a".into()), Some("b".into())]
        );
        assert_eq!(c.scopes(&Kind::Node), vec![None]);
        assert_eq!(c.label_selector.as_deref(), Some("app=web"));
    }

    #[test]
    fn exclusions_and_errors() {
        let c = InformerConfig::from_flags(&[], &s(&["secrets"]), &[], None, 500, false)
            .expect("valid");
        assert_eq!(c.kinds.len(), 25);
        assert!(!c.kinds.contains(&Kind::Secret));

        let err = InformerConfig::from_flags(&s(&["Rollout"]), &[], &[], None, 500, false)
            .expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("Rollout") && text.contains("PodDisruptionBudget"),
            "{text}"
        );
        assert!(matches!(
            InformerConfig::from_flags(&s(&["Pod"]), &s(&["pods"]), &[], None, 500, false),
            Err(Error::NoKinds)
        ));
        assert!(matches!(
            InformerConfig::from_flags(&[], &[], &[], Some("a in (b"), 500, false),
            Err(Error::LabelSelector(_))
        ));
        assert!(matches!(
            InformerConfig::from_flags(&[], &[], &[], None, 0, false),
            Err(Error::PageSize)
        ));
    }
}
