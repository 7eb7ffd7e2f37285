//! SSH sessions with `russh`: a PTY channel on a real server, verified against known_hosts,
//! authenticated the way OpenSSH does it, kept alive, and reported dead within the keepalive
//! window when the link drops.

pub mod config;
pub mod known_hosts;
pub mod sftp;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::secret::Secret;
use engine::transport::{Connection, Control, Exit};
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, Disconnect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub use config::HostConfig;
use known_hosts::Verdict;

/// Default keepalive: every 15 s, three misses and the link is declared dead.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
const KEEPALIVE_MISSES: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How unknown and changed host keys are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Only keys already in known_hosts (the default).
    Strict,
    /// Unknown hosts are trusted on first use and recorded; changed keys are still refused.
    AcceptNew,
    /// Nothing is checked (`ignore_host_key`).
    Insecure,
}

/// Asks the operator for a passphrase or password (the secret-prompt mechanism).
pub trait Asker: Send + Sync {
    /// Shows `prompt`; `None` when the operator cannot or will not answer.
    fn ask(&self, prompt: String) -> Pin<Box<dyn Future<Output = Option<Secret>> + Send + '_>>;
}

/// Everything needed to open an SSH session.
pub struct SshOptions {
    /// The resolved host settings.
    pub host: HostConfig,
    /// An extra identity file tried first (`key_path`).
    pub key_path: Option<PathBuf>,
    /// A password given in the call (discouraged: the agent sees it).
    pub password: Option<Secret>,
    /// Asks the operator for passphrases and passwords when needed.
    pub asker: Option<Arc<dyn Asker>>,
    /// Host-key policy.
    pub policy: HostKeyPolicy,
    /// `None` for a login shell, or a command to run on the PTY.
    pub command: Option<String>,
    /// Environment variables to pass (the server may refuse them).
    pub env: Vec<(String, String)>,
    /// Terminal size.
    pub rows: u16,
    /// Terminal size.
    pub cols: u16,
    /// Connect timeout (overrides `ConnectTimeout`).
    pub connect_timeout: Option<Duration>,
    /// Jump hosts to go through, in order (ProxyJump), each with its own settings.
    pub jumps: Vec<HostConfig>,
    /// Set up shell integration when the login shell is bash (a bootstrap line to type).
    pub shell_integration: bool,
}

