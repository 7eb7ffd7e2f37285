//! Where the daemon listens, and the checks both ends make before trusting that place.
//!
//! The socket lives in `~/.ai-tmux/`, a directory only its user can enter (never a guessable
//! world-writable path like `/tmp`, where another user could put a socket of their own first and
//! capture keystrokes), named after the host so that a home shared over NFS serves each machine
//! its own daemon. Not `$XDG_RUNTIME_DIR`: that directory is removed when the user's last login
//! ends, which is exactly when a daemon keeping tomorrow's jobs must stay reachable. The daemon
//! checks each peer's uid; the client checks the socket's owner before sending a byte.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::net::{UnixListener, UnixStream};

/// How long a client waits for a daemon it started to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// `$AI_TMUX_SOCKET`, else `~/.ai-tmux/<host>.sock`.
pub fn default_socket() -> PathBuf {
    if let Some(path) = std::env::var_os("AI_TMUX_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()));
    home.join(".ai-tmux").join(format!("{}.sock", host_name()))
}

/// This machine's name, as far as it is safe in a file name (a socket path is short: at most
/// 32 characters of it).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into our buffer.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let raw = if ok { &buf[..buf.iter().position(|&b| b == 0).unwrap_or(buf.len())] } else { &[][..] };
    let name: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(32)
        .collect();
    if name.is_empty() { "localhost".into() } else { name }
}

pub fn my_uid() -> u32 {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() }
}

/// Creates the socket's directory (0700) or checks that an existing one is ours and private.
///
/// # Errors
/// When the directory belongs to someone else or others may write to it.
pub fn private_dir(socket: &Path) -> anyhow::Result<PathBuf> {
    let dir = socket.parent().unwrap_or(Path::new("/")).to_path_buf();
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let meta = std::fs::metadata(&dir)?;
    let me = my_uid();
    anyhow::ensure!(meta.uid() == me, "{} belongs to uid {}, not to us ({me})", dir.display(), meta.uid());
    anyhow::ensure!(
        meta.permissions().mode() & 0o022 == 0,
        "{} is writable by others; refusing to use it",
        dir.display()
    );
    Ok(dir)
}

/// Connects to the socket after checking that it is ours: a socket someone else put there is
/// never spoken to.
///
/// # Errors
/// When the socket is missing, refuses, or belongs to another user.
pub async fn connect_checked(socket: &Path) -> std::io::Result<UnixStream> {
    let meta = std::fs::symlink_metadata(socket)?;
    if meta.uid() != my_uid() || !meta.file_type().is_socket() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a socket of ours (owner uid {}); refusing to use it", socket.display(), meta.uid()),
        ));
    }
    UnixStream::connect(socket).await
}

/// Takes the start-up lock (the socket's name with `.lock`, beside it), waiting for another starting
/// daemon to finish binding. Released when the returned file is dropped.
async fn startup_lock(socket: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(socket.with_extension("lock"))?;
    // flock blocks, so it waits on a blocking thread; the holder keeps it for milliseconds.
    tokio::task::spawn_blocking(move || {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            Ok(file)
        } else {
            Err(std::io::Error::last_os_error())
        }
    })
    .await?
    .map_err(Into::into)
}

/// Binds the daemon's socket unless a daemon already answers on it (`Ok(None)`): one daemon
/// per socket. Checking and binding happen under the start-up lock, so two daemons started at
/// the same moment cannot both bind, nor can one remove the other's fresh socket as stale.
///
/// # Errors
/// When the directory is not private or the socket cannot be bound.
pub async fn bind_once(socket: &Path) -> anyhow::Result<Option<UnixListener>> {
    private_dir(socket)?;
    let _lock = startup_lock(socket).await?;
    if connect_checked(socket).await.is_ok() {
        return Ok(None);
    }
    // Nobody answers: whatever is there is left over from a daemon that died.
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(Some(listener))
}

/// Connects to the daemon on `socket`, starting `exe server` (detached, in its own session)
/// when none answers.
///
/// # Errors
/// When the directory is not private, the socket is not ours, or the daemon does not start.
pub async fn connect_or_start(socket: &Path, exe: &Path) -> anyhow::Result<UnixStream> {
    private_dir(socket)?;
    match connect_checked(socket).await {
        Ok(stream) => return Ok(stream),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(e.into()),
        Err(_) => {}
    }
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("server")
        .arg("--socket")
        .arg(socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid in the child before exec only detaches it from our session, so the
    // daemon outlives this client, its SSH channel and its terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // The daemon says "ready" once it listens (or once it found another one listening).
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let ready = tokio::time::timeout(START_TIMEOUT, tokio::io::BufReader::new(stdout).lines().next_line()).await;
    anyhow::ensure!(matches!(ready, Ok(Ok(Some(ref l))) if l.starts_with("ready")), "the ai-tmux daemon did not start");
    // The daemon lives on; nobody waits for it here.
    drop(child);
    Ok(connect_checked(socket).await?)
}
