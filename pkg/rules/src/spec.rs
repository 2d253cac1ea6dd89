//! The rule file as written: the YAML shapes, with source locations, before validation.

use std::fmt;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One rule as written. Every key is known: an unknown key is refused with its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRule {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub from: Spanned<RawKind>,
    pub path: Spanned<String>,
    pub to: Spanned<RawTo>,
    pub edge: Spanned<String>,
    pub dependency: Spanned<RawDependency>,
    #[serde(default)]
    pub optional: bool,
    #[serde(rename = "match")]
    pub matcher: Spanned<RawMatch>,
    #[serde(default)]
    pub namespace: Option<Spanned<RawNamespace>>,
    #[serde(default)]
    pub default: Option<Spanned<String>>,
    #[serde(default)]
    pub ignore: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub defaults: Option<Spanned<RawDefaults>>,
    #[serde(default)]
    pub namespaces: Option<Spanned<RawNamespaces>>,
    #[serde(default)]
    pub when_any: Option<Spanned<Vec<RawCondition>>>,
}

/// Just enough of a rule to name it in an error about the rest of it.
#[derive(Deserialize)]
pub(crate) struct LooseRule {
    #[serde(default)]
    pub name: Option<serde_json::Value>,
}

/// `{group, kind}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKind {
    pub group: String,
    pub kind: String,
}

/// One allowed target kind: `{group, kind}`, optionally `namespace: cluster`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub group: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<RawTargetNamespace>,
}

/// The only namespace a target entry may state: that the kind is cluster-scoped.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawTargetNamespace {
    Cluster,
}

/// `to`: one target, a list of them, or `any`.
pub(crate) enum RawTo {
    Any,
    One(RawTarget),
    Many(Vec<RawTarget>),
}

impl<'de> Deserialize<'de> for RawTo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ToVisitor;
        impl<'de> Visitor<'de> for ToVisitor {
            type Value = RawTo;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`{group, kind}`, a list of them, or `any`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawTo, E> {
                match v {
                    "any" => Ok(RawTo::Any),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawTo, A::Error> {
                RawTarget::deserialize(MapAccessDeserializer::new(map)).map(RawTo::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawTo, A::Error> {
                Vec::<RawTarget>::deserialize(SeqAccessDeserializer::new(seq)).map(RawTo::Many)
            }
        }
        deserializer.deserialize_any(ToVisitor)
    }
}

/// `dependency`.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawDependency {
    SourceNeedsTarget,
    TargetNeedsSource,
    None,
}

/// `match`.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawMatch {
    Name,
    Ref,
    Selector,
    Host,
}

/// `namespace`: `same`, `cluster` or `{field: path}`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawNamespace {
    Same,
    Cluster,
    Field(String),
}

/// `namespaces` (selector rules): `same`, `all`, `cluster` or `{from: path}`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawNamespaces {
    Same,
    All,
    Cluster,
    From(String),
}

/// `defaults` (ref rules): what the controller assumes when the reference leaves a field out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDefaults {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
}

/// One entry of `whenAny`: the rule applies when the value at `path` is one of `in`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCondition {
    pub path: String,
    #[serde(rename = "in")]
    pub values: Vec<String>,
}
