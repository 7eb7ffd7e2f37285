//! ai-tmux: terminal sessions kept alive on a host while their clients come and go.
//!
//! The daemon ([`daemon`]) runs the same terminal engine as pty-mcp behind a private Unix socket
//! ([`paths`]); [`protocol`] is the wire format both ends share; [`client`] and [`mirror`] are
//! pty-mcp's end: a conversation with a daemon, and a daemon's session as an engine transport.

pub mod client;
pub mod daemon;
pub mod mirror;
pub mod paths;
pub mod protocol;
