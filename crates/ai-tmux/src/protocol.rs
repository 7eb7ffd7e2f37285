//! The wire protocol, as the Go ai-tmux speaks it: one JSON object per line each way.
//! Requests `{id, method, params}`; responses `{id, result}` or `{id, error}` (a string).
//! Defined once, for the daemon and (later) pty-mcp's remote transport.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    #[serde(default)]
    pub id: Value,
    /// `create_session`, `send_input`, `send_raw`, `resize_session`, `read_output`,
    /// `send_control`, `list_sessions`, `close_session`.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// What went wrong, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// Longest request line accepted (a huge input is an error, not a reason to run out of memory).
pub const MAX_LINE: usize = 4 << 20;
