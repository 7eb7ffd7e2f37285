//! The daemon: sessions of the terminal engine kept by a process that outlives its clients,
//! served over a private Unix socket to the same user only.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use engine::transport::local::{self, LocalCommand};
use engine::{Offset, Session, SessionConfig, Settle, keys, text};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;

use crate::protocol::{MAX_LINE, Request, Response};

const DEFAULT_TIMEOUT_MS: u64 = 5000;
const MAX_TIMEOUT_MS: u64 = 30_000;
const QUIET: Duration = Duration::from_millis(300);

/// `$XDG_RUNTIME_DIR/ai-tmux/ai-tmux.sock`, else `~/.ai-tmux/ai-tmux.sock`: a directory only
/// this user can enter (never a guessable world-writable path like `/tmp`).
pub fn default_socket() -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("ai-tmux"))
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".ai-tmux"));
    dir.join("ai-tmux.sock")
}

/// Creates the socket's directory (0700) or checks that an existing one is ours and private.
///
/// # Errors
/// When the directory belongs to someone else or others may write to it.
pub fn private_dir(socket: &Path) -> anyhow::Result<PathBuf> {
    let dir = socket.parent().unwrap_or(Path::new("/")).to_path_buf();
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let meta = std::fs::metadata(&dir)?;
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    anyhow::ensure!(meta.uid() == me, "{} belongs to uid {}, not to us ({me})", dir.display(), meta.uid());
    anyhow::ensure!(
        meta.permissions().mode() & 0o022 == 0,
        "{} is writable by others; refusing to use it",
        dir.display()
    );
    Ok(dir)
}

struct Entry {
    name: String,
    command: String,
    session: Session,
    created_at: SystemTime,
    last_used: Mutex<SystemTime>,
}

/// The daemon's sessions.
#[derive(Default)]
pub struct Daemon {
    sessions: Mutex<HashMap<String, Arc<Entry>>>,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Daemon {
    fn get(&self, params: &Value) -> Result<Arc<Entry>, String> {
        let id = params["session_id"].as_str().unwrap_or_default();
        let entry = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| format!("session not found: {id}"))?;
        *entry.last_used.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
        Ok(entry)
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        let id = req.id.clone();
        match self.dispatch(&req.method, &req.params).await {
            Ok(result) => Response::ok(id, result),
            Err(e) => Response::err(id, e),
        }
    }

    async fn dispatch(&self, method: &str, p: &Value) -> Result<Value, String> {
        match method {
            "create_session" => self.create(p).await,
            "send_input" => {
                let input = p["input"].as_str().ok_or("input is required")?;
                self.type_and_settle(p, format!("{input}\r").into_bytes()).await
            }
            "send_raw" => {
                let data = p["data"].as_str().ok_or("data is required")?;
                self.type_and_settle(p, data.as_bytes().to_vec()).await
            }
            "send_control" => {
                let key = p["key"].as_str().ok_or("key is required")?;
                let keys = keys::parse_sequence(key).map_err(|e| e.to_string())?;
                let entry = self.get(p)?;
                let bytes = keys.iter().flat_map(|k| k.bytes(entry.session.modes().app_cursor)).collect();
                self.type_and_settle(p, bytes).await
            }
            "read_output" => {
                let entry = self.get(p)?;
                let s = &entry.session;
                let from = s.read_cursor();
                let settled = s.settle(Settle::reading(from, QUIET), deadline(p)).await;
                Ok(output_reply(s, from, settled.is_complete()))
            }
            "resize_session" => {
                let entry = self.get(p)?;
                let (rows, cols) = (p["rows"].as_u64().unwrap_or(0), p["cols"].as_u64().unwrap_or(0));
                if rows == 0 || cols == 0 || rows > 500 || cols > 1000 {
                    return Err("rows and cols must be positive integers (at most 500 and 1000)".into());
                }
                entry.session.resize(rows as u16, cols as u16).map_err(|e| e.to_string())?;
                Ok(json!({"success": true}))
            }
            "list_sessions" => {
                let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                let mut list: Vec<_> = sessions.iter().collect();
                list.sort_by_key(|(_, e)| e.created_at);
                Ok(Value::Array(
                    list.into_iter()
                        .map(|(id, e)| {
                            json!({
                                "id": id, "name": e.name, "command": e.command, "is_alive": e.session.is_alive(),
                                "exit_code": e.session.exit().and_then(|x| x.code),
                                "created_at": rfc3339(e.created_at),
                                "last_used": rfc3339(*e.last_used.lock().unwrap_or_else(|e| e.into_inner())),
                            })
                        })
                        .collect(),
                ))
            }
            "close_session" => {
                let id = p["session_id"].as_str().unwrap_or_default();
                let entry = self
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(id)
                    .ok_or_else(|| format!("session not found: {id}"))?;
                entry.session.close();
                Ok(json!({"success": true}))
            }
            other => Err(format!("unknown method: {other}")),
        }
    }

