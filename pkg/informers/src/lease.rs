//! Leader election with a `coordination.k8s.io/v1` Lease, as Kubernetes controllers do it
//! (see `docs/adr/0021-leader-election-with-our-own-lease-loop.md`).
//!
//! Every replica runs an [`Elector`] on the same Lease. A round reads the Lease and:
//! - creates it holding it, when there is none;
//! - renews it, when this replica holds it;
//! - takes it over, when its holder is empty (released) or has not renewed it for the lease's
//!   duration, as measured on this replica's own clock from the moment it last saw the record
//!   change (so clock skew between replicas does not matter);
//! - else follows its holder.
//!
//! Every write is a replace made from the `resourceVersion` just read: if anyone wrote the
//! Lease in between, the API server answers 409 Conflict and this round loses. A takeover
//! increments `leaseTransitions`, in the same write, so the count names the term.
//!
//! [`Elector::run`] repeats rounds every retry period and publishes the [`Role`] on a watch
//! channel. A leader that has not renewed within the renew deadline (API server unreachable,
//! answering errors, or too slow) steps down before its lease can expire for the others. On
//! shutdown a leader releases the Lease (empty holder), so that a follower takes it at its next
//! retry instead of after the lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Where the Lease is and how this replica takes part in the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity, unique among the replicas (and among restarts of one: a process
    /// that reuses a dead one's identity would renew its lease as its own).
    pub identity: String,
    /// How long a holder's lease lasts after its last renewal, for the others.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often a round runs (a leader renews, a follower checks).
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// Checks the timings: whole seconds of lease duration (the Lease keeps seconds), and
    /// lease duration > renew deadline > retry period > 0, so that a leader steps down before
    /// the others may take over, and tries more than once before it does.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn validate(&self) -> Result<(), String> {
        let Self {
            lease_duration,
            renew_deadline,
            retry_period,
            ..
        } = self;
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return Err(
                "the Lease's namespace and name, and the identity, must not be empty".into(),
            );
        }
        if lease_duration.subsec_nanos() != 0 || lease_duration.is_zero() {
            return Err(format!(
                "the lease duration must be a whole number of seconds, at least 1 (got {lease_duration:?})"
            ));
        }
        if !(lease_duration > renew_deadline
            && renew_deadline > retry_period
            && !retry_period.is_zero())
        {
            return Err(format!(
                "the lease duration ({lease_duration:?}) must exceed the renew deadline \
                 ({renew_deadline:?}), which must exceed the retry period ({retry_period:?}), \
                 which must not be zero"
            ));
        }
        Ok(())
    }
}

/// This replica's part, as of the last round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// It holds the Lease.
    Leader {
        /// The Lease's `leaseTransitions` since this replica took it: each takeover increments
        /// it, so a later term has a larger number.
        term: u64,
    },
    /// Another replica holds it, or nobody does yet.
    Follower {
        /// The holder, when there is one this replica knows of.
        leader: Option<String>,
    },
}

impl Role {
    /// Whether this is [`Role::Leader`].
    #[must_use]
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }
}

/// The record last read, and when this replica first saw it.
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

/// One replica's side of the election; see the [module](self) documentation.
pub struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    observed: Option<Observed>,
}

