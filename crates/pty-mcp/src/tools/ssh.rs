//! `create_ssh_session`: a PTY on a real SSH server, configured by the user's ssh_config.

use std::sync::Arc;
use std::time::Duration;

use engine::secret::Secret;
use engine::{Offset, Session, SessionConfig, Settle, Settled};
use tokio::time::Instant;
use transports::files::{Access, LinkSlot};
use transports::ssh::{self, Asker, HostKeyPolicy, SshError, SshOptions};

use crate::error::{Code, ToolError};
use crate::manager::Sessions;
use crate::operator::OperatorPrompt;
use crate::params::{CreateSshParams, SshTargetParams};
use crate::reply;
use crate::tools::persistent;
use crate::tools::{Created, Settings, open_log, terminal_size};

/// How long the remote banner and first prompt may take to appear.
const BANNER_WAIT: Duration = Duration::from_secs(3);
/// How long a login shell known to be bash may take to show its first prompt, and how long it
/// may stay quiet meanwhile: startup files can be slow (pyenv, landscape-sysinfo) and print
/// nothing, and the hook needs the prompt. The wait ends the moment a prompt shows.
const BASH_PROMPT_WAIT: Duration = Duration::from_secs(15);
const BASH_QUIET: Duration = Duration::from_secs(2);

/// The operator prompt, for passphrases and passwords the agent must not see.
struct OperatorAsker(Arc<OperatorPrompt>);

impl Asker for OperatorAsker {
    fn ask(&self, prompt: String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Secret>> + Send + '_>> {
        Box::pin(async move { self.0.ask(&prompt).await.ok() })
    }
}

fn policy(p: &SshTargetParams, configured: Option<&str>) -> Result<HostKeyPolicy, ToolError> {
    if p.ignore_host_key == Some(true) {
        return Ok(HostKeyPolicy::Insecure);
    }
    let env = std::env::var("PTY_MCP_HOST_KEY_POLICY").ok();
    let chosen = p.host_key_policy.as_deref().or(env.as_deref()).or(match configured {
        Some("accept-new") | Some("no") | Some("off") => Some("accept-new"),
        _ => None,
    });
    match chosen.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("strict") | Some("yes") => Ok(HostKeyPolicy::Strict),
        Some("accept-new") => Ok(HostKeyPolicy::AcceptNew),
        Some("insecure") => Ok(HostKeyPolicy::Insecure),
        Some(other) => {
            Err(ToolError::invalid(format!("host_key_policy {other:?}: use strict, accept-new or insecure")))
        }
    }
}

pub fn ssh_error(e: &SshError) -> ToolError {
    let (code, retryable) = match e {
        SshError::Connect(_) => (Code::SshConnectFailed, true),
        SshError::Auth(_) => (Code::SshAuthFailed, false),
        SshError::HostKeyUnknown(_) => (Code::SshHostKeyUnknown, false),
        SshError::HostKeyChanged(_) => (Code::SshHostKeyChanged, false),
        SshError::Unsupported(_) => (Code::NotSupported, false),
        SshError::Other(_) => (Code::SshConnectFailed, false),
    };
    ToolError { code, message: e.to_string(), retryable }
}

/// Types the shell-integration bootstrap and waits for the shell's first mark; the agent never
/// sees the line (the read cursor moves past it, and the line erases its own echo).
async fn integrate(session: &Session, line: &str) {
    // As one bracketed paste when the line editor accepts it: a kilobyte typed key by key
    // costs readline a redraw per key.
    let typed =
        if session.modes().bracketed_paste { format!("\x1b[200~{line}\x1b[201~\r") } else { format!("{line}\r") };
    let Ok(start) = session.write(typed.as_bytes(), Instant::now() + Duration::from_secs(5)).await else {
        return;
    };
    let deadline = Instant::now() + BANNER_WAIT;
    if session.settle(Settle::after_input(start, Duration::from_secs(1)), deadline).await == Settled::Shell {
        session.wait_prompt_drawn(start, deadline).await;
    } else {
        tracing::info!("the remote shell did not take the integration hook; completion stays heuristic");
    }
}

