//! `ai-tmux`: keeps terminal sessions alive on a host while their clients come and go.
//!
//! `ai-tmux server` runs the daemon; `ai-tmux client` bridges stdin/stdout to it (starting it
//! when none answers), which is how pty-mcp reaches it over SSH; `ai-tmux list` prints the
//! sessions. The protocol is the Go ai-tmux's (see `protocol.rs`).

mod daemon;
mod protocol;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
        /// Socket path (default: a private directory under $XDG_RUNTIME_DIR or ~/.ai-tmux).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Accepted for compatibility; running sessions are never killed for idleness.
        #[arg(long)]
        idle_timeout: Option<u64>,
    },
    /// Bridge stdin/stdout to the daemon, starting it if needed.
    Client {
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
            Command::Server { socket, .. } => {
                let socket = socket.unwrap_or_else(daemon::default_socket);
                daemon::serve(&socket, || println!("ready {}", socket.display())).await
            }
            Command::Client { socket } => client(socket.unwrap_or_else(daemon::default_socket)).await,
            Command::List { socket } => list(socket.unwrap_or_else(daemon::default_socket)).await,
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

/// Connects to the daemon, starting one (detached, in its own session) when none answers.
async fn connect(socket: &PathBuf) -> anyhow::Result<tokio::net::UnixStream> {
    daemon::private_dir(socket)?;
    if let Ok(stream) = tokio::net::UnixStream::connect(socket).await {
        return Ok(stream);
    }
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("server")
        .arg("--socket")
        .arg(socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    // SAFETY: setsid in the child before exec only detaches it from our session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // The daemon says "ready" once it listens: no waiting on a timer.
    let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line()).await;
    anyhow::ensure!(matches!(ready, Ok(Ok(Some(ref l))) if l.starts_with("ready")), "the daemon did not start");
    Ok(tokio::net::UnixStream::connect(socket).await?)
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
