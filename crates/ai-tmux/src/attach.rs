//! `ai-tmux attach`: a daemon's session in the operator's own terminal, live, as `pty-mcp
//! attach` shows an agent's session. The session is drawn from a mirror of it (the same engine
//! screen the agent's tools read), read-only unless asked, cropped or padded to this terminal
//! unless `--resize`, until the detach key (ctrl+]) or the session's end. Detaching leaves the
//! program running.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use engine::view::{DetachKey, Mode, OwnTerminal, View, own_size, status};
use engine::{Offset, Session, SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::mirror;

/// Time between two drawings while output streams in: a burst is drawn once.
const FRAME: Duration = Duration::from_millis(8);
/// How long the operator's keys may wait to reach the session.
const INPUT_WAIT: Duration = Duration::from_secs(5);

/// Attaches to session `id` of the daemon at `socket`.
pub async fn run(socket: PathBuf, id: &str, mode: Mode, resize: bool) -> anyhow::Result<()> {
    let dial = mirror::local_dial(socket.clone(), None);
    let daemon = mirror::connect(&dial).await.with_context(|| format!("no ai-tmux answers at {}", socket.display()))?;
    // A client name of its own: the agent's read position and typed input stay the agent's.
    let client = format!("operator-{}", std::process::id());
    let m = mirror::attach(daemon, dial, &client, id, None).await.map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
    let command = m.attached.command.clone();
    let config = SessionConfig {
        rows: m.attached.rows,
        cols: m.attached.cols,
        start: Offset(m.attached.from),
        mirror: true,
        ..SessionConfig::default()
    };
    let session = Session::start(m.connection, config, None);
    let ended = {
        let _raw = OwnTerminal::enter()?;
        follow(&session, id, &command, mode, resize).await?
    };
    if ended {
        eprintln!("ai-tmux: session {id} ended");
    } else {
        session.detach();
    }
    Ok(())
}

/// Draws the session whenever it changes and passes the operator's keys on. Returns true when
/// the session ended, false when the operator detached.
async fn follow(session: &Session, id: &str, target: &str, mode: Mode, resize: bool) -> anyhow::Result<bool> {
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let (rows, cols) = own_size();
    if resize {
        session.resize(rows, cols)?;
    }
    let mut view = View::new(rows, cols);
    let mut signal = session.subscribe();
    let mut detach = DetachKey::default();
    let mut keys = [0u8; 4096];
    loop {
        signal.borrow_and_update();
        let alive = session.is_alive();
        let (state, _) = session.state();
        let drawing = view.draw(&session.frame(view.cols), &status(id, state.as_str(), target, mode, alive));
        stdout.write_all(drawing.as_bytes()).await?;
        stdout.flush().await?;
        if !alive {
            return Ok(true);
        }
        let drawn = Instant::now();
        tokio::select! {
            changed = signal.changed() => {
                if changed.is_ok() {
                    tokio::time::sleep_until(drawn + FRAME).await;
                }
            }
            n = stdin.read(&mut keys) => {
                let n = n?;
                let (typed, detached) = detach.split(&keys[..n]);
                if mode == Mode::Typing && !typed.is_empty() {
                    session.write(typed, Instant::now() + INPUT_WAIT).await?;
                }
                if detached || n == 0 {
                    return Ok(false);
                }
            }
            _ = winch.recv() => {
                let (rows, cols) = own_size();
                view.resize(rows, cols);
                if resize {
                    session.resize(rows, cols)?;
                }
            }
        }
    }
}
