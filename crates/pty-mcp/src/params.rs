//! Tool parameters: the Go pty-mcp's names and defaults, plus our additive ones.
//! Doc comments on fields become the JSON schema descriptions agents read on every turn: one
//! short line each, none where the name says it all (docs/tools.md has the rest).

use std::collections::BTreeMap;

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

use crate::lenient;

/// Parameters naming just a session.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionParams {
    pub session_id: String,
}

/// Parameters of `create_local_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateLocalParams {
    /// Command line (default /bin/bash); shell syntax runs under sh -c.
    pub command: Option<String>,
    /// Extra arguments, passed unparsed.
    pub args: Option<Vec<String>>,
    pub cwd: Option<String>,
    /// Extra environment variables.
    pub env: Option<BTreeMap<String, String>>,
    /// Terminal size (default 40 x 120).
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
    /// Exact completion in bash, zsh, fish through prompt hooks (default true).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub shell_integration: Option<bool>,
    /// Run in this machine's ai-tmux, so it outlives pty-mcp.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub persistent: Option<bool>,
    /// Reattach to this persistent session.
    pub session_id: Option<String>,
    #[serde(flatten)]
    pub log: LogOptions,
}

/// Session log options, shared by every create tool.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LogOptions {
    /// Write a session log here (mode 0600).
    pub log_file: Option<String>,
    /// raw (default) or asciicast.
    pub log_format: Option<String>,
    /// Rotate at this many MB (0: never).
    #[serde(default, deserialize_with = "lenient::int")]
    pub log_max_size: Option<i64>,
    /// Rotated logs kept (default 3).
    #[serde(default, deserialize_with = "lenient::int")]
    pub log_max_files: Option<i64>,
}

/// Parameters of `send_input`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SendInputParams {
    pub session_id: String,
    /// Text to type; Enter follows unless raw.
    pub input: String,
    /// Wait for completion, ms (default 5000, max 30000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout_ms: Option<i64>,
    /// Press no Enter after the input.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub raw: Option<bool>,
    /// Regex to wait for instead of completion.
    pub wait_for: Option<String>,
    /// Seconds for wait_for (default 10, max 600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub wait_for_timeout: Option<i64>,
    /// Quiet that ends a wait with no prompt seen, ms (default 300).
    #[serde(default, deserialize_with = "lenient::int")]
    pub settle_ms: Option<i64>,
    /// Also return the echo and the prompt.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub include_prompt: Option<bool>,
    /// Bracketed paste: multi-line text taken literally.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub paste: Option<bool>,
    /// Text cap (default 65536).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_output_bytes: Option<i64>,
}

/// Parameters of `read_output`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReadOutputParams {
    pub session_id: String,
    /// Seconds to wait (default 5, max 600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout: Option<i64>,
    /// Re-read from this cursor: no wait, nothing consumed.
    #[serde(default, deserialize_with = "lenient::int")]
    pub since_cursor: Option<i64>,
    /// With since_cursor: bytes at most.
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_bytes: Option<i64>,
    /// Regex to wait for in unread output.
    pub wait_for: Option<String>,
    /// Lines around the match (0-50).
    #[serde(default, deserialize_with = "lenient::int")]
    pub context_lines: Option<i64>,
    /// Last lines of output as tail (0-100).
    #[serde(default, deserialize_with = "lenient::int")]
    pub tail_lines: Option<i64>,
    /// Return the screen as a person sees it.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub screen: Option<bool>,
    /// With screen: the rows as a list too.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub screen_lines: Option<bool>,
    /// With screen: lines scrolled off the top (max 500).
    #[serde(default, deserialize_with = "lenient::int")]
    pub scrollback_lines: Option<i64>,
    /// Quiet that ends the wait, ms (default 300).
    #[serde(default, deserialize_with = "lenient::int")]
    pub settle_ms: Option<i64>,
    /// Text cap (default 65536).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_output_bytes: Option<i64>,
}

/// One key sequence, or a list of keys pressed in order.
#[derive(Debug, Deserialize, serde::Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Keys {
    // "ctrl+c", or several separated by spaces: "escape : w q enter" (no description: the
    // field's says it, and every character of the schema costs the model).
    Sequence(String),
    // ["escape", ":", "w", "q", "enter"].
    List(Vec<String>),
}

/// Parameters of `send_control`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendControlParams {
    pub session_id: String,
    /// A key, space-separated keys or a list: ctrl+c, enter, tab, escape, up, f5, alt+x, "escape : w q enter".
    pub key: Keys,
    /// Wait to settle, ms (default 5000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout_ms: Option<i64>,
    /// Text cap (default 65536).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_output_bytes: Option<i64>,
}

/// Parameters of `resize_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ResizeParams {
    pub session_id: String,
    /// 1-500.
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    /// 1-1000.
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
}

