//! `pty-mcp attach`: a session in the operator's own terminal, live, until the detach key
//! (ctrl+]) or the session's end.

use std::io::Write as _;

use engine::view::{DetachKey, OwnTerminal, own_size};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::protocol::{Attached, Request, ViewerMessage, write_line};

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
    let (rows, cols) = own_size();
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
        let _raw = OwnTerminal::enter()?;
        follow(&mut from_server, &mut out, write).await?
    };
    if ended {
        // The server also lets go of a viewer stuck for long (a suspended terminal).
        let still =
            super::ls::servers().await.iter().any(|s| s.sessions.iter().any(|r| r.session_id == id && r.is_alive));
        let why = if still { "the server let go of this viewer (it stopped reading)" } else { "ended" };
        eprintln!("pty-mcp: session {id}: {why}");
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
    let mut detach_key = DetachKey::default();
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
                let (typed, detach) = detach_key.split(&keys[..n]);
                if write && !typed.is_empty() {
                    write_line(out, &ViewerMessage { input: Some(typed.to_vec()), size: None }).await?;
                }
                if detach {
                    return Ok(false);
                }
            }
            _ = winch.recv() => {
                write_line(out, &ViewerMessage { input: None, size: Some(own_size()) }).await?;
            }
        }
    }
}
