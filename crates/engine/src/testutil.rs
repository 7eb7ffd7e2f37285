//! A fake transport over an in-memory pipe: the test plays the program.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::DuplexStream;
use tokio::sync::oneshot;

use crate::session::{Session, SessionConfig};
use crate::transport::{Connection, Control, Exit, Foreground, Reads};

/// The program's side of the terminal: what `/proc` would say the program waits on, and its
/// read calls when they are counted.
struct FakeControl(Option<Foreground>, Option<Arc<AtomicU64>>);

impl Control for FakeControl {
    fn resize(&self, _: u16, _: u16) -> io::Result<()> {
        Ok(())
    }
    fn terminate(&self) {}
    fn foreground(&self) -> Option<Foreground> {
        self.0
    }
    fn reads(&self) -> Option<Reads> {
        self.1.as_ref().map(|calls| Reads { group: 1, calls: calls.load(Ordering::SeqCst) })
    }
}

/// The shell-integration token of fake sessions.
pub const TOKEN: &str = "t0k";

/// The program's side of a fake session.
pub struct Program {
    /// Write here to produce output; read here to see what was typed.
    pub io: DuplexStream,
    /// Send to make the program exit.
    pub exit: oneshot::Sender<Exit>,
    /// The program's read calls, as `/proc` would count them (for sessions made by
    /// [`fake_session_counting`]); the test adds one when it plays a read.
    pub reads: Arc<AtomicU64>,
}

/// A session whose program is the test itself.
pub fn fake_session(buffer_size: usize) -> (Session, Program) {
    fake_session_seen(buffer_size, None)
}

/// A fake session whose program is always seen waiting on `foreground` (None: a remote one,
/// never seen).
pub fn fake_session_seen(buffer_size: usize, foreground: Option<Foreground>) -> (Session, Program) {
    fake(buffer_size, foreground, false)
}

/// A fake session like [`fake_session_seen`] whose program's read calls are counted.
pub fn fake_session_counting(buffer_size: usize, foreground: Option<Foreground>) -> (Session, Program) {
    fake(buffer_size, foreground, true)
}

fn fake(buffer_size: usize, foreground: Option<Foreground>, counted: bool) -> (Session, Program) {
    let reads = Arc::new(AtomicU64::new(0));
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (reader, writer) = tokio::io::split(ours);
    let (exit_tx, exit_rx) = oneshot::channel();
    let conn = Connection {
        reader: Box::pin(reader),
        writer: Box::pin(writer),
        control: Arc::new(FakeControl(foreground, counted.then(|| reads.clone()))),
        exited: Box::pin(async move { exit_rx.await.ok() }),
        shell_token: Some(TOKEN.to_string()),
        link: None,
    };
    let config = SessionConfig { rows: 24, cols: 80, buffer_size, ..SessionConfig::default() };
    (Session::start(conn, config, None), Program { io: theirs, exit: exit_tx, reads })
}
