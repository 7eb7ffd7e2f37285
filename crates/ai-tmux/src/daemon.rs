//! The daemon: sessions of the terminal engine kept by a process that outlives its clients,
//! served over a private Unix socket to the same user only.
//!
//! Each connection answers requests in the order they arrive, except the ones that wait (typing
//! then settling, reading, `wait`), which run on their own so that a long wait never holds up
//! the keystrokes or acknowledgements that follow it. Output reaches attached clients as events
//! pushed the moment the session's reader stores it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use engine::transport::local::{self, LocalCommand};
use engine::{Echo, Offset, PatternWait, Session, SessionConfig, Settle, keys, text};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lock;
use crate::paths;
use crate::protocol::{
    Attached, CAPABILITIES, Event, Hello, MAX_CHUNK, MAX_LINE, PROTOCOL, Request, Response, SessionInfo, decode,
    encode, status_filter,
};

const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// The Go protocol's cap on a settle.
const MAX_TIMEOUT_MS: u64 = 30_000;
/// The cap on an extension `wait`.
const MAX_WAIT_MS: u64 = 600_000;
const QUIET: Duration = Duration::from_millis(300);
/// How long an exited session is kept for a client to read it, unattached.
const EXITED_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How the daemon keeps sessions.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// A session nobody attached to for this long is closed, running or not.
    pub unattached: Duration,
    /// An exited session nobody attached to for this long is forgotten (at most `unattached`).
    pub exited: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention { unattached: Duration::from_secs(7 * 24 * 3600), exited: EXITED_RETENTION }
    }
}

struct Entry {
    name: String,
    command: String,
    /// The operator a pty-mcp serving a team created it for (extension `owner` of
    /// `create_session`); kept so that only they find it again.
    owner: Option<String>,
    session: Session,
    shell_token: Option<String>,
    created_at: SystemTime,
    last_used: Mutex<SystemTime>,
    /// When a client last attached or detached; `None` before the first attach.
    last_attached: Mutex<Option<SystemTime>>,
    attached: Mutex<usize>,
    /// How far each named client has read (extension `ack` with a `client`), so that a client
    /// reattaching from the same machine resumes where it stopped and a new one reads it all.
    reads: Mutex<HashMap<String, u64>>,
    /// How much input each named client has had delivered (extension `write` with `client` and
    /// `seq`): input re-sent after a lost link is typed once, not twice.
    inputs: Mutex<HashMap<String, u64>>,
}

impl Entry {
    fn new(
        name: String,
        command: String,
        owner: Option<String>,
        session: Session,
        shell_token: Option<String>,
    ) -> Entry {
        let now = SystemTime::now();
        Entry {
            name,
            command,
            owner,
            session,
            shell_token,
            created_at: now,
            last_used: Mutex::new(now),
            last_attached: Mutex::new(None),
            attached: Mutex::new(0),
            reads: Mutex::default(),
            inputs: Mutex::default(),
        }
    }

    fn info(&self, id: &str) -> SessionInfo {
        SessionInfo {
            id: id.to_string(),
            name: self.name.clone(),
            command: self.command.clone(),
            is_alive: self.session.is_alive(),
            exit_code: self.session.exit().and_then(|x| x.code),
            created_at: rfc3339(self.created_at),
            last_used: rfc3339(*lock(&self.last_used)),
            last_attached: lock(&self.last_attached).map(rfc3339),
            attached: *lock(&self.attached),
            owner: self.owner.clone(),
        }
    }

    /// A client attached (`+1`) or detached (`-1`).
    fn attach_count(&self, delta: isize) {
        let mut n = lock(&self.attached);
        *n = n.saturating_add_signed(delta);
        *lock(&self.last_attached) = Some(SystemTime::now());
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How the daemon runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// What is kept, for how long.
    pub retention: Retention,
    /// Output bytes kept per session (what a reattaching client can replay).
    pub buffer_size: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { retention: Retention::default(), buffer_size: 1 << 20 }
    }
}

