//! A daemon's session as an engine transport, for pty-mcp: the daemon pushes the session's
//! output from an absolute offset, and the local engine keeps a mirror of the transcript with
//! the same offsets. So every tool works on a persistent session as on any other (screen, waits,
//! shell integration, secrets), nothing is polled over the link, and a client that reattaches
//! says where it stopped and receives exactly what it missed.
//!
//! When the link drops the session is *detached*, not dead: [`Control::link_problem`] says so,
//! and [`Control::reattach`] dials again and resumes from the last byte received. When the
//! daemon no longer has the session (it was killed, or the session closed), the mirror ends.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::transport::{Connection, Control, Exit, Reattach};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot};

use crate::client::{Link, LinkReader, LinkWriter};
use crate::lock;
use crate::protocol::{Attached, Event, decode, encode};

/// Input kept for sending again after a lost link.
const RESEND_WINDOW: usize = 64 << 10;

/// How long a request over the link may take (an SSH round trip, or a daemon starting).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Opens a new connection to the daemon (runs `ai-tmux client` over SSH, or connects to the
/// local socket): used again on every reattach.
pub type Dial =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = io::Result<(LinkReader, LinkWriter)>> + Send>> + Send + Sync>;

/// Dials the daemon on this machine's socket; when none answers, starts `start` as one (or
/// fails, without `start`).
pub fn local_dial(socket: std::path::PathBuf, start: Option<std::path::PathBuf>) -> Dial {
    Arc::new(move || {
        let (socket, start) = (socket.clone(), start.clone());
        Box::pin(async move {
            let stream = match &start {
                Some(exe) => crate::paths::connect_or_start(&socket, exe).await.map_err(io::Error::other)?,
                None => crate::paths::connect_checked(&socket).await?,
            };
            let (r, w) = stream.into_split();
            Ok((Box::pin(r) as LinkReader, Box::pin(w) as LinkWriter))
        })
    })
}

/// A connection to a daemon that speaks our extensions.
pub struct Daemon {
    /// The conversation.
    pub link: Link,
    /// Its events.
    pub events: mpsc::Receiver<Event>,
}

/// Dials and says hello.
///
/// # Errors
/// The dialer's own error, untouched (its kind and source tell what failed); `Unsupported` when
/// the daemon lacks the extensions (the Go ai-tmux); others when it does not answer.
pub async fn connect(dial: &Dial) -> io::Result<Daemon> {
    // A daemon dying as we connect (killed a moment ago: its socket still took the connection)
    // takes the hello with it; dialing again finds its socket dead and starts a new daemon.
    let mut attempts = 0;
    let (link, events, hello) = loop {
        attempts += 1;
        let (reader, writer) = dial().await?;
        let (link, events) = Link::open(reader, writer);
        match link.hello(CALL_TIMEOUT).await {
            Ok(hello) => break (link, events, hello),
            Err(crate::client::LinkError::Gone) if attempts < 3 => continue,
            Err(e) => return Err(io::Error::other(format!("ai-tmux: {e}"))),
        }
    };
    match hello {
        Some(hello) if hello.capabilities.iter().any(|c| c == "attach") => Ok(Daemon { link, events }),
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this ai-tmux speaks only the basic protocol (the Go version?): persistent sessions need attach \
             and read_since, from the ai-tmux that comes with this pty-mcp (install_ai_tmux: true)",
        )),
    }
}

/// A persistent session, ready for [`engine::Session::start`].
pub struct Mirror {
    /// The transport; start the session with `SessionConfig { start: attached.from, mirror: true }`.
    pub connection: Connection,
    /// Where the session stood when we attached.
    pub attached: Attached,
}

