//! Persistent sessions: the program runs in an `ai-tmux` daemon (on the SSH host, or on this
//! machine), so it survives pty-mcp, the agent and the link. pty-mcp attaches a mirror of the
//! session (see `ai_tmux::mirror`), so every tool works on it as on any other session.
//!
//! The session id the agent sees is the daemon's: after a restart of pty-mcp, the agent
//! reattaches with the same id. The daemon remembers how far each machine's pty-mcp read, so
//! the first read after reattaching returns exactly what was not read yet.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ai_tmux::client::{Link, LinkReader, LinkWriter};
use ai_tmux::mirror::{self, CALL_TIMEOUT, Dial};
use ai_tmux::protocol::{SessionInfo, status_filter};
use engine::record::Recorder;
use engine::{Offset, Session, SessionConfig};
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;
use transports::files::LinkSlot;
use transports::ssh::{self, SshOptions};

use crate::error::{Code, ToolError};
use crate::manager::{Caller, Entry, Sessions};
use crate::reply;
use crate::tools::{Created, Settings};

/// Runs `ai-tmux client` found on the user's PATH or in `~/.local/bin` (where `install_ai_tmux`
/// puts it), whatever the login shell (`sh` does the PATH handling). It first says in one line
/// whether ai-tmux is there, so that a missing one is told apart from a failing one without a
/// second round trip.
const REMOTE_CLIENT: &str = "sh -c 'PATH=\"$HOME/.local/bin:$PATH\"; if command -v ai-tmux >/dev/null 2>&1; \
                             then echo ai-tmux-found; exec ai-tmux client; fi; echo ai-tmux-missing'";

/// What to do on the daemon.
pub enum Target {
    /// Start `command` there.
    Create {
        /// The command line (the daemon's default shell when `None`).
        command: Option<String>,
        /// Terminal size.
        rows: u16,
        /// Terminal size.
        cols: u16,
        /// Integrate the shell (bash) for exact completion.
        shell_integration: bool,
    },
    /// Reattach to this session.
    Reattach(String),
}

/// Who this pty-mcp is to the daemon's read offsets: this machine and user, so that a pty-mcp
/// restarted here resumes where the last one stopped, and one on a new machine reads it all.
fn client_id() -> String {
    if let Ok(id) = std::env::var("PTY_MCP_CLIENT_ID") {
        return id;
    }
    // Linux has a machine id; macOS has none in a file, so its host name stands in.
    let machine = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/random/boot_id"))
        .unwrap_or_else(|_| ai_tmux::paths::host_name());
    let user = ::audit::config::default_user();
    format!("{}:{user}", machine.trim().chars().take(16).collect::<String>())
}

fn unavailable(message: impl Into<String>) -> ToolError {
    ToolError { code: Code::DaemonUnavailable, message: message.into(), retryable: true }
}

/// What reaching the daemon failed on, in the codes of the step that failed: SSH's own
/// (authentication, host key…), ai-tmux missing, or the daemon unreachable or too basic.
fn reach_error(e: std::io::Error) -> ToolError {
    if let Some(ssh) = e.get_ref().and_then(|inner| inner.downcast_ref::<ssh::SshError>()) {
        return crate::tools::ssh::ssh_error(ssh);
    }
    let retryable = !matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::Unsupported);
    ToolError { code: Code::DaemonUnavailable, message: e.to_string(), retryable }
}

/// The local `ai-tmux`: `PTY_MCP_AI_TMUX`, else the one beside this binary, else on PATH.
pub fn local_binary() -> Result<PathBuf, ToolError> {
    if let Some(p) = std::env::var_os("PTY_MCP_AI_TMUX") {
        return Ok(PathBuf::from(p));
    }
    let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("ai-tmux")));
    if let Some(p) = beside.filter(|p| p.is_file()) {
        return Ok(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|d| d.join("ai-tmux"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ToolError::new(
                Code::DaemonUnavailable,
                "ai-tmux is not installed here: put the ai-tmux binary that comes with pty-mcp beside it or on PATH \
                 (or set PTY_MCP_AI_TMUX)",
            )
        })
}

/// Dials the local daemon (starting it when none runs).
pub fn local_dial() -> Result<Dial, ToolError> {
    Ok(mirror::local_dial(ai_tmux::paths::default_socket(), Some(local_binary()?)))
}