/// Parameters of `send_secret`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SendSecretParams {
    pub session_id: String,
    /// What the operator is asked.
    pub prompt: Option<String>,
    /// Sent after the secret (default \r).
    pub line_ending: Option<String>,
    /// Send even if the terminal would echo it.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub force: Option<bool>,
    /// Accept an empty answer.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub allow_empty: Option<bool>,
}

/// Parameters of `prepare_secret`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PrepareSecretParams {
    pub session_id: String,
    /// What the operator is asked.
    pub prompt: Option<String>,
    /// Sent after the secret (default \r).
    pub line_ending: Option<String>,
    /// Seconds to keep it (default 300, max 3600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub ttl: Option<i64>,
    /// Accept an empty answer.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub allow_empty: Option<bool>,
}

/// Parameters of `create_serial_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateSerialParams {
    /// /dev/ttyUSB0, /dev/serial/by-id/... (alias port).
    #[serde(alias = "port")]
    pub device: Option<String>,
    /// Default 9600 (alias baud).
    #[serde(default, alias = "baud", deserialize_with = "lenient::int")]
    pub baud_rate: Option<i64>,
    /// 5-8 (default 8).
    #[serde(default, deserialize_with = "lenient::int")]
    pub data_bits: Option<i64>,
    /// none, odd, even, mark, space.
    pub parity: Option<String>,
    /// 1 or 2.
    #[serde(default, deserialize_with = "lenient::int")]
    pub stop_bits: Option<i64>,
    /// none, software or hardware.
    pub flow_control: Option<String>,
    /// What Enter sends: cr (default), lf, crlf.
    pub line_ending: Option<String>,
    /// Initial DTR level.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub dtr: Option<bool>,
    /// Initial RTS level.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub rts: Option<bool>,
    /// Lock the device (default true).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub exclusive: Option<bool>,
    /// Reopen the device when it comes back (default false).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub reconnect: Option<bool>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
    #[serde(flatten)]
    pub log: LogOptions,
}

/// Parameters of `send_break`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SendBreakParams {
    pub session_id: String,
    /// Default 250 (10-5000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub duration_ms: Option<i64>,
}

/// Where and how to reach an SSH server (create_ssh_session, list_remote_sessions).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SshTargetParams {
    /// Host, address or ssh_config alias.
    pub host: Option<String>,
    pub user: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub port: Option<i64>,
    /// Discouraged (you see it); else the operator is asked.
    pub password: Option<String>,
    /// A private key tried first.
    pub key_path: Option<String>,
    /// Prefer host_key_policy.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub ignore_host_key: Option<bool>,
    /// strict (default), accept-new or insecure.
    pub host_key_policy: Option<String>,
    /// ProxyJump: [user@]host[:port],...
    pub jump: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub connect_timeout_ms: Option<i64>,
}

/// Parameters of `create_ssh_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateSshParams {
    #[serde(flatten)]
    pub ssh: SshTargetParams,
    /// Run in the host's ai-tmux, so it outlives pty-mcp and the link.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub persistent: Option<bool>,
    /// Reattach to this persistent session.
    pub session_id: Option<String>,
    /// Upload our ai-tmux to the host first.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub install_ai_tmux: Option<bool>,
    /// Run this instead of the login shell.
    pub command: Option<String>,
    /// Exact completion in remote bash (default true).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub shell_integration: Option<bool>,
    /// Default 40 x 120.
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
    /// Environment (as AcceptEnv allows).
    pub env: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub log: LogOptions,
}

/// Parameters of `list_remote_sessions`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListRemoteParams {
    #[serde(flatten)]
    pub ssh: SshTargetParams,
    /// running, exited or all (default).
    pub status: Option<String>,
}

/// Parameters of check_policy.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CheckPolicyParams {
    pub session_id: String,
    pub input: String,
}

/// Parameters of `upload_file`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UploadParams {
    pub session_id: String,
    /// Absolute, ~/..., or relative to the shell's cwd.
    pub remote_path: String,
    /// A file here to send.
    pub local_path: Option<String>,
    /// Or the bytes (up to 1 MiB).
    pub content: Option<String>,
    #[serde(flatten)]
    pub options: TransferOptions,
}

/// Parameters of `download_file`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DownloadParams {
    pub session_id: String,
    pub remote_path: String,
    /// Save here; else the reply holds it.
    pub local_path: Option<String>,
    /// Reply cap (default 65536; head and tail).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_bytes: Option<i64>,
    #[serde(flatten)]
    pub options: TransferOptions,
}

/// What `upload_file` and `download_file` share (described on upload_file).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TransferOptions {
    /// text or base64.
    pub encoding: Option<String>,
    /// Octal digits, e.g. 644 (default: kept).
    #[serde(default, deserialize_with = "lenient::int")]
    pub mode: Option<i64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub overwrite: Option<bool>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub create_parents: Option<bool>,
    /// Seconds (default 600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout: Option<i64>,
}