/// Attaches to `session_id` on an open daemon connection, asking for output from `from`
/// (everything the daemon still holds when `None`).
///
/// # Errors
/// The daemon's answer, e.g. `session not found`.
pub async fn attach(
    daemon: Daemon,
    dial: Dial,
    client: &str,
    session_id: &str,
    from: Option<u64>,
) -> Result<Mirror, String> {
    let attached = attach_call(&daemon.link, client, session_id, from.unwrap_or(0)).await?;
    let (session_side, pump_side) = tokio::io::duplex(256 << 10);
    let (reader, writer) = tokio::io::split(session_side);
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (recorded, recorded_rx) = tokio::sync::watch::channel(attached.read_offset);
    let remote = Arc::new(Remote {
        commands,
        problem: Arc::default(),
        let_go: AtomicBool::new(false),
        read: AtomicU64::new(attached.read_offset),
        recorded: recorded_rx,
    });
    let (exit_tx, exit_rx) = oneshot::channel();
    let (link_up, link_rx) = tokio::sync::watch::channel(true);
    let pump = Pump {
        link_up,
        session_id: session_id.to_string(),
        client: client.to_string(),
        dial,
        link: Some(Arc::new(daemon.link)),
        events: daemon.events,
        received: attached.from,
        acked: attached.read_offset,
        recorded,
        unsent: Vec::new(),
        typed: attached.input_seq,
        recent: std::collections::VecDeque::new(),
        side: Some(pump_side),
        exit: Some(exit_tx),
        problem: remote.problem.clone(),
    };
    tokio::spawn(pump.run(commands_rx));
    Ok(Mirror {
        connection: Connection {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            control: remote,
            exited: Box::pin(async move { exit_rx.await.ok().flatten() }),
            shell_token: attached.shell_token.clone(),
            link: Some(link_rx),
        },
        attached,
    })
}

async fn attach_call(link: &Link, client: &str, session_id: &str, from: u64) -> Result<Attached, String> {
    let v = link
        .call("attach", json!({"session_id": session_id, "from": from, "client": client}), CALL_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_value(v).map_err(|e| format!("ai-tmux answered attach oddly: {e}"))
}

enum Command {
    Resize(u16, u16),
    Ack(u64),
    Reattach(oneshot::Sender<io::Result<()>>),
    /// End the program in the daemon; the sender hears when it is done.
    Close(Option<oneshot::Sender<io::Result<()>>>),
    Detach,
}

/// The session's control surface; the pump does the work.
struct Remote {
    commands: mpsc::UnboundedSender<Command>,
    problem: Arc<Mutex<Option<String>>>,
    /// Detached or closed already: dropping the session must not close it (again).
    let_go: AtomicBool,
    /// The furthest read offset handed to the pump.
    read: AtomicU64,
    /// The furthest read offset the daemon has recorded.
    recorded: tokio::sync::watch::Receiver<u64>,
}

impl Control for Remote {
    fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        self.commands.send(Command::Resize(rows, cols)).map_err(|_| io::Error::other("the session is gone"))
    }

    fn terminate(&self) {
        // Dropping a detached session must not end the program it left running.
        if !self.let_go.swap(true, Ordering::SeqCst) {
            let _ = self.commands.send(Command::Close(None));
        }
    }

    fn end(&self) -> Option<Reattach> {
        if self.let_go.swap(true, Ordering::SeqCst) {
            return None;
        }
        Some(self.ask(|done| Command::Close(Some(done))))
    }

    fn link_problem(&self) -> Option<String> {
        lock(&self.problem).clone()
    }

    fn read_to(&self, offset: engine::Offset) {
        self.read.fetch_max(offset.0, Ordering::SeqCst);
        let _ = self.commands.send(Command::Ack(offset.0));
    }

    fn reads_recorded(&self) -> Option<Reattach> {
        let read = self.read.load(Ordering::SeqCst);
        let mut recorded = self.recorded.clone();
        let problem = self.problem.clone();
        Some(Box::pin(async move {
            // A link that is down records nothing now; the next attach says where reading stands.
            let down = || lock(&problem).is_some();
            recorded
                .wait_for(|r| *r >= read || down())
                .await
                .map(|_| ())
                .map_err(|_| io::Error::other("the session is gone"))
        }))
    }

    fn detach(&self) -> bool {
        self.let_go.store(true, Ordering::SeqCst);
        let _ = self.commands.send(Command::Detach);
        true
    }

    fn reattach(&self) -> Option<Reattach> {
        Some(self.ask(Command::Reattach))
    }
}

