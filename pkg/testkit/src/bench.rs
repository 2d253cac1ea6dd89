//! What the benches share: one figure line per measured value ([`figure`], parsed by scripts, so
//! its format is fixed) and the churn of Pod updates ([`pods`], [`pod_update`], [`pod_churn`]).

use std::io;
use std::sync::Arc;

use astrolabe_model::{ChangeOp, Kind, Resource, Uid};

pub use crate::wait::within;

/// How a bench figure compares with its baseline.
#[derive(Debug)]
pub struct Versus<'a> {
    /// Figure / baseline.
    pub ratio: f64,
    /// What the baseline is.
    pub baseline: &'a str,
    /// The target, as text (`>= 0.8x`).
    pub target: &'a str,
    /// Whether the target is met.
    pub met: bool,
}

/// Print one bench figure line: name, value, unit and, when given, the comparison with its
/// baseline and whether the target is MET or MISSED.
pub fn figure(name: &str, value: f64, unit: &str, versus: Option<Versus<'_>>) {
    let value = if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    };
    match versus {
        Some(v) => println!(
            "{name:<36} {value:>12} {unit:<11} {:>6.2}x {} (target {}) {}",
            v.ratio,
            v.baseline,
            v.target,
            if v.met { "MET" } else { "MISSED" }
        ),
        None => println!("{name:<36} {value:>12} {unit}"),
    }
}

/// The Pods among `resources`: what the benches' churn updates ([`pod_update`]).
///
/// # Errors
/// When there is none.
pub fn pods<'a>(
    resources: impl IntoIterator<Item = &'a Arc<Resource>>,
) -> io::Result<Vec<Arc<Resource>>> {
    let pods: Vec<_> = resources
        .into_iter()
        .filter(|r| r.kind == Kind::Pod)
        .cloned()
        .collect();
    if pods.is_empty() {
        return Err(io::Error::other("the generated cluster has no Pods"));
    }
    Ok(pods)
}

/// Update `i` of the benches' churn: the Pods of `pods` in turn, each with a new
/// resourceVersion and status message (a status change, as most of a real cluster's changes).
///
/// # Panics
/// If `pods` is empty ([`pods`] never returns an empty list).
pub fn pod_update(pods: &[Arc<Resource>], i: usize) -> Resource {
    let mut pod = (*pods[i % pods.len()]).clone();
    // Numeric, as the API server's are.
    pod.resource_version = format!("{}", 10_000_000 + i).into();
    pod.status.message = format!("restarted {i} times").into();
    pod
}

/// In [`pod_churn`], one Pod is created at this offset of every [`CHURN_EVERY`] changes, and
/// deleted at the last.
pub const CHURN_CREATE_AT: usize = 500;
/// See [`CHURN_CREATE_AT`].
pub const CHURN_EVERY: usize = 1_000;

/// Change `i` of a churn of Pod status updates ([`pod_update`]) in which one Pod is created and
/// deleted again every [`CHURN_EVERY`] changes; `tag` goes into the created Pods' UIDs and
/// names, and `created` holds the one alive.
pub fn pod_churn(
    pods: &[Arc<Resource>],
    i: usize,
    tag: &str,
    created: &mut Option<Resource>,
) -> ChangeOp {
    if i % CHURN_EVERY == CHURN_CREATE_AT {
        let mut pod = pod_update(pods, i);
        pod.uid = Uid::from(format!("{tag}-created-{i}"));
        pod.name = format!("{}-{tag}{i}", pod.name).into();
        *created = Some(pod.clone());
        return ChangeOp::Upsert(Arc::new(pod));
    }
    if i % CHURN_EVERY == CHURN_EVERY - 1
        && let Some(pod) = created.take()
    {
        return ChangeOp::Delete {
            key: pod.key(),
            uid: pod.uid,
        };
    }
    ChangeOp::Upsert(Arc::new(pod_update(pods, i)))
}
