//! `pty-mcp`: an MCP server that gives AI agents real interactive terminals.
//!
//! With no subcommand it serves MCP on stdin/stdout. `pty-mcp demo` drives a real session
//! through the MCP interface and prints what an agent would see.

mod demo;
mod error;
mod lenient;
mod manager;
mod operator;
mod params;
mod reply;
mod secrets;
mod serial;
mod server;
mod ssh;
mod tools;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rmcp::ServiceExt;

use crate::manager::SessionManager;
use crate::server::PtyMcp;
use crate::tools::Settings;

/// MCP server giving AI agents real interactive terminals (local shells and REPLs).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP on stdin/stdout (the default).
    Serve,
    /// A short scripted tour: starts this binary as an MCP server, drives real sessions
    /// through it, and prints each call and what the agent sees.
    Demo,
}

const DEFAULT_BUFFER: usize = 1 << 20;
const MIN_BUFFER: usize = 64 << 10;
const MAX_BUFFER: usize = 32 << 20;

const REGISTER_HINT: &str = "pty-mcp is an MCP server: it speaks JSON-RPC on stdin/stdout and is started by an \
MCP client, not by hand.\n\nRegister it with Claude Code:\n    claude mcp add pty-mcp -- {exe}\n\nor in a \
client's JSON configuration:\n    {\"mcpServers\": {\"pty-mcp\": {\"command\": \"{exe}\"}}}\n\nSee it work: {exe} demo\n";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // stdout carries the protocol; every log line goes to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pty-mcp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Some(Command::Demo) => runtime.block_on(demo::run()),
        Some(Command::Serve) | None => runtime.block_on(serve()),
    };
    // Sessions' reader tasks may still be parked on their PTYs; don't wait for them.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pty-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "pty-mcp".into());
        eprint!("{}", REGISTER_HINT.replace("{exe}", &exe));
        return Ok(());
    }
    let settings = Settings { buffer_size: buffer_size() };
    let manager = Arc::new(SessionManager::default());
    let operator = Arc::new(operator::OperatorPrompt::new(secret_timeout()));
    let service = PtyMcp::new(manager.clone(), operator, settings).serve(rmcp::transport::stdio()).await;
    let outcome = match service {
        Ok(service) => service.waiting().await.map(|_| ()).map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::Error::from(e).context("MCP initialisation failed")),
    };
    // stdin closed (or the handshake failed): the sessions go with us.
    manager.close_all();
    outcome
}

/// `PTY_MCP_BUFFER_SIZE`: transcript bytes per session, 64 KiB to 32 MiB (default 1 MiB).
fn buffer_size() -> usize {
    let Ok(raw) = std::env::var("PTY_MCP_BUFFER_SIZE") else { return DEFAULT_BUFFER };
    match raw.trim().parse::<usize>() {
        Ok(n) if (MIN_BUFFER..=MAX_BUFFER).contains(&n) => n,
        Ok(n) => {
            let c = n.clamp(MIN_BUFFER, MAX_BUFFER);
            tracing::warn!("PTY_MCP_BUFFER_SIZE={n} is outside {MIN_BUFFER}..={MAX_BUFFER}; using {c}");
            c
        }
        Err(_) => {
            tracing::warn!("PTY_MCP_BUFFER_SIZE={raw:?} is not a number of bytes; using {DEFAULT_BUFFER}");
            DEFAULT_BUFFER
        }
    }
}

/// `PTY_MCP_SECRET_TIMEOUT`: seconds the operator has to answer a secret prompt (default 60).
fn secret_timeout() -> std::time::Duration {
    let parsed = std::env::var("PTY_MCP_SECRET_TIMEOUT").ok().and_then(|v| v.trim().parse::<u64>().ok());
    parsed.map_or(operator::DEFAULT_TIMEOUT, |s| std::time::Duration::from_secs(s.clamp(1, 3600)))
}
