//! A cheap scanner on the reader's path: terminal modes, queries and shell-integration marks,
//! found without running the emulator.
//!
//! The screen emulator is fed lazily (see `screen.rs`), so it may be far behind the newest byte.
//! Three things cannot wait for it: queries a program blocks on (cursor position, device
//! attributes), the modes a screen replay could lose (alternate screen, cursor-key mode,
//! bracketed paste), and the OSC 133 marks by which an integrated shell says where a command's
//! output starts and how it ended. This scanner finds them by looking only at what follows ESC.

use crate::shell::{Mark, MarkKind};
use crate::transcript::Offset;

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

/// Something found in the output that the session must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The program asks the terminal something.
    Query(Query),
    /// The integrated shell marked a point of its prompt/command cycle.
    Mark(Mark),
}

/// The longest CSI sequence tracked; longer ones are not ours.
const MAX_CSI: usize = 32;
/// The longest OSC string held across chunk boundaries (a mark carries a working directory).
const MAX_OSC: usize = 4096;

/// Tracks modes and marks across chunks; a sequence split between two reads is still seen.
#[derive(Debug, Default)]
pub struct Scanner {
    modes: Modes,
    /// The token an integrated shell puts in its marks; marks without it are ignored.
    token: Option<String>,
    /// An unfinished sequence from the end of the previous chunk.
    pending: Vec<u8>,
}

impl Scanner {
    /// A scanner that accepts shell marks carrying `token`.
    pub fn new(token: Option<String>) -> Scanner {
        Scanner { token, ..Scanner::default() }
    }

    /// The modes as of the last scanned byte.
    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// Scans one chunk that starts at transcript offset `at`, updating modes and appending
    /// queries and marks to `events`.
    pub fn scan(&mut self, chunk: &[u8], at: Offset, events: &mut Vec<Event>) {
        if self.pending.is_empty() {
            self.scan_from(chunk, at, events);
        } else {
            // Rare: a sequence was split between reads. Rescan it joined with this chunk.
            let mut joined = std::mem::take(&mut self.pending);
            let base = Offset(at.0 - joined.len() as u64);
            joined.extend_from_slice(chunk);
            self.scan_from(&joined, base, events);
        }
    }

    fn scan_from(&mut self, bytes: &[u8], base: Offset, events: &mut Vec<Event>) {
        let mut i = 0;
        while let Some(pos) = bytes[i..].iter().position(|&b| b == 0x1b) {
            let start = i + pos;
            match self.sequence(&bytes[start..], base.plus(start), events) {
                Some(n) => i = start + n.max(1),
                None => {
                    if bytes.len() - start < MAX_OSC {
                        self.pending = bytes[start..].to_vec();
                    }
                    return;
                }
            }
        }
    }

    /// Interprets the sequence at `seq[0]` (ESC), which starts at offset `at`. Returns its
    /// length, or `None` when the bytes end before the sequence does.
    fn sequence(&mut self, seq: &[u8], at: Offset, events: &mut Vec<Event>) -> Option<usize> {
        match seq.get(1) {
            None => None,
            Some(b'[') => self.csi(seq, events),
            Some(b']') => {
                let (body, len) = osc_body(seq)?;
                if let Some(mark) = self.mark(body, at, at.plus(len)) {
                    events.push(Event::Mark(mark));
                }
                Some(len)
            }
            Some(_) => Some(2),
        }
    }

