//! What carries a session's bytes. A transport is a byte stream in, a byte stream out, and a
//! small control surface; everything else (transcript, screen, waiting) is the engine's.

pub mod local;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// How a session's program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit status, when the program exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
}

/// The read side of a transport.
pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
/// The write side of a transport.
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;
/// Resolves when the far end has ended, with its exit status when it is known.
pub type Exited = Pin<Box<dyn Future<Output = Option<Exit>> + Send>>;

/// Operations on a transport besides reading and writing.
pub trait Control: Send + Sync + 'static {
    /// Tells the far end the terminal's new size.
    fn resize(&self, rows: u16, cols: u16) -> io::Result<()>;

    /// Whether the terminal echoes what is typed; `None` where the transport cannot tell.
    fn echo(&self) -> Option<bool> {
        None
    }

    /// Whether the terminal is in canonical (line) mode: the kernel collects lines, and echoes
    /// them when `echo` is on. A line editor (readline) turns both off and echoes by itself.
    fn canonical(&self) -> Option<bool> {
        None
    }

    /// Ends the far end: hangs up the terminal and stops its processes.
    fn terminate(&self);

    /// What the terminal's foreground program is doing, where the transport can see it (a local
    /// PTY can; a remote one cannot). Used to tell a program waiting at a prompt from one that
    /// is merely quiet.
    fn foreground(&self) -> Option<Foreground> {
        None
    }

    /// How much the terminal's foreground program has read so far, where the transport can see
    /// it (a local PTY can). Input written while the count stays put has not been taken yet.
    fn reads(&self) -> Option<Reads> {
        None
    }

    /// Holds the line in BREAK (`on`) or releases it; serial lines only.
    fn set_break(&self, on: bool) -> io::Result<()> {
        let _ = on;
        Err(io::Error::new(io::ErrorKind::Unsupported, "only serial sessions can send a BREAK"))
    }

    /// Why the link is down, while it is (a serial device unplugged, a persistent session's
    /// connection lost).
    fn link_problem(&self) -> Option<String> {
        None
    }

    /// The session's reader has consumed output up to `offset` (a persistent session tells its
    /// daemon, so that the next client to attach starts reading there).
    fn read_to(&self, offset: crate::Offset) {
        let _ = offset;
    }

    /// Resolves once the far end has recorded every read offset given to `read_to` so far
    /// (or can record none now); `None` where reads are not recorded elsewhere.
    fn reads_recorded(&self) -> Option<Reattach> {
        None
    }

    /// Lets go of the far end, leaving its program running; false when it cannot be left (the
    /// program would die with the link).
    fn detach(&self) -> bool {
        false
    }

    /// Tries to restore a link that is down; `None` when the transport cannot.
    fn reattach(&self) -> Option<Reattach> {
        None
    }

    /// Ends the far end and resolves once it is gone, where that takes a round trip (a
    /// persistent session's daemon); `None` when [`Control::terminate`] alone does it.
    fn end(&self) -> Option<Reattach> {
        None
    }
}

/// An attempt to restore a link (or to end the far end), resolving when done.
pub type Reattach = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// What the foreground program of a terminal is blocked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreground {
    /// Reading the terminal: it waits for input.
    ReadingTerminal,
    /// Waiting on several descriptors (poll/select): a line editor, or a network client.
    Polling,
    /// Sleeping, waiting for a child, or running.
    Busy,
}

/// How much a terminal's foreground process group has read: the group, and the read calls its
/// processes have made. Compared before and after input is written: the same value means the
/// program has not read the input (a loaded machine may leave keys in the kernel's buffers for
/// longer than any quiet period, while the program still shows as waiting for input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// The foreground process group.
    pub group: i32,
    /// Read calls made by its processes (the leader, or the members when the leader waits for
    /// them).
    pub calls: u64,
}

/// An open transport, ready to be handed to a [`crate::Session`].
pub struct Connection {
    /// Output from the far end.
    pub reader: Reader,
    /// Input to the far end.
    pub writer: Writer,
    /// Resize, echo query, termination.
    pub control: Arc<dyn Control>,
    /// Resolves when the far end has ended.
    pub exited: Exited,
    /// The token of the shell-integration marks, when the transport set the shell up for them.
    pub shell_token: Option<String>,
    /// Changes whenever the link drops or comes back (a persistent session's), so that waits
    /// end at once instead of at their deadline.
    pub link: Option<tokio::sync::watch::Receiver<bool>>,
}
