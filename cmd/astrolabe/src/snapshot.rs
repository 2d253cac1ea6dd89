//! `snapshot export` / `snapshot import`: back up and restore a cluster's persisted state.
//!
//! The file is the model's versioned snapshot encoding (see `docs/adr/0001`), zstd-compressed.
//! Export reads the committed snapshot and replays the stream after it, so the file holds the
//! state at the last persisted change. Import writes the file as a new snapshot covering every
//! sequence Redis knows of and trims the stream behind it, so the imported state is what a
//! restarting server recovers.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use astrolabe_graph::now_ms;
use astrolabe_model::codec::{self, Snapshot};
use astrolabe_persist::{
    DEFAULT_REPLAY_PAGE, EventLog, PersistMetrics, RedisConfig, RedisLog, read_state, snapshot_blob,
};

use crate::cli::{PersistArgs, SnapshotAction};
use crate::persistence::DECODER;

/// zstd level for export files.
const LEVEL: i32 = 3;

/// Runs a snapshot action.
///
/// # Errors
/// Redis unreachable, unreadable or invalid files.
pub async fn run(action: SnapshotAction) -> anyhow::Result<()> {
    match action {
        SnapshotAction::Export(args) => export(&connect(&args.persist)?, &args.file).await,
        SnapshotAction::Import(args) => import(&connect(&args.persist)?, &args.file).await,
    }
}

fn connect(args: &PersistArgs) -> anyhow::Result<RedisLog> {
    RedisLog::new(&RedisConfig::new(args.url(), args.cluster_name.clone()))
        .context("configuring redis")
}

async fn export(log: &RedisLog, file: &Path) -> anyhow::Result<()> {
    let metrics = PersistMetrics::unregistered().context("metrics")?;
    // Read-only: a running server may be uploading a snapshot right now.
    let recovered = read_state(log, &DECODER, DEFAULT_REPLAY_PAGE, &metrics)
        .await
        .context("reading the persisted state from redis")?;
    if let Some(why) = &recovered.snapshot_refused {
        bail!("the persisted snapshot cannot be read: {why}");
    }
    if recovered.snapshot.is_none() && recovered.last_seq == 0 {
        bail!(
            "nothing is persisted under {} in this redis (check --cluster-name and the database)",
            log.keys().events()
        );
    }
    let skipped_corrupt = recovered.skipped_corrupt;
    let snapshot = crate::persistence::rebuild(recovered).snapshot();
    let encoded = codec::encode_snapshot(&snapshot).context("encoding")?;
    let compressed = zstd::encode_all(encoded.as_slice(), LEVEL).context("compressing")?;
    let tmp = file.with_extension("partial");
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&compressed).context("writing")?;
        f.sync_all().context("syncing")?;
    }
    std::fs::rename(&tmp, file).with_context(|| format!("renaming to {}", file.display()))?;
    println!(
        "exported {} resources at sequence {} to {} ({} bytes; {} corrupt entries skipped)",
        snapshot.resources.len(),
        snapshot.seq,
        file.display(),
        compressed.len(),
        skipped_corrupt
    );
    Ok(())
}

/// Reads an export file.
///
/// # Errors
/// Unreadable, not zstd, unknown format version or malformed.
pub fn read_file(file: &Path) -> anyhow::Result<Snapshot> {
    let compressed = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bytes = zstd::decode_all(compressed.as_slice()).context("not a snapshot file (zstd)")?;
    codec::decode_snapshot(&bytes).context("not a valid snapshot")
}

async fn import(log: &RedisLog, file: &Path) -> anyhow::Result<()> {
    let mut snapshot = read_file(file)?;
    let last = log
        .last_seq()
        .await
        .context("reading the stream")?
        .unwrap_or(0);
    let committed = log
        .snapshot_meta()
        .await
        .context("reading the snapshot metadata")?
        .map_or(0, |m| m.covered_seq);
    // Cover everything Redis knows of, so nothing older is replayed on top of the import.
    snapshot.seq = snapshot.seq.max(last).max(committed);
    snapshot.taken_at_ms = now_ms();
    let blob = snapshot_blob(&snapshot).context("encoding")?;
    let meta = log
        .write_snapshot(&blob)
        .await
        .context("writing the snapshot")?;
    let trimmed = log
        .trim_to(snapshot.seq)
        .await
        .context("trimming the stream")?;
    println!(
        "imported {} resources from {} as the snapshot at sequence {} ({} bytes compressed); {} stream entries trimmed",
        snapshot.resources.len(),
        file.display(),
        meta.covered_seq,
        meta.bytes,
        trimmed.removed
    );
    Ok(())
}