/// Why a connection failed, in the error classes the tools report.
#[derive(Debug)]
pub enum SshError {
    /// Refused, unreachable, timed out: may work later.
    Connect(String),
    /// Every method was tried; says which.
    Auth(String),
    /// The host's key is not in known_hosts.
    HostKeyUnknown(String),
    /// The host's key differs from the recorded one.
    HostKeyChanged(String),
    /// The server does not offer what was asked (a subsystem).
    Unsupported(String),
    /// Anything else (channel refused…).
    Other(String),
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshError::Connect(m)
            | SshError::Auth(m)
            | SshError::HostKeyUnknown(m)
            | SshError::HostKeyChanged(m)
            | SshError::Unsupported(m)
            | SshError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SshError {}

/// What the host-key check decided, kept for the error message.
#[derive(Default)]
struct KeyCheck {
    problem: Option<SshError>,
    warning: Option<String>,
}

/// The host-key checker of one connection.
struct Client {
    host: String,
    port: u16,
    known_hosts: Vec<PathBuf>,
    /// The known_hosts lines for this host, read once.
    entries: known_hosts::HostEntries,
    policy: HostKeyPolicy,
    check: Arc<Mutex<KeyCheck>>,
}

impl Client {
    /// A host certificate is trusted when an `@cert-authority` line for the host names its
    /// signer, it is a host certificate, it lists this host among its principals (or none), and
    /// it is within its validity period with a good signature.
    fn check_certificate(&self, cert: &russh::keys::Certificate) -> bool {
        let name = known_hosts::entry_name(&self.host, self.port);
        let mut check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        if self.policy == HostKeyPolicy::Insecure {
            check.warning =
                Some(format!("host key checking is off (ignore_host_key): {name}'s certificate was not verified"));
            return true;
        }
        let authorities = self.entries.cert_authorities();
        let trusted: Vec<_> = authorities.iter().map(|k| k.fingerprint(HashAlg::Sha256)).collect();
        let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
        let principals = cert.valid_principals();
        let for_this_host = principals.is_empty() || principals.iter().any(|p| p == &self.host);
        let problem = if !trusted.contains(&signer) {
            format!(
                "{name} presented a host certificate signed by {signer}, which no @cert-authority line in known_hosts trusts"
            )
        } else if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::Host {
            format!("{name} presented a user certificate as its host key")
        } else if !for_this_host {
            format!("{name} presented a host certificate for other hosts ({})", principals.join(", "))
        } else if let Err(e) = cert.validate(&trusted) {
            format!(
                "{name} presented a host certificate that does not validate (expired, not yet valid, or a bad signature): {e}"
            )
        } else {
            return true;
        };
        check.problem = Some(SshError::HostKeyUnknown(problem));
        false
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let key: &PublicKey = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key,
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => return Ok(self.check_certificate(cert)),
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        let name = known_hosts::entry_name(&self.host, self.port);
        let mut check = self.check.lock().unwrap_or_else(|e| e.into_inner());
        if self.policy == HostKeyPolicy::Insecure {
            check.warning = Some(format!(
                "host key checking is off (ignore_host_key): {name} presented {fingerprint}, which was not verified"
            ));
            return Ok(true);
        }
        match self.entries.check(key) {
            Verdict::Known => Ok(true),
            Verdict::Revoked => {
                check.problem = Some(SshError::HostKeyChanged(format!(
                    "the host key of {name} ({fingerprint}) is marked @revoked in known_hosts"
                )));
                Ok(false)
            }
            Verdict::Changed { file, line } => {
                check.problem = Some(SshError::HostKeyChanged(format!(
                    "WARNING: the host key of {name} has CHANGED: it now presents {fingerprint}, which differs from the key \
                     recorded at {}:{line}. Someone could be intercepting the connection, or the host was reinstalled. \
                     Refusing to connect; if the change is expected, remove that line (ssh-keygen -R '{name}').",
                    file.display()
                )));
                Ok(false)
            }
            Verdict::Unknown if self.policy == HostKeyPolicy::AcceptNew => {
                let file =
                    self.known_hosts.first().cloned().unwrap_or_else(|| config::expand_home("~/.ssh/known_hosts"));
                if let Err(e) = known_hosts::append(&file, &self.host, self.port, key) {
                    check.problem =
                        Some(SshError::Other(format!("cannot record the host key in {}: {e}", file.display())));
                    return Ok(false);
                }
                check.warning =
                    Some(format!("{name} was unknown; its key {fingerprint} was added to {}", file.display()));
                Ok(true)
            }
            Verdict::Unknown => {
                check.problem = Some(SshError::HostKeyUnknown(format!(
                    "{name} is not a known host: it presents {} key {fingerprint}. Check that fingerprint with the host's \
                     administrator, then trust it with host_key_policy \"accept-new\" (or: ssh-keyscan -p {} {} >> ~/.ssh/known_hosts).",
                    key.algorithm(),
                    self.port,
                    self.host
                )));
                Ok(false)
            }
        }
    }
}

/// An authenticated connection with its PTY channel, not yet handed to a session.
pub struct Opened {
    /// For the engine.
    pub connection: Connection,
    /// `user@host:port`.
    pub target: String,
    /// Notes for the agent (e.g. host key checking was off, a host key was recorded).
    pub warnings: Vec<String>,
    /// A line to type at the first prompt to integrate the remote shell, when it is bash.
    pub bootstrap: Option<String>,
    /// The connection, for file transfers.
    pub link: SshLink,
}

/// An authenticated connection and the connections to its jump hosts, which stay open for as
/// long as it does.
struct Shared {
    handle: Handle<Client>,
    _jumps: Vec<Handle<Client>>,
}

/// A handle on an authenticated SSH connection, shared by the session that runs on it and the
/// file transfers that go over it (more channels on the same connection: no new login).
#[derive(Clone)]
pub struct SshLink(Arc<Shared>);

impl SshLink {
    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.0.handle.is_closed()
    }

