//! Audit records and the redaction applied before any record leaves the process.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

/// Output kept in an `output_snippet`, at most (UTF-8 safe).
pub const SNIPPET_BYTES: usize = 2048;

/// A unique id: 16 random bytes as hex (`record_id`), or 8 (`cmd_id`, as the Go version).
pub fn random_id(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// Now, RFC 3339 in UTC.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(password|passwd|secret|token|api[-_]?key|access[-_]?key|auth[-_]?token)(\s*[=:]\s*)[^\r\n]*")
        .expect("valid")
});
static AUTHORIZATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)(authorization\s*:\s*(?:bearer|basic|token)\s+)[^\s'"]+"#).expect("valid"));
static PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)")
        .expect("valid")
});

/// Removes credentials from text: `password=…`/`token: …` (the rest of the line),
/// `Authorization: Bearer …` values, and PEM private-key blocks.
pub fn redact(text: &str) -> String {
    let text = PRIVATE_KEY.replace_all(text, "[PRIVATE KEY REDACTED]");
    let text = AUTHORIZATION.replace_all(&text, "${1}[REDACTED]");
    ASSIGNMENT.replace_all(&text, "${1}${2}[REDACTED]").into_owned()
}

/// The first [`SNIPPET_BYTES`] of `text`, cut at a character boundary.
pub fn snippet(text: &str) -> &str {
    if text.len() <= SNIPPET_BYTES {
        return text;
    }
    let mut end = SNIPPET_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Who and where, common to every record of a session.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The operator (`audit-user`).
    pub user: String,
    /// The session id.
    pub session_id: String,
    /// `local`, `ssh`, `serial`.
    pub kind: String,
    /// The session's target (never a password).
    pub target: String,
}

fn base(subject: &Subject) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("record_id".into(), json!(random_id(16)));
    m.insert("ts".into(), json!(now()));
    m.insert("user".into(), json!(subject.user));
    m.insert("session_id".into(), json!(subject.session_id));
    m.insert("type".into(), json!(subject.kind));
    m.insert("target".into(), json!(subject.target));
    m
}

/// The record before a `send_input` runs (the Go version's first record).
pub fn command(subject: &Subject, cmd_id: &str, cmd: &str, raw: bool) -> Value {
    let mut m = base(subject);
    m.insert("cmd_id".into(), json!(cmd_id));
    m.insert("cmd".into(), json!(redact(cmd)));
    if raw {
        m.insert("raw".into(), json!(true));
    }
    Value::Object(m)
}

/// The record after it (the Go version's second record).
pub fn command_output(cmd_id: &str, output: &str) -> Value {
    json!({
        "record_id": random_id(16),
        "cmd_id": cmd_id,
        "ts": now(),
        "output_snippet": redact(snippet(output)),
        "output_bytes": output.len(),
    })
}

/// Any other action on a session: `create_session`, `send_control`, `secret_sent`,
/// `resize_session`, `detach_session`, `close_session`, `session_ended`, with its details.
pub fn event(subject: &Subject, event: &str, details: Value) -> Value {
    let mut m = base(subject);
    m.insert("event".into(), json!(event));
    if let Value::Object(d) = details {
        m.extend(d);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact("mysql -u root --password=hunter2 db"), "mysql -u root --password=[REDACTED]");
        assert_eq!(redact("export API_KEY: abc\nnext"), "export API_KEY: [REDACTED]\nnext");
        assert_eq!(redact("curl -H 'Authorization: Bearer abc.def' x"), "curl -H 'Authorization: Bearer [REDACTED]' x");
        let pem = "a\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\nb";
        assert_eq!(redact(pem), "a\n[PRIVATE KEY REDACTED]\nb");
        assert_eq!(redact("ls -la"), "ls -la");
    }

    #[test]
    fn snippets_never_split_characters() {
        let text = "é".repeat(2000);
        let s = snippet(&text);
        assert!(s.len() <= SNIPPET_BYTES && s.len().is_multiple_of(2));
    }
}
