//! A session shown on another terminal (an operator watching it): drawn from the engine's
//! screen, cropped or padded to that terminal's size (the session's own terminal is never
//! resized for it), only changed rows redrawn, with a status line at the bottom; and the
//! operator's side of it: their terminal in raw mode, its size, and the detach key.
//!
//! Used by `pty-mcp attach` (drawn by the server that holds the session) and `ai-tmux attach`
//! (drawn from a mirror of the daemon's session).

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;

use crate::screen::Frame;

/// ctrl+]: leaves the session (as telnet's escape).
pub const DETACH: u8 = 0x1d;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// What the viewer's terminal shows now, to draw only what changes.
pub struct View {
    /// The viewer's terminal height, the status line included.
    pub rows: u16,
    /// The viewer's terminal width.
    pub cols: u16,
    /// The rows as last drawn (None: not drawn since the last clear).
    drawn: Vec<Option<String>>,
    status: Option<String>,
}

impl View {
    /// A view of a terminal of `rows` × `cols`, nothing drawn yet.
    pub fn new(rows: u16, cols: u16) -> View {
        View { rows: rows.max(2), cols: cols.max(1), drawn: Vec::new(), status: None }
    }

    /// The viewer's terminal changed size: everything is drawn again.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        *self = View::new(rows, cols);
    }

    /// The bytes that take the viewer's terminal from what it shows to `frame`, with `status`
    /// on the bottom row. A session taller than the viewer shows a full-screen program on the
    /// alternate screen from its top (where headers and menus are), and anything else around
    /// its cursor (a shell's newest lines, where a program writes); the status line then says
    /// which rows are shown.
    pub fn draw(&mut self, frame: &Frame, status: &str) -> String {
        let height = usize::from(self.rows - 1);
        let mut out = String::new();
        if self.drawn.is_empty() {
            out.push_str("\x1b[0m\x1b[H\x1b[2J");
            self.drawn = vec![None; height];
        }
        let total = frame.rows.len();
        let first = if total <= height || frame.alt_screen {
            0
        } else {
            (usize::from(frame.cursor.0) + 1).saturating_sub(height).min(total - height)
        };
        for (i, drawn) in self.drawn.iter_mut().enumerate() {
            let row = frame.rows.get(first + i).map_or("", String::as_str);
            if drawn.as_deref() != Some(row) {
                let _ = write!(out, "\x1b[{};1H\x1b[0m{row}\x1b[0m\x1b[K", i + 1);
                *drawn = Some(row.to_string());
            }
        }
        let status = if total > height {
            format!("{status} · rows {}-{} of {total}", first + 1, first + height)
        } else {
            status.to_string()
        };
        if self.status.as_deref() != Some(status.as_str()) {
            let text: String = status.chars().take(usize::from(self.cols)).collect();
            let pad = usize::from(self.cols).saturating_sub(text.chars().count());
            let _ = write!(out, "\x1b[{};1H\x1b[0;7m{text}{}\x1b[0m", height + 1, " ".repeat(pad));
            self.status = Some(status);
        }
        let row = usize::from(frame.cursor.0);
        if out.is_empty() {
            return out;
        }
        if (first..first + height).contains(&row) && frame.cursor.1 < self.cols && !frame.hide_cursor {
            let _ = write!(out, "\x1b[{};{}H\x1b[?25h", row - first + 1, frame.cursor.1 + 1);
        } else {
            out.push_str("\x1b[?25l");
        }
        out
    }
}

/// Whether the operator's keys reach the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only the detach key does anything.
    ReadOnly,
    /// Keys are typed into the session.
    Typing,
}

/// The status line: the session, what it is doing, what the operator may do, where it runs.
/// What matters first: a narrow terminal crops the end.
pub fn status(id: &str, state: &str, target: &str, mode: Mode, alive: bool) -> String {
    if !alive {
        return format!(" {id} · the session ended · {target}");
    }
    let mode = match mode {
        Mode::ReadOnly => "read-only",
        Mode::Typing => "typing on",
    };
    format!(" {id} · {state} · {mode} · ctrl+] detach · {target}")
}

/// Finds the detach key in what the operator types, across reads.
#[derive(Debug, Default)]
pub struct DetachKey {
    in_paste: bool,
}

impl DetachKey {
    /// The keys before the detach key, and whether it was pressed. Inside a bracketed paste the
    /// byte is pasted text, not the key.
    pub fn split<'a>(&mut self, keys: &'a [u8]) -> (&'a [u8], bool) {
        for i in 0..keys.len() {
            if keys[i..].starts_with(PASTE_START) {
                self.in_paste = true;
            } else if keys[i..].starts_with(PASTE_END) {
                self.in_paste = false;
            } else if keys[i] == DETACH && !self.in_paste {
                return (&keys[..i], true);
            }
        }
        (keys, false)
    }
}

