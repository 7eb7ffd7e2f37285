//! Secrets on their way from an operator to a terminal: held in memory that is wiped when
//! dropped, never printed, and masked if a program prints them back.

use std::fmt;

use zeroize::Zeroizing;

/// Bytes that must not be seen: a password, a passphrase. `Debug` prints `[REDACTED]`;
/// there is no `Display`; the memory is zeroed on drop.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// What an askpass program or dialog printed: the secret, without the one line ending it
    /// ends with (`\n`, or `\r\n` from a Windows program under WSL).
    pub fn from_program_output(mut bytes: Vec<u8>) -> Secret {
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Secret::new(bytes)
    }

    /// The secret's bytes, for writing them where they belong.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A copy held in wiped memory too (for masking echoes).
    pub fn duplicate(&self) -> Secret {
        Secret::new(self.0.to_vec())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// What a secret is replaced by when it shows up in output (not its length).
pub const MASK: &[u8] = b"********";

/// Replaces every occurrence of `secret` in `bytes` by [`MASK`]; `None` when there is none.
/// Secrets shorter than 4 bytes are not searched for: masking them would mangle output.
pub fn mask(bytes: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    if secret.len() < 4 || bytes.len() < secret.len() {
        return None;
    }
    let first = bytes.windows(secret.len()).position(|w| w == secret)?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut rest = &bytes[first..];
    while !rest.is_empty() {
        if rest.starts_with(secret) {
            out.extend_from_slice(MASK);
            rest = &rest[secret.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_output_loses_one_line_ending_only() {
        for (printed, secret) in [
            (&b"hunter2\n"[..], &b"hunter2"[..]),
            (b"hunter2\r\n", b"hunter2"),
            (b"hunter2", b"hunter2"),
            (b"two\n\n", b"two\n"),
            (b"\r", b"\r"),
            (b"", b""),
        ] {
            assert_eq!(Secret::from_program_output(printed.to_vec()).expose(), secret, "{printed:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
        assert_eq!(s.expose(), b"hunter2");
    }

    #[test]
    fn echoes_are_masked_without_revealing_the_length() {
        assert_eq!(mask(b"pw: hunter2\r\nhunter2", b"hunter2").unwrap(), b"pw: ********\r\n********");
        assert_eq!(mask(b"nothing here", b"hunter2"), None);
        assert_eq!(mask(b"a b c", b"b"), None);
    }
}
