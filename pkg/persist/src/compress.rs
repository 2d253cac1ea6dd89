//! Snapshot compression in parallel parts: the payload is cut into parts that are encoded and
//! compressed independently, each into a zstd frame of its own, on as many threads as there are
//! cores (up to [`MAX_THREADS`]). The frames, concatenated in order ([`concat_frames`]), are one
//! valid zstd stream: the ordinary decompressor reads them back as the payload the parts make
//! together. A caller may also keep a part's frame and use it again in a later stream while the
//! part is unchanged ([`crate::SnapshotEncoder`] does). [`compress_blob`] compresses a snapshot
//! handed to a log uncompressed, off the async threads.

use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use crate::error::{PersistError, Result};
use crate::log::SnapshotBlob;

/// zstd level for snapshots. Level 1 compresses the model's encoding about as well as level 3
/// here (docs/benchmarks.md) at about half the CPU time.
pub const SNAPSHOT_ZSTD_LEVEL: i32 = 1;
/// The most threads one snapshot uses (the calling thread included): it runs in the
/// background, beside the apply loop and the queries.
pub const MAX_THREADS: usize = 4;

/// A compressed part: one zstd frame, and the length of what it decompresses to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The zstd frame.
    pub bytes: bytes::Bytes,
    /// The uncompressed length.
    pub raw_len: u64,
}

/// Encode parts `0..parts` with `encode(part, buffer)` (the buffer comes empty) and compress
/// each into one zstd frame at `level`, on up to [`MAX_THREADS`] threads (the calling one
/// included; the others are started here and inherit its CPU priority). Returns the frames in
/// part order.
///
/// # Errors
/// The first error of `encode` or of the compressor.
pub fn compress_parts<E: Send>(
    level: i32,
    parts: usize,
    encode: impl Fn(usize, &mut Vec<u8>) -> Result<(), E> + Sync,
) -> Result<Vec<Frame>, CompressError<E>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(MAX_THREADS)
        .min(parts)
        .max(1);
    let next = AtomicUsize::new(0);
    // Each part's frame and uncompressed length, once done.
    let frames: Mutex<Vec<Option<Frame>>> = Mutex::new(vec![None; parts]);
    let work = || -> Result<(), CompressError<E>> {
        let run = || -> Result<(), CompressError<E>> {
            let mut compressor = zstd::bulk::Compressor::new(level).map_err(CompressError::Io)?;
            let mut raw = Vec::new();
            loop {
                let part = next.fetch_add(1, Ordering::Relaxed);
                if part >= parts {
                    return Ok(());
                }
                raw.clear();
                encode(part, &mut raw).map_err(CompressError::Encode)?;
                let mut frame = compressor.compress(&raw).map_err(CompressError::Io)?;
                // The frame was allocated for the worst case, about the raw size.
                frame.shrink_to_fit();
                let frame = Frame {
                    bytes: frame.into(),
                    raw_len: raw.len() as u64,
                };
                let mut frames = frames
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                frames[part] = Some(frame);
            }
        };
        // After an error the other threads take no new part.
        run().inspect_err(|_| next.store(parts, Ordering::Relaxed))
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mine = work();
        helpers.into_iter().fold(mine, |acc, h| {
            let theirs = h
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            acc.and(theirs)
        })
    })?;
    Ok(frames
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .flatten()
        .collect())
}

/// `frames` one after the other (one zstd stream), and the length they decompress to.
pub fn concat_frames<'a>(frames: impl IntoIterator<Item = &'a Frame> + Clone) -> (Vec<u8>, u64) {
    let len = frames.clone().into_iter().map(|f| f.bytes.len()).sum();
    let mut out = Vec::with_capacity(len);
    let mut raw = 0;
    for frame in frames {
        out.extend_from_slice(&frame.bytes);
        raw += frame.raw_len;
    }
    (out, raw)
}