    /// A handle that does not keep the connection open.
    pub fn downgrade(&self) -> WeakSshLink {
        WeakSshLink(Arc::downgrade(&self.0))
    }
}

/// An [`SshLink`] that does not keep its connection open (a persistent session's current link,
/// owned by its mirror).
#[derive(Clone, Default)]
pub struct WeakSshLink(std::sync::Weak<Shared>);

impl WeakSshLink {
    /// The link, while its connection is still held and open.
    pub fn upgrade(&self) -> Option<SshLink> {
        self.0.upgrade().map(SshLink).filter(|l| !l.is_closed())
    }
}

/// An authenticated SSH connection, before any channel is opened on it.
pub struct Connected {
    link: SshLink,
    /// `user@host:port`.
    pub target: String,
    /// Notes for the agent (e.g. host key checking was off, a host key was recorded).
    pub warnings: Vec<String>,
}

/// Connects (through the jump hosts), verifies the host key and authenticates.
///
/// # Errors
/// An [`SshError`] of the class that failed; messages never contain a secret.
pub async fn connect(opts: &SshOptions) -> Result<Connected, SshError> {
    let host = &opts.host;
    let timeout = opts.connect_timeout.or(host.connect_timeout).unwrap_or(CONNECT_TIMEOUT);
    let mut warnings = Vec::new();
    // Each jump host forwards a channel to the next hop; their connections must stay open for
    // as long as the session does.
    let mut jumps = Vec::new();
    let mut via: Option<russh::ChannelStream<client::Msg>> = None;
    for (i, jump) in opts.jumps.iter().enumerate() {
        let mut handle = match via.take() {
            None => handshake(jump, opts.policy, tcp(jump, timeout).await?, timeout, &mut warnings).await?,
            Some(stream) => handshake(jump, opts.policy, stream, timeout, &mut warnings).await?,
        };
        authenticate(&mut handle, jump, None, None, opts.asker.as_ref()).await?;
        let next = opts.jumps.get(i + 1).unwrap_or(host);
        let channel = handle
            .channel_open_direct_tcpip(next.hostname.clone(), next.port as u32, "127.0.0.1", 0)
            .await
            .map_err(|e| {
            SshError::Connect(format!("jump host {} cannot reach {}:{}: {e}", jump.hostname, next.hostname, next.port))
        })?;
        via = Some(channel.into_stream());
        jumps.push(handle);
    }
    let mut handle = match via {
        None => handshake(host, opts.policy, tcp(host, timeout).await?, timeout, &mut warnings).await?,
        Some(stream) => handshake(host, opts.policy, stream, timeout, &mut warnings).await?,
    };
    authenticate(&mut handle, host, opts.key_path.as_ref(), opts.password.as_ref(), opts.asker.as_ref()).await?;
    let target = format!("{}@{}:{}", host.user, host.hostname, host.port);
    Ok(Connected { link: SshLink(Arc::new(Shared { handle, _jumps: jumps })), target, warnings })
}

impl Connected {
    /// The connection, for file transfers.
    pub fn link(&self) -> SshLink {
        self.link.clone()
    }

