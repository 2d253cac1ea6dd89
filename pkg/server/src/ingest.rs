//! The ingest pipeline: the informers feed the apply loop through one bounded channel, and the
//! apply loop writes the graph. `serve` runs it, and so do the benches.

use astrolabe_informers::{InformerConfig, InformerMetrics, SyncStatus};
use prometheus::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::apply::{self, ApplyOutputs};

/// Capacity of the channel from the informers to the apply loop.
pub const INGEST_CHANNEL: usize = 8192;

/// What can go wrong while starting the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The informers' metrics could not be registered.
    #[error("registering informer metrics failed")]
    RegisterInformerMetrics(#[source] astrolabe_informers::Error),
}

/// The running pipeline.
#[derive(Debug)]
pub struct Ingest {
    /// The informers' task; ends after [`Ingest::stop`] is cancelled, or with an error when
    /// the selection names a kind the cluster does not serve.
    pub informers: JoinHandle<astrolabe_informers::Result<()>>,
    /// The apply loop; ends with the number of changes applied once the informers are gone and
    /// it has drained the channel.
    pub apply: JoinHandle<u64>,
    /// Stops the informers (and so, after draining, the apply loop).
    pub stop: CancellationToken,
}

impl Ingest {
    /// Starts the informers for `config` against `client`, reporting list progress to `sync`,
    /// and the apply loop writing to `outputs`.
    ///
    /// # Errors
    /// When the informers' metrics cannot be registered in `registry`.
    pub fn spawn(
        client: kube::Client,
        config: InformerConfig,
        sync: SyncStatus,
        registry: &Registry,
        outputs: ApplyOutputs,
    ) -> Result<Self, IngestError> {
        let metrics =
            InformerMetrics::new(registry).map_err(IngestError::RegisterInformerMetrics)?;
        let (tx, rx) = mpsc::channel(INGEST_CHANNEL);
        let stop = CancellationToken::new();
        let informers = astrolabe_informers::spawn(client, config, tx, sync, metrics, stop.clone());
        let apply = tokio::spawn(apply::run(rx, outputs));
        Ok(Ingest {
            informers,
            apply,
            stop,
        })
    }
}
