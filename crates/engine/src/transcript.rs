//! The transcript: every byte a session produced, in a bounded ring addressed by absolute offsets.

use std::collections::VecDeque;
use std::fmt;

/// An absolute byte offset into a session's output, counted from the session's first byte.
///
/// Offsets only grow. Bytes that fell off the front of the ring keep their offsets, so a cursor
/// held by an agent stays meaningful forever: reading from it either returns exactly the bytes
/// that followed it or reports how many of them were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub u64);

impl Offset {
    /// The offset `n` bytes further on.
    pub fn plus(self, n: usize) -> Offset {
        Offset(self.0 + n as u64)
    }

    /// Bytes from `earlier` to `self` (0 when `earlier` is not earlier).
    pub fn since(self, earlier: Offset) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Bytes copied out of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Where the returned bytes start. Later than the requested offset when bytes were lost.
    pub from: Offset,
    /// The bytes themselves.
    pub bytes: Vec<u8>,
    /// How many requested bytes had already fallen off the ring (0 when nothing was lost).
    pub lost: u64,
}

impl Slice {
    /// The offset just after the returned bytes.
    pub fn to(&self) -> Offset {
        self.from.plus(self.bytes.len())
    }
}

/// A bounded ring of output bytes.
#[derive(Debug)]
pub struct Transcript {
    /// The retained bytes; `buf[0]` has offset `start`.
    buf: VecDeque<u8>,
    /// Offset of the oldest retained byte. Everything before it was dropped.
    start: Offset,
    capacity: usize,
}

impl Transcript {
    /// An empty transcript that retains at most `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> Transcript {
        Transcript::starting_at(capacity, Offset(0))
    }

    /// An empty transcript whose first byte will have offset `start`: a mirror of another
    /// transcript (an ai-tmux daemon's) keeps that one's offsets.
    pub fn starting_at(capacity: usize, start: Offset) -> Transcript {
        let capacity = capacity.max(1);
        Transcript { buf: VecDeque::with_capacity(capacity.min(1 << 20)), start, capacity }
    }

    /// Appends output, dropping the oldest bytes beyond the capacity.
    pub fn append(&mut self, bytes: &[u8]) {
        let bytes = if bytes.len() > self.capacity {
            // Only the newest `capacity` bytes can be kept; the rest are lost at once.
            let skip = bytes.len() - self.capacity;
            self.start = self.end().plus(skip);
            self.buf.clear();
            &bytes[skip..]
        } else {
            bytes
        };
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.capacity);
        if overflow > 0 {
            self.buf.drain(..overflow);
            self.start = self.start.plus(overflow);
        }
        self.buf.extend(bytes);
    }

    /// Offset of the oldest byte still held.
    pub fn start(&self) -> Offset {
        self.start
    }

    /// Offset just after the newest byte: the total number of bytes ever appended.
    pub fn end(&self) -> Offset {
        self.start.plus(self.buf.len())
    }

    /// Copies at most `max` bytes starting at `from` (clamped to what exists).
    pub fn slice(&self, from: Offset, max: usize) -> Slice {
        let from = from.min(self.end());
        let lost = self.start.since(from);
        let begin = from.max(self.start);
        let skip = begin.since(self.start) as usize;
        let take = max.min(self.buf.len() - skip);
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(take);
        // The range [skip, skip + take) may straddle the two halves of the ring.
        let a_part = &a[skip.min(a.len())..(skip + take).min(a.len())];
        bytes.extend_from_slice(a_part);
        let b_skip = skip.saturating_sub(a.len());
        bytes.extend_from_slice(&b[b_skip..b_skip + (take - a_part.len())]);
        Slice { from: begin, bytes, lost }
    }

    /// Copies everything from `from` to the end.
    pub fn slice_to_end(&self, from: Offset) -> Slice {
        self.slice(from, usize::MAX)
    }

    /// Copies the last `n` bytes (fewer when the ring holds fewer).
    pub fn tail(&self, n: usize) -> Slice {
        let from = Offset(self.end().0.saturating_sub(n as u64)).max(self.start);
        self.slice_to_end(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_grow_and_old_bytes_fall_off() {
        let mut t = Transcript::new(8);
        t.append(b"abcdef");
        t.append(b"ghij");
        assert_eq!(t.start(), Offset(2));
        assert_eq!(t.end(), Offset(10));
        let s = t.slice(Offset(0), 100);
        assert_eq!(s.lost, 2);
        assert_eq!(s.from, Offset(2));
        assert_eq!(s.bytes, b"cdefghij");
        assert_eq!(s.to(), Offset(10));
    }

    #[test]
    fn slices_are_exact_and_never_repeat() {
        let mut t = Transcript::new(1 << 10);
        for i in 0..100u8 {
            t.append(&[i]);
        }
        let mut cursor = Offset(0);
        let mut seen = Vec::new();
        while cursor < t.end() {
            let s = t.slice(cursor, 7);
            assert_eq!(s.lost, 0);
            seen.extend_from_slice(&s.bytes);
            cursor = s.to();
        }
        assert_eq!(seen, (0..100u8).collect::<Vec<_>>());
    }

    #[test]
    fn a_chunk_larger_than_the_ring_keeps_its_tail() {
        let mut t = Transcript::new(4);
        t.append(b"xy");
        t.append(b"0123456789");
        assert_eq!(t.start(), Offset(8));
        assert_eq!(t.slice_to_end(Offset(0)).bytes, b"6789");
        assert_eq!(t.slice_to_end(Offset(0)).lost, 8);
    }

    #[test]
    fn slicing_past_the_end_is_empty() {
        let mut t = Transcript::new(4);
        t.append(b"ab");
        let s = t.slice(Offset(99), 10);
        assert_eq!(s.from, Offset(2));
        assert!(s.bytes.is_empty());
        assert_eq!(t.tail(1).bytes, b"b");
    }
}
