//! `pty-mcp`: an MCP server that gives AI agents real interactive terminals.
//!
//! With no subcommand it serves MCP on stdin/stdout. `pty-mcp demo` drives a real session
//! through the MCP interface and prints what an agent would see.

mod audit;
mod control;
mod demo;
mod error;
mod lenient;
mod manager;
mod operator;
mod params;
mod policy;
mod reply;
mod schema;
mod server;
mod tools;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use rmcp::ServiceExt;

use crate::manager::SessionManager;
use crate::server::PtyMcp;
use crate::tools::Settings;

/// MCP server giving AI agents real interactive terminals (local shells, SSH, serial consoles).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Audit collector URL (overrides the config file's audit-url).
    #[arg(long, global = true)]
    audit_url: Option<String>,
    /// Operator name in audit records (overrides audit-user).
    #[arg(long, global = true)]
    audit_user: Option<String>,
    /// best-effort or strict (overrides audit-mode).
    #[arg(long, global = true)]
    audit_mode: Option<String>,
    /// Send audit records to syslog instead: syslog://host:port or syslog+tls://host:port
    /// (overrides audit-sink).
    #[arg(long, global = true)]
    audit_sink: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP on stdin/stdout (the default), or over HTTP with --http.
    Serve(Box<ServeArgs>),
    /// A short scripted tour: starts this binary as an MCP server, drives real sessions
    /// through it, and prints each call and what the agent sees.
    Demo,
    /// The sessions of every running pty-mcp server of this user.
    Ls {
        /// One JSON array, an object per session.
        #[arg(long)]
        json: bool,
    },
    /// A session in this terminal, live: read-only unless --write; ctrl+] detaches.
    Attach {
        /// The session id (see `pty-mcp ls`); without it, choose among the live ones.
        session: Option<String>,
        /// Type into the session (the agent's input waits while you are mid-line).
        #[arg(long)]
        write: bool,
        /// Resize the session to this terminal (else its screen is cropped or padded).
        #[arg(long)]
        resize: bool,
    },
    /// Every session of every server in the browser, live (127.0.0.1, a token in the URL).
    Watch {
        /// Print the URL but do not open a browser.
        #[arg(long)]
        no_open: bool,
        /// Port (default: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Address to listen on; anything but loopback needs --tls-cert and --tls-key.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// PEM certificate chain: serve HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// The audit log: configuration, the collector, verification.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
}

