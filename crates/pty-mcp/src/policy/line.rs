//! The line being typed into a session, followed across calls: input typed without Enter
//! (`raw: true`) is checked, whole, when a later call ends the line.

/// What has been typed since the last line end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    text: String,
    /// Keys the shell's line editor acts on were typed (arrows, tab, history search): the line
    /// it runs may not be the text seen here.
    uncertain: bool,
}

/// The lines some input ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The lines, joined with newlines.
    pub text: String,
    /// The line editor may run something else (see [`Line::uncertain`]).
    pub uncertain: bool,
}

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

impl Line {
    /// Follows `bytes` being typed: returns the lines they end, if any (their text from the
    /// line's start, so a line begun by earlier calls is checked whole).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Ended> {
        let mut ended: Option<Ended> = None;
        let text = String::from_utf8_lossy(bytes);
        let mut rest: &str = &text;
        while let Some(c) = rest.chars().next() {
            let skip = [PASTE_START, PASTE_END].iter().find(|m| rest.as_bytes().starts_with(m)).map(|m| m.len());
            if let Some(n) = skip {
                rest = &rest[n..];
                continue;
            }
            match c {
                '\r' | '\n' => {
                    let line = std::mem::take(&mut self.text);
                    let e = ended.get_or_insert(Ended { text: String::new(), uncertain: false });
                    if !e.text.is_empty() {
                        e.text.push('\n');
                    }
                    e.text.push_str(&line);
                    e.uncertain |= std::mem::take(&mut self.uncertain);
                }
                // ctrl+c, ctrl+u: the line is dropped.
                '\x03' | '\x15' => *self = Line::default(),
                '\x7f' | '\x08' => {
                    self.text.pop();
                }
                c if c.is_control() => self.uncertain = true,
                c => self.text.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(text: &str, uncertain: bool) -> Option<Ended> {
        Some(Ended { text: text.into(), uncertain })
    }

    #[test]
    fn a_line_typed_over_several_calls_is_checked_whole() {
        let mut line = Line::default();
        assert_eq!(line.feed(b"rm -rf"), None);
        assert_eq!(line.feed(b" /"), None);
        assert_eq!(line.feed(b"\r"), ended("rm -rf /", false));
        assert_eq!(line.feed(b"echo a\necho b\rtail"), ended("echo a\necho b", false));
        assert_eq!(line.feed(b"\x15ls\r"), ended("ls", false));
        assert_eq!(line.feed(b"lx\x7fs\x03echo\r"), ended("echo", false));
        assert_eq!(line.feed(b"\x1b[200~a\nb\x1b[201~\r"), ended("a\nb", false));
        assert_eq!(line.feed(b"\x1b[A\r"), ended("[A", true));
    }
}
