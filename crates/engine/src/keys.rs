//! The key grammar: names a person would use for keys, turned into the bytes a terminal sends.
//!
//! A key is a name (`enter`, `f5`, `pageup`), a single character standing for itself (`q`, `/`),
//! or either with modifiers: `ctrl+c`, `alt+x`, `shift+tab`, `ctrl-alt-d`. Names are
//! case-insensitive; a single character keeps its case. A sequence is keys separated by spaces
//! (`"escape : w q enter"`).

use std::fmt;

/// The byte ctrl+c sends: the terminal's interrupt character (SIGINT to the foreground).
pub const INTERRUPT: u8 = 0x03;

/// The grammar, for error messages and tool descriptions.
pub const GRAMMAR: &str = "a key is a single character (q, /, :), a name (enter, tab, escape, space, backspace, \
up, down, left, right, home, end, pageup, pagedown, insert, delete, f1-f12), or either with modifiers \
ctrl+, alt+, shift+ (ctrl+c, ctrl+[, alt+x, shift+tab; '+' or '-' as separator); several keys are \
separated by spaces: \"escape : w q enter\"";

/// A key that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The word that failed.
    pub key: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown key {:?}: {GRAMMAR}", self.key)
    }
}

impl std::error::Error for KeyError {}

/// One key press with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    base: Base,
    ctrl: bool,
    alt: bool,
    shift: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    Char(char),
    /// A cursor key (its final byte: A up, B down, C right, D left, H home, F end).
    Cursor(u8),
    /// A `CSI n ~` key (insert 2, delete 3, pageup 5, pagedown 6, f5 15 …).
    Tilde(u8),
    /// F1–F4: `ESC O P` … `ESC O S`.
    Ss3(u8),
    Bytes(&'static [u8]),
}

/// Parses a whitespace-separated key sequence.
///
/// # Errors
/// The first word that is not a key; an empty sequence is an error too.
pub fn parse_sequence(spec: &str) -> Result<Vec<Key>, KeyError> {
    let keys: Vec<Key> = spec.split_whitespace().map(parse_key).collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Err(KeyError { key: spec.to_string() });
    }
    Ok(keys)
}

/// Parses one key such as `ctrl+c` or `F5`.
///
/// # Errors
/// When the word is not a key of the grammar.
pub fn parse_key(word: &str) -> Result<Key, KeyError> {
    let err = || KeyError { key: word.to_string() };
    let mut key = Key { base: Base::Char(' '), ctrl: false, alt: false, shift: false };
    let mut rest = word;
    // Peel modifiers; a lone "+" or "-" (or one at the end) is the character itself.
    while let Some(sep) = rest.find(['+', '-']).filter(|&i| i > 0 && i + 1 < rest.len()) {
        match rest[..sep].to_ascii_lowercase().as_str() {
            "ctrl" | "control" | "c" => key.ctrl = true,
            "alt" | "meta" | "m" => key.alt = true,
            "shift" | "s" => key.shift = true,
            _ => break,
        }
        rest = &rest[sep + 1..];
    }
    key.base = base(rest).ok_or_else(err)?;
    if key.ctrl && !matches!(key.base, Base::Char(_)) {
        return Err(err());
    }
    if key.ctrl && control_byte(&key.base).is_none() {
        return Err(err());
    }
    Ok(key)
}

