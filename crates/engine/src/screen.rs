//! The screen: what a person would see now, from a VT emulator fed lazily from the transcript.
//!
//! Emulating every byte on the reader's path would cut a flood's throughput to about a third
//! (measured: `vt100` parses 21–41 MiB/s, a PTY carries 50–90 MB/s). So the reader only appends
//! to the transcript, and the emulator catches up from it when somebody looks at the screen.
//! When it has fallen more than [`MAX_BEHIND`] behind, it is reset and replays only the newest
//! [`REPLAY`] bytes, after re-entering the modes the scanner tracked (alternate screen, cursor
//! keys, bracketed paste), which the skipped bytes might have set.

use std::num::NonZeroU16;

use crate::scanner::Modes;
use crate::transcript::{Offset, Transcript};

/// How far the emulator may lag before catching up means replaying only the tail.
pub const MAX_BEHIND: u64 = 1 << 20;
/// How much is replayed after a reset.
pub const REPLAY: usize = 256 << 10;
/// Rows kept above the screen for `scrollback_lines`. The emulator stores every cell of a row
/// (32 bytes each), so this is 1.9 MB for a 120-column session that scrolled this far: with 2,000
/// rows, 50 sessions that had printed a lot held 450 MB of mostly blank cells.
pub const SCROLLBACK: usize = 500;

/// What a person sees on the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenView {
    /// The screen's rows, trailing blanks trimmed.
    pub lines: Vec<String>,
    /// Lines that scrolled off the top, oldest first (as many as were asked for and exist).
    pub scrollback: Vec<String>,
    /// Cursor row, 0-based.
    pub cursor_row: u16,
    /// Cursor column, 0-based.
    pub cursor_col: u16,
    /// Screen height.
    pub rows: u16,
    /// Screen width.
    pub cols: u16,
    /// Whether a full-screen program holds the alternate screen.
    pub alt_screen: bool,
}

/// The screen as another terminal redraws it (an operator watching the session): each row as
/// text with its colours and attributes, cropped to a width, and the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The rows, top to bottom, each as the escape sequences and text that draw it (attributes
    /// start from the default at each row).
    pub rows: Vec<String>,
    /// Cursor row and column, 0-based.
    pub cursor: (u16, u16),
    /// Whether the program hid the cursor.
    pub hide_cursor: bool,
    /// Whether a full-screen program holds the alternate screen.
    pub alt_screen: bool,
}

/// A colour as the program set it.
pub use vt100::Color;

/// A stretch of a row in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The characters.
    pub text: String,
    /// Foreground colour.
    pub fg: Color,
    /// Background colour.
    pub bg: Color,
    /// [`Run::BOLD`], [`Run::ITALIC`], [`Run::UNDERLINE`], [`Run::INVERSE`].
    pub flags: u8,
}

impl Run {
    /// Bold (or bright).
    pub const BOLD: u8 = 1;
    /// Italic.
    pub const ITALIC: u8 = 2;
    /// Underlined.
    pub const UNDERLINE: u8 = 4;
    /// Foreground and background swapped.
    pub const INVERSE: u8 = 8;
}

/// The screen with its colours and attributes, for a viewer that draws cells itself (the
/// browser page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyledScreen {
    /// Each row as runs of one style (trailing default blanks dropped).
    pub rows: Vec<Vec<Run>>,
    /// Cursor row and column, 0-based.
    pub cursor: (u16, u16),
    /// Whether the program hid the cursor.
    pub hide_cursor: bool,
    /// Whether a full-screen program holds the alternate screen.
    pub alt_screen: bool,
}

/// A VT emulator and how far into the transcript it has read.
pub struct Screen {
    parser: vt100::Parser,
    /// Transcript offset of the next byte to feed.
    fed: Offset,
}

