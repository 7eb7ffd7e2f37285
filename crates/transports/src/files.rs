//! A session's file system: this machine's for a local session, the host's over SFTP for an SSH
//! one. Writes are safe: a temporary file beside the target, flushed, given its mode, then
//! renamed over the target, so the target is either as it was or whole.

use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ssh::sftp::{Sftp, SftpReader, SftpWriter};
use crate::ssh::{self, SshError, SshLink, SshOptions, WeakSshLink};

/// Bytes per read of a local file.
const LOCAL_CHUNK: usize = 256 << 10;

/// What is at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Stat {
    fn kind(&self) -> u32 {
        self.mode & 0o170_000
    }

    pub fn is_dir(&self) -> bool {
        self.kind() == 0o040_000
    }

    pub fn is_symlink(&self) -> bool {
        self.kind() == 0o120_000
    }

    /// A regular file (a server that sends no type counts as one).
    pub fn is_file(&self) -> bool {
        matches!(self.kind(), 0o100_000 | 0)
    }

    /// The permission bits (with setuid, setgid and sticky).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

fn local_stat(m: &std::fs::Metadata) -> Stat {
    Stat { size: m.len(), mode: m.mode(), uid: Some(m.uid()), gid: Some(m.gid()) }
}

/// Where a session's files are.
pub enum Access {
    /// This machine's file system.
    Local,
    /// The host of an SSH session, over its connection.
    Ssh { link: SshLink, target: String },
    /// The host of a persistent session: over the connection its mirror holds now, or, while it
    /// holds none, a new one made with the session's own settings.
    Persistent { current: LinkSlot, options: Arc<SshOptions>, target: String },
}

/// The connection a persistent session's mirror attaches through, kept up to date by its dialer.
pub type LinkSlot = Arc<Mutex<WeakSshLink>>;

impl Access {
    /// The file system, ready to use.
    ///
    /// # Errors
    /// The SSH connection cannot be made, or the host has no SFTP.
    pub async fn open(&self) -> Result<Fs, SshError> {
        match self {
            Access::Local => Ok(Fs::Local),
            Access::Ssh { link, target } => Ok(Fs::Sftp(Arc::new(link.sftp(target).await?))),
            Access::Persistent { current, options, target } => {
                let held = current.lock().unwrap_or_else(|e| e.into_inner()).upgrade();
                if let Some(link) = held {
                    match link.sftp(target).await {
                        Ok(sftp) => return Ok(Fs::Sftp(Arc::new(sftp))),
                        // Gone before the session noticed: a connection of its own, below.
                        Err(e) => tracing::debug!("the persistent session's connection did not serve SFTP: {e}"),
                    }
                }
                let link = ssh::connect(options).await?.link();
                Ok(Fs::Sftp(Arc::new(link.sftp(target).await?)))
            }
        }
    }
}

/// A file system to read and write.
#[derive(Clone)]
pub enum Fs {
    Local,
    Sftp(Arc<Sftp>),
}

/// The directory part of an absolute path, and its last component.
pub fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => (".", path),
    }
}

impl Fs {
    /// Says where: `this machine`, or `user@host:port`.
    pub fn describe(&self) -> &str {
        match self {
            Fs::Local => "this machine",
            Fs::Sftp(s) => s.target(),
        }
    }

    /// The path's attributes, not following a link at its end; `None` when nothing is there.
    pub async fn lstat(&self, path: &str) -> io::Result<Option<Stat>> {
        match self {
            Fs::Local => optional(tokio::fs::symlink_metadata(path).await).map(|m| m.as_ref().map(local_stat)),
            Fs::Sftp(s) => s.lstat(path).await,
        }
    }

    /// The attributes of what the path leads to; `None` when nothing is there.
    pub async fn stat(&self, path: &str) -> io::Result<Option<Stat>> {
        match self {
            Fs::Local => optional(tokio::fs::metadata(path).await).map(|m| m.as_ref().map(local_stat)),
            Fs::Sftp(s) => s.stat(path).await,
        }
    }

    /// The user's home directory there.
    pub async fn home(&self) -> io::Result<String> {
        match self {
            Fs::Local => std::env::var("HOME").map_err(|_| io::Error::other("HOME is not set")),
            Fs::Sftp(s) => s.home().await,
        }
    }