fn base(name: &str) -> Option<Base> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Some(Base::Char(c));
    }
    Some(match name.to_ascii_lowercase().as_str() {
        "enter" | "return" | "cr" => Base::Bytes(b"\r"),
        "tab" => Base::Bytes(b"\t"),
        "escape" | "esc" => Base::Bytes(b"\x1b"),
        "space" => Base::Char(' '),
        "backspace" | "bs" => Base::Bytes(b"\x7f"),
        "up" => Base::Cursor(b'A'),
        "down" => Base::Cursor(b'B'),
        "right" => Base::Cursor(b'C'),
        "left" => Base::Cursor(b'D'),
        "home" => Base::Cursor(b'H'),
        "end" => Base::Cursor(b'F'),
        "insert" | "ins" => Base::Tilde(2),
        "delete" | "del" => Base::Tilde(3),
        "pageup" | "pgup" => Base::Tilde(5),
        "pagedown" | "pgdn" => Base::Tilde(6),
        "f1" => Base::Ss3(b'P'),
        "f2" => Base::Ss3(b'Q'),
        "f3" => Base::Ss3(b'R'),
        "f4" => Base::Ss3(b'S'),
        "f5" => Base::Tilde(15),
        "f6" => Base::Tilde(17),
        "f7" => Base::Tilde(18),
        "f8" => Base::Tilde(19),
        "f9" => Base::Tilde(20),
        "f10" => Base::Tilde(21),
        "f11" => Base::Tilde(23),
        "f12" => Base::Tilde(24),
        _ => return None,
    })
}

fn control_byte(base: &Base) -> Option<u8> {
    let Base::Char(c) = base else { return None };
    Some(match c.to_ascii_lowercase() {
        c @ 'a'..='z' => c as u8 & 0x1f,
        '@' | ' ' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '7' | '/' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

impl Key {
    /// The bytes this key sends; `app_cursor` is the program's cursor-key mode (DECCKM).
    pub fn bytes(&self, app_cursor: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if self.alt {
            out.push(0x1b);
        }
        if self.ctrl {
            out.extend(control_byte(&self.base));
            return out;
        }
        match &self.base {
            Base::Char(c) => {
                let c = if self.shift { c.to_ascii_uppercase() } else { *c };
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            Base::Bytes(b"\t") if self.shift => out.extend_from_slice(b"\x1b[Z"),
            Base::Bytes(b) => out.extend_from_slice(b),
            Base::Cursor(f) if app_cursor => out.extend_from_slice(&[0x1b, b'O', *f]),
            Base::Cursor(f) => out.extend_from_slice(&[0x1b, b'[', *f]),
            Base::Tilde(n) => out.extend_from_slice(format!("\x1b[{n}~").as_bytes()),
            Base::Ss3(f) => out.extend_from_slice(&[0x1b, b'O', *f]),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(spec: &str, app: bool) -> Vec<u8> {
        parse_sequence(spec).unwrap().iter().flat_map(|k| k.bytes(app)).collect()
    }

    #[test]
    fn the_seeds_twelve_keys() {
        let expect: [(&str, &[u8]); 12] = [
            ("ctrl+c", b"\x03"),
            ("ctrl+d", b"\x04"),
            ("ctrl+z", b"\x1a"),
            ("ctrl+l", b"\x0c"),
            ("ctrl+r", b"\x12"),
            ("enter", b"\r"),
            ("tab", b"\t"),
            ("escape", b"\x1b"),
            ("up", b"\x1b[A"),
            ("down", b"\x1b[B"),
            ("left", b"\x1b[D"),
            ("right", b"\x1b[C"),
        ];
        for (name, b) in expect {
            assert_eq!(bytes(name, false), b, "{name}");
        }
    }

    #[test]
    fn modifiers_names_and_sequences() {
        assert_eq!(bytes("CTRL-C", false), b"\x03");
        assert_eq!(bytes("ctrl+[", false), b"\x1b");
        assert_eq!(bytes("alt+x", false), b"\x1bx");
        assert_eq!(bytes("shift+tab", false), b"\x1b[Z");
        assert_eq!(bytes("f5 pageup", false), b"\x1b[15~\x1b[5~");
        assert_eq!(bytes("escape : w q enter", false), b"\x1b:wq\r");
        assert_eq!(bytes("Q + -", false), b"Q+-");
        assert_eq!(bytes("up", true), b"\x1bOA");
    }

    #[test]
    fn unknown_keys_are_refused_with_the_grammar() {
        let e = parse_sequence("ctrl+f13").unwrap_err();
        assert_eq!(e.key, "ctrl+f13");
        assert!(e.to_string().contains("pageup"));
        assert!(parse_sequence("  ").is_err());
        assert!(parse_sequence("hyper+x").is_err());
        assert!(parse_sequence("ctrl+up").is_err());
    }
}
