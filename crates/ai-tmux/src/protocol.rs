//! The wire protocol: one JSON object per line each way, as the Go ai-tmux speaks it, plus our
//! extensions. Defined once, for the daemon and for pty-mcp's side of the link.
//!
//! Requests `{id, method, params}`; responses `{id, result}` or `{id, error}` (a string), with
//! the request's id. The Go methods (`create_session`, `send_input`, `send_raw`, `read_output`,
//! `send_control`, `resize_session`, `list_sessions`, `close_session`) behave as there. A client
//! that sends `hello` and gets our capabilities back may use the extensions; to the Go daemon
//! `hello` is an unknown method, which is how a client knows to stay with the basics. An attached
//! client also receives [`Event`] lines, which carry no id. See `docs/ai-tmux-protocol.md`.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The extension protocol's version, reported by `hello`.
pub const PROTOCOL: u32 = 1;

/// The extensions this daemon offers, reported by `hello`.
pub const CAPABILITIES: &[&str] = &["attach", "write", "ack", "detach", "wait", "screen", "read_since"];

/// Longest line accepted (a huge input is an error, not a reason to run out of memory).
pub const MAX_LINE: usize = 4 << 20;

/// Largest chunk of output one event carries.
pub const MAX_CHUNK: usize = 64 << 10;

/// A request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Value,
    /// The method.
    pub method: String,
    /// The method's parameters.
    #[serde(default)]
    pub params: Value,
}

/// A response line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    /// The request's id.
    pub id: Value,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// What went wrong, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    /// A success.
    pub fn ok(id: Value, result: Value) -> Response {
        Response { id, result: Some(result), error: None }
    }

    /// A failure.
    pub fn err(id: Value, error: impl Into<String>) -> Response {
        Response { id, result: None, error: Some(error.into()) }
    }
}

/// Pushed by the daemon to a client attached to a session (extension `attach`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Output of the session from absolute offset `offset`. An offset beyond the end of the
    /// previous event means the bytes between fell off the daemon's ring before they were sent.
    Output {
        /// The session.
        session_id: String,
        /// Absolute offset of the first byte.
        offset: u64,
        /// The bytes, base64.
        data: String,
    },
    /// The session's program ended, by itself or because a client closed the session (sent
    /// after its last output).
    Exit {
        /// The session.
        session_id: String,
        /// The exit status, when it exited normally.
        exit_code: Option<i32>,
        /// The signal that killed it.
        signal: Option<i32>,
    },
}

/// A line from the daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Incoming {
    /// Something pushed to an attached client.
    Event(Event),
    /// The answer to a request.
    Response(Response),
}

/// The answer to `hello`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    /// `ai-tmux`.
    pub server: String,
    /// The daemon's version.
    pub version: String,
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// [`CAPABILITIES`].
    pub capabilities: Vec<String>,
}

/// The answer to `attach`: where the session stands. Output from `from` follows as events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attached {
    /// The session.
    pub session_id: String,
    /// The command it runs.
    pub command: String,
    /// Oldest offset still in the daemon's ring.
    pub oldest: u64,
    /// Offset of the end of the output so far.
    pub end: u64,
    /// Where this client's next read starts: what it last acknowledged reading (`attach` and
    /// `ack` name the client), or the oldest offset held for a client never seen.
    pub read_offset: u64,
    /// Offset the events start at (the requested one, or `oldest` if that is later).
    pub from: u64,
    /// How many bytes of this client's input were delivered (`write` with `seq`).
    #[serde(default)]
    pub input_seq: u64,
    /// The token of the shell-integration marks, when the daemon integrated the shell.
    pub shell_token: Option<String>,
    /// Whether the program still runs.
    pub is_alive: bool,
    /// Terminal height.
    pub rows: u16,
    /// Terminal width.
    pub cols: u16,
    /// The operator it was created for (ours; see [`SessionInfo::owner`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// One session in `list_sessions`: the Go fields and ours.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    /// The session id.
    pub id: String,
    /// Its name, if it was given one.
    pub name: String,
    /// The command it runs.
    pub command: String,
    /// Whether the program still runs.
    pub is_alive: bool,
    /// The exit status once it ended.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: the last request about it.
    pub last_used: String,
    /// RFC 3339: when a client last attached or detached.
    #[serde(default)]
    pub last_attached: Option<String>,
    /// Clients attached now.
    #[serde(default)]
    pub attached: usize,
    /// The operator a pty-mcp serving a team over HTTP created it for (ours: `owner` in
    /// `create_session`); absent for sessions created by a single user's pty-mcp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The `status` filter of `list_sessions`: `running`, `exited`, or `all` (also when absent).
///
/// # Errors
/// For any other word.
pub fn status_filter(status: Option<&str>) -> Result<fn(&SessionInfo) -> bool, String> {
    match status.unwrap_or("") {
        "" | "all" => Ok(|_| true),
        "running" | "alive" => Ok(|s| s.is_alive),
        "exited" | "dead" => Ok(|s| !s.is_alive),
        other => Err(format!("status {other:?}: use running, exited or all")),
    }
}

/// Bytes as the protocol carries them.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes from the protocol.
///
/// # Errors
/// When `text` is not base64.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("data is not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_responses_are_told_apart() {
        let e: Incoming =
            serde_json::from_str(r#"{"event":"exit","session_id":"a","exit_code":3,"signal":null}"#).unwrap();
        assert!(matches!(e, Incoming::Event(Event::Exit { exit_code: Some(3), .. })));
        let r: Incoming = serde_json::from_str(r#"{"id":7,"error":"unknown method: hello"}"#).unwrap();
        assert!(matches!(r, Incoming::Response(Response { error: Some(_), .. })));
        let r: Incoming = serde_json::from_str(r#"{"id":8,"result":{"success":true}}"#).unwrap();
        assert!(matches!(r, Incoming::Response(Response { result: Some(_), .. })));
    }

    #[test]
    fn bytes_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
    }
}
