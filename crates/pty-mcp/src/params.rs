//! Tool parameters: the Go pty-mcp's names and defaults, plus our additive ones.
//! Doc comments here become the JSON schema descriptions agents read.

use std::collections::BTreeMap;

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

use crate::lenient;

/// Parameters naming just a session.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionParams {
    /// The session id returned by a create_* tool.
    pub session_id: String,
}

/// Parameters of `create_local_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateLocalParams {
    /// Command line to run, parsed like a shell would ("python3 -q", "ping -c 3 localhost");
    /// lines with pipes, redirections or variables run under /bin/sh -c. Default: /bin/bash.
    pub command: Option<String>,
    /// Extra arguments appended after those in `command`, passed as they are (no parsing).
    pub args: Option<Vec<String>>,
    /// Working directory. Default: the server's.
    pub cwd: Option<String>,
    /// Extra environment variables. TERM is xterm-256color unless set here.
    pub env: Option<BTreeMap<String, String>>,
    /// Terminal height in rows (default 40, at most 500).
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    /// Terminal width in columns (default 120, at most 1000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
    /// Report command completion exactly through shell integration (OSC 133 marks) when the
    /// program is bash (default true). False leaves the shell untouched.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub shell_integration: Option<bool>,
    /// Run the program in this machine's ai-tmux daemon, so that it survives a restart of
    /// pty-mcp or of the agent (detach_session leaves it running).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub persistent: Option<bool>,
    /// Reattach to a local persistent session by its id.
    pub session_id: Option<String>,
    /// Session log options.
    #[serde(flatten)]
    pub log: LogOptions,
}

/// Session log options, shared by every create tool.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LogOptions {
    /// Write a session log to this file (created with mode 0600; a symbolic link is refused).
    pub log_file: Option<String>,
    /// "raw" (the output bytes, appended; default) or "asciicast" (an asciicast v2 recording
    /// with output, input and resizes, which `asciinema play` replays).
    pub log_format: Option<String>,
    /// Rotate the log when it reaches this many MB (0 = never; default 0).
    #[serde(default, deserialize_with = "lenient::int")]
    pub log_max_size: Option<i64>,
    /// Rotated log files kept: file.1 … file.N (default 3).
    #[serde(default, deserialize_with = "lenient::int")]
    pub log_max_files: Option<i64>,
}

/// Parameters of `send_input`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SendInputParams {
    /// The session id.
    pub session_id: String,
    /// Text to type. Enter is pressed after it unless `raw` is true.
    pub input: String,
    /// How long to wait for the command to finish, in milliseconds (default 5000, at most 30000
    /// unless wait_for is used). A command still running then returns is_complete:false with
    /// the output so far; continue with read_output.
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout_ms: Option<i64>,
    /// Send the input exactly as given, without pressing Enter (for keystrokes inside programs).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub raw: Option<bool>,
    /// Regex to wait for in the output (the echo of the input itself never matches). Invalid
    /// regexes are matched as literal text, with a warning.
    pub wait_for: Option<String>,
    /// Seconds to wait for `wait_for` (default 10, at most 600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub wait_for_timeout: Option<i64>,
    /// Quiet period in milliseconds that ends the wait when no prompt is recognised (default 300).
    #[serde(default, deserialize_with = "lenient::int")]
    pub settle_ms: Option<i64>,
    /// With shell integration: also return the echoed command line and the prompt that
    /// follows the output (default false: exactly the command's output).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub include_prompt: Option<bool>,
    /// Paste the input as one block (bracketed paste) when the program asked for it, so editors
    /// and shells take multi-line text literally instead of running each line.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub paste: Option<bool>,
    /// Cap on the returned text in bytes (default 65536): head and tail are kept and the middle
    /// is replaced by a note with the cursor to fetch it from.
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_output_bytes: Option<i64>,
}

