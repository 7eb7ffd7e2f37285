//! What a session is doing (`get_session_state`, `list_sessions`), and ending it.

use super::*;

/// One session as get_session_state and list_sessions describe it.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    /// The id (list_sessions calls it `id`, get_session_state `session_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `local`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What runs there.
    pub target: String,
    /// Whether the program is still running.
    pub is_alive: bool,
    /// The transcript's end offset.
    pub cursor: u64,
    /// Bytes not yet returned by a consuming read.
    pub unread_bytes: u64,
    /// at_prompt, password_prompt, confirmation, pager, full_screen, running or exited.
    pub state: &'static str,
    /// Whether the shell reports its commands through shell integration.
    pub shell_integration: bool,
    /// Exit status of the last command the integrated shell finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// The integrated shell's working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Whether a prepared secret waits for a password prompt.
    pub awaiting_secret: bool,
    /// The newest prompt seen.
    pub last_prompt: Option<String>,
    /// Exit status, once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
    /// Why the link is down (state "disconnected").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<String>,
    /// Why the session log stopped (a full disk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
    /// Operators watching it now (`pty-mcp attach`).
    #[serde(skip_serializing_if = "is_zero")]
    pub operator_attached: u64,
    /// An operator typed into it since the agent last asked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub operator_typed: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub last_used: String,
}

/// Describes a session.
pub fn session_info(entry: &Entry, as_list: bool) -> SessionInfo {
    let s = &entry.session;
    let (state, last_prompt) = s.state();
    let (exit_code, exit_signal) = exit_fields(s);
    let shell = s.shell();
    SessionInfo {
        id: as_list.then(|| entry.id.clone()),
        session_id: (!as_list).then(|| entry.id.clone()),
        kind: entry.kind,
        target: entry.target.clone(),
        is_alive: s.is_alive(),
        cursor: s.end().0,
        unread_bytes: s.end().since(s.read_cursor()),
        state: state.as_str(),
        shell_integration: shell.active,
        last_exit_code: shell.last.as_ref().and_then(|l| l.exit),
        cwd: shell.cwd.clone(),
        awaiting_secret: entry.awaiting_secret(),
        last_prompt,
        exit_code,
        exit_signal,
        disconnect_reason: s.link_problem(),
        log_error: s.log_problem(),
        operator_attached: entry.viewers.attached() as u64,
        operator_typed: !as_list && entry.viewers.take_typed(),
        created_at: rfc3339(entry.created_at),
        last_used: rfc3339(entry.last_used()),
    }
}

/// How long closing a persistent session waits for its daemon to confirm.
const CLOSE_WAIT: Duration = Duration::from_secs(15);

/// Reply of close_session and detach_session.
#[derive(Debug, Serialize)]
pub struct Closed {
    /// Always true.
    pub success: bool,
    /// Exit status of the program if it had ended by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A note, e.g. that a local session cannot be detached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Ends a session and forgets it.
pub async fn close_session(manager: &Sessions<'_>, id: &str, detach: bool) -> Result<Closed, ToolError> {
    let entry = manager.remove(id)?;
    entry.drop_pending_secret();
    let (exit_code, _) = exit_fields(&entry.session);
    if detach && entry.session.detach() {
        let note = format!(
            "detached: the program keeps running in ai-tmux; reattach with session_id {:?} (list_remote_sessions lists it)",
            entry.id
        );
        return Ok(Closed { success: true, exit_code, note: Some(note) });
    }
    entry.session.close_and_wait(CLOSE_WAIT).await;
    let note = detach.then(|| format!("{} sessions cannot outlive the server: the session was closed", entry.kind));
    Ok(Closed { success: true, exit_code, note })
}
