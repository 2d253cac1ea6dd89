//! `astrolabe check`: manifests checked offline. The manifests ([`load`]) are applied to an
//! in-process emulator ([`cluster`]), as `kubectl apply` would apply them to a small cluster
//! whose controllers then make the ReplicaSets, Pods, EndpointSlices and claims; the objects are
//! made resources and a graph as the server's informers make them (with the relationship rules
//! in force, so custom resources are checked too); and the graph is asked what is wrong
//! ([`findings`]): references to objects that do not exist, selectors that select nothing,
//! backends without Pods, ConfigMaps and Secrets nothing uses, missing owners. [`report`]
//! writes the findings as text, JSON or SARIF.

pub mod cluster;
pub mod findings;
pub mod load;
pub mod report;

pub use cluster::{CheckCluster, Profile};
pub use findings::{Finding, Severity};
pub use load::{Document, InputError};
pub use report::Format;

/// What `astrolabe check` is asked.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Files, directories, `-` for stdin.
    pub inputs: Vec<String>,
    /// What the cluster is assumed to have.
    pub profile: Profile,
    /// Further objects assumed present (`KIND/NAME`, `KIND/NAMESPACE/NAME`).
    pub assume: Vec<String>,
}

/// The findings and how many objects of the input were checked.
#[derive(Debug)]
pub struct Checked {
    /// The findings, sorted.
    pub findings: Vec<Finding>,
    /// The objects of the input.
    pub objects: usize,
}

/// Loads, applies and checks the manifests `options` names, with `rules` for custom kinds.
///
/// # Errors
/// Input that cannot be read or parsed, or a malformed `--assume`.
pub async fn check(
    options: &CheckOptions,
    rules: &astrolabe_informers::Rules,
) -> Result<Checked, InputError> {
    let docs = load::load(&options.inputs)?;
    let objects = docs.len();
    let cluster = CheckCluster::build(docs, options.profile, &options.assume, rules).await?;
    Ok(Checked {
        findings: findings::findings(&cluster),
        objects,
    })
}

/// The informers' form of the rules `config` puts in force (the built-in pack and the user's
/// file), for [`check`].
///
/// # Errors
/// A rule file that cannot be read or does not parse (named with its line and rule).
pub fn rules(
    config: &crate::rules::RulesConfig,
) -> Result<astrolabe_informers::Rules, crate::rules::RulesLoadError> {
    let (active, _) = crate::rules::load(config)?;
    Ok(crate::rules::informer_rules(active.get()))
}