    /// Runs `command` on an exec channel (no PTY) with `input` on its stdin; returns its exit
    /// status and standard output, within `timeout`.
    ///
    /// # Errors
    /// When the server refuses the channel, or the command does not finish in time.
    pub async fn run(
        &self,
        command: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<(Option<u32>, Vec<u8>), SshError> {
        exec_collect(&self.link.0.handle, command, input, timeout).await
    }

    /// Runs `command` on an exec channel and hands over its stdin and stdout as a byte stream
    /// (how pty-mcp talks to `ai-tmux client`). The connection lives as long as the stream; a
    /// lost connection (keepalives unanswered) ends the stream.
    ///
    /// # Errors
    /// When the server refuses the channel or the command.
    pub async fn into_stream(self, command: &str) -> Result<ExecStream, SshError> {
        let channel = open_session(&self.link.0.handle).await?;
        channel.exec(true, command.as_bytes()).await.map_err(|e| SshError::Other(format!("exec refused: {e}")))?;
        Ok(ExecStream { stream: channel.into_stream(), _connection: self.link })
    }
}

/// An exec channel's stdin and stdout, keeping its SSH connection open.
pub struct ExecStream {
    stream: russh::ChannelStream<client::Msg>,
    _connection: SshLink,
}

impl tokio::io::AsyncRead for ExecStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ExecStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Connects, verifies the host key, authenticates and opens a PTY channel.
///
/// # Errors
/// An [`SshError`] of the class that failed; messages never contain a secret.
pub async fn open(opts: SshOptions) -> Result<Opened, SshError> {
    let Connected { link, target, warnings } = connect(&opts).await?;
    let handle = &link.0.handle;
    // Ask for the login shell while the PTY's shell starts: the probe costs no set-up time.
    let probe = async {
        match (&opts.command, opts.shell_integration) {
            (None, true) => login_shell(handle).await,
            _ => None,
        }
    };
    let (login, channel) = tokio::join!(probe, open_pty(handle, &opts));
    let channel = channel?;
    let (bootstrap, shell_token) = match login.as_deref().and_then(|s| s.rsplit('/').next()) {
        Some("bash") => match engine::shell::new_token() {
            Ok(token) => (Some(engine::shell::bash_bootstrap(&token)), Some(token)),
            Err(_) => (None, None),
        },
        _ => (None, None),
    };

    let (session_side, pump_side) = tokio::io::duplex(64 << 10);
    let (reader, writer) = tokio::io::split(session_side);
    let (resize_tx, resize_rx) = mpsc::unbounded_channel();
    let control = Arc::new(Link { resize: resize_tx, problem: Mutex::new(None), pump: Mutex::new(None) });
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let pump = tokio::spawn(pump(link.clone(), channel, pump_side, resize_rx, control.clone(), done_tx));
    *control.pump.lock().unwrap_or_else(|e| e.into_inner()) = Some(pump);
    Ok(Opened {
        connection: Connection {
            reader: Box::pin(reader),
            writer: Box::pin(writer),
            control,
            exited: Box::pin(async move { done_rx.await.ok().flatten() }),
            shell_token,
            link: None,
        },
        target,
        warnings,
        bootstrap,
        link,
    })
}

/// A session channel with a PTY running the login shell or `opts.command`.
async fn open_pty(handle: &Handle<Client>, opts: &SshOptions) -> Result<russh::Channel<client::Msg>, SshError> {
    let channel = open_session(handle).await?;
    for (k, v) in &opts.env {
        let _ = channel.set_env(false, k.clone(), v.clone()).await;
    }
    channel
        .request_pty(false, "xterm-256color", opts.cols as u32, opts.rows as u32, 0, 0, &[])
        .await
        .map_err(|e| SshError::Other(format!("the server refused a PTY: {e}")))?;
    match &opts.command {
        Some(cmd) => channel.exec(false, cmd.as_bytes()).await,
        None => channel.request_shell(false).await,
    }
    .map_err(|e| SshError::Other(format!("the server refused to start the shell: {e}")))?;
    Ok(channel)
}

/// The user's login shell on the server (`$SHELL`), asked on a separate exec channel so that
/// nothing is typed into the PTY of a device that is no Unix host.
async fn login_shell(handle: &Handle<Client>) -> Option<String> {
    // Startup files may print before the answer (bash reads .bashrc even for a command run by
    // sshd): the answer is what follows the last tag.
    const TAG: &str = "pty-mcp-login-shell=";
    let (_, out) =
        exec_collect(handle, &format!("printf '\\n{TAG}%s\\n' \"$SHELL\""), b"", Duration::from_secs(5)).await.ok()?;
    let out = String::from_utf8(out).ok()?;
    let shell = out.rsplit_once(TAG)?.1.lines().next()?.trim().to_string();
    Some(shell).filter(|s| s.starts_with('/') && s.len() < 256)
}

/// Runs `command` on an exec channel (no PTY) with `input` on its stdin; returns its exit
/// status and standard output, within `timeout`.
async fn exec_collect(
    handle: &Handle<Client>,
    command: &str,
    input: &[u8],
    timeout: Duration,
) -> Result<(Option<u32>, Vec<u8>), SshError> {
    let mut channel = open_session(handle).await?;
    channel.exec(true, command.as_bytes()).await.map_err(|e| SshError::Other(format!("exec refused: {e}")))?;
    let mut out = Vec::new();
    let mut status = None;
    let exchange = async {
        if !input.is_empty() {
            channel.data(input).await.map_err(|e| SshError::Other(format!("sending input failed: {e}")))?;
        }
        channel.eof().await.map_err(|e| SshError::Other(format!("sending input failed: {e}")))?;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        Ok::<_, SshError>(())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| SshError::Other(format!("{command:?} did not finish within {timeout:?}")))??;
    Ok((status, out))
}

/// A session channel, or why the server refused one.
async fn open_session(handle: &Handle<Client>) -> Result<russh::Channel<client::Msg>, SshError> {
    handle
        .channel_open_session()
        .await
        .map_err(|e| SshError::Other(format!("the server refused a session channel: {e}")))
}

/// A TCP connection to `host`, within `timeout`.
async fn tcp(host: &HostConfig, timeout: Duration) -> Result<tokio::net::TcpStream, SshError> {
    let addr = format!("{}:{}", host.hostname, host.port);
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| SshError::Connect(format!("connecting to {addr} timed out after {} ms", timeout.as_millis())))?
        .map_err(|e| SshError::Connect(format!("cannot connect to {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    // TCP keepalive as well: a peer that vanished is noticed even between SSH keepalives.
    let _ = socket2::SockRef::from(&stream).set_keepalive(true);
    Ok(stream)
}

/// The SSH handshake over `stream` (TCP, or a channel through a jump host), with the host key
/// checked against known_hosts under `policy`.
async fn handshake<S>(
    host: &HostConfig,
    policy: HostKeyPolicy,
    stream: S,
    timeout: Duration,
    warnings: &mut Vec<String>,
) -> Result<Handle<Client>, SshError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let addr = format!("{}:{}", host.hostname, host.port);
    let mut config = client::Config {
        keepalive_interval: Some(host.server_alive_interval.unwrap_or(KEEPALIVE)),
        keepalive_max: host.server_alive_count_max.unwrap_or(KEEPALIVE_MISSES),
        nodelay: true,
        ..Default::default()
    };
    // Ask for the key type we have on record, avoiding a false "changed key" when the server
    // would prefer another type.
    // With a certificate authority on record for the host, ask for its certificate.
    let entries = known_hosts::HostEntries::load(&host.known_hosts, &host.hostname, host.port);
    if !entries.cert_authorities().is_empty() {
        config.preferred.host_key_certificates = config.preferred.key.clone();
    }
    let recorded = entries.recorded_algorithms();
    if !recorded.is_empty() {
        let mut keys: Vec<_> = recorded.clone();
        keys.extend(config.preferred.key.iter().filter(|k| !recorded.contains(k)).cloned());
        config.preferred.key = keys.into();
    }
    let check = Arc::new(Mutex::new(KeyCheck::default()));
    let handler = Client {
        host: host.hostname.clone(),
        port: host.port,
        known_hosts: host.known_hosts.clone(),
        entries,
        policy,
        check: check.clone(),
    };
    let handshake = tokio::time::timeout(timeout, client::connect_stream(Arc::new(config), stream, handler)).await;
    let handle = match handshake {
        Err(_) => return Err(SshError::Connect(format!("the SSH handshake with {addr} timed out"))),
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            let problem = check.lock().unwrap_or_else(|e| e.into_inner()).problem.take();
            return Err(problem.unwrap_or_else(|| SshError::Connect(format!("SSH handshake with {addr} failed: {e}"))));
        }
    };
    if let Some(w) = check.lock().unwrap_or_else(|e| e.into_inner()).warning.take() {
        warnings.push(w);
    }
    Ok(handle)
}

/// Tries every method in OpenSSH's order until one succeeds: the agent, each identity file
/// (with its certificate when there is one), the password, keyboard-interactive.
async fn authenticate(
    handle: &mut Handle<Client>,
    host: &HostConfig,
    key_path: Option<&PathBuf>,
    given_password: Option<&Secret>,
    asker: Option<&Arc<dyn Asker>>,
) -> Result<(), SshError> {
    let user = host.user.clone();
    let mut tried = Vec::new();
    let rsa_hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();

    let files: Vec<PathBuf> = key_path.into_iter().cloned().chain(host.identity_files.iter().cloned()).collect();
    // IdentitiesOnly: the agent may sign only for keys whose files are configured, as OpenSSH.
    let only: Option<Vec<russh::keys::PublicKey>> = host.identities_only.then(|| {
        files.iter().filter_map(|f| russh::keys::load_public_key(format!("{}.pub", f.display())).ok()).collect()
    });
    let agent_off = host.identity_agent.as_deref() == Some("none");
    if !agent_off
        && std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty())
        && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
    {
        let identities = agent.request_identities().await.unwrap_or_default();
        for identity in identities {
            let key = identity.public_key().into_owned();
            if only.as_ref().is_some_and(|keys| !keys.iter().any(|k| k.key_data() == key.key_data())) {
                continue;
            }
            let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
            tried.push(format!("agent key {}", key.fingerprint(HashAlg::Sha256)));
            if let Ok(r) = handle.authenticate_publickey_with(user.clone(), key, hash, &mut agent).await
                && r.success()
            {
                return Ok(());
            }
        }
    }

