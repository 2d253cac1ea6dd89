//! Astrolabe's relationship rules: a YAML file declares where objects of a kind keep references
//! to other objects; this crate parses and validates such files and evaluates an object's JSON
//! into references. Data in, data out: no Kubernetes client, no I/O.
//!
//! ```text
//!  rules text ──RuleSet::parse──► RuleSet ──merge──► RuleSet (built-in pack + user file)
//!                                                 │
//!  (group, kind, namespace, &serde_json::Value) ──evaluate──► Vec<RuleRef>
//! ```
//!
//! Layout:
//! - [`active`]: [`ActiveRules`], the rule set in force, replaced whole on reload.
//! - [`set`]: [`RuleSet`]: parsing, the built-in pack, merging, the index by source kind.
//! - [`rule`]: [`Rule`], one validated rule, and its compilation from the file.
//! - `spec` (private): the file's YAML shapes, with locations.
//! - [`path`]: [`FieldPath`], the dotted paths rules read.
//! - `eval` (private): one rule applied to one object ([`Rule::evaluate`]).
//! - [`reference`](mod@reference): [`RuleRef`], what evaluation returns.
//! - [`error`]: [`RulesError`], a refused file with its line, rule and reason.
//! - [`graph`](mod@graph): a rule set's edge kinds and a [`RuleRef`] as the model declares them.
//!
//! The rule-file format is described in the crate's `README.md`; the built-in pack is
//! `src/builtin.yaml`.

pub mod active;
pub mod error;
mod eval;
pub mod graph;
pub mod path;
pub mod reference;
pub mod rule;
pub mod set;
mod spec;

pub use active::ActiveRules;
pub use error::{RuleId, RulesError};
pub use path::{FieldPath, PathError, Segment};
pub use reference::{NamespaceScope, RefTarget, RuleRef};
pub use rule::{
    Condition, GroupKind, Match, NamespacePolicy, NamespacesPolicy, Rule, Target, Targets,
};
pub use set::{BUILTIN_SOURCE, RuleSet};
