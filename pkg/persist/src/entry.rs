//! The stream entry layout: several changes packed into one entry.
//!
//! Packing is what makes appends and replay fast: the client's per-entry reply parsing, not
//! Redis, bounds the replay rate, and one XADD per change costs a command per change on the
//! write path (measured in `docs/benchmarks.md`). Each change keeps its own codec encoding
//! (with the model's format-version byte) inside the entry.
//!
//! ```text
//! entry ID   <last seq>-1            (the sequence of the entry's last change)
//! field `p`  [3][count varint]  then per change  [last seq - seq, varint][len varint][bytes]
//!            format 2 (earlier builds; still read):
//!            [2][count u32 LE]  then per change  [seq u64 LE][len u32 LE][bytes]
//! field `c`  one change (entry format 1, written by earlier builds; still read)
//! ```
//!
//! Varints are LEB128. A change of one object's few fields (a patch, `docs/adr/0020`) takes
//! tens of bytes, and at a hundred changes a second most entries hold one: format 3's two bytes
//! of framing instead of twelve are a sixth of such an entry.
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
/// Version of the packed entry container written by this build. Format 2 (fixed-width
/// framing) and format 1 (the single-change entry, field `c`) are still read.
pub const ENTRY_FORMAT: u8 = 3;
/// The fixed-width container of earlier builds.
const ENTRY_FORMAT_FIXED: u8 = 2;
/// Most changes in one entry.
pub const ENTRY_MAX_CHANGES: usize = 1024;
/// An entry is closed once its changes reach this many bytes (bounds replay page memory).
pub const ENTRY_MAX_BYTES: usize = 256 << 10;

const HEADER: usize = 1 + 2;
const PER_CHANGE: usize = 8 + 4;
/// The fewest bytes a change takes in a format 3 container (two one-byte varints).
const MIN_PER_CHANGE: usize = 2;

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
    let last = changes.last().map_or(0, |(s, _)| *s);
    let mut buf = Vec::with_capacity(HEADER + changes.len() * PER_CHANGE + payload_bytes);
    buf.put_u8(ENTRY_FORMAT);
    put_varint(&mut buf, changes.len() as u64);
    for (seq, payload) in changes {
        put_varint(&mut buf, last.saturating_sub(*seq));
        put_varint(&mut buf, payload.len() as u64);
        buf.put_slice(payload);
    }
    Packed {
        last,
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
    let fixed = match format {
        ENTRY_FORMAT => false,
        ENTRY_FORMAT_FIXED => true,
        _ => {
            return Err(format!(
                "unknown entry format version {format} (this build reads {ENTRY_FORMAT_FIXED} and {ENTRY_FORMAT})"
            ));
        }
    };
    let mut at = 1;
    let count = if fixed {
        read_u32(bytes, &mut at).map(u64::from)
    } else {
        read_varint(bytes, &mut at)
    }
    .ok_or("truncated header")?;
    let count = usize::try_from(count).map_err(|_| "count too large")?;
    let per_change = if fixed { PER_CHANGE } else { MIN_PER_CHANGE };
    if count == 0 || count > bytes.len() / per_change {
        return Err(format!("implausible change count {count}"));
    }
    let mut out = Vec::with_capacity(count);
    let mut previous = 0;
    for i in 0..count {
        let truncated = || format!("change {i}: truncated");
        let (seq, len) = if fixed {
            let seq = read_u64(bytes, &mut at).ok_or_else(truncated)?;
            let len = read_u32(bytes, &mut at).ok_or_else(truncated)?;
            (seq, u64::from(len))
        } else {
            let back = read_varint(bytes, &mut at).ok_or_else(truncated)?;
            let seq = id_seq
                .checked_sub(back)
                .ok_or_else(|| format!("change {i}: {back} before the entry ID {id_seq}"))?;
            (seq, read_varint(bytes, &mut at).ok_or_else(truncated)?)
        };
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

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A LEB128 varint of at most ten bytes, in canonical form (no trailing zero groups).
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        let part = u64::from(b & 0x7f);
        if shift == 63 && part > 1 {
            return None;
        }
        v |= part << shift;
        if b & 0x80 == 0 {
            return (b != 0 || shift == 0).then_some(v);
        }
    }
    None
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

    /// The fixed-width container of earlier builds, as they wrote it.
    fn pack_fixed(changes: &[(u64, Bytes)]) -> Bytes {
        let mut buf = vec![ENTRY_FORMAT_FIXED];
        buf.put_u32_le(changes.len() as u32);
        for (seq, payload) in changes {
            buf.put_u64_le(*seq);
            buf.put_u32_le(payload.len() as u32);
            buf.put_slice(payload);
        }
        Bytes::from(buf)
    }

    #[test]
    fn entries_of_format_2_are_still_read() {
        let b = batch([3, 4, 9], 5);
        let fixed = pack_fixed(&b);
        assert_eq!(unpack(9, &fixed).unwrap(), b);
        assert!(unpack(10, &fixed).unwrap_err().contains("entry ID"));
        for cut in 0..fixed.len() {
            assert!(unpack(9, &fixed.slice(..cut)).is_err(), "cut at {cut}");
        }
        // Format 3 frames a one-change entry in three bytes, format 2 in seventeen.
        let one = batch([7], 40);
        assert_eq!(pack(&one)[0].bytes.len(), 40 + 4);
        assert_eq!(pack_fixed(&one).len(), 40 + 17);
    }

    #[test]
    fn defects_are_reported_not_misread() {
        let p = pack(&batch([4, 7], 2)).remove(0);
        assert!(unpack(7, &p.bytes).is_ok());
        // Sequences are relative to the entry ID, whose last change is the entry's.
        let seqs = |id| {
            unpack(id, &p.bytes)
                .unwrap()
                .into_iter()
                .map(|(s, _)| s)
                .collect::<Vec<_>>()
        };
        assert_eq!(seqs(8), [5, 8]);
        assert!(
            unpack(2, &p.bytes)
                .unwrap_err()
                .contains("before the entry ID")
        );
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
        let mut huge = vec![ENTRY_FORMAT_FIXED];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(1, &Bytes::from(huge)).is_err());
    }
}
