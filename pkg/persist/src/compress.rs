//! Snapshot compression while encoding: the encoder writes into a zstd stream whose compression
//! runs on a worker thread of its own, so encoding and compressing overlap (one zstd frame, read
//! back by the ordinary decompressor).

use std::io::{self, BufWriter, Write};

/// zstd level for snapshots. Level 1 compresses the model's encoding about as well as level 3
/// here (docs/benchmarks.md) at about half the CPU time.
pub const SNAPSHOT_ZSTD_LEVEL: i32 = 1;
/// Compression worker threads beside the encoding thread.
const ZSTD_WORKERS: u32 = 1;
/// Bytes buffered before the compressor is called (the encoder writes a byte at a time).
const BUFFER: usize = 256 << 10;

/// Run `encode` against a writer that compresses into one zstd frame at `level`. Returns the
/// compressed bytes and the number of uncompressed bytes written.
///
/// # Errors
/// `encode`'s error, or the compressor's.
pub fn zstd_stream<E>(
    level: i32,
    encode: impl FnOnce(&mut SnapshotWriter) -> Result<(), E>,
) -> Result<(Vec<u8>, u64), ZstdStreamError<E>> {
    let mut zstd =
        zstd::stream::write::Encoder::new(Vec::new(), level).map_err(ZstdStreamError::Io)?;
    zstd.multithread(ZSTD_WORKERS)
        .map_err(ZstdStreamError::Io)?;
    let mut writer = SnapshotWriter {
        inner: BufWriter::with_capacity(BUFFER, zstd),
        total: 0,
    };
    encode(&mut writer).map_err(ZstdStreamError::Encode)?;
    let zstd = writer
        .inner
        .into_inner()
        .map_err(|e| ZstdStreamError::Io(e.into_error()))?;
    let out = zstd.finish().map_err(ZstdStreamError::Io)?;
    Ok((out, writer.total))
}

/// Why [`zstd_stream`] failed.
#[derive(Debug)]
pub enum ZstdStreamError<E> {
    /// The encoder failed.
    Encode(E),
    /// The compressor failed.
    Io(io::Error),
}

/// The writer [`zstd_stream`] hands to the encoder: a [`BufWriter`] in front of the compressor
/// (the encoder writes a byte at a time), counting what goes through.
pub struct SnapshotWriter {
    inner: BufWriter<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    total: u64,
}

impl Write for SnapshotWriter {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.total += n as u64;
        Ok(n)
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.write_all(data)?;
        self.total += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_counts() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (compressed, raw) = zstd_stream::<io::Error>(SNAPSHOT_ZSTD_LEVEL, |w| {
            for b in &data {
                w.write_all(std::slice::from_ref(b))?;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(raw, data.len() as u64);
        assert!(compressed.len() < data.len() / 10);
        let back = zstd::bulk::decompress(&compressed, data.len()).unwrap_or_default();
        assert!(back == data);
        let failed = zstd_stream(1, |_| Err("boom"));
        assert!(matches!(failed, Err(ZstdStreamError::Encode("boom"))));
    }
}
