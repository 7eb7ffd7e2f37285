//! Where the daemon listens, and the checks both ends make before trusting that place.
//!
//! The socket lives in a directory only its user can enter: `$XDG_RUNTIME_DIR/ai-tmux/`, else
//! `~/.ai-tmux/` (never a guessable world-writable path like `/tmp`, where another user could
//! put a socket of their own first and capture keystrokes). The daemon checks each peer's uid;
//! the client checks the socket's owner before sending a byte.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::net::{UnixListener, UnixStream};

/// How long a client waits for a daemon it started to say it listens.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// `$XDG_RUNTIME_DIR/ai-tmux/ai-tmux.sock`, else `~/.ai-tmux/ai-tmux.sock`.
pub fn default_socket() -> PathBuf {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("ai-tmux"))
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".ai-tmux"));
    dir.join("ai-tmux.sock")
}

fn my_uid() -> u32 {
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

/// Takes the start-up lock (`ai-tmux.lock` beside the socket), waiting for another starting
/// daemon to finish binding. Released when the returned file is dropped.
async fn startup_lock(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join("ai-tmux.lock"))?;
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
    let dir = private_dir(socket)?;
    let _lock = startup_lock(&dir).await?;
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