/// Dials the daemon on the SSH host: a new connection each time, running `ai-tmux client`. The
/// connection in use is kept in `current`, when given, for file transfers.
pub fn ssh_dial(opts: Arc<SshOptions>, current: Option<LinkSlot>) -> Dial {
    Arc::new(move || {
        let (opts, current) = (opts.clone(), current.clone());
        Box::pin(async move {
            let connected = ssh::connect(&opts).await.map_err(std::io::Error::other)?;
            if let Some(slot) = current {
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = connected.link().downgrade();
            }
            let target = connected.target.clone();
            let stream = connected.into_stream(REMOTE_CLIENT).await.map_err(std::io::Error::other)?;
            let (r, w) = tokio::io::split(stream);
            let mut r = tokio::io::BufReader::new(r);
            // The remote startup files may print before our first line (bash reads .bashrc even
            // for a command run by sshd): skip up to 64 KiB of that.
            let mut first = String::new();
            let said = tokio::time::timeout(CALL_TIMEOUT, async {
                let mut skipped = 0;
                loop {
                    first.clear();
                    let n = r.read_line(&mut first).await?;
                    skipped += n;
                    let line = first.trim();
                    if n == 0 || line == "ai-tmux-found" || line == "ai-tmux-missing" || skipped > 64 << 10 {
                        return Ok::<_, std::io::Error>(());
                    }
                }
            })
            .await;
            match (said, first.trim()) {
                (Ok(Ok(_)), "ai-tmux-found") => Ok((Box::pin(r) as LinkReader, Box::pin(w) as LinkWriter)),
                (Ok(Ok(_)), "ai-tmux-missing") => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "ai-tmux is not installed on {target} (looked on PATH and in ~/.local/bin). Install it \
                         there, or call create_ssh_session with install_ai_tmux: true to upload this pty-mcp's own \
                         ai-tmux (same OS and architecture only)"
                    ),
                )),
                (Err(_), _) => Err(std::io::Error::other(format!("{target} did not start ai-tmux in time"))),
                (_, other) => Err(std::io::Error::other(format!(
                    "{target} could not run ai-tmux (it said {:?})",
                    other.chars().take(200).collect::<String>()
                ))),
            }
        })
    })
}

/// Uploads this pty-mcp's `ai-tmux` to `~/.local/bin` on the host, when the host's OS and
/// architecture (`uname -sm`) match ours.
pub async fn install(opts: &SshOptions) -> Result<String, ToolError> {
    let connected = ssh::connect(opts).await.map_err(|e| crate::tools::ssh::ssh_error(&e))?;
    let (_, uname) = connected.run("uname -sm", b"", CALL_TIMEOUT).await.map_err(|e| unavailable(e.to_string()))?;
    // The last line: startup files may print before it.
    let uname = String::from_utf8_lossy(&uname);
    let theirs = uname.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default().to_string();
    let ours = local_uname();
    if theirs != ours {
        return Err(ToolError::new(
            Code::DaemonUnavailable,
            format!(
                "cannot install ai-tmux: {} is {theirs:?}, this machine is {ours:?}; build ai-tmux for it",
                connected.target
            ),
        ));
    }
    let binary = std::fs::read(local_binary()?).map_err(|e| unavailable(format!("cannot read ai-tmux: {e}")))?;
    // Written beside, then renamed: a daemon running the old binary keeps running.
    let script = "sh -c 'mkdir -p \"$HOME/.local/bin\" && cat > \"$HOME/.local/bin/.ai-tmux.new\" && \
                  chmod 755 \"$HOME/.local/bin/.ai-tmux.new\" && mv \"$HOME/.local/bin/.ai-tmux.new\" \"$HOME/.local/bin/ai-tmux\"'";
    let (status, _) = connected
        .run(script, &binary, Duration::from_secs(120))
        .await
        .map_err(|e| unavailable(format!("uploading ai-tmux failed: {e}")))?;
    if status != Some(0) {
        return Err(unavailable(format!("uploading ai-tmux to {} failed (exit status {status:?})", connected.target)));
    }
    Ok(format!("installed ai-tmux {} in ~/.local/bin on {}", env!("CARGO_PKG_VERSION"), connected.target))
}

fn local_uname() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "aarch64" if os == "Darwin" => "arm64",
        arch => arch,
    };
    format!("{os} {arch}")
}

