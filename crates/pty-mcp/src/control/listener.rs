//! The server's end of the control socket: lists sessions, and serves viewers.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use engine::view::{Mode, View, status};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use super::protocol::{Attached, Request, ServerRow, SessionRow, ViewerMessage, write_line};
use super::render::styled_frame;
use crate::audit::{Audit, OperatorAudit};
use crate::manager::{Entry, SessionManager};
use crate::tools::rfc3339;

/// How long a client may take to send its request.
const REQUEST_WAIT: Duration = Duration::from_secs(5);
/// How long a write to a viewer may take before the viewer is dropped (its terminal is stuck;
/// the session never waits for it).
const VIEWER_WRITE_WAIT: Duration = Duration::from_secs(10);
/// Frames are drawn at most this often during a flood (each shows the newest screen, so a
/// viewer skips what it had no time to show).
const FRAME: Duration = Duration::from_millis(8);
/// The browser page gets a frame at most this often.
const WATCH_FRAME: Duration = Duration::from_millis(20);
/// How long the operator's keys may wait to be written.
const INPUT_WAIT: Duration = Duration::from_secs(5);

/// The login name of this process's user (the only user the socket serves), for the audit
/// record of what an operator did.
fn login_name() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| ai_tmux::paths::my_uid().to_string())
}

/// What `pty-mcp ls` says about this server.
#[derive(Debug)]
pub struct ServerInfo {
    /// The MCP client's name and version, once it said them.
    pub client: Mutex<Option<String>>,
    pub started_at: SystemTime,
}

impl Default for ServerInfo {
    fn default() -> Self {
        ServerInfo { client: Mutex::new(None), started_at: SystemTime::now() }
    }
}

/// The listening socket; removed when dropped.
pub struct Listener {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener {
    /// Listens on this server's socket in the private control directory.
    ///
    /// # Errors
    /// When the directory is not private to this user or the socket cannot be bound.
    pub fn start(manager: Arc<SessionManager>, info: Arc<ServerInfo>, audit: Audit) -> anyhow::Result<Listener> {
        let path = super::socket_of(std::process::id());
        ai_tmux::paths::private_dir(&path)?;
        // A socket under our own pid is a dead process's (pids are reused).
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let me = ai_tmux::paths::my_uid();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                match stream.peer_cred() {
                    Ok(cred) if cred.uid() == me => {}
                    other => {
                        tracing::warn!("control socket: refused a peer of another user ({other:?})");
                        continue;
                    }
                }
                let (read, write) = stream.into_split();
                tokio::spawn(serve(read, write, manager.clone(), info.clone(), audit.clone()));
            }
        });
        Ok(Listener { path, task })
    }
}

async fn serve(
    read: OwnedReadHalf,
    mut write: OwnedWriteHalf,
    manager: Arc<SessionManager>,
    info: Arc<ServerInfo>,
    audit: Audit,
) {
    let mut lines = BufReader::new(read).lines();
    let Ok(Ok(Some(line))) = tokio::time::timeout(REQUEST_WAIT, lines.next_line()).await else { return };
    match serde_json::from_str::<Request>(&line) {
        Ok(Request::List) => {
            let row = server_row(&manager, &info);
            let _ = write_line(&mut write, &row).await;
        }
        Ok(Request::Attach { session_id, write: can_write, resize, rows, cols }) => {
            let Some(entry) = found(&manager, &session_id, &mut write).await else { return };
            let mut audit = OperatorAudit::new(&audit, &entry, &login_name());
            audit.event("operator_attached", serde_json::json!({"write": can_write, "resize": resize}));
            entry.viewers.join();
            view(&entry, lines, write, Viewer { can_write, resize, rows, cols }, &mut audit).await;
            entry.viewers.leave();
            audit.event("operator_detached", serde_json::json!({}));
        }
        Ok(Request::Watch { session_id }) => {
            let Some(entry) = found(&manager, &session_id, &mut write).await else { return };
            entry.viewers.join();
            watch(&entry, lines, write).await;
            entry.viewers.leave();
        }
        Ok(Request::Input { session_id, keys }) => {
            let Some(entry) = found(&manager, &session_id, &mut write).await else { return };
            let mut audit = OperatorAudit::new(&audit, &entry, &login_name());
            entry.viewers.typed(&keys);
            audit.typed(&keys);
            audit.flush();
            if let Err(e) = entry.session.write(&keys, Instant::now() + INPUT_WAIT).await {
                tracing::warn!("operator input to {session_id} not written: {e}");
            }
        }
        Err(e) => {
            let _ = write_line(&mut write, &serde_json::json!({ "error": format!("bad request: {e}") })).await;
        }
    }
}