impl Remote {
    /// Hands the pump a command that reports back, and the wait for its report.
    fn ask(&self, command: impl FnOnce(oneshot::Sender<io::Result<()>>) -> Command) -> Reattach {
        let (tx, rx) = oneshot::channel();
        let sent = self.commands.send(command(tx));
        Box::pin(async move {
            let gone = || io::Error::other("the session is gone");
            sent.map_err(|_| gone())?;
            rx.await.map_err(|_| gone())?
        })
    }
}

/// Moves bytes between the daemon and the local engine, and carries out the commands.
struct Pump {
    /// Tells the engine when the link drops or returns.
    link_up: tokio::sync::watch::Sender<bool>,
    session_id: String,
    /// Who reads, for the daemon's per-client read offsets.
    client: String,
    dial: Dial,
    /// `None` while detached.
    link: Option<Arc<Link>>,
    events: mpsc::Receiver<Event>,
    /// Daemon offset just after the last byte handed to the engine.
    received: u64,
    /// The last read offset told to the daemon.
    acked: u64,
    /// Read offsets the daemon confirmed it recorded.
    recorded: tokio::sync::watch::Sender<u64>,
    /// Input typed while the link was down, sent once it is back.
    unsent: Vec<u8>,
    /// Bytes of input sent so far: the `seq` of the next `write`.
    typed: u64,
    /// The latest input sent, kept to send again what a lost link may have swallowed (the
    /// daemon skips what it already had, by `seq`).
    recent: std::collections::VecDeque<u8>,
    /// The engine's end; `None` once the program ended.
    side: Option<DuplexStream>,
    exit: Option<oneshot::Sender<Option<Exit>>>,
    problem: Arc<Mutex<Option<String>>>,
}