/// `serve`: stdio by default; `--http` for a team's shared server.
#[derive(clap::Args, Default)]
struct ServeArgs {
    /// The largest file upload_file and download_file move, in bytes (K, M, G suffixes: 1024s;
    /// default 4G, or PTY_MCP_MAX_TRANSFER).
    #[arg(long, value_parser = parse_size)]
    max_transfer: Option<u64>,
    /// Over HTTP, operators may read and write local_path only inside this directory (without
    /// it, not at all: this machine's files are not theirs).
    #[arg(long, value_name = "DIR", requires = "http")]
    local_files: Option<std::path::PathBuf>,
    /// Serve MCP's Streamable HTTP transport on ADDR (path /mcp) instead of stdio.
    #[arg(long, num_args = 0..=1, default_missing_value = server::http::DEFAULT_ADDR, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// The operators' bearer tokens: `token operator` lines, a file only its owner may read.
    #[arg(long, requires = "http")]
    tokens: Option<std::path::PathBuf>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, requires_all = ["tls_key", "http"])]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP beyond loopback (tokens and terminals cross the network unencrypted).
    #[arg(long, requires = "http")]
    insecure_http: bool,
    /// Every operator sees and uses every session (else each sees only their own).
    #[arg(long, requires = "http")]
    shared: bool,
    /// A Host clients reach this server by, besides loopback names (repeatable).
    #[arg(long = "allowed-host", requires = "http", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// A browser Origin to accept, e.g. https://app.example.com:443 (repeatable; none by default).
    #[arg(long = "allowed-origin", requires = "http", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// Largest request body in bytes (an upload's content is up to 1 MiB, 1.4 MB as base64).
    #[arg(long, default_value_t = 2 << 20, requires = "http")]
    max_body: usize,
    /// POST requests one operator may have in flight (one whose answer still streams counts).
    #[arg(long, default_value_t = 32, requires = "http")]
    max_requests: usize,
    /// MCP sessions one operator may hold open.
    #[arg(long, default_value_t = 16, requires = "http")]
    max_mcp_sessions: usize,
    /// Terminal sessions one operator may hold open.
    #[arg(long, default_value_t = 20, requires = "http")]
    max_sessions_per_operator: usize,
    /// Accept OAuth 2.1 access tokens (JWTs) from this issuer too (needs --oauth-audience).
    #[arg(long, requires_all = ["http", "oauth_audience"], value_name = "URL")]
    oauth_issuer: Option<String>,
    /// This server's resource identifier: the URL clients reach it at (the tokens' audience).
    #[arg(long, requires = "oauth_issuer", value_name = "URL")]
    oauth_audience: Option<String>,
    /// The token claim that names the operator.
    #[arg(long, default_value = "sub", requires = "oauth_issuer")]
    oauth_user_claim: String,
    /// PEM CA certificates trusted for the issuer besides the system's roots.
    #[arg(long, requires = "oauth_issuer")]
    oauth_ca: Option<std::path::PathBuf>,
    /// Close an operator's session after this long without a call or a viewer (e.g. 8h).
    #[arg(long, value_parser = humantime::parse_duration, requires = "http")]
    idle_close: Option<std::time::Duration>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write the config file with a new random token (mode 0600).
    Init {
        /// Replace an existing file (and its token).
        #[arg(long)]
        force: bool,
    },
    /// Turn auditing on (with this collector URL, or the one remembered).
    Enable { url: Option<String> },
    /// Turn auditing off (the URL is kept as a comment).
    Disable,
    /// Where the config is, whether audit is on, and the spool's backlog.
    Status,
    /// Run the collector: append accepted records to a hash-chained JSONL file.
    Serve {
        /// Port to listen on.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on (plain HTTP beyond loopback is warned about).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// The JSONL log file, or - for stdout.
        #[arg(long)]
        log: String,
        /// A file of `token operator` lines: the collector then records the operator it
        /// authenticated.
        #[arg(long)]
        tokens: Option<std::path::PathBuf>,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Check a collector log's hash chain.
    Verify {
        /// The JSONL log file.
        #[arg(long)]
        log: std::path::PathBuf,
    },
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
    let overrides =
        AuditOverrides { url: cli.audit_url, user: cli.audit_user, mode: cli.audit_mode, sink: cli.audit_sink };
    let outcome = match cli.command {
        Some(Command::Demo) => runtime.block_on(demo::run()),
        Some(Command::Audit { action }) => runtime.block_on(audit_command(action)),
        Some(Command::Ls { json }) => runtime.block_on(control::ls::run(json)),
        Some(Command::Watch { no_open, port, bind, tls_cert, tls_key }) => {
            let listen = control::watch::Listen { addr: (bind, port).into(), tls: tls_cert.zip(tls_key) };
            runtime.block_on(control::watch::run(listen, no_open))
        }
        Some(Command::Attach { session, write, resize }) => {
            runtime.block_on(control::attach::run(session, write, resize))
        }
        Some(Command::Serve(args)) => runtime.block_on(serve(overrides, *args)),
        None => runtime.block_on(serve(overrides, ServeArgs::default())),
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

/// `--audit-*` flags, which win over the config file.
struct AuditOverrides {
    url: Option<String>,
    user: Option<String>,
    mode: Option<String>,
    sink: Option<String>,
}

/// The auditor configured by the file, the flags and `PTY_MCP_AUDIT_TOKEN`, if audit is on.
fn start_audit(overrides: AuditOverrides) -> anyhow::Result<audit::Audit> {
    use ::audit::config;
    let path = config::default_path();
    let mut cfg = config::load(&path)?.unwrap_or_default();
    if let Some(url) = overrides.url {
        cfg.url = Some(url);
    }
    if let Some(sink) = overrides.sink {
        cfg.sink = Some(sink);
    }
    if let Some(user) = overrides.user {
        cfg.user = user;
    }
    if let Some(mode) = overrides.mode {
        cfg.mode = config::Mode::parse(&mode)
            .ok_or_else(|| anyhow::anyhow!("--audit-mode {mode:?}: use best-effort or strict"))?;
    }
    if let Ok(token) = std::env::var("PTY_MCP_AUDIT_TOKEN") {
        cfg.token = Some(token);
    }
    if let Some(ca) = std::env::var_os("PTY_MCP_AUDIT_CA") {
        cfg.ca = Some(ca.into());
    }
    if cfg.url.is_none() && cfg.sink.is_none() {
        return Ok(audit::Audit::default());
    }
    tracing::info!("auditing to {:?} ({:?})", cfg.url.as_ref().or(cfg.sink.as_ref()), cfg.mode);
    Ok(audit::Audit(Some(::audit::client::Auditor::start(&cfg, config::state_dir())?), None))
}

async fn audit_command(action: AuditCommand) -> anyhow::Result<()> {
    use ::audit::config;
    let path = config::default_path();
    match action {
        AuditCommand::Init { force } => {
            config::init(&path, force)?;
            println!("Wrote {} (mode 0600) with a new token.", path.display());
            println!(
                "Next: start a collector, e.g.  PTY_MCP_AUDIT_TOKEN=$(sed -n 's/^audit-token=//p' {0}) pty-mcp audit serve --port 9099 --log audit.jsonl",
                path.display()
            );
            println!("then:  pty-mcp audit enable http://127.0.0.1:9099");
        }
        AuditCommand::Enable { url } => {
            config::set_url(&path, config::UrlChange::Enable(url))?;
            println!("Audit enabled in {}.", path.display());
        }
        AuditCommand::Disable => {
            config::set_url(&path, config::UrlChange::Disable)?;
            println!("Audit disabled in {}.", path.display());
        }
        AuditCommand::Status => {
            let (bytes, records) = ::audit::client::backlog(&config::state_dir());
            match config::load(&path)? {
                None => println!("config: {} (absent: audit is off; run pty-mcp audit init)", path.display()),
                Some(c) => {
                    println!("config: {}", path.display());
                    println!("audit: {}", c.url.as_deref().map_or("off".to_string(), |u| format!("on, to {u}")));
                    println!(
                        "mode: {:?}\nuser: {}\ntoken: {}",
                        c.mode,
                        c.user,
                        if c.token.is_some() { "set" } else { "missing" }
                    );
                }
            }
            println!("spool: {records} records ({bytes} bytes) waiting in {}", config::state_dir().display());
        }
        AuditCommand::Serve { port, bind, log, tokens, tls_cert, tls_key } => {
            let token = std::env::var("PTY_MCP_AUDIT_TOKEN")
                .ok()
                .or_else(|| config::load(&path).ok().flatten().and_then(|c| c.token));
            let opts = ::audit::collector::ServeOptions {
                bind: std::net::SocketAddr::new(bind, port),
                log: (log != "-").then(|| log.into()),
                token,
                tokens_file: tokens,
                tls: tls_cert.zip(tls_key),
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            ::audit::collector::serve(opts, shutdown).await?;
        }
        AuditCommand::Verify { log } => match ::audit::collector::verify(&log) {
            Ok(n) => println!("ok: {n} records, hash chain intact"),
            Err((line, why)) => anyhow::bail!("{}: line {line}: {why}", log.display()),
        },
    }
    Ok(())
}

async fn serve(overrides: AuditOverrides, args: ServeArgs) -> anyhow::Result<()> {
    if args.http.is_none() && std::io::stdin().is_terminal() {
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "pty-mcp".into());
        eprint!("{}", REGISTER_HINT.replace("{exe}", &exe));
        return Ok(());
    }
    let files = tools::files::FileSettings {
        max_transfer: args.max_transfer.unwrap_or_else(max_transfer),
        // Set once for the server's life.
        local_root: args.local_files.clone().map(|p| &*Box::leak(p.into_boxed_path())),
    };
    let settings = Settings { buffer_size: buffer_size(), files };
    let per_operator = args.http.is_some().then_some(args.max_sessions_per_operator);
    let manager = Arc::new(SessionManager::with_operator_limit(per_operator));
    let operator = Arc::new(operator::OperatorPrompt::new(secret_timeout()));
    // A broken audit configuration stops the server: running unaudited when auditing was asked
    // for would be worse than not running.
    let audit = start_audit(overrides)?;
    // So does a bad policy: the server never runs without the rules it was given.
    let policy = Arc::new(policy::Policy::load(policy::default_path()).map_err(anyhow::Error::msg)?);
    let gate = policy::gate::Gate { policy, operator: operator.clone(), audit: audit.clone() };
    // The operator's way in; a server that cannot offer it still serves the agent.
    let info = Arc::new(control::ServerInfo::default());
    let _control = control::Listener::start(manager.clone(), info.clone(), audit.clone())
        .inspect_err(|e| tracing::warn!("no control socket (pty-mcp ls/attach will not see this server): {e:#}"))
        .ok();
    let server = PtyMcp::new(manager.clone(), operator, audit, gate, settings);
    let outcome = match args.http {
        Some(addr) => serve_http(addr, args, server, &manager).await,
        None => serve_stdio(server, &info).await,
    };
    // stdin closed (or the handshake failed, or the HTTP server stopped): the sessions go with us.
    manager.close_all();
    outcome
}

/// MCP on stdin/stdout, until stdin closes.
async fn serve_stdio(server: PtyMcp, info: &control::ServerInfo) -> anyhow::Result<()> {
    match server.serve(rmcp::transport::stdio()).await {
        Ok(service) => {
            if let Some(peer) = service.peer().peer_info() {
                let client = format!("{} {}", peer.client_info.name, peer.client_info.version);
                *info.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
            }
            service.waiting().await.map(|_| ()).map_err(anyhow::Error::from)
        }
        Err(e) => Err(anyhow::Error::from(e).context("MCP initialisation failed")),
    }
}

/// MCP over HTTP, until SIGINT or SIGTERM.
async fn serve_http(
    addr: std::net::SocketAddr,
    args: ServeArgs,
    server: PtyMcp,
    manager: &Arc<SessionManager>,
) -> anyhow::Result<()> {
    let opts = server::http::Options {
        addr,
        tokens: args.tokens,
        oauth: args.oauth_issuer.map(|issuer| server::oauth::Settings {
            issuer,
            audience: args.oauth_audience.unwrap_or_default(),
            user_claim: args.oauth_user_claim,
            ca: args.oauth_ca,
        }),
        tls: args.tls_cert.zip(args.tls_key),
        insecure_http: args.insecure_http,
        shared: args.shared,
        allowed_hosts: args.allowed_hosts,
        allowed_origins: args.allowed_origins,
        max_body: args.max_body,
        max_requests: args.max_requests.max(1),
        max_mcp_sessions: args.max_mcp_sessions.max(1),
    };
    if let Some(limit) = args.idle_close {
        tokio::spawn(manager::close_idle(manager.clone(), limit));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    server::http::serve(opts, move || server.clone(), shutdown).await
}

/// A size in bytes, with an optional K, M or G suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_end_matches(['b', 'B']).trim_end_matches(['i', 'I']);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().map_err(|_| format!("{text:?} is not a size (e.g. 500M, 4G)"))?;
    n.checked_mul(1 << shift).filter(|&n| n > 0).ok_or_else(|| format!("{text:?} is out of range"))
}

/// `PTY_MCP_MAX_TRANSFER`: the largest file a transfer moves (default 4 GiB).
fn max_transfer() -> u64 {
    const DEFAULT: u64 = 4 << 30;
    let Ok(raw) = std::env::var("PTY_MCP_MAX_TRANSFER") else { return DEFAULT };
    parse_size(&raw).unwrap_or_else(|e| {
        tracing::warn!("PTY_MCP_MAX_TRANSFER: {e}; using {DEFAULT}");
        DEFAULT
    })
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
