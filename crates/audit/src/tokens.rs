//! Bearer tokens of named operators: the `token operator` lines of a file only its owner may
//! read. The audit collector (`audit serve --tokens`) and the MCP server's HTTP front door
//! (`serve --http --tokens`) both authenticate with them.

use std::path::Path;

/// The operators and their tokens.
#[derive(Default)]
pub struct Tokens(Vec<(String, String)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The operators' names, never their tokens.
        f.debug_list().entries(self.0.iter().map(|(_, name)| name)).finish()
    }
}

/// Tokens shorter than this are refused: a guessable token is no authentication.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Reads `path`: one `token operator` pair per line; blank lines and `#` comments skipped.
    ///
    /// # Errors
    /// When the file cannot be read, others than its owner may read it (Unix), a line has no
    /// operator, a token is short, or a token appears twice.
    pub fn load(path: &Path) -> std::io::Result<Tokens> {
        let shown = path.display();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(std::io::Error::other(format!(
                    "{shown} may be read by others (mode {:o}): it holds tokens; chmod 600 it",
                    mode & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| std::io::Error::other(format!("{shown}: {e}")))?;
        Tokens::parse(&text).map_err(|(line, why)| std::io::Error::other(format!("{shown}:{line}: {why}")))
    }

    /// The pairs in `text`, or the first bad line (1-based) and why (never quoting the token).
    ///
    /// # Errors
    /// A line without an operator, a short token, or a token given twice.
    pub fn parse(text: &str) -> Result<Tokens, (usize, &'static str)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((token, name)) = line.split_once(char::is_whitespace) else {
                return Err((i + 1, "expected `token operator`"));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err((i + 1, "expected `token operator`"));
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err((i + 1, "the token is too short (16 characters at least)"));
            }
            if pairs.iter().any(|(t, _)| t == token) {
                return Err((i + 1, "the same token is given twice"));
            }
            pairs.push((token.to_string(), name.to_string()));
        }
        Ok(Tokens(pairs))
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The operator whose token `presented` is. Every token is compared in full, whichever
    /// matches: the time taken says nothing about any token.
    pub fn operator(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for (token, name) in &self.0 {
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// The token an HTTP request presents (`Authorization: Bearer <token>`), or "" (which no
/// operator's token is).
pub fn bearer(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_read_and_matched_and_bad_lines_named() {
        let t = Tokens::parse("# team\n\nabcdefghijklmnop alice\nqrstuvwxyz012345  bob smith\n").unwrap();
        assert_eq!(t.operator("abcdefghijklmnop"), Some("alice"));
        assert_eq!(t.operator("qrstuvwxyz012345"), Some("bob smith"));
        assert_eq!(t.operator("abcdefghijklmno"), None);
        assert_eq!(t.operator(""), None);
        assert_eq!(format!("{t:?}"), r#"["alice", "bob smith"]"#);
        assert_eq!(Tokens::parse("short alice").err(), Some((1, "the token is too short (16 characters at least)")));
        assert_eq!(Tokens::parse("\nabcdefghijklmnop").err(), Some((2, "expected `token operator`")));
        assert_eq!(
            Tokens::parse("abcdefghijklmnop a\nabcdefghijklmnop b").err(),
            Some((2, "the same token is given twice"))
        );
    }
}
