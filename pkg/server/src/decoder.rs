//! [`GraphDecoder`]: recovery's decoder, which builds the graph from the snapshot while the
//! snapshot is still being decoded, and [`replay_logged`], which applies the log's changes
//! (patches resolved against the graph) to it.

use std::sync::Arc;

use astrolabe_graph::Graph;
use astrolabe_model::codec::Logged;
use astrolabe_model::{PatchError, Resource};
use astrolabe_persist::{Decoder, ModelDecoder, PersistError, snapshot_error};

/// The decoder recovery uses: [`GraphDecoder`].
pub const DECODER: GraphDecoder = GraphDecoder;

/// Resources handed from the decoding thread to the building one at a time.
const BUILD_BATCH: usize = 1024;

/// Recovery's decoder: changes as the model decodes them (keyed by UID, so that only the last
/// change per object is decoded), and the snapshot straight into a graph. Recovery runs it on
/// a blocking thread while it reads the stream; there, one more thread decodes the snapshot's
/// resources while this one builds the graph from them as they come.
#[derive(Debug, Clone, Copy, Default)]
pub struct GraphDecoder;

impl Decoder for GraphDecoder {
    type Snapshot = Graph;
    type Change = Logged;

    fn decode_snapshot(&self, bytes: &[u8]) -> astrolabe_persist::Result<Graph> {
        self.decode_snapshot_from(&mut &bytes[..], bytes.len() as u64)
    }

    fn decode_snapshot_from(
        &self,
        payload: &mut (dyn std::io::Read + Send),
        len: u64,
    ) -> astrolabe_persist::Result<Graph> {
        let reader = ModelDecoder.read_snapshot(payload)?;
        let seq = reader.seq;
        let capacity = reader.capacity_hint(usize::try_from(len).unwrap_or(usize::MAX));
        std::thread::scope(|s| {
            let (batches, received) = std::sync::mpsc::sync_channel::<Vec<Arc<Resource>>>(4);
            let decoding = std::thread::Builder::new()
                .name("astrolabe-decode".into())
                .spawn_scoped(s, move || -> astrolabe_persist::Result<()> {
                    let mut batch = Vec::with_capacity(BUILD_BATCH);
                    for resource in reader {
                        batch.push(Arc::new(resource.map_err(snapshot_error)?));
                        if batch.len() == BUILD_BATCH {
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(BUILD_BATCH));
                            if batches.send(full).is_err() {
                                break;
                            }
                        }
                    }
                    // The builder only goes away by panicking, which the caller reports.
                    let _ = batches.send(batch);
                    Ok(())
                })
                .map_err(|e| {
                    PersistError::SnapshotDecode(
                        format!("starting the decoding thread failed: {e}").into(),
                    )
                })?;
            let graph = Graph::from_resources(seq, capacity, received.into_iter().flatten());
            match decoding.join() {
                // On an error the partial graph is dropped: never half-applied.
                Ok(decoded) => decoded.map(|()| graph),
                Err(_) => Err(PersistError::SnapshotDecode(
                    "the decoding thread panicked".into(),
                )),
            }
        })
    }

    fn decode_change(&self, seq: u64, bytes: &[u8]) -> astrolabe_persist::Result<Logged> {
        ModelDecoder.decode_change(seq, bytes)
    }

    fn change_key(&self, payload: &bytes::Bytes) -> Option<bytes::Bytes> {
        ModelDecoder.change_key(payload)
    }

    fn needs_previous(&self, payload: &[u8]) -> bool {
        ModelDecoder.needs_previous(payload)
    }
}

/// Applies a change of the log to `graph`: a patch to the object's version in the graph
/// ([`Logged::resolve`]). The graph's sequence advances to the change's either way.
///
/// # Errors
/// [`PatchError`] when the graph has no version of the object, or not the one the patch was
/// made against; the object is left as it was.
pub fn replay_logged(graph: &mut Graph, change: Logged) -> Result<(), PatchError> {
    let (seq, ts_ms) = (change.seq(), change.ts_ms());
    match change.resolve(|uid| graph.get(uid)) {
        Ok(change) => {
            graph.replay(&change);
            Ok(())
        }
        Err(e) => {
            graph.advance_to(seq, ts_ms);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use astrolabe_generator as generator;
    use astrolabe_model::codec::{self, Snapshot};

    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            seq: 77,
            taken_at_ms: 0,
            // More than one batch, and a batch left over.
            resources: generator::generate(5, 3 * BUILD_BATCH)
                .into_iter()
                .map(Arc::new)
                .collect(),
        }
    }

    #[test]
    fn the_graph_built_while_decoding_is_the_snapshots() {
        let snapshot = snapshot();
        let bytes = codec::encode_snapshot(&snapshot).expect("encodes");
        let built = DECODER.decode_snapshot(&bytes).expect("decodes");
        let want = Graph::from_snapshot(&snapshot);
        let n = want.node_count();
        assert!(n > 2 * BUILD_BATCH && !n.is_multiple_of(BUILD_BATCH) && want.edge_count() > 0);
        assert_eq!(
            (built.seq(), built.node_count(), built.edge_count()),
            (77, want.node_count(), want.edge_count())
        );
        assert_eq!(built.stats(), want.stats());
        for r in &snapshot.resources {
            assert_eq!(built.get(&r.uid), Some(r));
        }
    }

    #[test]
    fn a_snapshot_corrupt_past_its_first_batches_is_refused_whole() {
        let bytes = codec::encode_snapshot(&snapshot()).expect("encodes");
        for cut in [bytes.len() - 3, bytes.len() / 2] {
            let refused = DECODER.decode_snapshot(&bytes[..cut]).err();
            assert!(
                matches!(refused, Some(PersistError::SnapshotDecode(_))),
                "cut at {cut}: {refused:?}"
            );
        }
        let mut unknown = bytes.clone();
        unknown[0] = 9;
        assert!(matches!(
            DECODER.decode_snapshot(&unknown).err(),
            Some(PersistError::UnknownFormat { found: 9, .. })
        ));
    }
}