fn size(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    /// A blank screen of the given size.
    pub fn new(rows: u16, cols: u16) -> Screen {
        Screen { parser: vt100::Parser::new(size(rows), size(cols), SCROLLBACK), fed: Offset(0) }
    }

    /// Feeds the emulator everything the transcript holds beyond what it has seen.
    pub fn catch_up(&mut self, transcript: &std::sync::Mutex<Transcript>, modes: Modes) {
        // Copy under the transcript's lock, emulate outside it so the reader never waits on us.
        let (slice, reset) = {
            let t = crate::session::lock(transcript);
            if t.end() == self.fed {
                return;
            }
            if self.fed < t.start() || t.end().since(self.fed) > MAX_BEHIND {
                (t.tail(REPLAY), true)
            } else {
                (t.slice_to_end(self.fed), false)
            }
        };
        if reset {
            let (rows, cols) = self.parser.screen().size();
            self.parser = vt100::Parser::new(rows, cols, SCROLLBACK);
            self.parser.process(&modes.replay_prefix());
        }
        self.parser.process(&slice.bytes);
        self.fed = slice.to();
    }

    /// The size (rows, columns).
    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (rows.get(), cols.get())
    }

    /// Changes the size, as a terminal window resize does.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.parser.screen_mut().set_size(size(rows), size(cols));
    }

    /// The current screen, with up to `scrollback_lines` lines from above it.
    pub fn view(&mut self, scrollback_lines: usize) -> ScreenView {
        let mut scrollback = Vec::new();
        if scrollback_lines > 0 {
            let screen = self.parser.screen_mut();
            screen.set_scrollback(scrollback_lines);
            let above = screen.scrollback();
            let (_, cols) = screen.size();
            scrollback = screen.rows(0, cols.get()).take(above).map(trim_end).collect();
            screen.set_scrollback(0);
        }
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let (cursor_row, cursor_col) = screen.cursor_position();
        ScreenView {
            lines: screen.rows(0, cols.get()).map(trim_end).collect(),
            scrollback,
            cursor_row,
            cursor_col,
            rows: rows.get(),
            cols: cols.get(),
            alt_screen: screen.alternate_screen(),
        }
    }

    /// The screen's rows for a terminal `width` columns wide (cropped on the right).
    pub fn frame(&self, width: u16) -> Frame {
        let screen = self.parser.screen();
        Frame {
            rows: screen.rows_formatted(0, width).collect(),
            cursor: screen.cursor_position(),
            hide_cursor: screen.hide_cursor(),
            alt_screen: screen.alternate_screen(),
        }
    }

    /// The screen with its colours and attributes (see [`StyledScreen`]).
    pub fn styled(&self) -> StyledScreen {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let rows = (0..rows.get())
            .map(|r| {
                let mut runs: Vec<Run> = Vec::new();
                for c in 0..cols.get() {
                    let Some(cell) = screen.cell(r, c) else { continue };
                    if cell.is_wide_continuation() {
                        continue;
                    }
                    let flags = [
                        (cell.bold(), Run::BOLD),
                        (cell.italic(), Run::ITALIC),
                        (cell.underline(), Run::UNDERLINE),
                        (cell.inverse(), Run::INVERSE),
                    ]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .fold(0, |flags, (_, flag)| flags | flag);
                    let text = if cell.has_contents() { cell.contents() } else { " " };
                    match runs.last_mut() {
                        Some(run) if run.fg == cell.fgcolor() && run.bg == cell.bgcolor() && run.flags == flags => {
                            run.text.push_str(text);
                        }
                        _ => runs.push(Run { text: text.to_string(), fg: cell.fgcolor(), bg: cell.bgcolor(), flags }),
                    }
                }
                // Blanks at the end of a row in the default style are not content.
                if let Some(last) = runs.last_mut()
                    && last.bg == Color::Default
                    && last.flags & Run::INVERSE == 0
                {
                    let kept = last.text.trim_end_matches(' ').len();
                    last.text.truncate(kept);
                    if last.text.is_empty() {
                        runs.pop();
                    }
                }
                runs
            })
            .collect();
        StyledScreen {
            rows,
            cursor: screen.cursor_position(),
            hide_cursor: screen.hide_cursor(),
            alt_screen: screen.alternate_screen(),
        }
    }

    /// The text of the cursor's row up to the cursor, including blanks before it (a prompt's
    /// trailing space matters to recognising it).
    pub fn cursor_line(&self) -> String {
        let screen = self.parser.screen();
        let (row, col) = screen.cursor_position();
        let mut line = screen.rows(0, col).nth(row as usize).unwrap_or_default();
        let have = line.chars().count();
        line.extend(std::iter::repeat_n(' ', (col as usize).saturating_sub(have)));
        line
    }

    /// The last non-blank row at or above the cursor, for telling what a program shows.
    pub fn bottom_line(&self) -> String {
        let screen = self.parser.screen();
        let (row, _) = screen.cursor_position();
        let (_, cols) = screen.size();
        let rows: Vec<String> = screen.rows(0, cols.get()).take(row as usize + 1).collect();
        rows.into_iter().rev().map(trim_end).find(|l| !l.is_empty()).unwrap_or_default()
    }

    /// Cursor position (row, column), 0-based.
    pub fn cursor(&self) -> (u16, u16) {
        self.parser.screen().cursor_position()
    }

    /// Whether a full-screen program holds the alternate screen.
    pub fn is_alternate(&self) -> bool {
        self.parser.screen().alternate_screen()
    }
}

