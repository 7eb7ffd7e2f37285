//! A cheap scanner on the reader's path: terminal modes and queries, without running the emulator.
//!
//! The screen emulator is fed lazily (see `screen.rs`), so it may be far behind the newest byte.
//! Two things cannot wait for it: queries a program blocks on (cursor position, device
//! attributes) and the modes a screen replay could lose (alternate screen, cursor-key mode,
//! bracketed paste). This scanner finds both by looking only at the bytes after each ESC.

/// Private modes the scanner tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    /// A full-screen program switched to the alternate screen (`?1049h`, `?1047h`, `?47h`).
    pub alt_screen: bool,
    /// Cursor keys send application sequences (DECCKM, `?1h`): arrows are `ESC O A`.
    pub app_cursor: bool,
    /// The program asked for bracketed paste (`?2004h`).
    pub bracketed_paste: bool,
}

impl Modes {
    /// Escape sequences that re-establish these modes on a freshly reset emulator.
    pub fn replay_prefix(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.alt_screen {
            out.extend_from_slice(b"\x1b[?1049h");
        }
        if self.app_cursor {
            out.extend_from_slice(b"\x1b[?1h");
        }
        if self.bracketed_paste {
            out.extend_from_slice(b"\x1b[?2004h");
        }
        out
    }
}

/// A query the terminal must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `ESC [ 6 n`: report the cursor position.
    CursorPosition,
    /// `ESC [ 5 n`: report status ("OK").
    Status,
    /// `ESC [ c` / `ESC [ 0 c`: primary device attributes.
    PrimaryAttributes,
    /// `ESC [ > c`: secondary device attributes.
    SecondaryAttributes,
}

/// The longest CSI sequence kept across chunk boundaries; longer ones are not ours to track.
const MAX_PENDING: usize = 32;

/// Tracks modes across chunks; a sequence split between two reads is still seen.
#[derive(Debug, Default)]
pub struct ModeScanner {
    modes: Modes,
    /// An unfinished `ESC [ ...` from the end of the previous chunk.
    pending: Vec<u8>,
}

impl ModeScanner {
    /// The modes as of the last scanned byte.
    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// Scans one chunk, updating modes and appending the queries it contains to `queries`.
    pub fn scan(&mut self, chunk: &[u8], queries: &mut Vec<Query>) {
        let mut rest = chunk;
        if !self.pending.is_empty() {
            let mut joined = std::mem::take(&mut self.pending);
            let take = chunk.len().min(MAX_PENDING);
            joined.extend_from_slice(&chunk[..take]);
            let used = self.sequence(&joined, queries);
            match used {
                Some(n) if n > joined.len() - take => rest = &chunk[n - (joined.len() - take)..],
                Some(_) => {}
                None if joined.len() < MAX_PENDING && take == chunk.len() => {
                    self.pending = joined;
                    return;
                }
                None => {}
            }
        }
        let mut i = 0;
        while let Some(pos) = rest[i..].iter().position(|&b| b == 0x1b) {
            let start = i + pos;
            match self.sequence(&rest[start..], queries) {
                Some(n) => i = start + n.max(1),
                None => {
                    if rest.len() - start < MAX_PENDING {
                        self.pending = rest[start..].to_vec();
                    }
                    return;
                }
            }
        }
    }

    /// Interprets the CSI sequence at `seq[0]` (ESC). Returns its length, or `None` when the
    /// bytes end before the sequence does.
    fn sequence(&mut self, seq: &[u8], queries: &mut Vec<Query>) -> Option<usize> {
        match seq.get(1) {
            None => return None,
            Some(b'[') => {}
            Some(_) => return Some(2),
        }
        let end = seq[2..].iter().position(|b| (0x40..=0x7e).contains(b))? + 2;
        let body = &seq[2..end];
        if body.len() > MAX_PENDING {
            return Some(end + 1);
        }
        match (body, seq[end]) {
            (b"6", b'n') => queries.push(Query::CursorPosition),
            (b"5", b'n') => queries.push(Query::Status),
            (b"" | b"0", b'c') => queries.push(Query::PrimaryAttributes),
            (b">" | b">0", b'c') => queries.push(Query::SecondaryAttributes),
            ([b'?', params @ ..], action @ (b'h' | b'l')) => {
                let on = action == b'h';
                for param in params.split(|&b| b == b';') {
                    match param {
                        b"1049" | b"1047" | b"47" => self.modes.alt_screen = on,
                        b"1" => self.modes.app_cursor = on,
                        b"2004" => self.modes.bracketed_paste = on,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        Some(end + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(chunks: &[&[u8]]) -> (Modes, Vec<Query>) {
        let mut s = ModeScanner::default();
        let mut q = Vec::new();
        for c in chunks {
            s.scan(c, &mut q);
        }
        (s.modes(), q)
    }

    #[test]
    fn tracks_alt_screen_and_cursor_keys() {
        let (m, q) = scan_all(&[b"\x1b[?1049h\x1b[?1h\x1b=text\x1b[?2004h"]);
        assert!(m.alt_screen && m.app_cursor && m.bracketed_paste);
        assert!(q.is_empty());
        let (m, _) = scan_all(&[b"\x1b[?1049h", b"\x1b[?1049l\x1b[?1;2004l"]);
        assert_eq!(m, Modes::default());
    }

    #[test]
    fn finds_queries_split_across_chunks() {
        let (_, q) = scan_all(&[b"abc\x1b[", b"6n", b"\x1b[c\x1b[>c\x1b[5n"]);
        assert_eq!(q, vec![Query::CursorPosition, Query::PrimaryAttributes, Query::SecondaryAttributes, Query::Status]);
        let (m, _) = scan_all(&[b"\x1b", b"[?10", b"49h"]);
        assert!(m.alt_screen);
    }

    #[test]
    fn colours_are_not_queries() {
        let (m, q) = scan_all(&[b"\x1b[1;31mred\x1b[0m\x1b[6;1H"]);
        assert!(q.is_empty());
        assert_eq!(m, Modes::default());
    }
}