    /// `path` with every link resolved: all of it when it exists, else its deepest existing
    /// ancestor with the rest appended (`path` is absolute and normalized).
    pub async fn realpath(&self, path: &str) -> io::Result<String> {
        if path != "/" && self.lstat(path).await?.is_none() {
            let (dir, name) = split(path);
            let dir = Box::pin(self.realpath(dir)).await?;
            return Ok(format!("{}/{name}", dir.trim_end_matches('/')));
        }
        match self {
            Fs::Local => tokio::fs::canonicalize(path)
                .await
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| named(e, "cannot resolve", path)),
            Fs::Sftp(s) => s.realpath(path).await,
        }
    }

    /// Opens `path` for reading.
    pub async fn open(&self, path: &str) -> io::Result<Source> {
        match self {
            Fs::Local => {
                let file = tokio::fs::File::open(path).await.map_err(|e| named(e, "cannot open", path))?;
                Ok(Source::Local(file, path.to_string()))
            }
            Fs::Sftp(s) => Ok(Source::Sftp(s.open(path).await?)),
        }
    }

    /// Makes the directory `path` and its missing parents.
    pub async fn mkdir_all(&self, path: &str) -> io::Result<()> {
        if path == "/" || self.stat(path).await?.is_some_and(|s| s.is_dir()) {
            return Ok(());
        }
        Box::pin(self.mkdir_all(split(path).0)).await?;
        let made = match self {
            Fs::Local => tokio::fs::create_dir(path).await.map_err(|e| named(e, "cannot make the directory", path)),
            Fs::Sftp(s) => s.mkdir(path).await,
        };
        // Made meanwhile by someone else is as good.
        match made {
            Err(_) if self.stat(path).await?.is_some_and(|s| s.is_dir()) => Ok(()),
            other => other,
        }
    }

    /// Free bytes on the file system of `path`, where that can be known.
    pub async fn free_space(&self, path: &str) -> Option<u64> {
        match self {
            Fs::Local => local_free_space(path),
            Fs::Sftp(s) => s.free_space(path).await,
        }
    }

    /// Starts writing `target` safely: a new temporary file beside it, `mode` while written (the
    /// final mode is given at [`Sink::commit`]). The temporary file is removed if the sink is
    /// dropped before it commits.
    pub async fn begin(&self, target: &str) -> io::Result<Sink> {
        let (dir, name) = split(target);
        let temp = format!("{}/.{name}.{}.pty-mcp-part", dir.trim_end_matches('/'), random_tag());
        let file = match self {
            Fs::Local => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&temp)
                    .map_err(|e| named(e, "cannot create", &temp))?;
                Writer::Local(tokio::fs::File::from_std(file))
            }
            Fs::Sftp(s) => Writer::Sftp(s.create_new(&temp, 0o600).await?),
        };
        Ok(Sink { fs: self.clone(), temp, file: Some(file) })
    }

    async fn rename(&self, from: &str, to: &str, replace: bool) -> io::Result<()> {
        match self {
            Fs::Local if replace => tokio::fs::rename(from, to).await.map_err(|e| named(e, "cannot rename to", to)),
            // A hard link fails when the target exists: no window where another file could be
            // replaced (where links are not supported: look, then rename).
            Fs::Local => match tokio::fs::hard_link(from, to).await {
                Ok(()) => tokio::fs::remove_file(from).await.map_err(|e| named(e, "cannot remove", from)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(named(e, "cannot write", to)),
                Err(_) if tokio::fs::symlink_metadata(to).await.is_err() => {
                    tokio::fs::rename(from, to).await.map_err(|e| named(e, "cannot rename to", to))
                }
                Err(e) => Err(named(e, "cannot write", to)),
            },
            Fs::Sftp(s) => s.rename(from, to, replace).await,
        }
    }

    async fn remove(&self, path: &str) -> io::Result<()> {
        match self {
            Fs::Local => tokio::fs::remove_file(path).await.map_err(|e| named(e, "cannot remove", path)),
            Fs::Sftp(s) => s.remove(path).await,
        }
    }
}

fn optional<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// An I/O error that names what failed on which path, keeping its kind.
fn named(e: io::Error, what: &str, path: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {path:?}: {e}"))
}

fn random_tag() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn local_free_space(path: &str) -> Option<u64> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statvfs writes into the zeroed struct it is given; the path is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// A file being read.
pub enum Source {
    Local(tokio::fs::File, String),
    Sftp(SftpReader),
}

impl Source {
    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self {
            Source::Local(file, path) => {
                let mut buf = vec![0u8; LOCAL_CHUNK];
                let n = file.read(&mut buf).await.map_err(|e| named(e, "reading failed:", path))?;
                buf.truncate(n);
                Ok((n > 0).then_some(buf))
            }
            Source::Sftp(r) => r.next().await,
        }
    }
}

enum Writer {
    Local(tokio::fs::File),
    Sftp(SftpWriter),
}

/// A file being written safely (see [`Fs::begin`]).
pub struct Sink {
    fs: Fs,
    /// The temporary file beside the target.
    temp: String,
    /// `None` once committed or given up.
    file: Option<Writer>,
}