    for file in files.iter().filter(|f| f.exists()) {
        let key = match russh::keys::load_secret_key(file, None) {
            Ok(key) => key,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let Some(asker) = asker else {
                    tried.push(format!("{} (encrypted; no way to ask for its passphrase)", file.display()));
                    continue;
                };
                let Some(passphrase) = asker.ask(format!("Passphrase for {}: ", file.display())).await else {
                    tried.push(format!("{} (passphrase not given)", file.display()));
                    continue;
                };
                let text = String::from_utf8_lossy(passphrase.expose()).into_owned();
                let text = zeroize::Zeroizing::new(text);
                match russh::keys::load_secret_key(file, Some(&text)) {
                    Ok(key) => key,
                    Err(_) => {
                        tried.push(format!("{} (wrong passphrase)", file.display()));
                        continue;
                    }
                }
            }
            Err(e) => {
                tried.push(format!("{} (unreadable: {e})", file.display()));
                continue;
            }
        };
        let key = Arc::new(key);
        tried.push(format!("publickey {}", file.display()));
        let cert_path = PathBuf::from(format!("{}-cert.pub", file.display()));
        if let Ok(cert) = russh::keys::load_openssh_certificate(&cert_path)
            && let Ok(r) = handle.authenticate_openssh_cert(user.clone(), key.clone(), cert).await
            && r.success()
        {
            return Ok(());
        }
        let hash = if key.algorithm().is_rsa() { rsa_hash } else { None };
        match handle.authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(key, hash)).await {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(SshError::Connect(format!("the connection failed during authentication: {e}"))),
        }
    }

    let mut password = given_password.map(Secret::duplicate);
    if password.is_none()
        && let Some(asker) = asker
    {
        password = asker.ask(format!("Password for {user}@{}: ", host.hostname)).await;
    }
    if let Some(password) = &password {
        let text = zeroize::Zeroizing::new(String::from_utf8_lossy(password.expose()).into_owned());
        tried.push("password".into());
        if let Ok(r) = handle.authenticate_password(user.clone(), text.as_str()).await
            && r.success()
        {
            return Ok(());
        }
        tried.push("keyboard-interactive".into());
        if keyboard_interactive(handle, &user, &text).await {
            return Ok(());
        }
    }
    if tried.is_empty() {
        tried.push("none (no identity file, agent or password available)".into());
    }
    Err(SshError::Auth(format!(
        "authentication failed for {user}@{}:{}; tried: {}",
        host.hostname,
        host.port,
        tried.join(", ")
    )))
}