    async fn create(&self, p: &Value) -> Result<Value, String> {
        let command = p["command"].as_str().filter(|c| !c.trim().is_empty()).unwrap_or("/bin/bash").to_string();
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let cmd = LocalCommand::parse(&command).map_err(|e| e.to_string())?;
        let conn = local::spawn(&cmd).map_err(|e| e.to_string())?;
        let session = Session::start(conn, SessionConfig::default(), None);
        session.settle(Settle::after_input(Offset(0), QUIET), Instant::now() + Duration::from_secs(2)).await;
        let id = format!("{:016x}", rand::random::<u64>());
        let now = SystemTime::now();
        let entry =
            Arc::new(Entry { name: name.clone(), command, session, created_at: now, last_used: Mutex::new(now) });
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), entry);
        Ok(json!({"session_id": id, "type": "pty", "name": name}))
    }

    async fn type_and_settle(&self, p: &Value, bytes: Vec<u8>) -> Result<Value, String> {
        let entry = self.get(p)?;
        let s = &entry.session;
        let _typing = s.lock_input().await;
        let start = s.write(&bytes, Instant::now() + Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
        let settled =
            s.settle(Settle { require_output: false, ..Settle::after_input(start, QUIET) }, deadline(p)).await;
        Ok(output_reply(s, start, settled.is_complete()))
    }
}

fn deadline(p: &Value) -> Instant {
    let ms = p["timeout_ms"].as_u64().unwrap_or(DEFAULT_TIMEOUT_MS).min(MAX_TIMEOUT_MS);
    Instant::now() + Duration::from_millis(ms)
}

/// `{output, is_alive, is_complete}` from `from` to the end; the read cursor moves to the end.
fn output_reply(s: &Session, from: Offset, complete: bool) -> Value {
    let slice = s.slice(from, usize::MAX);
    s.advance_read_cursor(slice.to());
    json!({"output": text::clean(&slice.bytes), "is_alive": s.is_alive(), "is_complete": complete})
}

/// Serves `socket` until the process is stopped. Only clients of our own uid are answered.
///
/// # Errors
/// When the directory is not private or the socket cannot be bound.
pub async fn serve(socket: &Path, ready: impl FnOnce()) -> anyhow::Result<()> {
    private_dir(socket)?;
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    ready();
    let daemon = Arc::new(Daemon::default());
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    loop {
        let (stream, _) = listener.accept().await?;
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == me => {}
            other => {
                tracing::warn!("refused a client of another user: {other:?}");
                continue;
            }
        }
        let daemon = daemon.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(daemon, stream).await {
                tracing::debug!("client gone: {e}");
            }
        });
    }
}

/// One client: requests answered in order, each line bounded in size.
async fn connection(daemon: Arc<Daemon>, stream: UnixStream) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut read).take(MAX_LINE as u64 + 1).read_line(&mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let response = if n > MAX_LINE {
            Response::err(Value::Null, "request line too long")
        } else {
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(req) => daemon.handle(req).await,
                Err(e) => Response::err(Value::Null, format!("malformed request: {e}")),
            }
        };
        let mut out = serde_json::to_vec(&response)?;
        out.push(b'\n');
        write.write_all(&out).await?;
    }
}