/// The connection settings of `p`, resolved through ssh_config.
pub async fn options(operator: &Arc<OperatorPrompt>, p: SshTargetParams) -> Result<SshOptions, ToolError> {
    let host = p.host.clone().filter(|h| !h.trim().is_empty()).ok_or_else(|| ToolError::invalid("host is required"))?;
    if host.starts_with('-') || host.chars().any(char::is_whitespace) {
        return Err(ToolError::invalid(format!("host {host:?} is not a host name")));
    }
    let config_file = std::env::var_os("PTY_MCP_SSH_CONFIG").map(std::path::PathBuf::from);
    let mut resolved = ssh::config::resolve(&host, config_file.as_deref()).await;
    let jump_spec = p.jump.clone().filter(|j| !j.trim().is_empty()).or_else(|| resolved.proxy_jump.clone());
    let jumps = match &jump_spec {
        Some(spec) => ssh::config::resolve_jumps(spec, config_file.as_deref()).await,
        None => Vec::new(),
    };
    if let Some(user) = p.user.clone().filter(|u| !u.is_empty()) {
        resolved.user = user;
    }
    if let Some(port) = p.port {
        resolved.port = u16::try_from(port)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| ToolError::invalid(format!("port {port} is out of range")))?;
    }
    let policy = policy(&p, resolved.strict_host_key_checking.as_deref())?;
    let connect_timeout = match p.connect_timeout_ms {
        Some(ms) if !(1..=600_000).contains(&ms) => {
            return Err(ToolError::invalid(format!("connect_timeout_ms {ms} is out of range (1-600000)")));
        }
        ms => ms.map(|ms| Duration::from_millis(ms as u64)),
    };
    Ok(SshOptions {
        host: resolved,
        key_path: p.key_path.filter(|k| !k.is_empty()).map(|k| ssh::config::expand_home(&k)),
        password: p.password.map(|pw| Secret::new(pw.into_bytes())),
        asker: Some(Arc::new(OperatorAsker(operator.clone()))),
        policy,
        command: None,
        env: Vec::new(),
        rows: 40,
        cols: 120,
        connect_timeout,
        jumps,
        shell_integration: true,
    })
}

/// `user@host:port` of resolved options.
fn target_of(opts: &SshOptions) -> String {
    format!("{}@{}:{}", opts.host.user, opts.host.hostname, opts.host.port)
}

/// Connects and starts a session (in the host's ai-tmux when persistent).
pub async fn create_ssh_session(
    manager: &Sessions<'_>,
    operator: &Arc<OperatorPrompt>,
    settings: Settings,
    p: CreateSshParams,
) -> Result<Created, ToolError> {
    manager.check_room()?;
    let mut opts = options(operator, p.ssh).await?;
    let (rows, cols) = terminal_size(p.rows, p.cols)?;
    let command = p.command.filter(|c| !c.trim().is_empty());
    let shell_integration = p.shell_integration.unwrap_or(true);
    if p.persistent == Some(true) || p.session_id.is_some() {
        let mut warnings = Vec::new();
        if p.install_ai_tmux == Some(true) {
            warnings.push(persistent::install(&opts).await?);
        }
        let target = target_of(&opts);
        let what = match p.session_id.filter(|id| !id.trim().is_empty()) {
            Some(id) => persistent::Target::Reattach(id.trim().to_string()),
            None => persistent::Target::Create { command, rows, cols, shell_integration },
        };
        // File transfers go over the connection the mirror holds at the time.
        let (options, current) = (Arc::new(opts), LinkSlot::default());
        let dial = persistent::ssh_dial(options.clone(), Some(current.clone()));
        let recorder = open_log(p.log, rows, cols)?;
        let created = persistent::open(manager, settings, dial, "remote", target.clone(), what, recorder).await?;
        if let Ok(entry) = manager.get(&created.session_id) {
            let _ = entry.remote_files.set(Arc::new(Access::Persistent { current, options, target }));
        }
        return Ok(Created { warnings: [warnings, created.warnings.clone()].concat(), ..created });
    }
    let recorder = open_log(p.log, rows, cols)?;
    opts.command = command;
    opts.env = p.env.unwrap_or_default().into_iter().collect();
    (opts.rows, opts.cols, opts.shell_integration) = (rows, cols, shell_integration);
    let opened = ssh::open(opts).await.map_err(|e| ssh_error(&e))?;
    let config = SessionConfig { rows, cols, buffer_size: settings.buffer_size, ..SessionConfig::default() };
    let target = opened.target.clone();
    let entry =
        manager.create("ssh", target.clone(), b"\r", || Ok(Session::start(opened.connection, config, recorder)))?;
    let _ = entry.remote_files.set(Arc::new(Access::Ssh { link: opened.link, target: target.clone() }));
    let session = &entry.session;
    // Any program: its banner and prompt, or 300 ms of quiet. Bash: its prompt, through quiet
    // startup files (a prompt not recognised as one costs the 2 s of quiet).
    let (quiet, wait) = match opened.bootstrap {
        Some(_) => (BASH_QUIET, BASH_PROMPT_WAIT),
        None => (Duration::from_millis(300), BANNER_WAIT),
    };
    let first = session.settle(Settle::after_input(Offset(0), quiet), Instant::now() + wait).await;
    // The banner is taken before the shell hook is typed, which the agent never sees.
    let banner = reply::render_all(session);
    if let Some(line) = opened.bootstrap.filter(|_| first == Settled::Prompt) {
        integrate(session, &line).await;
    }
    Ok(Created { warnings: opened.warnings, ..Created::new(&entry, banner) })
}
