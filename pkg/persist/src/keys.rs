//! Redis key layout: every key of one cluster shares the hash tag `{<cluster>}` (one Cluster slot).

use crate::error::{PersistError, Result};

/// The keys of one logical Kubernetes cluster.
///
/// ```text
/// astrolabe:{<cluster>}:events              stream, changes packed into entries (see `entry`),
///                                           ID `<seq of the entry's last change>-1`
/// astrolabe:{<cluster>}:snapshot:meta       hash, the committed snapshot (see `SnapshotMeta`)
/// astrolabe:{<cluster>}:snapshot:previous   hash, the generation the last commit replaced
///                                           (same fields): recovery's fallback
/// astrolabe:{<cluster>}:snapshot:<gen>:<i>  string, chunk i of snapshot generation gen
/// astrolabe:{<cluster>}:snapshot:checkpoints sorted set, the generations retained for
///                                           history besides those two (score: covered seq)
/// astrolabe:{<cluster>}:snapshot:checkpoint:<gen>  hash, such a generation's record
/// astrolabe:{<cluster>}:events:damaged:<ms> stream, a damaged event stream set aside at <ms>
///                                           (see `EventLog::set_aside_beyond`), never read
/// astrolabe:{<cluster>}:fence               string, the epoch of the newest writer that
///                                           claimed the log (see `RedisLog::claim_epoch`)
/// ```
///
/// At least two generations are kept, the committed one and the previous one, and the older
/// ones the history retention needs; the stream is trimmed only behind the oldest kept one, so
/// the previous generation and the stream after it are a complete history when the committed
/// snapshot is damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    events: String,
    meta: String,
    previous: String,
    checkpoints: String,
    gaps: String,
    fence: String,
    checkpoint_prefix: String,
    chunk_prefix: String,
}

impl Keys {
    /// Keys for `cluster`.
    ///
    /// # Errors
    /// [`PersistError::InvalidClusterName`] if the name is empty or contains `{` or `}` (it would
    /// break the hash tag).
    pub fn new(cluster: &str) -> Result<Self> {
        if cluster.is_empty() || cluster.contains(['{', '}']) {
            return Err(PersistError::InvalidClusterName(cluster.to_owned()));
        }
        let base = format!("astrolabe:{{{cluster}}}");
        Ok(Self {
            events: format!("{base}:events"),
            meta: format!("{base}:snapshot:meta"),
            previous: format!("{base}:snapshot:previous"),
            checkpoints: format!("{base}:snapshot:checkpoints"),
            gaps: format!("{base}:gaps"),
            fence: format!("{base}:fence"),
            checkpoint_prefix: format!("{base}:snapshot:checkpoint:"),
            chunk_prefix: format!("{base}:snapshot:"),
        })
    }

    /// The event stream.
    #[must_use]
    pub fn events(&self) -> &str {
        &self.events
    }

    /// Where the event stream is set aside when it is found damaged at `at_ms` (Unix
    /// milliseconds).
    #[must_use]
    pub fn damaged_events(&self, at_ms: i64) -> String {
        format!("{}:damaged:{at_ms}", self.events)
    }

    /// The committed snapshot's metadata hash.
    #[must_use]
    pub fn snapshot_meta(&self) -> &str {
        &self.meta
    }

    /// The previous snapshot generation's metadata hash (the record the last commit replaced).
    #[must_use]
    pub fn previous_meta(&self) -> &str {
        &self.previous
    }

    /// The sorted set of the older generations retained as checkpoints (member: generation,
    /// score: covered sequence).
    #[must_use]
    pub fn checkpoints(&self) -> &str {
        &self.checkpoints
    }

    /// The recorded gaps ([`crate::Gap`]): a sorted set scored by their end time.
    #[must_use]
    pub fn gaps(&self) -> &str {
        &self.gaps
    }

    /// The fence: the newest claimed writer epoch.
    #[must_use]
    pub fn fence(&self) -> &str {
        &self.fence
    }

