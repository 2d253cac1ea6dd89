//! The crate's error type.

/// What can go wrong configuring or starting the informers. Errors from the cluster while
/// watching are not here: watchers retry them with backoff and report them in
/// [`crate::SyncStatus`] and the metrics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kind name that is not one of the watched kinds.
    #[error("unknown kind {name:?}; valid kinds: {valid}")]
    UnknownKind {
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A `--kinds` / `--exclude-kinds` pattern whose glob does not parse.
    #[error("invalid kind pattern {pattern:?}")]
    KindPattern {
        /// The pattern given.
        pattern: String,
        /// Why it does not parse.
        #[source]
        source: globset::Error,
    },
    /// Discovering the API server's resources failed.
    #[error("discovering the API server's resources")]
    Discovery(#[source] kube::Error),
    /// Every kind was excluded.
    #[error("no kinds left to watch after exclusions")]
    NoKinds,
    /// The label selector is not valid selector syntax.
    #[error("invalid label selector")]
    LabelSelector(#[source] astrolabe_model::SelectorError),
    /// The page size is zero.
    #[error("page size must be at least 1")]
    PageSize,
    /// Reading the kubeconfig failed.
    #[error("loading kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// Reading the in-cluster configuration failed.
    #[error("loading in-cluster configuration")]
    InCluster(#[source] kube::config::InClusterError),
    /// The server URL does not parse.
    #[error("invalid server url {url:?}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// Building the client failed.
    #[error("building kubernetes client")]
    ClientBuild(#[source] kube::Error),
    /// Registering metrics failed (a name registered twice, say).
    #[error("registering informer metrics")]
    Metrics(#[source] prometheus::Error),
    /// JSON that is not an object of the kind it was given as.
    #[error("decoding {kind} object")]
    Decode {
        /// The kind.
        kind: String,
        /// The decode error.
        #[source]
        source: serde_json::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
