//! The control socket's messages (see `docs/control-protocol.md`): one JSON line per message.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// What a client asks for, as the first line it sends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The server and its sessions: one [`ServerRow`] line back.
    List,
    /// A session on the viewer's terminal: one [`Attached`] line back, then the bytes that draw
    /// the session; the viewer sends [`ViewerMessage`] lines.
    Attach {
        session_id: String,
        /// Let the viewer type into the session.
        #[serde(default)]
        write: bool,
        /// Resize the session to the viewer's terminal (else the screen is cropped or padded).
        #[serde(default)]
        resize: bool,
        /// The viewer's terminal size.
        rows: u16,
        cols: u16,
    },
    /// The session's screen with colours, as [`StyledFrame`] lines whenever it changes, after
    /// one [`Attached`] line (the browser page).
    Watch { session_id: String },
    /// Keys an operator typed (the page's take-over): one [`Attached`] line back.
    Input { session_id: String, keys: Vec<u8> },
}

/// A stretch of a row in one style: (text, foreground, background, flags).
pub type StyledRun = (String, Option<String>, Option<String>, u8);

/// The screen for a viewer that draws cells itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StyledFrame {
    /// Each row as runs: (text, foreground, background, flags), colours as CSS `#rrggbb` (None:
    /// the default), flags 1 bold, 2 italic, 4 underline, 8 inverse.
    pub rows: Vec<Vec<StyledRun>>,
    /// Cursor row and column, 0-based.
    pub cursor: (u16, u16),
    pub hide_cursor: bool,
    pub state: String,
    /// The session ended: this is its last screen.
    pub ended: bool,
    /// The session's commands where the screen shows their lines, for the page's margin.
    #[serde(default)]
    pub marks: Vec<CommandMark>,
}

/// A command whose line the screen shows, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandMark {
    /// The row, 0-based.
    pub row: u16,
    pub command: String,
    /// Still running.
    pub running: bool,
    /// Its exit status once it ended (None: running, or not reported).
    pub exit_code: Option<i32>,
}

/// A server and its sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerRow {
    pub pid: u32,
    /// The MCP client's name and version from `initialize`.
    pub client: Option<String>,
    pub started_at: String,
    pub sessions: Vec<SessionRow>,
}

/// One session as `pty-mcp ls` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRow {
    pub session_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    pub state: String,
    pub is_alive: bool,
    /// The last command line the agent typed, and when (RFC 3339).
    pub last_command: Option<String>,
    pub last_command_at: Option<String>,
    /// When the agent last used it (RFC 3339).
    pub last_used: String,
    /// Viewers attached now.
    pub attached: usize,
}

/// The answer to an attach request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attached {
    /// Why not, when the session cannot be shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub target: String,
}

/// What a viewer sends while attached.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ViewerMessage {
    /// Keys typed (only with `write`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Vec<u8>>,
    /// The viewer's terminal changed size: (rows, columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<(u16, u16)>,
}

/// Writes `value` as one line.
///
/// # Errors
/// The write's.
pub async fn write_line(out: &mut (impl AsyncWrite + Unpin), value: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line).await
}