impl Elector {
    /// An elector for `config`'s Lease, through `client`.
    #[must_use]
    pub fn new(client: Client, config: ElectionConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// One round: creates, renews or takes over the Lease when this replica may, else follows.
    ///
    /// # Errors
    /// The API server's errors other than a lost race (409), which is a [`Role::Follower`].
    pub async fn try_acquire_or_renew(&mut self) -> Result<Role, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(current) = self.api.get_opt(&self.config.name).await? else {
            return self.create(now).await;
        };
        self.observe(&current);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.config.identity.as_str());
        if !mine && holder.is_some() && !self.expired(&spec) {
            return Ok(Role::Follower { leader: holder });
        }
        let transitions = spec.lease_transitions.unwrap_or(0).max(0);
        let transitions = if mine {
            transitions
        } else {
            transitions.saturating_add(1)
        };
        let mut next = current;
        next.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: if mine {
                spec.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..spec
        });
        self.write(&next, transitions).await
    }

    /// Gives the Lease up, when this replica holds it: an empty holder, which the others take
    /// at their next round.
    ///
    /// # Errors
    /// The API server's errors other than a lost race (409: someone else holds it already).
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut current) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = current.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &current)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs rounds every retry period until `shutdown`, publishing the role as it changes;
    /// a leader then releases the Lease. Errors are logged and count as rounds that renewed
    /// nothing.
    #[must_use]
    pub fn run(mut self, shutdown: CancellationToken) -> (watch::Receiver<Role>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(Role::Follower { leader: None });
        let task = tokio::spawn(async move {
            let ElectionConfig {
                renew_deadline,
                retry_period,
                ..
            } = self.config.clone();
            // When this replica last renewed, while it leads.
            let mut renewed: Option<Instant> = None;
            loop {
                let started = Instant::now();
                let round = tokio::select! {
                    () = shutdown.cancelled() => break,
                    round = tokio::time::timeout(renew_deadline, self.try_acquire_or_renew()) => round,
                };
                let (role, renewed_now) = match round {
                    Ok(Ok(role)) => {
                        let leads = role.is_leader();
                        (role, leads)
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(lease = %self.config.name, error = %e, "lease round failed");
                        (self.kept_role(&tx, renewed), false)
                    }
                    Err(_) => {
                        tracing::warn!(lease = %self.config.name, "lease round timed out");
                        (self.kept_role(&tx, renewed), false)
                    }
                };
                // Counted from the round's start: the renewal happened after it, so the
                // deadline passes here before the others can see the lease run out.
                renewed = match (role.is_leader(), renewed_now) {
                    (true, true) => Some(started),
                    (true, false) => renewed,
                    (false, _) => None,
                };
                tx.send_if_modified(|current| {
                    if *current == role {
                        return false;
                    }
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, ?role, "leader election");
                    *current = role;
                    true
                });
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(retry_period) => {}
                }
            }
            if tx.borrow().is_leader()
                && let Err(e) = self.release().await
            {
                tracing::warn!(lease = %self.config.name, error = %e, "could not release the lease");
            }
            tx.send_replace(Role::Follower { leader: None });
        });
        (rx, task)
    }

    /// The role after a round that renewed nothing: a leader keeps leading until its renew
    /// deadline has passed since its last renewal.
    fn kept_role(&self, tx: &watch::Sender<Role>, renewed: Option<Instant>) -> Role {
        match (&*tx.borrow(), renewed) {
            (Role::Leader { term }, Some(at)) if at.elapsed() < self.config.renew_deadline => {
                Role::Leader { term: *term }
            }
            _ => Role::Follower { leader: None },
        }
    }

    async fn create(&mut self, now: MicroTime) -> Result<Role, kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                self.observe(&created);
                Ok(Role::Leader { term: 0 })
            }
            // Created by another replica first: the next round reads it.
            Err(e) if conflict(&e) => Ok(Role::Follower { leader: None }),
            Err(e) => Err(e),
        }
    }

    async fn write(&mut self, next: &Lease, transitions: i32) -> Result<Role, kube::Error> {
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), next)
            .await
        {
            Ok(written) => {
                self.observe(&written);
                Ok(Role::Leader {
                    term: u64::try_from(transitions).unwrap_or(0),
                })
            }
            // Someone wrote it since it was read: they hold it, or renewed it.
            Err(e) if conflict(&e) => Ok(Role::Follower { leader: None }),
            Err(e) => Err(e),
        }
    }

    /// Notes when this replica first saw the record `lease`.
    fn observe(&mut self, lease: &Lease) {
        let rv = lease.metadata.resource_version.clone();
        if self
            .observed
            .as_ref()
            .is_none_or(|o| o.resource_version != rv)
        {
            self.observed = Some(Observed {
                resource_version: rv,
                at: Instant::now(),
            });
        }
    }

    /// Whether the holder of `spec`, last seen renewing when the record was observed, has let
    /// its lease run out.
    fn expired(&self, spec: &LeaseSpec) -> bool {
        let lasts = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        self.observed
            .as_ref()
            .is_none_or(|o| o.at.elapsed() >= lasts)
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ElectionConfig {
        ElectionConfig {
            namespace: "astrolabe".into(),
            name: "astrolabe-leader".into(),
            identity: "a".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    #[test]
    fn timings_must_let_a_leader_step_down_before_its_lease_runs_out() {
        assert_eq!(config().validate(), Ok(()));
        let bad = [
            ElectionConfig {
                lease_duration: Duration::from_millis(15_500),
                ..config()
            },
            ElectionConfig {
                renew_deadline: Duration::from_secs(15),
                ..config()
            },
            ElectionConfig {
                retry_period: Duration::from_secs(10),
                ..config()
            },
            ElectionConfig {
                retry_period: Duration::ZERO,
                ..config()
            },
            ElectionConfig {
                identity: String::new(),
                ..config()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
