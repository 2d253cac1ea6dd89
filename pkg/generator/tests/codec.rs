//! Every shape of resource the generator makes survives the model's snapshot codec.

use std::sync::Arc;

use astrolabe_model::codec::{Snapshot, decode_snapshot, encode_snapshot};

#[test]
fn a_generated_cluster_round_trips_through_a_snapshot() {
    let snapshot = Snapshot {
        seq: 3,
        taken_at_ms: 5,
        resources: astrolabe_generator::generate(3, 3_000)
            .into_iter()
            .map(Arc::new)
            .collect(),
    };
    let bytes = encode_snapshot(&snapshot).unwrap();
    assert_eq!(decode_snapshot(&bytes).unwrap(), snapshot);
}
