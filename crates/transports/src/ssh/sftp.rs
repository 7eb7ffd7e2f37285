//! Files over the `sftp` subsystem on an SSH connection that is already open: one more channel
//! on the session's own connection, so no new login, the same host key and credentials.
//!
//! Reads and writes are pipelined (several requests in flight, as OpenSSH's `sftp` does): the
//! speed of a transfer is the link's, not one round trip per chunk.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use russh::ChannelMsg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::{SshError, SshLink, open_session};
use crate::files::Stat;

/// How long one request may go unanswered (a live link answers within a round trip; a dead one
/// is noticed sooner by the connection's keepalives).
const REQUEST_TIMEOUT_SECS: u64 = 30;
/// Bytes per read or write request.
const CHUNK: u32 = 64 << 10;
/// Requests in flight: 1 MiB on the way, which keeps a fast link busy and memory flat.
const DEPTH: usize = 16;

/// An SFTP session on a channel of its own.
pub struct Sftp {
    /// The connection, held for as long as the session is used (it may be one made just for it).
    link: SshLink,
    raw: Arc<RawSftpSession>,
    extensions: HashMap<String, String>,
    /// `user@host:port`, for messages.
    target: String,
}

impl SshLink {
    /// Opens the `sftp` subsystem on a new channel of this connection.
    ///
    /// # Errors
    /// [`SshError::Unsupported`] when the server has no SFTP subsystem (the message says how to
    /// enable it); [`SshError::Connect`] when the connection is gone; [`SshError::Other`] when it
    /// refuses the channel or the session does not start.
    pub async fn sftp(&self, target: &str) -> Result<Sftp, SshError> {
        let mut channel = open_session(&self.0.handle).await?;
        let refused = || {
            SshError::Unsupported(format!(
                "{target} has no SFTP subsystem, which file transfer needs: its sshd_config wants a line \
                 \"Subsystem sftp internal-sftp\" (or the path of sftp-server)"
            ))
        };
        // Only the server's "no" is a refusal; a channel that goes away is a lost connection.
        let lost = || SshError::Connect(format!("the SSH connection to {target} was lost"));
        channel.request_subsystem(true, "sftp").await.map_err(|_| lost())?;
        let answer = tokio::time::timeout(std::time::Duration::from_secs(REQUEST_TIMEOUT_SECS), async {
            loop {
                match channel.wait().await {
                    Some(ChannelMsg::Success) => return Ok(()),
                    Some(ChannelMsg::Failure) => return Err(refused()),
                    Some(ChannelMsg::Close) | None => return Err(lost()),
                    Some(_) => {}
                }
            }
        });
        answer.await.map_err(|_| SshError::Other(format!("{target} did not answer the SFTP request in time")))??;
        let raw = RawSftpSession::new(channel.into_stream());
        raw.set_timeout(REQUEST_TIMEOUT_SECS);
        let version = raw.init().await.map_err(|e| {
            SshError::Other(format!(
                "{target}'s SFTP server did not start ({e}); a login script that prints something breaks \
                 an external sftp-server (internal-sftp is immune)"
            ))
        })?;
        Ok(Sftp { link: self.clone(), raw: Arc::new(raw), extensions: version.extensions, target: target.to_string() })
    }
}

/// An SFTP error as an I/O error of the matching kind, naming what failed on which path.
fn error(e: SftpError, what: &str, path: &str) -> io::Error {
    use io::ErrorKind as K;
    let kind = match &e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => K::NotFound,
            StatusCode::PermissionDenied => K::PermissionDenied,
            StatusCode::OpUnsupported => K::Unsupported,
            StatusCode::NoConnection | StatusCode::ConnectionLost => K::ConnectionAborted,
            _ => K::Other,
        },
        SftpError::Timeout => K::TimedOut,
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => K::ConnectionAborted,
        _ => K::Other,
    };
    let detail = match &e {
        SftpError::Status(s) if !s.error_message.is_empty() => s.error_message.clone(),
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => "the SSH connection was lost".into(),
        other => other.to_string(),
    };
    io::Error::new(kind, format!("{what} {path:?}: {detail}"))
}

fn not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

fn stat_of(a: &FileAttributes) -> Stat {
    Stat { size: a.size.unwrap_or(0), mode: a.permissions.unwrap_or(0), uid: a.uid, gid: a.gid }
}