/// The session asked for, after saying so to the client (or that there is none).
async fn found(manager: &SessionManager, id: &str, write: &mut OwnedWriteHalf) -> Option<Arc<Entry>> {
    let entry = manager.peek(id);
    let answer = match &entry {
        Some(e) => Attached { error: None, target: e.target.clone() },
        None => Attached { error: Some(format!("this server has no session {id}")), target: String::new() },
    };
    write_line(write, &answer).await.ok()?;
    entry
}

/// Sends the session's styled screen whenever it changes, until it ends or the page leaves.
async fn watch(entry: &Entry, mut lines: tokio::io::Lines<BufReader<OwnedReadHalf>>, mut out: OwnedWriteHalf) {
    let session = &entry.session;
    let mut signal = session.subscribe();
    let mut last = String::new();
    loop {
        signal.borrow_and_update();
        let alive = session.is_alive();
        let (state, _) = session.state();
        let commands = if session.modes().alt_screen { Vec::new() } else { session.commands() };
        let frame = styled_frame(session.styled(), state.as_str(), !alive, &commands);
        let Ok(mut line) = serde_json::to_string(&frame) else { return };
        line.push('\n');
        let drawn = Instant::now();
        if line != last {
            if !send_frame(&mut out, &line).await {
                return;
            }
            last = line;
        }
        if !alive {
            return;
        }
        tokio::select! {
            changed = signal.changed() => {
                if changed.is_ok() {
                    tokio::time::sleep_until(drawn + WATCH_FRAME).await;
                }
            }
            // The page left (or sent something it should not).
            _ = lines.next_line() => return,
        }
    }
}

fn server_row(manager: &SessionManager, info: &ServerInfo) -> ServerRow {
    let sessions = manager.list().iter().map(|e| session_row(e)).collect();
    ServerRow {
        pid: std::process::id(),
        client: info.client.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        started_at: rfc3339(info.started_at),
        sessions,
    }
}

fn session_row(entry: &Entry) -> SessionRow {
    let (state, _) = entry.session.state();
    let last = entry.last_command();
    SessionRow {
        session_id: entry.id.clone(),
        kind: entry.kind.to_string(),
        target: entry.target.clone(),
        state: state.as_str().to_string(),
        is_alive: entry.session.is_alive(),
        last_command: last.as_ref().map(|(c, _)| c.clone()),
        last_command_at: last.map(|(_, at)| rfc3339(at)),
        last_used: rfc3339(entry.last_used()),
        attached: entry.viewers.attached(),
    }
}

struct Viewer {
    can_write: bool,
    resize: bool,
    rows: u16,
    cols: u16,
}

/// Draws the session on the viewer until it ends or the viewer leaves; applies what the viewer
/// sends. Only this task ever waits on the viewer.
async fn view(
    entry: &Entry,
    mut lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    mut out: OwnedWriteHalf,
    viewer: Viewer,
    audit: &mut OperatorAudit,
) {
    let session = &entry.session;
    if viewer.resize {
        let _ = session.resize(viewer.rows, viewer.cols);
    }
    let mut view = View::new(viewer.rows, viewer.cols);
    let mut signal = session.subscribe();
    let mode = if viewer.can_write { Mode::Typing } else { Mode::ReadOnly };
    loop {
        signal.borrow_and_update();
        let alive = session.is_alive();
        let (state, _) = session.state();
        let status = status(&entry.id, state.as_str(), &entry.target, mode, alive);
        let frame = view.draw(&session.frame(view.cols), &status);
        let drawn = Instant::now();
        if !frame.is_empty() && !send_frame(&mut out, &frame).await {
            return;
        }
        if !alive {
            return;
        }
        tokio::select! {
            changed = signal.changed() => {
                if changed.is_ok() {
                    tokio::time::sleep_until(drawn + FRAME).await;
                }
            }
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return };
                let Ok(message) = serde_json::from_str::<ViewerMessage>(&line) else { return };
                if let Some((rows, cols)) = message.size {
                    view.resize(rows, cols);
                    if viewer.resize {
                        let _ = session.resize(rows, cols);
                    }
                }
                if let Some(keys) = message.input.filter(|k| viewer.can_write && !k.is_empty()) {
                    entry.viewers.typed(&keys);
                    audit.typed(&keys);
                    if session.write(&keys, Instant::now() + INPUT_WAIT).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Sends a frame to a viewer; false when the viewer is gone or stuck for [`VIEWER_WRITE_WAIT`]
/// (then it is dropped: only its own task ever waits on it).
async fn send_frame(out: &mut OwnedWriteHalf, frame: &str) -> bool {
    matches!(tokio::time::timeout(VIEWER_WRITE_WAIT, out.write_all(frame.as_bytes())).await, Ok(Ok(())))
}