/// The compressed payload of `blob` and its uncompressed length: its bytes as they are when
/// they are already zstd frames (`zstd_raw_len` set), else compressed at `level` on a blocking
/// thread.
///
/// # Errors
/// [`PersistError::SnapshotCompress`] when the compressor fails.
pub async fn compress_blob(blob: &SnapshotBlob, level: i32) -> Result<(Bytes, u64)> {
    if let Some(raw_len) = blob.zstd_raw_len {
        return Ok((blob.bytes.clone(), raw_len));
    }
    let raw = blob.bytes.clone();
    let compressed = tokio::task::spawn_blocking(move || zstd::bulk::compress(&raw, level))
        .await
        .map_err(|e| PersistError::SnapshotCompress(io::Error::other(e)))?
        .map_err(PersistError::SnapshotCompress)?;
    Ok((Bytes::from(compressed), blob.bytes.len() as u64))
}

/// Why [`compress_parts`] failed.
#[derive(Debug)]
pub enum CompressError<E> {
    /// Encoding a part failed.
    Encode(E),
    /// The compressor failed.
    Io(io::Error),
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn parts_make_one_stream_in_order() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let pieces: Vec<&[u8]> = data.chunks(100_001).collect();
        let frames = compress_parts::<()>(SNAPSHOT_ZSTD_LEVEL, pieces.len(), |i, out| {
            out.extend_from_slice(pieces[i]);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(frames.len(), pieces.len());
        for (frame, piece) in frames.iter().zip(&pieces) {
            assert_eq!(frame.raw_len, piece.len() as u64);
            let alone = zstd::bulk::decompress(&frame.bytes, piece.len()).unwrap_or_default();
            assert!(alone == *piece, "each frame decodes alone to its part");
        }
        let (compressed, raw) = concat_frames(&frames);
        assert_eq!(raw, data.len() as u64);
        assert!(compressed.len() < data.len() / 10);
        let back = zstd::bulk::decompress(&compressed, data.len()).unwrap_or_default();
        assert!(back == data, "read back whole");
        let mut streamed = Vec::new();
        zstd::stream::read::Decoder::new(&compressed[..])
            .and_then(|mut d| d.read_to_end(&mut streamed))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(streamed == data, "read back as a stream, frame after frame");
        let (empty, raw) = concat_frames(
            &compress_parts::<()>(SNAPSHOT_ZSTD_LEVEL, 1, |_, _| Ok(()))
                .unwrap_or_else(|e| panic!("{e:?}")),
        );
        assert_eq!(raw, 0);
        assert_eq!(zstd::bulk::decompress(&empty, 0).unwrap_or_default(), b"");
        let failed = compress_parts(
            SNAPSHOT_ZSTD_LEVEL,
            9,
            |i, _| if i == 5 { Err(i) } else { Ok(()) },
        );
        assert!(
            matches!(failed, Err(CompressError::Encode(5))),
            "{failed:?}"
        );
    }

    /// Snapshot work runs in the background: the helper threads must not run at a higher
    /// priority than the lowered thread that starts them.
    #[cfg(target_os = "linux")]
    #[test]
    fn every_part_runs_at_the_callers_lowered_priority() {
        use std::sync::Condvar;
        use std::time::{Duration, Instant};

        use crate::priority::{BACKGROUND_NICE, lower_current_thread, tests::own_nice};
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (nices, threads) = std::thread::spawn(move || {
            assert!(lower_current_thread());
            let deadline = Instant::now() + Duration::from_secs(10);
            let nices = Mutex::new(Vec::new());
            let threads = (Mutex::new(std::collections::HashSet::new()), Condvar::new());
            compress_parts::<()>(SNAPSHOT_ZSTD_LEVEL, 64, |_, out| {
                nices.lock().map(|mut n| n.push(own_nice())).ok();
                let (seen, arrived) = &threads;
                let mut seen = seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.insert(std::thread::current().id());
                arrived.notify_all();
                // With more than one core, no part finishes before a second thread has
                // started one (until a deadline, so a missing helper fails the test instead of
                // hanging it).
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = arrived.wait_timeout_while(seen, left, |seen| cores > 1 && seen.len() < 2);
                out.push(7);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e:?}"));
            let used = threads.0.lock().map(|t| t.len()).unwrap_or(0);
            (nices.into_inner().unwrap_or_default(), used)
        })
        .join()
        .expect("thread");
        assert_eq!(nices.len(), 64);
        assert!(nices.iter().all(|&n| n == BACKGROUND_NICE), "{nices:?}");
        assert_eq!(
            threads > 1,
            cores > 1,
            "parts are spread over threads ({threads} threads on {cores} cores)"
        );
    }
}