/// The daemon's sessions.
#[derive(Default)]
pub struct Daemon {
    sessions: Mutex<HashMap<String, Arc<Entry>>>,
    options: Options,
}

/// Lines to one client: responses and events share the connection's writer.
type Outbox = mpsc::Sender<String>;

/// What one connection is attached to: the task forwarding each session's output.
type Attachments = Arc<Mutex<HashMap<String, JoinHandle<()>>>>;

impl Daemon {
    /// A daemon keeping sessions as `options` say.
    pub fn new(options: Options) -> Daemon {
        Daemon { sessions: Mutex::default(), options }
    }

    fn get(&self, params: &Value) -> Result<(String, Arc<Entry>), String> {
        let id = params["session_id"].as_str().unwrap_or_default();
        let entry = lock(&self.sessions).get(id).cloned().ok_or_else(|| format!("session not found: {id}"))?;
        *lock(&entry.last_used) = SystemTime::now();
        Ok((id.to_string(), entry))
    }

    /// Whether `method` may run alongside later requests (it waits) rather than in order.
    fn waits(method: &str) -> bool {
        matches!(method, "create_session" | "send_input" | "send_raw" | "send_control" | "read_output" | "wait")
    }

    /// Answers one request. `outbox` and `attachments` are the connection's, for `attach`.
    async fn handle(self: &Arc<Self>, req: Request, outbox: &Outbox, attachments: &Attachments) -> Response {
        let id = req.id.clone();
        match self.dispatch(&req.method, &req.params, outbox, attachments).await {
            Ok(result) => Response::ok(id, result),
            Err(e) => Response::err(id, e),
        }
    }

