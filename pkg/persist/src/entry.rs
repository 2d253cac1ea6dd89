//! The stream entry layout: several changes packed into one entry.
//!
//! Packing is what makes appends and replay fast: the client's per-entry reply parsing, not
//! Redis, bounds the replay rate, and one XADD per change costs a command per change on the
//! write path (measured in `docs/benchmarks.md`). Each change keeps its own codec encoding
//! (with the model's format-version byte) inside the entry.
//!
//! ```text
//! entry ID   <last seq>-1            (the sequence of the entry's last change)
//! field `p`  [ENTRY_FORMAT u8][count u32 LE]  then per change  [seq u64 LE][len u32 LE][bytes]
//! field `c`  one change (entry format 1, written by earlier builds; still read)
//! ```
//!
//! The ID carries the last sequence so that `XRANGE (<after>`, `XTRIM MINID` and the stream's top
//! work on sequences as before: an entry is after `S` if it holds any change after `S`, and is
//! trimmed only once every change in it is covered. A retried batch is packed identically, so its
//! entries are refused as "already present".

use bytes::{BufMut, Bytes};

/// Field of a packed entry.
pub(crate) const PACKED_FIELD: &str = "p";
/// Field of a single-change entry (format 1, written by earlier builds).
pub(crate) const LEGACY_FIELD: &str = "c";
/// Version of the packed entry container written and read by this build. Format 1 is the
/// single-change entry (field `c`), which this build still reads.
pub const ENTRY_FORMAT: u8 = 2;
/// Most changes in one entry.
pub const ENTRY_MAX_CHANGES: usize = 1024;
/// An entry is closed once its changes reach this many bytes (bounds replay page memory).
pub const ENTRY_MAX_BYTES: usize = 256 << 10;

const HEADER: usize = 1 + 4;
const PER_CHANGE: usize = 8 + 4;

/// One packed entry, ready for XADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// The sequence of its last change (the entry ID's first part).
    pub(crate) last: u64,
    /// Number of changes in it.
    pub(crate) count: usize,
    /// The field value.
    pub(crate) bytes: Bytes,
}

/// Pack `(seq, payload)` pairs (ascending) into entries, deterministically: the same batch always
/// gives the same entries, so a retry is recognised as already present.
pub(crate) fn pack(batch: &[(u64, Bytes)]) -> Vec<Packed> {
    let mut out = Vec::new();
    let mut rest = batch;
    while !rest.is_empty() {
        let mut size = 0;
        let mut n = 0;
        while n < rest.len() && n < ENTRY_MAX_CHANGES && (n == 0 || size < ENTRY_MAX_BYTES) {
            size += rest[n].1.len();
            n += 1;
        }
        let (head, tail) = rest.split_at(n);
        out.push(pack_one(head, size));
        rest = tail;
    }
    out
}

fn pack_one(changes: &[(u64, Bytes)], payload_bytes: usize) -> Packed {
    let mut buf = Vec::with_capacity(HEADER + changes.len() * PER_CHANGE + payload_bytes);
    buf.put_u8(ENTRY_FORMAT);
    buf.put_u32_le(u32::try_from(changes.len()).unwrap_or(u32::MAX));
    for (seq, payload) in changes {
        buf.put_u64_le(*seq);
        buf.put_u32_le(u32::try_from(payload.len()).unwrap_or(u32::MAX));
        buf.put_slice(payload);
    }
    Packed {
        last: changes.last().map_or(0, |(s, _)| *s),
        count: changes.len(),
        bytes: Bytes::from(buf),
    }
}

/// Unpack the field value of entry `id_seq` into `(seq, payload)` pairs (slices of `bytes`, no
/// copy).
///
/// # Errors
/// A description of the defect: unknown format version, truncated or trailing bytes, sequences
/// not increasing, or a last sequence that is not the entry ID's.
pub(crate) fn unpack(id_seq: u64, bytes: &Bytes) -> Result<Vec<(u64, Bytes)>, String> {
    let Some((&format, _)) = bytes.split_first() else {
        return Err("empty packed entry".into());
    };
    if format != ENTRY_FORMAT {
        return Err(format!(
            "unknown entry format version {format} (this build reads {ENTRY_FORMAT})"
        ));
    }
    let mut at = 1;
    let count = read_u32(bytes, &mut at).ok_or("truncated header")?;
    let count = usize::try_from(count).map_err(|_| "count too large")?;
    if count == 0 || count > bytes.len() / PER_CHANGE {
        return Err(format!("implausible change count {count}"));
    }
    let mut out = Vec::with_capacity(count);
    let mut previous = 0;
    for i in 0..count {
        let seq = read_u64(bytes, &mut at).ok_or_else(|| format!("change {i}: truncated"))?;
        let len = read_u32(bytes, &mut at).ok_or_else(|| format!("change {i}: truncated"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| format!("change {i}: {len} bytes past the end"))?;
        if seq <= previous {
            return Err(format!("change {i}: sequence {seq} after {previous}"));
        }
        previous = seq;
        out.push((seq, bytes.slice(at..end)));
        at = end;
    }
    if at != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - at));
    }
    if previous != id_seq {
        return Err(format!(
            "last change {previous} does not match the entry ID {id_seq}"
        ));
    }
    Ok(out)
}

fn read_u32(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let v = bytes.get(*at..*at + 4)?;
    *at += 4;
    Some(u32::from_le_bytes(v.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let v = bytes.get(*at..*at + 8)?;
    *at += 8;
    Some(u64::from_le_bytes(v.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seqs: impl IntoIterator<Item = u64>, size: usize) -> Vec<(u64, Bytes)> {
        seqs.into_iter()
            .map(|s| (s, Bytes::from(vec![s as u8; size])))
            .collect()
    }

    #[test]
    fn pack_round_trips_and_splits_by_count_and_bytes() {
        let b = batch(1..=2500, 3);
        let packed = pack(&b);
        assert_eq!(
            packed.iter().map(|p| (p.last, p.count)).collect::<Vec<_>>(),
            vec![(1024, 1024), (2048, 1024), (2500, 452)]
        );
        let back: Vec<(u64, Bytes)> = packed
            .iter()
            .flat_map(|p| unpack(p.last, &p.bytes).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(back, b);
        // 100 KiB changes: three fit under the byte bound, the next entry starts after it.
        let big = batch([3, 5, 9, 10], 100 << 10);
        let packed = pack(&big);
        assert_eq!(
            packed.iter().map(|p| (p.last, p.count)).collect::<Vec<_>>(),
            vec![(9, 3), (10, 1)]
        );
        assert_eq!(pack(&big), packed, "deterministic");
        assert!(pack(&[]).is_empty());
    }

    #[test]
    fn defects_are_reported_not_misread() {
        let p = pack(&batch([4, 7], 2)).remove(0);
        assert!(unpack(7, &p.bytes).is_ok());
        assert!(unpack(8, &p.bytes).unwrap_err().contains("entry ID"));
        let mut v = p.bytes.to_vec();
        v[0] = 9;
        assert!(
            unpack(7, &Bytes::from(v))
                .unwrap_err()
                .contains("unknown entry format version 9")
        );
        for cut in 0..p.bytes.len() {
            assert!(unpack(7, &p.bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut v = p.bytes.to_vec();
        v.push(0);
        assert!(unpack(7, &Bytes::from(v)).unwrap_err().contains("trailing"));
        let swapped = pack_one(&batch([7, 4], 2), 4);
        assert!(unpack(4, &swapped.bytes).unwrap_err().contains("after"));
        let mut huge = vec![ENTRY_FORMAT];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(1, &Bytes::from(huge)).is_err());
    }
}
