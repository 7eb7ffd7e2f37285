//! ai-tmux: terminal sessions kept alive on a host while their clients come and go.
//!
//! The daemon ([`daemon`]) runs the same terminal engine as pty-mcp behind a private Unix socket
//! ([`paths`]); [`protocol`] is the wire format both ends share; [`client`] and [`mirror`] are
//! pty-mcp's end: a conversation with a daemon, and a daemon's session as an engine transport;
//! [`attach`] shows a session in an operator's terminal.

pub mod attach;
pub mod client;
pub mod daemon;
pub mod mirror;
pub mod paths;
pub mod protocol;

/// Locks a mutex, going on after a panic elsewhere poisoned it (the data stays usable).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