/// Creates or reattaches a persistent session through `dial` and registers it.
pub async fn open(
    manager: &Sessions<'_>,
    settings: Settings,
    dial: Dial,
    kind: &'static str,
    target: String,
    what: Target,
    recorder: Option<Recorder>,
) -> Result<Created, ToolError> {
    if let Target::Reattach(id) = &what
        && let Ok(entry) = manager.get_live(id).await
    {
        // Already attached here: nothing to do but say where reading stands.
        return Ok(Created { is_new: false, ..reattached(&entry) });
    }
    manager.check_room()?;
    let daemon = mirror::connect(&dial).await.map_err(reach_error)?;
    let (id, created) = match what {
        Target::Reattach(id) => (id, false),
        Target::Create { command, rows, cols, shell_integration } => {
            let mut p = json!({"rows": rows, "cols": cols, "shell_integration": shell_integration});
            if let Some(c) = command {
                p["command"] = json!(c);
            }
            if let Some(owner) = &manager.caller.operator {
                p["owner"] = json!(owner);
            }
            let r =
                daemon.link.call("create_session", p, CALL_TIMEOUT).await.map_err(|e| unavailable(e.to_string()))?;
            let id = r["session_id"].as_str().ok_or_else(|| unavailable("ai-tmux returned no session id"))?;
            (id.to_string(), true)
        }
    };
    let not_found = || {
        ToolError::new(
            Code::SessionNotFound,
            format!("ai-tmux has no session {id:?}: list_remote_sessions shows the ones it keeps"),
        )
    };
    let mirror = mirror::attach(daemon, dial, &client_id(), &id, None)
        .await
        .map_err(|e| if e.contains("not found") { not_found() } else { unavailable(e) })?;
    let a = mirror.attached.clone();
    if !manager.caller.sees_owned_by(a.owner.as_deref()) {
        // Another operator's: as missing as one that never was (dropping the mirror detaches).
        return Err(not_found());
    }
    let config = SessionConfig {
        rows: a.rows,
        cols: a.cols,
        buffer_size: settings.buffer_size,
        start: Offset(a.from),
        mirror: true,
    };
    let entry = manager
        .create_with_id(kind, target, b"\r", Some(id), || Ok(Session::start(mirror.connection, config, recorder)))?;
    let s = &entry.session;
    // The backlog arrives as a stream: have it all before answering, so reads start complete.
    let mut signal = s.subscribe();
    let deadline = Instant::now() + CALL_TIMEOUT;
    let _ = tokio::time::timeout_at(deadline, signal.wait_for(|sig| sig.end.0 >= a.end || !sig.alive)).await;
    if created {
        let mut warnings = Vec::new();
        if s.has_integration() {
            crate::tools::first_prompt(s, &mut warnings).await;
        }
        let banner = reply::render(s, Offset(a.from), s.end(), reply::DEFAULT_MAX_OUTPUT);
        return Ok(Created { warnings, ..Created::new(&entry, banner) });
    }
    s.advance_read_cursor(Offset(a.read_offset));
    Ok(reattached(&entry))
}

/// The reply to a reattach: nothing is consumed; the first read returns what was not read.
fn reattached(entry: &Entry) -> Created {
    let s = &entry.session;
    let unread = s.end().since(s.read_cursor());
    let mut created = Created::new_unread(entry);
    created
        .warnings
        .push(format!("reattached: {unread} bytes of output you have not read yet; read_output returns them"));
    created
}

/// The daemon's sessions `caller` may use, `status` "running", "exited" or all. Works with the
/// Go ai-tmux too (which ignores the filter: it is applied here as well).
pub async fn list(dial: &Dial, status: Option<&str>, caller: &Caller) -> Result<Vec<SessionInfo>, ToolError> {
    let keep = status_filter(status).map_err(ToolError::invalid)?;
    let (r, w) = dial().await.map_err(reach_error)?;
    let (link, _events) = Link::open(r, w);
    let v = link
        .call("list_sessions", json!({"status": status}), CALL_TIMEOUT)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let all: Vec<SessionInfo> =
        serde_json::from_value(v).map_err(|e| unavailable(format!("ai-tmux answered list_sessions oddly: {e}")))?;
    Ok(all.into_iter().filter(keep).filter(|s| caller.sees_owned_by(s.owner.as_deref())).collect())
}
