//! Clean text: terminal output as a person reads it in a scrolling terminal.
//!
//! Escape sequences of every kind are removed; carriage-return redraws (progress bars),
//! backspaces and in-line erases are resolved the way a terminal would show the line; invalid
//! UTF-8 becomes U+FFFD and never splits a character. Full-screen drawing (cursor addressing)
//! is not replayed here: that is the screen's job.

use vte::{Params, Parser, Perform};

/// Renders raw terminal bytes as clean text.
pub fn clean(bytes: &[u8]) -> String {
    let mut renderer = LineRenderer::default();
    Parser::new().advance(&mut renderer, bytes);
    renderer.finish()
}

/// The largest length `<= max` at which `bytes` can be cut without splitting a UTF-8 character
/// or an escape sequence that has started but not ended before the cut.
pub fn safe_cut(bytes: &[u8], max: usize) -> usize {
    if max >= bytes.len() {
        return bytes.len();
    }
    let mut cut = max;
    // Back off from UTF-8 continuation bytes to the start of the character.
    let mut back = 0;
    while cut > 0 && back < 3 && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
        back += 1;
    }
    // An escape sequence that started shortly before the cut and has not ended yet moves the cut
    // before it. Sequences we care about are short; OSC strings can be long but are rare.
    let window = cut.saturating_sub(256);
    if let Some(esc) = bytes[window..cut].iter().rposition(|&b| b == 0x1b) {
        let esc = window + esc;
        if !sequence_ends(&bytes[esc..cut]) {
            cut = esc;
        }
    }
    cut
}

/// Whether an escape sequence starting at `seq[0]` (ESC) is complete within `seq`.
fn sequence_ends(seq: &[u8]) -> bool {
    match seq.get(1) {
        None => false,
        Some(b'[') => seq[2..].iter().any(|b| (0x40..=0x7e).contains(b)),
        Some(b']') | Some(b'P') | Some(b'_') | Some(b'^') => {
            seq.contains(&0x07) || seq.windows(2).any(|w| w == b"\x1b\\")
        }
        Some(_) => seq.len() >= 2,
    }
}

/// Builds lines of text from terminal actions, tracking the column within the current line.
#[derive(Default)]
struct LineRenderer {
    out: String,
    line: Vec<char>,
    col: usize,
}

impl LineRenderer {
    fn finish(mut self) -> String {
        // An unfinished last line of nothing but blanks is terminal housekeeping (zsh's
        // PROMPT_SP pads a line with spaces before each prompt), not output.
        if self.line.iter().all(|c| *c == ' ') {
            return self.out;
        }
        self.out.extend(self.line.drain(..));
        self.out
    }

    fn flush_line(&mut self) {
        self.out.extend(self.line.drain(..));
        self.out.push('\n');
        self.col = 0;
    }

    /// The rightmost column the cursor can be moved to.
    fn furthest(&self) -> usize {
        MAX_COLUMN.max(self.line.len())
    }

    fn put(&mut self, c: char) {
        if self.col < self.line.len() {
            self.line[self.col] = c;
        } else {
            self.line.resize(self.col, ' ');
            self.line.push(c);
        }
        self.col += 1;
    }
}

/// How far right a cursor movement may take the column (a terminal stops at its last column):
/// without a bound, a few bytes of `ESC [ 65535 C` repeated would pad a line to gigabytes.
const MAX_COLUMN: usize = 4096;

fn first_param(params: &Params, default: usize) -> usize {
    match params.iter().next().and_then(|p| p.first()) {
        Some(&0) | None => default,
        Some(&n) => n as usize,
    }
}

impl Perform for LineRenderer {
    fn print(&mut self, c: char) {
        self.put(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | 0x0b | 0x0c => {
                // Trailing blanks left by erase-and-redraw are noise, not content.
                while self.line.last() == Some(&' ') && self.line.len() > self.col {
                    self.line.pop();
                }
                self.flush_line();
            }
            b'\r' => self.col = 0,
            0x08 => self.col = self.col.saturating_sub(1),
            b'\t' => {
                let next = ((self.col / 8 + 1) * 8).min(self.furthest());
                while self.col < next {
                    self.put(' ');
                }
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], _ignore: bool, action: char) {
        if !intermediates.is_empty() {
            return;
        }
        match action {
            // Erase in line: 0 = to the end, 1 = to the start, 2 = all.
            'K' => match first_param(params, 0) {
                0 => self.line.truncate(self.col),
                1 => {
                    let upto = (self.col + 1).min(self.line.len());
                    self.line[..upto].fill(' ');
                }
                _ => self.line.clear(),
            },
            'C' => self.col = self.col.saturating_add(first_param(params, 1)).min(self.furthest()),
            'D' => self.col = self.col.saturating_sub(first_param(params, 1)),
            'G' => self.col = (first_param(params, 1) - 1).min(self.furthest()),
            'P' if self.col < self.line.len() => {
                let n = first_param(params, 1).min(self.line.len() - self.col);
                self.line.drain(self.col..self.col + n);
            }
            'X' => {
                let end = (self.col + first_param(params, 1)).min(self.line.len());
                if self.col < end {
                    self.line[self.col..end].fill(' ');
                }
            }
            '@' if self.col <= self.line.len() => {
                let n = first_param(params, 1);
                self.line.splice(self.col..self.col, std::iter::repeat_n(' ', n));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: deleting characters with the cursor beyond the line's end panicked.
    /// And cursor movements are bounded like a terminal's, so output cannot pad a line to
    /// gigabytes.
    #[test]
    fn cursor_movement_beyond_the_line_is_safe_and_bounded() {
        assert_eq!(clean(b"abc\x1b[10C\x1b[5Pd"), "abc          d");
        let far = b"\x1b[65535C".repeat(1000);
        assert!(clean(&[&far[..], b"x"].concat()).len() <= MAX_COLUMN + 1);
        assert!(clean(&[&b"\x1b[99999G"[..], b"\tx"].concat()).len() <= MAX_COLUMN + 1);
    }

    #[test]
    fn strips_colours_titles_and_modes() {
        let raw = b"\x1b]0;title\x07\x1b[?2004h\x1b[1;32mgreen\x1b[0m plain\r\n";
        assert_eq!(clean(raw), "green plain\n");
    }

    #[test]
    fn resolves_carriage_return_redraws() {
        assert_eq!(clean(b"10%\r50%\r100%\r\ndone"), "100%\ndone");
        assert_eq!(clean(b"long line\rshort\x1b[K\r\n"), "short\n");
    }

    #[test]
    fn resolves_backspaces_like_a_terminal() {
        assert_eq!(clean(b"abc\x08\x08XY\r\n"), "aXY\n");
        assert_eq!(clean(b"ab\x08 \x08\r\n"), "a\n");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(clean(b"a\xffb \xc3\xa9"), "a\u{fffd}b \u{e9}");
    }

    #[test]
    fn a_trailing_line_of_blanks_is_dropped() {
        assert_eq!(clean(b"ok\r\n\x1b[7m%\x1b[27m      \r \r"), "ok\n");
        assert_eq!(clean(b"$ "), "$ ");
    }

    #[test]
    fn tabs_expand_to_eight_columns() {
        assert_eq!(clean(b"a\tb"), "a       b");
    }

    #[test]
    fn safe_cut_never_splits_characters_or_sequences() {
        let s = "é".as_bytes();
        assert_eq!(safe_cut(s, 1), 0);
        let raw = b"ab\x1b[31mc";
        assert_eq!(safe_cut(raw, 4), 2);
        assert_eq!(safe_cut(raw, 7), 7);
        assert_eq!(safe_cut(raw, 100), raw.len());
    }
}