    async fn dispatch(
        self: &Arc<Self>,
        method: &str,
        p: &Value,
        outbox: &Outbox,
        attachments: &Attachments,
    ) -> Result<Value, String> {
        match method {
            "hello" => Ok(json!(Hello {
                server: "ai-tmux".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                protocol: PROTOCOL,
                capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            })),
            "create_session" => self.create(p).await,
            "send_input" => {
                let input = p["input"].as_str().ok_or("input is required")?;
                type_and_settle(&self.get(p)?.1, p, format!("{input}\r").into_bytes()).await
            }
            "send_raw" => {
                let data = p["data"].as_str().ok_or("data is required")?;
                type_and_settle(&self.get(p)?.1, p, data.as_bytes().to_vec()).await
            }
            "send_control" => {
                let key = p["key"].as_str().ok_or("key is required")?;
                let keys = keys::parse_sequence(key).map_err(|e| e.to_string())?;
                let (_, entry) = self.get(p)?;
                let bytes = keys.iter().flat_map(|k| k.bytes(entry.session.modes().app_cursor)).collect();
                type_and_settle(&entry, p, bytes).await
            }
            "read_output" => {
                let (_, entry) = self.get(p)?;
                let s = &entry.session;
                let from = s.read_cursor();
                let settled =
                    s.settle(Settle::reading(from, QUIET), deadline(p, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS)).await;
                Ok(output_reply(s, from, settled.is_complete()))
            }
            "resize_session" => {
                let (_, entry) = self.get(p)?;
                let (rows, cols) = (p["rows"].as_u64().unwrap_or(0), p["cols"].as_u64().unwrap_or(0));
                if rows == 0 || cols == 0 || rows > 500 || cols > 1000 {
                    return Err("rows and cols must be positive integers (at most 500 and 1000)".into());
                }
                entry.session.resize(rows as u16, cols as u16).map_err(|e| e.to_string())?;
                Ok(json!({"success": true}))
            }
            "list_sessions" => Ok(json!(self.list(p["status"].as_str())?)),
            "close_session" => {
                let id = p["session_id"].as_str().unwrap_or_default();
                let entry = lock(&self.sessions).remove(id).ok_or_else(|| format!("session not found: {id}"))?;
                entry.session.close();
                Ok(json!({"success": true}))
            }
            "attach" => self.attach(p, outbox, attachments),
            "detach" => {
                let (id, entry) = self.get(p)?;
                if let Some(task) = lock(attachments).remove(&id) {
                    task.abort();
                    entry.attach_count(-1);
                }
                Ok(json!({"success": true}))
            }
            "write" => {
                let (_, entry) = self.get(p)?;
                let mut data = decode(p["data"].as_str().ok_or("data is required")?)?;
                if let (Some(client), Some(seq)) = (p["client"].as_str(), p["seq"].as_u64()) {
                    // `seq` is where these bytes start in the client's input: skip what arrived before.
                    let mut inputs = lock(&entry.inputs);
                    let delivered = inputs.entry(client.to_string()).or_default();
                    let skip = delivered.saturating_sub(seq).min(data.len() as u64) as usize;
                    *delivered = (*delivered).max(seq + data.len() as u64);
                    data.drain(..skip);
                }
                let s = &entry.session;
                let at = s.write(&data, Instant::now() + Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
                Ok(json!({"offset": at.0}))
            }
            "ack" => {
                let (_, entry) = self.get(p)?;
                let offset = Offset(p["offset"].as_u64().ok_or("offset is required")?).min(entry.session.end());
                let read = match p["client"].as_str() {
                    Some(client) => {
                        let mut reads = lock(&entry.reads);
                        let read = reads.entry(client.to_string()).or_default();
                        *read = (*read).max(offset.0);
                        *read
                    }
                    None => {
                        entry.session.advance_read_cursor(offset);
                        entry.session.read_cursor().0
                    }
                };
                Ok(json!({"read_offset": read}))
            }
            "read_since" => {
                let (_, entry) = self.get(p)?;
                let s = &entry.session;
                let from = Offset(p["offset"].as_u64().unwrap_or(0));
                let max = p["max_bytes"].as_u64().map_or(MAX_CHUNK, |m| (m as usize).clamp(1, MAX_LINE / 2));
                let slice = s.slice(from, max);
                Ok(json!({
                    "from": slice.from.0, "data": encode(&slice.bytes), "lost": slice.lost,
                    "end": s.end().0, "is_alive": s.is_alive(),
                }))
            }
            "screen" => {
                let (_, entry) = self.get(p)?;
                let view = entry.session.screen(p["scrollback_lines"].as_u64().unwrap_or(0).min(1000) as usize);
                Ok(json!({
                    "lines": view.lines, "scrollback": view.scrollback, "cursor_row": view.cursor_row,
                    "cursor_col": view.cursor_col, "rows": view.rows, "cols": view.cols, "alt_screen": view.alt_screen,
                }))
            }
            "wait" => self.wait(p).await,
            other => Err(format!("unknown method: {other}")),
        }
    }

    fn list(&self, status: Option<&str>) -> Result<Vec<SessionInfo>, String> {
        let keep = status_filter(status)?;
        let sessions = lock(&self.sessions);
        let mut list: Vec<_> = sessions.iter().map(|(id, e)| (e.created_at, e.info(id))).collect();
        list.sort_by_key(|(created, _)| *created);
        Ok(list.into_iter().map(|(_, info)| info).filter(keep).collect())
    }

    async fn create(&self, p: &Value) -> Result<Value, String> {
        let command = p["command"].as_str().filter(|c| !c.trim().is_empty()).unwrap_or("/bin/bash").to_string();
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let mut cmd = LocalCommand::parse(&command).map_err(|e| e.to_string())?;
        let size = |key: &str, max: u64| p[key].as_u64().filter(|v| (1..=max).contains(v)).map(|v| v as u16);
        cmd.rows = size("rows", 500).unwrap_or(cmd.rows);
        cmd.cols = size("cols", 1000).unwrap_or(cmd.cols);
        if p["shell_integration"] == false {
            cmd.shell_integration = false;
        }
        if let Some(cwd) = p["cwd"].as_str() {
            cmd.cwd = Some(cwd.into());
        }
        let conn = local::spawn(&cmd).map_err(|e| e.to_string())?;
        let shell_token = conn.shell_token.clone();
        let config = SessionConfig {
            rows: cmd.rows,
            cols: cmd.cols,
            buffer_size: self.options.buffer_size,
            ..SessionConfig::default()
        };
        let session = Session::start(conn, config, None);
        session.settle(Settle::after_input(Offset(0), QUIET), Instant::now() + Duration::from_secs(2)).await;
        let id = format!("{:016x}", rand::random::<u64>());
        let owner = p["owner"].as_str().map(String::from);
        let entry = Arc::new(Entry::new(name.clone(), command, owner, session, shell_token));
        lock(&self.sessions).insert(id.clone(), entry);
        Ok(json!({"session_id": id, "type": "pty", "name": name}))
    }

    /// Extension `attach`: answers where the session stands, then pushes its output from `from`
    /// on this connection until the client detaches or goes.
    fn attach(&self, p: &Value, outbox: &Outbox, attachments: &Attachments) -> Result<Value, String> {
        let (id, entry) = self.get(p)?;
        let s = &entry.session;
        let from = Offset(p["from"].as_u64().unwrap_or(0)).max(s.oldest());
        let (rows, cols) = s.size();
        let attached = Attached {
            session_id: id.clone(),
            command: entry.command.clone(),
            oldest: s.oldest().0,
            end: s.end().0,
            read_offset: match p["client"].as_str() {
                // A client we have not seen reads everything still held.
                Some(client) => lock(&entry.reads).get(client).copied().unwrap_or(0).max(s.oldest().0),
                None => s.read_cursor().0,
            },
            from: from.0,
            input_seq: p["client"].as_str().and_then(|c| lock(&entry.inputs).get(c).copied()).unwrap_or(0),
            shell_token: entry.shell_token.clone(),
            is_alive: s.is_alive(),
            rows,
            cols,
            owner: entry.owner.clone(),
        };
        let previous =
            lock(attachments).insert(id.clone(), tokio::spawn(forward(id, entry.clone(), from, outbox.clone())));
        match previous {
            Some(old) => old.abort(),
            None => entry.attach_count(1),
        }
        Ok(json!(attached))
    }

    /// Extension `wait`: the daemon waits, so nothing crosses the link until there is an answer.
    /// `until`: `match` (a line matching `pattern`), `complete` (the command finished) or `quiet`.
    async fn wait(&self, p: &Value) -> Result<Value, String> {
        let (_, entry) = self.get(p)?;
        let s = &entry.session;
        let from = p["from"].as_u64().map_or_else(|| s.end(), Offset);
        let deadline = deadline(p, DEFAULT_TIMEOUT_MS, MAX_WAIT_MS);
        match p["until"].as_str().unwrap_or("match") {
            "match" => {
                let pattern = p["pattern"].as_str().ok_or("pattern is required")?;
                let re = regex::Regex::new(pattern).map_err(|e| format!("invalid pattern: {e}"))?;
                Ok(match s.wait_for(&re, from, &Echo::default(), deadline).await {
                    PatternWait::Matched(m) => json!({
                        "matched": true, "line": m.line, "line_start": m.line_start.0, "line_end": m.line_end.0,
                    }),
                    PatternWait::TimedOut => json!({"matched": false, "timed_out": true, "is_alive": s.is_alive()}),
                    PatternWait::Exited => json!({"matched": false, "timed_out": false, "is_alive": false}),
                })
            }
            how @ ("complete" | "quiet") => {
                let settle =
                    if how == "complete" { Settle::after_input(from, QUIET) } else { Settle::reading(from, QUIET) };
                let settled = s.settle(settle, deadline).await;
                Ok(
                    json!({"settled": format!("{settled:?}").to_lowercase(), "end": s.end().0, "is_alive": s.is_alive()}),
                )
            }
            other => Err(format!("until {other:?}: use match, complete or quiet")),
        }
    }

    /// Forgets exited sessions and closes abandoned ones, as the retention says. Attached
    /// sessions are never touched, and a running job is never killed for being quiet.
    fn sweep(&self, now: SystemTime) {
        let r = self.options.retention;
        lock(&self.sessions).retain(|id, e| {
            if *lock(&e.attached) > 0 {
                return true;
            }
            let since = lock(&e.last_attached).unwrap_or(e.created_at).max(*lock(&e.last_used));
            let idle = now.duration_since(since).unwrap_or_default();
            let limit = if e.session.is_alive() { r.unattached } else { r.exited.min(r.unattached) };
            if idle < limit {
                return true;
            }
            tracing::info!("session {id} unattached for {idle:?}: closing it");
            e.session.close();
            false
        });
    }
}

/// Types `bytes` and waits for the program to settle, as the Go protocol's typing methods do.
async fn type_and_settle(entry: &Entry, p: &Value, bytes: Vec<u8>) -> Result<Value, String> {
    let s = &entry.session;
    let _typing = s.lock_input().await;
    let start = s.write(&bytes, Instant::now() + Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
    let settle = Settle { require_output: false, ..Settle::after_input(start, QUIET) };
    let settled = s.settle(settle, deadline(p, DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS)).await;
    Ok(output_reply(s, start, settled.is_complete()))
}

/// Pushes a session's output from `from` to one client, then its exit.
async fn forward(id: String, entry: Arc<Entry>, mut from: Offset, outbox: Outbox) {
    let s = &entry.session;
    let mut signal = s.subscribe();
    loop {
        let alive = signal.borrow_and_update().alive;
        while from < s.end() {
            let slice = s.slice(from, MAX_CHUNK);
            let event = Event::Output { session_id: id.clone(), offset: slice.from.0, data: encode(&slice.bytes) };
            if send(&outbox, &event).await.is_err() {
                return;
            }
            from = slice.to();
        }
        if !alive {
            let exit = s.exit();
            let event = Event::Exit {
                session_id: id,
                exit_code: exit.and_then(|x| x.code),
                signal: exit.and_then(|x| x.signal),
            };
            let _ = send(&outbox, &event).await;
            return;
        }
        if signal.changed().await.is_err() {
            return;
        }
    }
}

async fn send(outbox: &Outbox, event: &Event) -> Result<(), ()> {
    let line = serde_json::to_string(event).map_err(|_| ())?;
    outbox.send(line).await.map_err(|_| ())
}

fn deadline(p: &Value, default_ms: u64, max_ms: u64) -> Instant {
    let ms = p["timeout_ms"].as_u64().unwrap_or(default_ms).min(max_ms);
    Instant::now() + Duration::from_millis(ms)
}

/// `{output, is_alive, is_complete}` from `from` to the end; the read cursor moves to the end.
fn output_reply(s: &Session, from: Offset, complete: bool) -> Value {
    let slice = s.slice(from, usize::MAX);
    s.advance_read_cursor(slice.to());
    json!({"output": text::clean(&slice.bytes), "is_alive": s.is_alive(), "is_complete": complete})
}

/// Serves `socket` until the process is stopped. Only clients of our own uid are answered.
/// `ready` runs once the socket listens — or at once, when another daemon already serves it
/// (then this one returns without serving: one daemon per user).
///
/// # Errors
/// When the directory is not private or the socket cannot be bound.
pub async fn serve(socket: &Path, options: Options, ready: impl FnOnce()) -> anyhow::Result<()> {
    let Some(listener) = paths::bind_once(socket).await? else {
        ready();
        return Ok(());
    };
    ready();
    let daemon = Arc::new(Daemon::new(options));
    let sweeper = daemon.clone();
    // Retention is counted in hours and days: a sweep a minute is plenty, and costs nothing.
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            sweeper.sweep(SystemTime::now());
        }
    });
    let me = paths::my_uid();
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

