//! A session's screen as the browser page draws it: styled runs with CSS colours.

use engine::{Color, StyledScreen};

use super::protocol::{CommandMark, StyledFrame};

/// The screen as the browser page draws it, with the margin's marks for `commands` (the
/// session's recent commands, oldest first, as [`engine::Session::commands`] gives them).
pub fn styled_frame(screen: StyledScreen, state: &str, ended: bool, commands: &[Command]) -> StyledFrame {
    let plain: Vec<String> = screen.rows.iter().map(|row| row.iter().map(|r| r.text.as_str()).collect()).collect();
    let marks = margin(&plain, commands);
    let rows = screen
        .rows
        .into_iter()
        .map(|row| row.into_iter().map(|r| (r.text, css(r.fg), css(r.bg), r.flags)).collect())
        .collect();
    StyledFrame { rows, cursor: screen.cursor, hide_cursor: screen.hide_cursor, state: state.to_string(), ended, marks }
}

/// A command line, and how the command ended (None while it runs; then its status).
pub type Command = (String, Option<Option<i32>>);

/// Where the screen shows the commands' lines: newest command first, each at the lowest row
/// above the next one's that ends with its line after a prompt (a command scrolled away, or
/// wrapped over two rows, is not marked).
fn margin(rows: &[String], commands: &[Command]) -> Vec<CommandMark> {
    let mut below = rows.len();
    let mut marks = Vec::new();
    for (line, ended) in commands.iter().rev().filter(|(line, _)| !line.is_empty()) {
        let shows = |row: &String| {
            let row = row.trim_end();
            row.len() > line.len() && row.ends_with(line.as_str())
        };
        if let Some(row) = rows[..below].iter().rposition(shows) {
            marks.push(CommandMark {
                row: row as u16,
                command: line.clone(),
                running: ended.is_none(),
                exit_code: ended.flatten(),
            });
            below = row;
        }
    }
    marks.reverse();
    marks
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

    #[test]
    fn commands_are_marked_where_their_lines_show() {
        let rows: Vec<String> =
            ["$ ls", "ls", "$ false", "$ sleep 9", "", "$ gone"].iter().map(|r| r.to_string()).collect();
        let commands: Vec<Command> = vec![
            ("scrolled away".into(), Some(Some(0))),
            ("ls".into(), Some(Some(0))),
            ("false".into(), Some(Some(1))),
            ("sleep 9".into(), None),
        ];
        let marks: Vec<(u16, bool, Option<i32>)> =
            margin(&rows, &commands).iter().map(|m| (m.row, m.running, m.exit_code)).collect();
        // `ls` alone on row 1 is output, not a line typed after a prompt.
        assert_eq!(marks, [(0, false, Some(0)), (2, false, Some(1)), (3, true, None)]);
    }

    #[test]
    fn colours_become_css() {
        assert_eq!(css(Color::Default), None);
        assert_eq!(css(Color::Idx(1)).as_deref(), Some("#cd0000"));
        assert_eq!(css(Color::Idx(196)).as_deref(), Some("#ff0000"));
        assert_eq!(css(Color::Idx(232)).as_deref(), Some("#080808"));
        assert_eq!(css(Color::Rgb(1, 2, 3)).as_deref(), Some("#010203"));
    }
}
