//! The operator's way in (issue 16): every server listens on a private Unix socket, through
//! which `pty-mcp ls` lists its sessions and `pty-mcp attach` shows one live in the operator's
//! own terminal (read-only unless asked). Nothing is reachable from another user or over the
//! network: the directory is 0700, the socket 0600, and each peer's uid is checked, as the
//! ai-tmux daemon does. The protocol is in `docs/control-protocol.md`.

pub mod attach;
mod listener;
pub mod ls;
pub mod protocol;
mod render;
mod viewers;
pub mod watch;

use std::path::PathBuf;

pub use listener::{Listener, ServerInfo};
pub use viewers::Viewers;

/// `$PTY_MCP_CONTROL_DIR`, else `~/.pty-mcp/control`: where the servers' sockets are.
pub fn dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PTY_MCP_CONTROL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".pty-mcp/control")
}

/// The socket of this machine's server `pid` (the host is in the name, so that a home shared
/// between machines keeps each machine's servers apart).
fn socket_of(pid: u32) -> PathBuf {
    dir().join(format!("{}-{pid}.sock", ai_tmux::paths::host_name()))
}

/// The sockets of this machine's servers, as (pid, path).
fn sockets() -> Vec<(u32, PathBuf)> {
    let prefix = format!("{}-", ai_tmux::paths::host_name());
    let Ok(entries) = std::fs::read_dir(dir()) else { return Vec::new() };
    let mut found: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid = name.strip_prefix(&prefix)?.strip_suffix(".sock")?.parse().ok()?;
            Some((pid, e.path()))
        })
        .collect();
    found.sort();
    found
}