/// SFTP's string: a 32-bit length, then the bytes.
fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Sftp {
    /// `user@host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn has(&self, extension: &str) -> bool {
        self.extensions.contains_key(extension)
    }

    /// The path's attributes, not following a link at its end; `None` when nothing is there.
    pub async fn lstat(&self, path: &str) -> io::Result<Option<Stat>> {
        match self.raw.lstat(path).await {
            Ok(a) => Ok(Some(stat_of(&a.attrs))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(error(e, "cannot look at", path)),
        }
    }

    /// The attributes of what the path leads to; `None` when nothing is there.
    pub async fn stat(&self, path: &str) -> io::Result<Option<Stat>> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(stat_of(&a.attrs))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(error(e, "cannot look at", path)),
        }
    }

    /// The directory the server starts in (the user's home on OpenSSH).
    pub async fn home(&self) -> io::Result<String> {
        self.realpath(".").await
    }

    /// The path with links and `..` resolved, as the server sees it.
    pub async fn realpath(&self, path: &str) -> io::Result<String> {
        let name = self.raw.realpath(path).await.map_err(|e| error(e, "cannot resolve", path))?;
        name.files.into_iter().next().map(|f| f.filename).ok_or_else(|| io::Error::other("realpath gave no name"))
    }

    /// Opens `path` for reading.
    pub async fn open(&self, path: &str) -> io::Result<SftpReader> {
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| error(e, "cannot open", path))?
            .handle;
        Ok(SftpReader {
            raw: self.raw.clone(),
            handle,
            path: path.to_string(),
            next: 0,
            pending: FuturesOrdered::new(),
            eof: false,
        })
    }

    /// Creates `path`, which must not exist, with permissions `mode`.
    pub async fn create_new(&self, path: &str, mode: u32) -> io::Result<SftpWriter> {
        let attrs = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let handle = self.raw.open(path, flags, attrs).await.map_err(|e| error(e, "cannot create", path))?.handle;
        Ok(SftpWriter {
            raw: self.raw.clone(),
            handle,
            path: path.to_string(),
            offset: 0,
            pending: FuturesUnordered::new(),
            fsync: self.has("fsync@openssh.com"),
        })
    }

    /// Renames `from` to `to`. Without `replace`, an existing `to` makes it fail (SFTP's own
    /// rename never replaces); with it, `to` is replaced atomically where the server has
    /// `posix-rename@openssh.com`, else removed first.
    pub async fn rename(&self, from: &str, to: &str, replace: bool) -> io::Result<()> {
        if !replace {
            return self.raw.rename(from, to).await.map(drop).map_err(|e| error(e, "cannot rename to", to));
        }
        if self.has("posix-rename@openssh.com") {
            let mut data = Vec::new();
            put_string(&mut data, from);
            put_string(&mut data, to);
            return match self.raw.extended("posix-rename@openssh.com", data).await {
                Ok(russh_sftp::protocol::Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                Ok(russh_sftp::protocol::Packet::Status(s)) => Err(error(s.into(), "cannot rename to", to)),
                Ok(_) => Err(error(SftpError::UnexpectedPacket, "cannot rename to", to)),
                Err(e) => Err(error(e, "cannot rename to", to)),
            };
        }
        match self.raw.remove(to).await {
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(error(e, "cannot replace", to)),
        }
        self.raw.rename(from, to).await.map(drop).map_err(|e| error(e, "cannot rename to", to))
    }

    /// Removes the file `path`.
    pub async fn remove(&self, path: &str) -> io::Result<()> {
        // Over a connection that is gone a request would wait out its whole timeout.
        if self.link.is_closed() {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("cannot remove {path:?}: the SSH connection was lost"),
            ));
        }
        self.raw.remove(path).await.map(drop).map_err(|e| error(e, "cannot remove", path))
    }

    /// Makes the directory `path`.
    pub async fn mkdir(&self, path: &str) -> io::Result<()> {
        let attrs = FileAttributes { permissions: Some(0o755), ..FileAttributes::empty() };
        self.raw.mkdir(path, attrs).await.map(drop).map_err(|e| error(e, "cannot make the directory", path))
    }

    /// Free bytes for this user on the file system of `path`, where the server says.
    pub async fn free_space(&self, path: &str) -> Option<u64> {
        if !self.has("statvfs@openssh.com") {
            return None;
        }
        self.raw.statvfs(path).await.ok().map(|s| s.blocks_avail.saturating_mul(s.fragment_size))
    }
}