/// Parameters of `read_output`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReadOutputParams {
    /// The session id.
    pub session_id: String,
    /// Seconds to wait: for output to settle (default mode) or for `wait_for` (default 5, at most 600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout: Option<i64>,
    /// Cursor mode: return output from this absolute offset without waiting and without
    /// consuming it. Use the `cursor` of an earlier result.
    #[serde(default, deserialize_with = "lenient::int")]
    pub since_cursor: Option<i64>,
    /// Cursor mode: at most this many bytes of raw output (default 65536).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_bytes: Option<i64>,
    /// Wait mode: regex to wait for in unread output (invalid regexes match as literal text).
    pub wait_for: Option<String>,
    /// Wait mode: lines of context to return before and after the matching line (0-50).
    #[serde(default, deserialize_with = "lenient::int")]
    pub context_lines: Option<i64>,
    /// Wait mode: the last N lines of output to return as `tail` (0-100).
    #[serde(default, deserialize_with = "lenient::int")]
    pub tail_lines: Option<i64>,
    /// Screen mode: return the screen as a person sees it now (rows, cursor, alternate screen)
    /// instead of the output stream. Consumes nothing.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub screen: Option<bool>,
    /// Screen mode: also return the rows as a list, `screen_lines`.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub screen_lines: Option<bool>,
    /// Screen mode: also return up to this many lines that scrolled off the top (at most 2000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub scrollback_lines: Option<i64>,
    /// Settle mode: quiet period in milliseconds when no prompt is recognised (default 300).
    #[serde(default, deserialize_with = "lenient::int")]
    pub settle_ms: Option<i64>,
    /// Cap on the returned text in bytes (default 65536).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_output_bytes: Option<i64>,
}

/// One key sequence, or a list of keys pressed in order.
#[derive(Debug, Deserialize, serde::Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Keys {
    /// "ctrl+c", or several separated by spaces: "escape : w q enter".
    Sequence(String),
    /// ["escape", ":", "w", "q", "enter"].
    List(Vec<String>),
}

/// Parameters of `send_control`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendControlParams {
    /// The session id.
    pub session_id: String,
    /// Key, space-separated keys, or a list of keys: ctrl+c, ctrl+d, ctrl+z, ctrl+l, ctrl+r,
    /// enter, tab, escape, up, down, left, right, and also any character, ctrl+<letter>,
    /// alt+<key>, shift+tab, f1-f12, home, end, pageup, pagedown, insert, delete, backspace,
    /// space (e.g. "escape : w q enter"). Names are case-insensitive; '+' or '-' joins modifiers.
    pub key: Keys,
    /// How long to wait for the program to settle afterwards, in milliseconds (default 5000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub timeout_ms: Option<i64>,
    /// Cap on the returned text in bytes (default 65536).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_output_bytes: Option<i64>,
}

/// Parameters of `resize_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ResizeParams {
    /// The session id.
    pub session_id: String,
    /// New height in rows (1-500).
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    /// New width in columns (1-1000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
}

/// Parameters of `send_secret`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SendSecretParams {
    /// The session id.
    pub session_id: String,
    /// What the operator is asked (shown verbatim). Default: "Enter secret: ".
    pub prompt: Option<String>,
    /// Sent after the secret (default "\r", the Enter key).
    pub line_ending: Option<String>,
    /// Send even though the terminal would echo the secret (not recommended).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub force: Option<bool>,
    /// Accept an empty answer (default: refused).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub allow_empty: Option<bool>,
}

/// Parameters of `prepare_secret`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PrepareSecretParams {
    /// The session id.
    pub session_id: String,
    /// What the operator is asked (shown verbatim). Default: "Enter secret: ".
    pub prompt: Option<String>,
    /// Sent after the secret (default "\r", the Enter key).
    pub line_ending: Option<String>,
    /// Seconds to keep the secret waiting for a password prompt (default 300, at most 3600).
    #[serde(default, deserialize_with = "lenient::int")]
    pub ttl: Option<i64>,
    /// Accept an empty answer (default: refused).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub allow_empty: Option<bool>,
}