/// How a written file takes its target's place.
pub struct Commit<'a> {
    pub target: &'a str,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner, when it replaces a file whose owner should be kept.
    pub owner: Option<(u32, u32)>,
    /// Whether an existing target is replaced (else its existence is an error).
    pub replace: bool,
}

impl Sink {
    /// Writes `data`.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self.file.as_mut() {
            Some(Writer::Local(f)) => f.write_all(data).await.map_err(|e| named(e, "writing failed:", &self.temp))?,
            Some(Writer::Sftp(w)) => w.write(data).await?,
            None => return Err(io::Error::other("the file was already committed")),
        }
        Ok(())
    }

    /// Flushes what was written to disk, gives it its mode (and owner), and renames it over the
    /// target. Returns notes for the caller (an owner that could not be kept). On failure the
    /// temporary file is removed.
    pub async fn commit(mut self, to: Commit<'_>) -> io::Result<Vec<String>> {
        let done = self.finish(&to).await;
        if done.is_err() {
            let _ = self.abort().await;
        }
        done
    }

    async fn finish(&mut self, to: &Commit<'_>) -> io::Result<Vec<String>> {
        let mut notes = Vec::new();
        match self.file.as_mut() {
            Some(Writer::Local(f)) => {
                f.flush().await?;
                f.sync_all().await.map_err(|e| named(e, "cannot flush", &self.temp))?;
                let perms = std::fs::Permissions::from_mode(to.mode);
                f.set_permissions(perms).await.map_err(|e| named(e, "cannot set the mode of", &self.temp))?;
                if let Some((uid, gid)) = to.owner {
                    let std = f.try_clone().await?.into_std().await;
                    if std::os::unix::fs::fchown(&std, Some(uid), Some(gid)).is_err() {
                        notes.push(format!(
                            "the file's owner could not be kept (uid {uid}, gid {gid}): it now belongs to this user"
                        ));
                    }
                }
            }
            Some(Writer::Sftp(w)) => notes.extend(w.finish(to.mode, to.owner).await?),
            None => return Err(io::Error::other("the file was already committed")),
        }
        self.file = None;
        self.fs.rename(&self.temp, to.target, to.replace).await?;
        self.temp.clear();
        Ok(notes)
    }

    /// Gives up: the temporary file is closed and removed. Returns its path when it could not
    /// be removed (the link is gone).
    pub async fn abort(mut self) -> Option<String> {
        self.file = None;
        let temp = std::mem::take(&mut self.temp);
        if temp.is_empty() {
            return None;
        }
        let e = self.fs.remove(&temp).await.err()?;
        tracing::warn!("the partial file {temp:?} on {} could not be removed: {e}", self.fs.describe());
        Some(temp)
    }
}

impl Drop for Sink {
    /// Dropped before committing (the call was abandoned): the temporary file goes, on a task of
    /// its own for a remote one.
    fn drop(&mut self) {
        let temp = std::mem::take(&mut self.temp);
        if temp.is_empty() {
            return;
        }
        self.file = None;
        match &self.fs {
            Fs::Local => {
                let _ = std::fs::remove_file(Path::new(&temp));
            }
            Fs::Sftp(s) => {
                let s = s.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = s.remove(&temp).await;
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    fn commit(target: &str, replace: bool) -> Commit<'_> {
        Commit { target, mode: 0o640, owner: None, replace }
    }

    #[tokio::test]
    async fn a_write_lands_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.conf");
        let t = target.to_str().unwrap();
        std::fs::write(&target, "old").unwrap();

        // Not replaced unless asked: the temporary file goes, the old file stays.
        let mut sink = Fs::Local.begin(t).await.unwrap();
        sink.write(b"new").await.unwrap();
        let e = sink.commit(commit(t, false)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            (std::fs::read_to_string(&target).unwrap().as_str(), names(dir.path())),
            ("old", vec!["f.conf".into()])
        );

        // Replaced, with the mode given.
        let mut sink = Fs::Local.begin(t).await.unwrap();
        sink.write(b"new").await.unwrap();
        sink.commit(commit(t, true)).await.unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o640);

        // Given up, or dropped half-way: nothing but the target remains.
        let mut sink = Fs::Local.begin(t).await.unwrap();
        sink.write(b"half").await.unwrap();
        sink.abort().await;
        let mut sink = Fs::Local.begin(t).await.unwrap();
        sink.write(b"half").await.unwrap();
        drop(sink);
        assert_eq!(
            (std::fs::read_to_string(&target).unwrap().as_str(), names(dir.path())),
            ("new", vec!["f.conf".into()])
        );
    }

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(split("/etc/hosts"), ("/etc", "hosts"));
        assert_eq!(split("/hosts"), ("/", "hosts"));
    }
}