/// One client: requests read in order, each line bounded in size; responses and events written
/// by one task so that lines never interleave.
async fn connection(daemon: Arc<Daemon>, stream: UnixStream) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let (outbox, mut lines) = mpsc::channel::<String>(64);
    let writer = tokio::spawn(async move {
        while let Some(mut line) = lines.recv().await {
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let attachments: Attachments = Arc::default();
    let outcome = requests(&daemon, read, &outbox, &attachments).await;
    // The client went: its attachments end (the sessions do not).
    for (id, task) in lock(&attachments).drain() {
        task.abort();
        if let Some(entry) = lock(&daemon.sessions).get(&id) {
            entry.attach_count(-1);
        }
    }
    drop(outbox);
    let _ = writer.await;
    outcome
}

async fn requests(
    daemon: &Arc<Daemon>,
    read: tokio::net::unix::OwnedReadHalf,
    outbox: &Outbox,
    attachments: &Attachments,
) -> anyhow::Result<()> {
    let mut read = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut read).take(MAX_LINE as u64 + 1).read_line(&mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let req = if n > MAX_LINE {
            Err(Response::err(Value::Null, "request line too long"))
        } else {
            serde_json::from_str::<Request>(line.trim())
                .map_err(|e| Response::err(Value::Null, format!("malformed request: {e}")))
        };
        let req = match req {
            Ok(req) => req,
            Err(response) => {
                outbox.send(serde_json::to_string(&response)?).await?;
                if n > MAX_LINE {
                    // The rest of the oversized line would be read as garbage requests.
                    return Ok(());
                }
                continue;
            }
        };
        let waits = Daemon::waits(&req.method);
        let (daemon, outbox, attachments) = (daemon.clone(), outbox.clone(), attachments.clone());
        let answer = async move {
            let response = daemon.handle(req, &outbox, &attachments).await;
            if let Ok(line) = serde_json::to_string(&response) {
                let _ = outbox.send(line).await;
            }
        };
        if waits {
            tokio::spawn(answer);
        } else {
            answer.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(command: &str) -> (String, Arc<Entry>) {
        let conn = local::spawn(&LocalCommand::parse(command).unwrap()).unwrap();
        let e =
            Entry::new(String::new(), command.into(), None, Session::start(conn, SessionConfig::default(), None), None);
        (format!("{:016x}", rand::random::<u64>()), Arc::new(e))
    }

    #[tokio::test]
    async fn retention_closes_abandoned_sessions_only() {
        let retention = Retention { unattached: Duration::from_secs(100), exited: Duration::from_secs(10) };
        let daemon = Daemon::new(Options { retention, ..Options::default() });
        let (running, r) = entry("sleep 1000");
        let (attached, a) = entry("sleep 1000");
        let (exited, x) = entry("true");
        a.attach_count(1);
        x.session.wait_exit(Instant::now() + Duration::from_secs(30)).await;
        for (id, e) in [(&running, r), (&attached, a), (&exited, x)] {
            lock(&daemon.sessions).insert(id.clone(), e);
        }
        let now = SystemTime::now();
        daemon.sweep(now + Duration::from_secs(50));
        let left = |d: &Daemon| {
            let mut ids: Vec<String> = lock(&d.sessions).keys().cloned().collect();
            ids.sort();
            ids
        };
        let mut want = vec![running.clone(), attached.clone()];
        want.sort();
        assert_eq!(left(&daemon), want, "only the exited session went after 50 s");
        daemon.sweep(now + Duration::from_secs(500));
        assert_eq!(left(&daemon), vec![attached], "an attached session stays, whatever its age");
    }

    #[tokio::test]
    async fn by_default_a_running_job_left_alone_is_kept_for_a_week() {
        let daemon = Daemon::new(Options::default());
        let (id, e) = entry("sleep 1000");
        lock(&daemon.sessions).insert(id, e);
        let now = SystemTime::now();
        daemon.sweep(now + Duration::from_secs(6 * 24 * 3600));
        assert_eq!(lock(&daemon.sessions).len(), 1, "six days unattached, still running");
        daemon.sweep(now + Duration::from_secs(8 * 24 * 3600));
        assert_eq!(lock(&daemon.sessions).len(), 0, "past the retention");
    }
}