type Read = BoxFuture<'static, (u64, Result<Vec<u8>, SftpError>)>;

/// A file being read, several chunks requested ahead.
pub struct SftpReader {
    raw: Arc<RawSftpSession>,
    handle: String,
    path: String,
    /// Where the next request starts.
    next: u64,
    pending: FuturesOrdered<Read>,
    eof: bool,
}

impl SftpReader {
    /// The next chunk; `None` at the end of the file.
    pub async fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            while !self.eof && self.pending.len() < DEPTH {
                let (raw, handle, offset) = (self.raw.clone(), self.handle.clone(), self.next);
                self.next += u64::from(CHUNK);
                self.pending.push_back(Box::pin(async move {
                    (offset, raw.read(handle, offset, CHUNK).await.map(|d| d.data))
                }));
            }
            let Some((offset, read)) = self.pending.next().await else { return Ok(None) };
            match read {
                Ok(data) if !data.is_empty() => {
                    if data.len() < CHUNK as usize {
                        // A short read: what was asked beyond it starts again from the gap (the
                        // end of the file, or a server that reads less at a time).
                        self.pending = FuturesOrdered::new();
                        self.next = offset + data.len() as u64;
                    }
                    return Ok(Some(data));
                }
                Ok(_) => self.eof = true,
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => self.eof = true,
                Err(e) => return Err(error(e, "reading failed:", &self.path)),
            }
            if self.eof {
                self.pending = FuturesOrdered::new();
            }
        }
    }
}

type Write = BoxFuture<'static, Result<(), SftpError>>;

/// A file being written, several chunks in flight.
pub struct SftpWriter {
    raw: Arc<RawSftpSession>,
    handle: String,
    path: String,
    offset: u64,
    pending: FuturesUnordered<Write>,
    fsync: bool,
}

impl SftpWriter {
    /// Sends `data` (waiting only while the most requests are in flight).
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        for piece in data.chunks(CHUNK as usize) {
            while self.pending.len() >= DEPTH {
                self.settle_one().await?;
            }
            let (raw, handle, offset, piece) = (self.raw.clone(), self.handle.clone(), self.offset, piece.to_vec());
            self.offset += piece.len() as u64;
            self.pending.push(Box::pin(async move { raw.write(handle, offset, piece).await.map(drop) }));
        }
        Ok(())
    }

    async fn settle_one(&mut self) -> io::Result<()> {
        match self.pending.next().await {
            Some(Err(e)) => Err(error(e, "writing failed:", &self.path)),
            _ => Ok(()),
        }
    }

    /// Waits for every write to be acknowledged, has the server flush the file to disk where it
    /// can (`fsync@openssh.com`), gives it `mode` (and `owner`, when given and allowed), and
    /// closes it. Returns a note when the owner could not be kept.
    pub async fn finish(&mut self, mode: u32, owner: Option<(u32, u32)>) -> io::Result<Option<String>> {
        while !self.pending.is_empty() {
            self.settle_one().await?;
        }
        if self.fsync {
            let _ = self.raw.fsync(self.handle.as_str()).await;
        }
        let attrs = FileAttributes { permissions: Some(mode), ..FileAttributes::empty() };
        self.raw
            .fsetstat(self.handle.as_str(), attrs)
            .await
            .map_err(|e| error(e, "cannot set the mode of", &self.path))?;
        let mut note = None;
        if let Some((uid, gid)) = owner {
            let attrs = FileAttributes { uid: Some(uid), gid: Some(gid), ..FileAttributes::empty() };
            if self.raw.fsetstat(self.handle.as_str(), attrs).await.is_err() {
                note = Some(format!(
                    "the file's owner could not be kept (uid {uid}, gid {gid}): it now belongs to the SSH user"
                ));
            }
        }
        self.raw.close(self.handle.as_str()).await.map_err(|e| error(e, "cannot close", &self.path))?;
        Ok(note)
    }
}