/// Parameters of `create_serial_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateSerialParams {
    /// The serial device: /dev/ttyUSB0, /dev/serial/by-id/..., a pseudo-terminal (alias: port).
    #[serde(alias = "port")]
    pub device: Option<String>,
    /// Bits per second (default 9600; alias: baud).
    #[serde(default, alias = "baud", deserialize_with = "lenient::int")]
    pub baud_rate: Option<i64>,
    /// Data bits, 5-8 (default 8).
    #[serde(default, deserialize_with = "lenient::int")]
    pub data_bits: Option<i64>,
    /// none (default), odd, even, mark or space.
    pub parity: Option<String>,
    /// 1 (default) or 2.
    #[serde(default, deserialize_with = "lenient::int")]
    pub stop_bits: Option<i64>,
    /// none (default), software (XON/XOFF) or hardware (RTS/CTS).
    pub flow_control: Option<String>,
    /// What send_input sends for Enter: "cr" (default), "lf" or "crlf".
    pub line_ending: Option<String>,
    /// Initial DTR level (unchanged when absent).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub dtr: Option<bool>,
    /// Initial RTS level (unchanged when absent).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub rts: Option<bool>,
    /// Refuse a device another program holds, and keep others out (default true).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub exclusive: Option<bool>,
    /// When the device disappears (USB unplugged), wait for it and reopen it, keeping the
    /// transcript (default false: the session ends, state "disconnected").
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub reconnect: Option<bool>,
    /// Terminal height in rows for the screen view (default 40).
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    /// Terminal width in columns for the screen view (default 120).
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
    /// Session log options (see create_local_session).
    #[serde(flatten)]
    pub log: LogOptions,
}

/// Parameters of `send_break`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SendBreakParams {
    /// The session id (a serial session).
    pub session_id: String,
    /// How long to hold the line in BREAK, in milliseconds (default 250, 10-5000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub duration_ms: Option<i64>,
}

/// Where and how to reach an SSH server (create_ssh_session, list_remote_sessions).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SshTargetParams {
    /// Host name, address, or an alias from ssh_config (HostName, Port, User, IdentityFile… apply).
    pub host: Option<String>,
    /// User name (default: from ssh_config, else the local user).
    pub user: Option<String>,
    /// Port (default: from ssh_config, else 22).
    #[serde(default, deserialize_with = "lenient::int")]
    pub port: Option<i64>,
    /// Password (discouraged: the agent sees it; without it, the operator is asked when needed).
    pub password: Option<String>,
    /// A private key file tried before those of ssh_config.
    pub key_path: Option<String>,
    /// Skip host-key verification entirely (reported as a warning). Prefer host_key_policy.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub ignore_host_key: Option<bool>,
    /// "strict" (default: only hosts in known_hosts), "accept-new" (record unknown hosts; changed
    /// keys are still refused) or "insecure" (no check).
    pub host_key_policy: Option<String>,
    /// ProxyJump: `[user@]host[:port]`, or several separated by commas (overrides ssh_config).
    pub jump: Option<String>,
    /// Connection timeout in milliseconds (default: ConnectTimeout, else 10000).
    #[serde(default, deserialize_with = "lenient::int")]
    pub connect_timeout_ms: Option<i64>,
}

/// Parameters of `create_ssh_session`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CreateSshParams {
    /// The server.
    #[serde(flatten)]
    pub ssh: SshTargetParams,
    /// Run the session in the host's ai-tmux daemon, so that it survives pty-mcp, the agent and
    /// the link: detach_session leaves it running, and create_ssh_session(session_id) reattaches.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub persistent: Option<bool>,
    /// Reattach to a persistent session by its id (list_remote_sessions lists them); the first
    /// read returns what this machine has not read yet.
    pub session_id: Option<String>,
    /// With persistent: upload this pty-mcp's own ai-tmux to ~/.local/bin on the host first
    /// (same OS and architecture only).
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub install_ai_tmux: Option<bool>,
    /// Run this command on the PTY instead of the login shell (persistent: in ai-tmux).
    pub command: Option<String>,
    /// Report command completion exactly when the remote login shell is bash: a one-line hook
    /// is typed at the first prompt (kept out of history and out of the output). Default true.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub shell_integration: Option<bool>,
    /// Terminal height (default 40).
    #[serde(default, deserialize_with = "lenient::int")]
    pub rows: Option<i64>,
    /// Terminal width (default 120).
    #[serde(default, deserialize_with = "lenient::int")]
    pub cols: Option<i64>,
    /// Environment variables to pass (the server accepts only those its AcceptEnv allows).
    pub env: Option<BTreeMap<String, String>>,
    /// Session log options (see create_local_session).
    #[serde(flatten)]
    pub log: LogOptions,
}

/// Parameters of `list_remote_sessions`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListRemoteParams {
    /// The server whose ai-tmux to ask; without host, this machine's ai-tmux (local persistent
    /// sessions).
    #[serde(flatten)]
    pub ssh: SshTargetParams,
    /// "running", "exited" or "all" (default).
    pub status: Option<String>,
}
