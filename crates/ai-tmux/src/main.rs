//! `ai-tmux`: keeps terminal sessions alive on a host while their clients come and go.
//!
//! `ai-tmux server` runs the daemon; `ai-tmux client` bridges stdin/stdout to it (starting it
//! when none answers), which is how pty-mcp reaches it over SSH; `ai-tmux list` prints the
//! sessions; `ai-tmux attach ID` shows one in this terminal, live. The protocol is the Go ai-tmux's plus our extensions (docs/ai-tmux-protocol.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use ai_tmux::{attach, daemon, paths};
use clap::{Parser, Subcommand};
use engine::view::Mode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(name = "ai-tmux", version, about = "Persistent terminal sessions for pty-mcp")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Server {
        /// Socket path (default: $AI_TMUX_SOCKET, else ~/.ai-tmux/<host>.sock).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Accepted for compatibility with the Go ai-tmux and ignored: a running job is never
        /// killed for being idle.
        #[arg(long)]
        idle_timeout: Option<u64>,
        /// Close sessions nobody attached to for this long, running or not (e.g. 7d, 12h).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        retention: Duration,
        /// Output bytes kept per session, for clients reattaching (64 KiB to 32 MiB).
        #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(65536..=33554432))]
        buffer_size: u64,
    },
    /// Bridge stdin/stdout to the daemon, starting it if needed.
    Client {
        /// Socket path.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Show a session in this terminal, live (read-only unless --write; ctrl+] detaches and
    /// leaves it running).
    Attach {
        /// The session's id (see `ai-tmux list`).
        id: String,
        /// Let the keys typed here reach the session.
        #[arg(long)]
        write: bool,
        /// Resize the session to this terminal (else its screen is cropped or padded).
        #[arg(long)]
        resize: bool,
        /// Socket path.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Print the daemon's sessions as JSON.
    List {
        /// Socket path.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ai-tmux: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Server { socket, retention, buffer_size, .. } => {
                let socket = socket.unwrap_or_else(paths::default_socket);
                // (An exited session is never kept longer than `unattached`: the sweep sees to it.)
                let retention = daemon::Retention { unattached: retention, ..daemon::Retention::default() };
                let options = daemon::Options { retention, buffer_size: buffer_size as usize };
                daemon::serve(&socket, options, || println!("ready {}", socket.display())).await
            }
            Command::Client { socket } => client(socket.unwrap_or_else(paths::default_socket)).await,
            Command::Attach { id, write, resize, socket } => {
                let mode = if write { Mode::Typing } else { Mode::ReadOnly };
                attach::run(socket.unwrap_or_else(paths::default_socket), &id, mode, resize).await
            }
            Command::List { socket } => list(socket.unwrap_or_else(paths::default_socket)).await,
        }
    });
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ai-tmux: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Connects to the daemon, starting this very binary as one when none answers.
async fn connect(socket: &std::path::Path) -> anyhow::Result<tokio::net::UnixStream> {
    paths::connect_or_start(socket, &std::env::current_exe()?).await
}

async fn client(socket: PathBuf) -> anyhow::Result<()> {
    let stream = connect(&socket).await?;
    let (mut from_daemon, mut to_daemon) = stream.into_split();
    let up = async {
        tokio::io::copy(&mut tokio::io::stdin(), &mut to_daemon).await?;
        to_daemon.shutdown().await
    };
    let mut stdout = tokio::io::stdout();
    let down = async {
        tokio::io::copy(&mut from_daemon, &mut stdout).await?;
        stdout.flush().await
    };
    tokio::select! {
        r = up => r?,
        r = down => { r?; }
    }
    Ok(())
}

async fn list(socket: PathBuf) -> anyhow::Result<()> {
    let stream = connect(&socket).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(b"{\"id\":1,\"method\":\"list_sessions\"}\n").await?;
    let line = BufReader::new(read).lines().next_line().await?.unwrap_or_default();
    let reply: serde_json::Value = serde_json::from_str(&line)?;
    println!("{}", serde_json::to_string_pretty(&reply["result"])?);
    Ok(())
}