    /// The record of `generation` when it is an older retained checkpoint (same fields as
    /// [`Keys::snapshot_meta`]).
    #[must_use]
    pub fn checkpoint_meta(&self, generation: u64) -> String {
        format!("{}{generation}", self.checkpoint_prefix)
    }

    /// The prefix of every older checkpoint's record: `checkpoint_meta(g)` is this followed
    /// by `g`.
    #[must_use]
    pub(crate) fn checkpoint_prefix(&self) -> &str {
        &self.checkpoint_prefix
    }

    /// Chunk `index` of snapshot generation `generation`.
    #[must_use]
    pub fn chunk(&self, generation: u64, index: u64) -> String {
        format!("{}{generation}:{index}", self.chunk_prefix)
    }

    /// The prefix of every chunk key: `chunk(g, i)` is this followed by `g:i`.
    #[must_use]
    pub(crate) fn chunk_prefix(&self) -> &str {
        &self.chunk_prefix
    }

    /// A SCAN MATCH pattern for every chunk key (the metadata key matches too; filter with
    /// [`Keys::parse_chunk`]). Glob characters in the cluster name are escaped.
    #[must_use]
    pub fn chunk_pattern(&self) -> String {
        let mut out = String::with_capacity(self.chunk_prefix.len() + 4);
        for c in self.chunk_prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push_str("*:*");
        out
    }

    /// `(generation, index)` if `key` is a chunk key of this cluster.
    #[must_use]
    pub fn parse_chunk(&self, key: &str) -> Option<(u64, u64)> {
        let rest = key.strip_prefix(&self.chunk_prefix)?;
        let (generation, index) = rest.split_once(':')?;
        Some((generation.parse().ok()?, index.parse().ok()?))
    }
}

/// Stream entry ID for an entry whose last change is `seq`: `<seq>-1`.
///
/// The millisecond part carries the sequence so `XRANGE (<id>`, `XTRIM MINID <seq>` and
/// `XREVRANGE + - COUNT 1` all work directly on sequences; the `-1` keeps every ID distinct from
/// the invalid `0-0` even for sequence 0 and marks entries written by this scheme.
#[must_use]
pub fn entry_id(seq: u64) -> String {
    format!("{seq}-1")
}

/// The sequence of a stream entry ID (the part before `-`).
#[must_use]
pub fn seq_of_id(id: &str) -> Option<u64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_shares_one_hash_tag() {
        let k = Keys::new("prod-a").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.events(), "astrolabe:{prod-a}:events");
        assert_eq!(k.snapshot_meta(), "astrolabe:{prod-a}:snapshot:meta");
        assert_eq!(k.chunk(3, 7), "astrolabe:{prod-a}:snapshot:3:7");
        assert_eq!(k.parse_chunk(&k.chunk(3, 7)), Some((3, 7)));
        assert_eq!(k.parse_chunk(k.snapshot_meta()), None);
        assert_eq!(k.previous_meta(), "astrolabe:{prod-a}:snapshot:previous");
        assert_eq!(k.parse_chunk(k.previous_meta()), None);
        assert_eq!(k.checkpoints(), "astrolabe:{prod-a}:snapshot:checkpoints");
        assert_eq!(
            k.checkpoint_meta(3),
            "astrolabe:{prod-a}:snapshot:checkpoint:3"
        );
        assert_eq!(k.parse_chunk(&k.checkpoint_meta(3)), None);
        assert!(Keys::new("a{b").is_err());
        assert!(Keys::new("").is_err());
    }

    #[test]
    fn pattern_escapes_glob() {
        let k = Keys::new("a*b").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.chunk_pattern(), r"astrolabe:{a\*b}:snapshot:*:*");
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(entry_id(42), "42-1");
        assert_eq!(seq_of_id("42-1"), Some(42));
        assert_eq!(seq_of_id("x"), None);
    }
}
