//! `pty-mcp ls`: every session of every running server of this user on this machine.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};

use super::protocol::{Request, ServerRow, SessionRow, write_line};

/// How long a server may take to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// Asks every server for its sessions. A socket nobody answers on is a crashed server's: it is
/// removed (a live server always answers).
pub async fn servers() -> Vec<ServerRow> {
    let mut rows = Vec::new();
    for (pid, path) in super::sockets() {
        match query(&path).await {
            Ok(row) => rows.push(row),
            Err(e) if !alive(pid) => {
                tracing::debug!("removing {} of a server that is gone ({e})", path.display());
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => eprintln!("pty-mcp: server {pid} did not answer ({e:#})"),
        }
    }
    rows
}

async fn query(path: &Path) -> anyhow::Result<ServerRow> {
    let stream = tokio::time::timeout(ANSWER_WAIT, ai_tmux::paths::connect_checked(path)).await??;
    let (read, mut write) = stream.into_split();
    write_line(&mut write, &Request::List).await?;
    let mut lines = BufReader::new(read).lines();
    let line = tokio::time::timeout(ANSWER_WAIT, lines.next_line()).await??;
    Ok(serde_json::from_str(&line.ok_or_else(|| anyhow::anyhow!("no answer"))?)?)
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// The sessions this machine's ai-tmux keeps that no server here has open, as a row without a
/// server (pid 0). Only a daemon already running is asked: none is started for this.
async fn persistent(servers: &[ServerRow]) -> Option<ServerRow> {
    use ai_tmux::client::{LinkReader, LinkWriter};
    let socket = ai_tmux::paths::default_socket();
    let dial: ai_tmux::mirror::Dial = std::sync::Arc::new(move || {
        let socket = socket.clone();
        Box::pin(async move {
            let (r, w) = ai_tmux::paths::connect_checked(&socket).await?.into_split();
            Ok((Box::pin(r) as LinkReader, Box::pin(w) as LinkWriter))
        })
    });
    let listed = tokio::time::timeout(
        ANSWER_WAIT,
        crate::tools::persistent::list(&dial, None, &crate::manager::Caller::default()),
    )
    .await
    .ok()?
    .ok()?;
    let open = |id: &str| servers.iter().any(|s| s.sessions.iter().any(|r| r.session_id == id));
    let sessions: Vec<SessionRow> = listed
        .into_iter()
        .filter(|s| !open(&s.id))
        .map(|s| SessionRow {
            session_id: s.id,
            kind: "persistent".into(),
            target: s.command,
            state: if s.is_alive { "running" } else { "exited" }.into(),
            is_alive: s.is_alive,
            last_command: None,
            last_command_at: None,
            last_used: s.last_used,
            attached: s.attached,
        })
        .collect();
    (!sessions.is_empty()).then(|| ServerRow {
        pid: 0,
        client: Some("ai-tmux (detached)".into()),
        started_at: String::new(),
        sessions,
    })
}

/// Prints the sessions: a table, or (`json`) one JSON array with an object per session.
pub async fn run(json: bool) -> anyhow::Result<()> {
    let mut servers = servers().await;
    if let Some(kept) = persistent(&servers).await {
        servers.push(kept);
    }
    if json {
        let flat: Vec<serde_json::Value> = servers
            .iter()
            .flat_map(|server| {
                server.sessions.iter().map(move |s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    v["server_pid"] = if server.pid == 0 { serde_json::Value::Null } else { server.pid.into() };
                    v["client"] = server.client.clone().into();
                    v
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&flat)?);
        return Ok(());
    }
    if servers.iter().all(|s| s.sessions.is_empty()) {
        println!("no sessions ({} pty-mcp servers running)", servers.len());
        return Ok(());
    }
    println!(
        "{:<8} {:<18} {:<17} {:<7} {:<28} {:<12} {:<8} LAST COMMAND",
        "SERVER", "CLIENT", "SESSION", "TYPE", "TARGET", "STATE", "VIEWERS"
    );
    for server in &servers {
        let client = server.client.as_deref().unwrap_or("-");
        for s in &server.sessions {
            let last = match (&s.last_command, &s.last_command_at) {
                (Some(c), Some(at)) => format!("{c} ({} ago)", ago(at)),
                _ => "-".into(),
            };
            println!(
                "{:<8} {:<18} {:<17} {:<7} {:<28} {:<12} {:<8} {last}",
                server.pid,
                cut(client, 18),
                s.session_id,
                s.kind,
                cut(&s.target, 28),
                s.state,
                s.attached
            );
        }
    }
    Ok(())
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

/// How long ago an RFC 3339 time was, roughly.
fn ago(at: &str) -> String {
    let Ok(then) = humantime::parse_rfc3339(at) else { return "?".into() };
    let secs = SystemTime::now().duration_since(then).unwrap_or_default().as_secs();
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}