/// Answers every keyboard-interactive prompt with the password (what network gear asks).
async fn keyboard_interactive(handle: &mut Handle<Client>, user: &str, password: &str) -> bool {
    use russh::client::KeyboardInteractiveAuthResponse as R;
    let mut reply = handle.authenticate_keyboard_interactive_start(user.to_string(), None).await;
    for _ in 0..5 {
        match reply {
            Ok(R::Success) => return true,
            Ok(R::InfoRequest { prompts, .. }) => {
                let answers = prompts.iter().map(|_| password.to_string()).collect();
                reply = handle.authenticate_keyboard_interactive_respond(answers).await;
            }
            _ => return false,
        }
    }
    false
}

/// The control side of an SSH session.
struct Link {
    resize: mpsc::UnboundedSender<(u16, u16)>,
    problem: Mutex<Option<String>>,
    pump: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Control for Link {
    fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        self.resize
            .send((rows, cols))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::NotConnected, "the SSH session has ended"))
    }

    fn terminate(&self) {
        if let Some(pump) = self.pump.lock().unwrap_or_else(|e| e.into_inner()).take() {
            pump.abort();
        }
    }

    fn link_problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Copies the channel to the session and back, forwards window changes, and records how the
/// remote program ended (or that the link died).
async fn pump(
    connection: SshLink,
    mut channel: russh::Channel<client::Msg>,
    mut side: tokio::io::DuplexStream,
    mut resize: mpsc::UnboundedReceiver<(u16, u16)>,
    link: Arc<Link>,
    done: tokio::sync::oneshot::Sender<Option<Exit>>,
) {
    let mut buf = vec![0u8; 32 << 10];
    let mut exit: Option<Exit> = None;
    let mut closed_cleanly = false;
    loop {
        tokio::select! {
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    if side.write_all(&data).await.is_err() { break }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    exit = Some(Exit { code: Some(exit_status as i32), signal: None });
                    closed_cleanly = true;
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    exit = Some(Exit { code: None, signal: Some(signal_number(&signal_name)) });
                    closed_cleanly = true;
                }
                Some(ChannelMsg::Eof) => closed_cleanly = true,
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            read = side.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => if channel.data(&buf[..n]).await.is_err() { break },
            },
            Some((rows, cols)) = resize.recv() => {
                let _ = channel.window_change(cols as u32, rows as u32, 0, 0).await;
            }
        }
    }
    let handle = &connection.0.handle;
    if !closed_cleanly && handle.is_closed() {
        let reason = "the SSH connection was lost (no answer to keepalives, or the server went away)".to_string();
        let _ = side.write_all(format!("\r\n[pty-mcp: {reason}]\r\n").as_bytes()).await;
        *link.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    drop(side);
    let _ = done.send(exit);
}

fn signal_number(sig: &russh::Sig) -> i32 {
    use russh::Sig;
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        _ => 0,
    }
}