    fn csi(&mut self, seq: &[u8], events: &mut Vec<Event>) -> Option<usize> {
        // Only the first MAX_CSI bytes may hold the final byte, and an ESC before it aborts the
        // sequence (a terminal starts the new one there): so the verdict never depends on how
        // far the output happens to reach, and a long run of junk cannot swallow a real query.
        let window = &seq[2..seq.len().min(2 + MAX_CSI + 1)];
        let end = match window.iter().position(|&b| (0x40..=0x7e).contains(&b) || b == 0x1b) {
            Some(p) if window[p] == 0x1b => return Some(p + 2),
            Some(p) => p + 2,
            None if window.len() > MAX_CSI => return Some(2),
            None => return None,
        };
        let body = &seq[2..end];
        match (body, seq[end]) {
            (b"6", b'n') => events.push(Event::Query(Query::CursorPosition)),
            (b"5", b'n') => events.push(Event::Query(Query::Status)),
            (b"" | b"0", b'c') => events.push(Event::Query(Query::PrimaryAttributes)),
            (b">" | b">0", b'c') => events.push(Event::Query(Query::SecondaryAttributes)),
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

    /// A shell mark `133;KIND[;EXIT];k=TOKEN[;cwd=PATH]`, if it carries our token.
    fn mark(&self, body: &[u8], start: Offset, end: Offset) -> Option<Mark> {
        let token = self.token.as_deref()?;
        let rest = body.strip_prefix(b"133;")?;
        let (&kind, rest) = rest.split_first()?;
        let kind = match kind {
            b'A' => MarkKind::PromptStart,
            b'B' => MarkKind::PromptEnd,
            b'C' => MarkKind::OutputStart,
            b'D' => MarkKind::CommandEnd,
            _ => return None,
        };
        let mut rest = rest.strip_prefix(b";")?;
        let mut exit = None;
        if kind == MarkKind::CommandEnd {
            let semi = rest.iter().position(|&b| b == b';')?;
            exit = std::str::from_utf8(&rest[..semi]).ok()?.parse().ok();
            rest = &rest[semi + 1..];
        }
        let rest = rest.strip_prefix(b"k=")?.strip_prefix(token.as_bytes())?;
        let cwd = match rest {
            [] => None,
            _ => Some(String::from_utf8_lossy(rest.strip_prefix(b";cwd=")?).into_owned()),
        };
        Some(Mark { kind, exit, cwd, start, end })
    }
}

/// The body of the OSC string at `seq[0]` (ESC `]`) and the whole sequence's length, ended by
/// BEL or ST; `None` while unterminated.
fn osc_body(seq: &[u8]) -> Option<(&[u8], usize)> {
    let body = &seq[2..];
    for (i, &b) in body.iter().enumerate().take(MAX_OSC) {
        match b {
            0x07 => return Some((&body[..i], i + 3)),
            0x1b if body.get(i + 1) == Some(&b'\\') => return Some((&body[..i], i + 4)),
            0x1b if i + 1 < body.len() => return Some((&body[..i], i + 2)), // aborted by a new sequence
            _ => {}
        }
    }
    (body.len() >= MAX_OSC).then_some((&[][..], 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: an `ESC [` followed by a long run of bytes that end no sequence used to
    /// run on to the final byte of a real query far after it, swallowing the query when read at
    /// once but not when read in parts.
    #[test]
    fn junk_after_csi_does_not_swallow_a_later_query_however_it_is_read() {
        let mut data = b"\xd0\x1b[".to_vec();
        data.extend_from_slice(&[0xfb; 60]);
        data.extend_from_slice(b"\x1b[c++\x1b[&");
        let whole = scan_all(None, &[&data]);
        assert_eq!(whole.1, vec![Event::Query(Query::PrimaryAttributes)]);
        for cut in 0..=data.len() {
            assert_eq!(scan_all(None, &[&data[..cut], &data[cut..]]), whole, "cut at {cut}");
        }
        // An ESC inside a CSI aborts it; the sequence it starts counts.
        assert_eq!(scan_all(None, &[b"\x1b[12\x1b[6n"]).1, vec![Event::Query(Query::CursorPosition)]);
    }

    fn scan_all(token: Option<&str>, chunks: &[&[u8]]) -> (Modes, Vec<Event>) {
        let mut s = Scanner::new(token.map(String::from));
        let mut events = Vec::new();
        let mut at = Offset(0);
        for c in chunks {
            s.scan(c, at, &mut events);
            at = at.plus(c.len());
        }
        (s.modes(), events)
    }

    fn queries(events: &[Event]) -> Vec<Query> {
        events.iter().filter_map(|e| if let Event::Query(q) = e { Some(*q) } else { None }).collect()
    }

    #[test]
    fn tracks_alt_screen_and_cursor_keys() {
        let (m, q) = scan_all(None, &[b"\x1b[?1049h\x1b[?1h\x1b=text\x1b[?2004h"]);
        assert!(m.alt_screen && m.app_cursor && m.bracketed_paste);
        assert!(q.is_empty());
        let (m, _) = scan_all(None, &[b"\x1b[?1049h", b"\x1b[?1049l\x1b[?1;2004l"]);
        assert_eq!(m, Modes::default());
    }

    #[test]
    fn finds_queries_split_across_chunks() {
        let (_, e) = scan_all(None, &[b"abc\x1b[", b"6n", b"\x1b[c\x1b[>c\x1b[5n"]);
        assert_eq!(
            queries(&e),
            vec![Query::CursorPosition, Query::PrimaryAttributes, Query::SecondaryAttributes, Query::Status]
        );
        let (m, _) = scan_all(None, &[b"\x1b", b"[?10", b"49h"]);
        assert!(m.alt_screen);
    }

    #[test]
    fn colours_and_titles_are_not_queries() {
        let (m, e) = scan_all(None, &[b"\x1b[1;31mred\x1b[0m\x1b[6;1H\x1b]0;title\x07"]);
        assert!(e.is_empty());
        assert_eq!(m, Modes::default());
    }

    #[test]
    fn marks_need_the_token_and_keep_their_offsets() {
        let chunks: [&[u8]; 3] = [b"out\x1b]133;D;", b"127;k=T0K;cwd=/tmp/a;b\x07", b"\x1b]133;A;k=T0K\x1b\\$ "];
        let (_, e) = scan_all(Some("T0K"), &chunks);
        let marks: Vec<&Mark> = e.iter().filter_map(|e| if let Event::Mark(m) = e { Some(m) } else { None }).collect();
        assert_eq!(marks.len(), 2);
        assert_eq!(
            (marks[0].kind, marks[0].exit, marks[0].cwd.as_deref()),
            (MarkKind::CommandEnd, Some(127), Some("/tmp/a;b"))
        );
        assert_eq!((marks[0].start, marks[0].end), (Offset(3), Offset(34)));
        assert_eq!(marks[1].kind, MarkKind::PromptStart);
        // Without the token, or with another one, marks are only bytes.
        let (_, e) = scan_all(Some("T0K"), &[b"\x1b]133;D;0;k=FORGED\x07\x1b]133;C\x07"]);
        assert!(e.is_empty());
        let (_, e) = scan_all(None, &chunks);
        assert!(e.is_empty());
    }
}