fn trim_end(mut s: String) -> String {
    s.truncate(s.trim_end().len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn screen_of(bytes: &[u8]) -> Screen {
        let t = Mutex::new(Transcript::new(1 << 20));
        t.lock().unwrap().append(bytes);
        let mut s = Screen::new(5, 20);
        s.catch_up(&t, Modes::default());
        s
    }

    #[test]
    fn draws_at_addressed_positions() {
        let mut s = screen_of(b"\x1b[2J\x1b[3;5Hhello\x1b[1;1Htop");
        let v = s.view(0);
        assert_eq!(v.lines[2], "    hello");
        assert_eq!(v.lines[0], "top");
        assert_eq!((v.cursor_row, v.cursor_col), (0, 3));
    }

    #[test]
    fn cursor_line_keeps_the_prompts_space() {
        let s = screen_of(b"out\r\nuser@h:~$ ");
        assert_eq!(s.cursor_line(), "user@h:~$ ");
        assert_eq!(s.bottom_line(), "user@h:~$");
    }

    #[test]
    fn styled_rows_keep_colours_and_attributes_in_runs() {
        let mut screen = Screen::new(3, 20);
        screen.parser.process(b"\x1b[1;31mred\x1b[0m plain \x1b[44mblue   \x1b[0m\r\n\x1b[7mX");
        let styled = screen.styled();
        let row = &styled.rows[0];
        assert_eq!(row[0], Run { text: "red".into(), fg: Color::Idx(1), bg: Color::Default, flags: Run::BOLD });
        assert_eq!(row[1].text, " plain ");
        assert_eq!((row[2].text.as_str(), row[2].bg), ("blue   ", Color::Idx(4)));
        assert_eq!(row.len(), 3, "default blanks at the end are dropped: {row:?}");
        assert_eq!(styled.rows[1][0].flags, Run::INVERSE);
        assert!(styled.rows[2].is_empty());
        assert_eq!(styled.cursor, (1, 1));
    }

    #[test]
    fn scrollback_returns_lines_above_the_screen() {
        let mut s = screen_of(b"1\r\n2\r\n3\r\n4\r\n5\r\n6\r\n7");
        let v = s.view(2);
        assert_eq!(v.scrollback, vec!["1", "2"]);
        assert_eq!(v.lines[0], "3");
    }

    #[test]
    fn a_reset_replays_the_tail_and_keeps_the_alternate_screen() {
        let t = Mutex::new(Transcript::new(4 << 20));
        let mut s = Screen::new(5, 20);
        t.lock().unwrap().append(b"\x1b[?1049h");
        t.lock().unwrap().append(&vec![b'x'; (MAX_BEHIND as usize) + 10]);
        t.lock().unwrap().append(b"\x1b[Hfinal");
        let modes = Modes { alt_screen: true, ..Modes::default() };
        s.catch_up(&t, modes);
        let v = s.view(0);
        assert!(v.alt_screen);
        assert!(v.lines[0].starts_with("final"));
    }
}
