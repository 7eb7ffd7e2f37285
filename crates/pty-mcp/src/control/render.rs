//! A session drawn on a viewer's terminal from the engine's screen: cropped or padded to the
//! viewer's size (the agent's terminal is never resized for it), only changed rows redrawn, and
//! a status line at the bottom.

use std::fmt::Write as _;

use engine::{Color, Frame, StyledScreen};

use super::protocol::StyledFrame;

/// What the viewer's terminal shows now, to draw only what changes.
pub struct View {
    pub rows: u16,
    pub cols: u16,
    /// The rows as last drawn (None: not drawn since the last clear).
    drawn: Vec<Option<String>>,
    status: Option<String>,
}

impl View {
    pub fn new(rows: u16, cols: u16) -> View {
        View { rows: rows.max(2), cols: cols.max(1), drawn: Vec::new(), status: None }
    }

    /// The viewer's terminal changed size: everything is drawn again.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        *self = View::new(rows, cols);
    }

    /// The bytes that take the viewer's terminal from what it shows to `frame`, with `status`
    /// on the bottom row. A session taller than the viewer shows a full-screen program from its
    /// top (where headers and menus are), and a shell around its cursor (the newest lines).
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
        if self.status.as_deref() != Some(status) {
            let text: String = status.chars().take(usize::from(self.cols)).collect();
            let pad = usize::from(self.cols).saturating_sub(text.chars().count());
            let _ = write!(out, "\x1b[{};1H\x1b[0;7m{text}{}\x1b[0m", height + 1, " ".repeat(pad));
            self.status = Some(status.to_string());
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

/// The screen as the browser page draws it.
pub fn styled_frame(screen: StyledScreen, state: &str, ended: bool) -> StyledFrame {
    let rows = screen
        .rows
        .into_iter()
        .map(|row| row.into_iter().map(|r| (r.text, css(r.fg), css(r.bg), r.flags)).collect())
        .collect();
    StyledFrame { rows, cursor: screen.cursor, hide_cursor: screen.hide_cursor, state: state.to_string(), ended }
}

/// A terminal colour as CSS (xterm's palette for indexed colours); None for the default.
fn css(color: Color) -> Option<String> {
    const BASIC: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    let (r, g, b) = match color {
        Color::Default => return None,
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Idx(n @ 0..=15) => BASIC[usize::from(n)],
        Color::Idx(n @ 16..=231) => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            let n = n - 16;
            (level(n / 36), level(n / 6 % 6), level(n % 6))
        }
        Color::Idx(n) => {
            let v = 8 + (n - 232) * 10;
            (v, v, v)
        }
    };
    Some(format!("#{r:02x}{g:02x}{b:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rows: &[&str], cursor: (u16, u16)) -> Frame {
        Frame { rows: rows.iter().map(|r| r.to_string()).collect(), cursor, hide_cursor: false, alt_screen: false }
    }

    #[test]
    fn colours_become_css() {
        assert_eq!(css(Color::Default), None);
        assert_eq!(css(Color::Idx(1)).as_deref(), Some("#cd0000"));
        assert_eq!(css(Color::Idx(196)).as_deref(), Some("#ff0000"));
        assert_eq!(css(Color::Idx(232)).as_deref(), Some("#080808"));
        assert_eq!(css(Color::Rgb(1, 2, 3)).as_deref(), Some("#010203"));
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
        let mut v = View::new(3, 20);
        let rows: Vec<String> = (0..10).map(|i| format!("row{i}")).collect();
        let f = Frame { rows: rows.clone(), cursor: (9, 0), hide_cursor: false, alt_screen: false };
        let out = v.draw(&f, "s");
        assert!(out.contains("row8") && out.contains("row9") && !out.contains("row7"));
        assert!(out.ends_with("\x1b[2;1H\x1b[?25h"));
        // A full-screen program: its top, where the header is; the cursor below is not shown.
        let mut v = View::new(3, 20);
        let out = v.draw(&Frame { rows, cursor: (9, 0), hide_cursor: false, alt_screen: true }, "s");
        assert!(out.contains("row0") && out.contains("row1") && !out.contains("row2"));
        assert!(out.ends_with("\x1b[?25l"));
    }
}
