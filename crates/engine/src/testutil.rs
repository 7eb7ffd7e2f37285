//! A fake transport over an in-memory pipe: the test plays the program.

use std::io;
use std::sync::Arc;

use tokio::io::DuplexStream;
use tokio::sync::oneshot;

use crate::session::{Session, SessionConfig};
use crate::transport::{Connection, Control, Exit, Foreground};

/// The program's side of the terminal: what `/proc` would say the program waits on.
struct FakeControl(Option<Foreground>);

impl Control for FakeControl {
    fn resize(&self, _: u16, _: u16) -> io::Result<()> {
        Ok(())
    }
    fn terminate(&self) {}
    fn foreground(&self) -> Option<Foreground> {
        self.0
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
}

/// A session whose program is the test itself.
pub fn fake_session(buffer_size: usize) -> (Session, Program) {
    fake_session_seen(buffer_size, None)
}

/// A fake session whose program is always seen waiting on `foreground` (None: a remote one,
/// never seen).
pub fn fake_session_seen(buffer_size: usize, foreground: Option<Foreground>) -> (Session, Program) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (reader, writer) = tokio::io::split(ours);
    let (exit_tx, exit_rx) = oneshot::channel();
    let conn = Connection {
        reader: Box::pin(reader),
        writer: Box::pin(writer),
        control: Arc::new(FakeControl(foreground)),
        exited: Box::pin(async move { exit_rx.await.ok() }),
        shell_token: Some(TOKEN.to_string()),
        link: None,
    };
    let config = SessionConfig { rows: 24, cols: 80, buffer_size, ..SessionConfig::default() };
    (Session::start(conn, config, None), Program { io: theirs, exit: exit_tx })
}