/// This process's terminal size (rows, columns); 24×80 when it cannot be told.
pub fn own_size() -> (u16, u16) {
    // SAFETY: TIOCGWINSZ fills the winsize we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 1 && ws.ws_col > 0 { (ws.ws_row, ws.ws_col) } else { (24, 80) }
}

/// This process's terminal in raw mode on the alternate screen, with bracketed paste; all of it
/// undone when dropped.
pub struct OwnTerminal {
    saved: libc::termios,
}

impl OwnTerminal {
    /// Puts the terminal of standard input in raw mode, and standard output on the alternate
    /// screen.
    ///
    /// # Errors
    /// When standard input is not a terminal.
    pub fn enter() -> io::Result<OwnTerminal> {
        let fd = io::stdin().as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr on our stdin with a termios we own.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(e.kind(), format!("attach needs a terminal: {e}")));
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            saved
        };
        print!("\x1b[?1049h\x1b[?2004h");
        let _ = io::stdout().flush();
        Ok(OwnTerminal { saved })
    }
}

impl Drop for OwnTerminal {
    fn drop(&mut self) {
        print!("\x1b[0m\x1b[?2004l\x1b[?25h\x1b[?1049l");
        let _ = io::stdout().flush();
        // SAFETY: restores the settings saved in `enter`.
        unsafe { libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[&str], cursor: (u16, u16)) -> Frame {
        Frame { rows: rows.iter().map(|r| r.to_string()).collect(), cursor, hide_cursor: false, alt_screen: false }
    }

    #[test]
    fn draws_everything_once_then_only_what_changed() {
        let mut v = View::new(4, 20);
        let first = v.draw(&frame(&["$ ls", "a b", "$ "], (2, 2)), "s1");
        assert!(first.starts_with("\x1b[0m\x1b[H\x1b[2J") && first.contains("$ ls") && first.contains("s1"));
        assert_eq!(v.draw(&frame(&["$ ls", "a b", "$ "], (2, 2)), "s1"), "");
        let next = v.draw(&frame(&["$ ls", "a b", "$ x"], (2, 3)), "s1");
        assert!(next.contains("\x1b[3;1H\x1b[0m$ x") && !next.contains("a b") && !next.contains("s1"));
    }

    #[test]
    fn a_taller_session_shows_a_shell_around_its_cursor_and_a_program_from_its_top() {
        let mut v = View::new(3, 40);
        let rows: Vec<String> = (0..10).map(|i| format!("row{i}")).collect();
        let f = Frame { rows: rows.clone(), cursor: (9, 0), hide_cursor: false, alt_screen: false };
        let out = v.draw(&f, "s");
        assert!(out.contains("row8") && out.contains("row9") && !out.contains("row7"));
        assert!(out.contains("s · rows 9-10 of 10"), "{out:?}");
        assert!(out.ends_with("\x1b[2;1H\x1b[?25h"));
        // A full-screen program: its top, where the header is; the cursor below is not shown.
        let mut v = View::new(3, 40);
        let out = v.draw(&Frame { rows, cursor: (9, 0), hide_cursor: false, alt_screen: true }, "s");
        assert!(out.contains("row0") && out.contains("row1") && !out.contains("row2"));
        assert!(out.contains("s · rows 1-2 of 10") && out.ends_with("\x1b[?25l"));
    }

    #[test]
    fn the_detach_key_leaves_except_inside_a_paste() {
        let mut keys = DetachKey::default();
        assert_eq!(keys.split(b"ab\x1dcd"), (&b"ab"[..], true));
        assert_eq!(keys.split(b"\x1b[200~a\x1db\x1b[201~"), (&b"\x1b[200~a\x1db\x1b[201~"[..], false));
        assert!(!keys.in_paste);
        assert_eq!(keys.split(b"\x1b[200~a"), (&b"\x1b[200~a"[..], false));
        assert_eq!(keys.split(b"\x1d\x1b[201~\x1d"), (&b"\x1d\x1b[201~"[..], true));
    }

    #[test]
    fn the_status_line_says_what_the_operator_may_do() {
        assert_eq!(
            status("s1", "at_prompt", "bash", Mode::ReadOnly, true),
            " s1 · at_prompt · read-only · ctrl+] detach · bash"
        );
        assert_eq!(status("s1", "at_prompt", "bash", Mode::Typing, false), " s1 · the session ended · bash");
    }
}