impl Pump {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            tokio::select! {
                // Commands first: a close sent just before the engine lets go must still happen.
                biased;
                command = commands.recv() => match command {
                    None | Some(Command::Detach) => return,
                    Some(Command::Close(done)) => {
                        let outcome = self.close().await;
                        if let Some(done) = done {
                            let _ = done.send(outcome);
                        }
                        return;
                    }
                    Some(Command::Resize(rows, cols)) => {
                        if let Some(link) = &self.link {
                            let p = json!({"session_id": self.session_id, "rows": rows, "cols": cols});
                            let _ = link.post("resize_session", p).await;
                        }
                    }
                    Some(Command::Ack(offset)) => {
                        if let Some(link) = &self.link && offset > self.acked {
                            self.acked = offset;
                            let p = json!({"session_id": self.session_id, "offset": offset, "client": self.client});
                            // Answered off the pump, which must keep taking output meanwhile.
                            let (link, recorded) = (link.clone(), self.recorded.clone());
                            tokio::spawn(async move {
                                if link.call("ack", p, CALL_TIMEOUT).await.is_ok() {
                                    recorded.send_modify(|r| *r = (*r).max(offset));
                                }
                            });
                        }
                    }
                    Some(Command::Reattach(done)) => {
                        let outcome = self.reattach().await;
                        let _ = done.send(outcome);
                    }
                },
                event = self.events.recv(), if self.link.is_some() => match event {
                    Some(event) => self.event(event).await,
                    None => self.lost("the connection to ai-tmux was lost"),
                },
                read = read_side(&mut self.side, &mut buf) => match read {
                    Some(n) => {
                        self.unsent.extend_from_slice(&buf[..n]);
                        self.send_input().await;
                    }
                    // The engine let go of the session: nothing more to carry.
                    None => return,
                },
            }
        }
    }

    /// Ends the program in the daemon, reconnecting first if the link is down: closing must not
    /// leave it running because a link happened to be lost.
    async fn close(&mut self) -> io::Result<()> {
        let link = match &self.link {
            Some(link) => link.clone(),
            None => Arc::new(connect(&self.dial).await?.link),
        };
        match link.call("close_session", json!({"session_id": self.session_id}), CALL_TIMEOUT).await {
            Ok(_) => Ok(()),
            // Already gone (exited and swept, or closed by another client): nothing left to end.
            Err(e) if e.to_string().contains("not found") => Ok(()),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Output { offset, data, .. } => {
                let Ok(bytes) = decode(&data) else { return };
                let end = offset + bytes.len() as u64;
                if end <= self.received {
                    return; // already have it (a resumed stream overlapping)
                }
                if offset > self.received {
                    tracing::warn!(
                        "ai-tmux session {}: {} bytes fell off the daemon's ring before they were sent",
                        self.session_id,
                        offset - self.received
                    );
                }
                let fresh = &bytes[self.received.saturating_sub(offset) as usize..];
                self.received = end;
                if let Some(side) = &mut self.side
                    && side.write_all(fresh).await.is_err()
                {
                    self.side = None;
                }
            }
            Event::Exit { exit_code, signal, .. } => self.ended(Some(Exit { code: exit_code, signal }), None).await,
        }
    }

    /// The program is gone: the engine sees its output end (after `note`) and the exit status.
    async fn ended(&mut self, exit: Option<Exit>, note: Option<&str>) {
        if let (Some(note), Some(side)) = (note, self.side.as_mut()) {
            // The mirror's offsets no longer matter once nothing follows.
            let note = format!("\r\n{note}\r\n");
            let _ = tokio::time::timeout(Duration::from_secs(1), side.write_all(note.as_bytes())).await;
        }
        self.side = None;
        if let Some(tx) = self.exit.take() {
            let _ = tx.send(exit);
        }
        *lock(&self.problem) = None;
    }

    fn lost(&mut self, why: &str) {
        self.link = None;
        *lock(&self.problem) =
            Some(format!("detached: {why}; the program keeps running in ai-tmux and the next call reattaches"));
        // After the problem is set: the engine's waiters read it when woken.
        self.link_up.send_replace(false);
    }

    async fn send_input(&mut self) {
        let Some(link) = &self.link else { return };
        if self.unsent.is_empty() {
            return;
        }
        let p = json!({"session_id": self.session_id, "data": encode(&self.unsent), "client": self.client, "seq": self.typed});
        match link.post("write", p).await {
            Ok(()) => {
                self.typed += self.unsent.len() as u64;
                self.recent.extend(self.unsent.drain(..));
                let excess = self.recent.len().saturating_sub(RESEND_WINDOW);
                self.recent.drain(..excess);
            }
            Err(_) => self.lost("the connection to ai-tmux was lost while typing"),
        }
    }

    async fn reattach(&mut self) -> io::Result<()> {
        if self.link.is_some() || self.side.is_none() {
            return Ok(());
        }
        let daemon = connect(&self.dial).await?;
        match attach_call(&daemon.link, &self.client, &self.session_id, self.received).await {
            Ok(attached) => {
                // Input the daemon never got goes again, ahead of anything typed since.
                let missing = self.typed.saturating_sub(attached.input_seq) as usize;
                if missing > 0 {
                    let from = self.recent.len().saturating_sub(missing);
                    let mut again: Vec<u8> = self.recent.range(from..).copied().collect();
                    self.recent.truncate(from);
                    self.typed -= again.len() as u64;
                    again.append(&mut self.unsent);
                    self.unsent = again;
                }
                self.link = Some(Arc::new(daemon.link));
                self.events = daemon.events;
                *lock(&self.problem) = None;
                self.link_up.send_replace(true);
                self.send_input().await;
                Ok(())
            }
            Err(e) if e.contains("not found") => {
                // A new daemon answered (the old one was killed): the session is gone.
                self.ended(None, Some("[pty-mcp: ai-tmux no longer has this session (was the daemon restarted?)]"))
                    .await;
                Err(io::Error::new(io::ErrorKind::NotFound, format!("ai-tmux no longer has this session: {e}")))
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

async fn read_side(side: &mut Option<DuplexStream>, buf: &mut [u8]) -> Option<usize> {
    match side {
        Some(side) => match side.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        // The program ended; commands may still come (close, detach).
        None => std::future::pending().await,
    }
}
