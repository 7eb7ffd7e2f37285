//! `pty-mcp attach`: a session in the operator's own terminal, live, until the detach key
//! (ctrl+]) or the session's end.

use std::io::Write as _;
use std::os::fd::AsRawFd;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::protocol::{Attached, Request, ViewerMessage, write_line};

/// ctrl+]: leaves the session (as telnet's escape).
const DETACH: u8 = 0x1d;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// Attaches to `session` (None: asks which, most recent first).
pub async fn run(session: Option<String>, write: bool, resize: bool) -> anyhow::Result<()> {
    let servers = super::ls::servers().await;
    let mut live: Vec<(u32, super::protocol::SessionRow)> = servers
        .iter()
        .flat_map(|s| s.sessions.iter().filter(|r| r.is_alive).map(move |r| (s.pid, r.clone())))
        .collect();
    live.sort_by(|a, b| b.1.last_used.cmp(&a.1.last_used));
    let (pid, id) = match session {
        Some(id) => {
            let found = live.iter().find(|(_, r)| r.session_id == id.trim());
            let (pid, _) = found.ok_or_else(|| anyhow::anyhow!("no live session {id} (see pty-mcp ls)"))?;
            (*pid, id.trim().to_string())
        }
        None => choose(&live)?,
    };
    let stream = ai_tmux::paths::connect_checked(&super::socket_of(pid)).await?;
    let (read, mut out) = stream.into_split();
    let (rows, cols) = terminal_size();
    let request = Request::Attach { session_id: id.clone(), write, resize, rows, cols };
    write_line(&mut out, &request).await?;
    let mut from_server = BufReader::new(read);
    let mut first = String::new();
    from_server.read_line(&mut first).await?;
    let answer: Attached = serde_json::from_str(&first)?;
    if let Some(error) = answer.error {
        anyhow::bail!("{error}");
    }
    let ended = {
        let _raw = RawTerminal::enter()?;
        follow(&mut from_server, &mut out, write).await?
    };
    if ended {
        eprintln!("pty-mcp: session {id} ended");
    }
    Ok(())
}

/// With no session named: the only live one, or the operator picks from a numbered list.
fn choose(live: &[(u32, super::protocol::SessionRow)]) -> anyhow::Result<(u32, String)> {
    match live {
        [] => anyhow::bail!("no live sessions (see pty-mcp ls)"),
        [(pid, row)] => Ok((*pid, row.session_id.clone())),
        _ => {
            for (i, (_, row)) in live.iter().enumerate() {
                eprintln!("{:>3}) {} {:<7} {:<28} {}", i + 1, row.session_id, row.kind, row.target, row.state);
            }
            eprint!("session [1]: ");
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            let n: usize = if answer.trim().is_empty() { 1 } else { answer.trim().parse()? };
            let (pid, row) = live.get(n.wrapping_sub(1)).ok_or_else(|| anyhow::anyhow!("no session {n}"))?;
            Ok((*pid, row.session_id.clone()))
        }
    }
}

/// Copies the server's drawing to the terminal and the operator's keys to the server. Returns
/// true when the session ended, false when the operator detached.
async fn follow(
    from_server: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    out: &mut tokio::net::unix::OwnedWriteHalf,
    write: bool,
) -> anyhow::Result<bool> {
    let mut stdin = tokio::io::stdin();
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut keys = [0u8; 4096];
    let mut screen = [0u8; 64 << 10];
    let mut in_paste = false;
    loop {
        tokio::select! {
            n = from_server.read(&mut screen) => {
                let n = n?;
                if n == 0 {
                    return Ok(true);
                }
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&screen[..n])?;
                stdout.flush()?;
            }
            n = stdin.read(&mut keys) => {
                let n = n?;
                if n == 0 {
                    return Ok(false);
                }
                let (typed, detach) = split_detach(&keys[..n], &mut in_paste);
                if write && !typed.is_empty() {
                    write_line(out, &ViewerMessage { input: Some(typed.to_vec()), size: None }).await?;
                }
                if detach {
                    return Ok(false);
                }
            }
            _ = winch.recv() => {
                write_line(out, &ViewerMessage { input: None, size: Some(terminal_size()) }).await?;
            }
        }
    }
}

/// The keys before the detach key, and whether it was pressed. Inside a bracketed paste the
/// byte is pasted text, not the key.
fn split_detach<'a>(keys: &'a [u8], in_paste: &mut bool) -> (&'a [u8], bool) {
    let mut i = 0;
    while i < keys.len() {
        if keys[i..].starts_with(PASTE_START) {
            *in_paste = true;
        } else if keys[i..].starts_with(PASTE_END) {
            *in_paste = false;
        } else if keys[i] == DETACH && !*in_paste {
            return (&keys[..i], true);
        }
        i += 1;
    }
    (keys, false)
}

/// The operator's terminal size (rows, columns); 24×80 when it cannot be told.
fn terminal_size() -> (u16, u16) {
    // SAFETY: TIOCGWINSZ fills the winsize we pass.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(std::io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 1 && ws.ws_col > 0 { (ws.ws_row, ws.ws_col) } else { (24, 80) }
}

/// The operator's terminal in raw mode on the alternate screen, with bracketed paste; all of it
/// undone when dropped.
struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    fn enter() -> anyhow::Result<RawTerminal> {
        let fd = std::io::stdin().as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr on our stdin with a termios we own.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            anyhow::ensure!(
                libc::tcgetattr(fd, &mut t) == 0,
                "attach needs a terminal: {}",
                std::io::Error::last_os_error()
            );
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            saved
        };
        print!("\x1b[?1049h\x1b[?2004h");
        let _ = std::io::stdout().flush();
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        print!("\x1b[0m\x1b[?2004l\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
        // SAFETY: restores the settings saved in `enter`.
        unsafe { libc::tcsetattr(std::io::stdin().as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detach_key_leaves_except_inside_a_paste() {
        let mut paste = false;
        assert_eq!(split_detach(b"ab\x1dcd", &mut paste), (&b"ab"[..], true));
        assert_eq!(split_detach(b"\x1b[200~a\x1db\x1b[201~", &mut paste), (&b"\x1b[200~a\x1db\x1b[201~"[..], false));
        assert!(!paste);
        assert_eq!(split_detach(b"\x1b[200~a", &mut paste), (&b"\x1b[200~a"[..], false));
        assert_eq!(split_detach(b"\x1d\x1b[201~\x1d", &mut paste), (&b"\x1d\x1b[201~"[..], true));
    }
}
