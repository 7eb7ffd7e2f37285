//! `upload_file` and `download_file`: files in and out of a session, over its own connection
//! (SFTP on an SSH session's connection; this machine's file system for a local session).
//!
//! A transfer is planned first (paths resolved, the file system opened, everything checked that
//! can be before a byte moves), so that the server can put the plan to the policy and the audit
//! log; then it runs, streamed, hashed on the way, bounded by a deadline and a size limit, and
//! stopped by cancellation. A write never leaves a half-written target (see
//! [`transports::files::Fs::begin`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use transports::files::{Access, Commit, Fs, Sink, Source, Stat, split};

use crate::error::{Code, ToolError};
use crate::manager::{Entry, Sessions};
use crate::params::{DownloadParams, UploadParams};
use crate::reply::DEFAULT_MAX_OUTPUT;

/// The most `content` an upload may carry (bytes, decoded); larger files go by `local_path`.
pub const MAX_CONTENT: usize = 1 << 20;
/// The largest file a download returns in its reply (read whole to hash it; the reply holds at
/// most `max_bytes` of it). Larger ones go to `local_path`.
pub const MAX_INLINE_READ: u64 = 64 << 20;
/// A transfer's deadline when the call gives none, and the longest it may give (seconds).
const DEFAULT_TIMEOUT_SECS: i64 = 600;
const MAX_TIMEOUT_SECS: i64 = 86_400;
/// Mode of a new file uploaded from `content`.
const NEW_FILE_MODE: u32 = 0o644;

/// Server-wide transfer settings.
#[derive(Debug, Clone, Copy)]
pub struct FileSettings {
    /// The largest file a transfer moves (`--max-transfer`).
    pub max_transfer: u64,
    /// Where operators over HTTP may read and write `local_path` (`--local-files`); they may not
    /// at all without it. Over stdio the local user may use any path.
    pub local_root: Option<&'static Path>,
}

/// How far a transfer is, for progress notifications.
#[derive(Debug, Default)]
pub struct Meter {
    pub done: AtomicU64,
    /// The size, once known.
    pub total: AtomicU64,
}

/// Which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// What a transfer reads from.
enum Input {
    /// Bytes given in the call.
    Content(Vec<u8>),
    /// A file on the session's side or this machine's.
    File(Fs, String),
}

/// What a transfer writes to.
enum Output {
    /// A file on the session's side or this machine's: replace it if it exists?
    File { fs: Fs, path: String, existing: Option<Stat>, overwrite: bool, parents: bool },
    /// The reply: at most this many bytes of the file, as text or base64.
    Reply { cap: usize, base64: bool },
}

/// A transfer ready to run: everything that could be checked without moving data was.
pub struct Plan {
    pub entry: Arc<Entry>,
    pub direction: Direction,
    /// The path on the session's side, absolute.
    pub path: String,
    /// The path on this machine, for `local_path`.
    pub local_path: Option<String>,
    /// Bytes to move, when known beforehand.
    pub size: Option<u64>,
    /// Permission bits the written file gets.
    mode: u32,
    from: Input,
    to: Output,
    deadline: Duration,
    limit: u64,
}

/// The reply of `upload_file`, and of `download_file` with `local_path`.
#[derive(Debug, Serialize)]
pub struct Transferred {
    /// The file written, absolute (on the session's side for an upload, here for a download).
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Its permissions, octal.
    pub mode: String,
    /// Whether it replaced an existing file.
    pub replaced: bool,
    /// The file read (the session's for a download), absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The reply of `download_file` without `local_path`.
#[derive(Debug, Serialize)]
pub struct Downloaded {
    pub path: String,
    pub size: u64,
    /// Of the whole file.
    pub sha256: String,
    /// The file, or its head and tail when `truncated`.
    pub content: String,
    /// `text`, or `base64` (asked for, or because the file is not UTF-8 text).
    pub encoding: &'static str,
    pub truncated: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An I/O failure in the error code agents act on.
fn io_error(e: &io::Error) -> ToolError {
    use io::ErrorKind as K;
    let (code, retryable) = match e.kind() {
        K::NotFound => (Code::FileNotFound, false),
        K::PermissionDenied => (Code::PermissionDenied, false),
        K::AlreadyExists => (Code::FileExists, false),
        K::StorageFull | K::QuotaExceeded => (Code::NoSpace, true),
        K::IsADirectory | K::NotADirectory => (Code::InvalidParams, false),
        _ => (Code::TransferFailed, true),
    };
    ToolError { code, message: e.to_string(), retryable }
}

/// Where a session's files are, opened for a transfer.
async fn open_fs(entry: &Entry) -> Result<Fs, ToolError> {
    let Some(access) = entry.files() else {
        return Err(ToolError::new(
            Code::NotSupported,
            format!(
                "a {} session carries no files: a serial console has no file transfer pty-mcp can use. Move small \
                 text by typing it (a here-document at the device's shell), or use the device's own way (TFTP, \
                 XMODEM, a USB stick)",
                entry.kind
            ),
        ));
    };
    if !entry.session.is_alive() && !matches!(*access, Access::Local) {
        return Err(ToolError::new(Code::SessionClosed, "the session has ended, and its connection with it"));
    }
    access.open().await.map_err(|e| crate::tools::ssh::ssh_error(&e))
}

/// `path` with `.` and `..` and repeated slashes resolved (lexically, from the root).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn check_path(name: &str, path: &str) -> Result<(), ToolError> {
    if path.trim().is_empty() {
        return Err(ToolError::invalid(format!("{name} is required")));
    }
    if path.contains('\0') || path.len() > 4096 {
        return Err(ToolError::invalid(format!("{name} is not a path (a NUL byte, or over 4096 bytes)")));
    }
    if path.ends_with('/') {
        return Err(ToolError::invalid(format!("{name} {path:?} names a directory; give the file's path")));
    }
    Ok(())
}

/// The session-side path, absolute, with links resolved (what the policy judges and the reply
/// names): all of it for a file to read, all but the last component for one to write (a link
/// there is refused, not followed). `~/…` is from the user's home, a relative path from the
/// session's working directory (known through shell integration; over SFTP, the server's start
/// directory when it is not known).
async fn session_path(fs: &Fs, entry: &Entry, path: &str, direction: Direction) -> Result<String, ToolError> {
    let full = absolute(fs, entry, path).await?;
    let resolved = match direction {
        Direction::Download => fs.realpath(&full).await,
        Direction::Upload => {
            let (dir, name) = split(&full);
            fs.realpath(dir).await.map(|d| format!("{}/{name}", d.trim_end_matches('/')))
        }
    };
    resolved.map_err(|e| io_error(&e))
}

/// The session-side path, absolute and normalized.
async fn absolute(fs: &Fs, entry: &Entry, path: &str) -> Result<String, ToolError> {
    check_path("remote_path", path)?;
    let io = |e: io::Error| io_error(&e);
    let full = if path.starts_with('/') {
        path.to_string()
    } else if path == "~" || path.starts_with("~/") {
        format!("{}/{}", fs.home().await.map_err(io)?, &path[1..])
    } else if path.starts_with('~') {
        return Err(ToolError::invalid(format!("remote_path {path:?}: only ~/ (your own home) is understood")));
    } else if let Some(cwd) = entry.session.with_shell(|s| s.cwd.clone()) {
        format!("{cwd}/{path}")
    } else if matches!(fs, Fs::Sftp(_)) {
        format!("{}/{path}", fs.home().await.map_err(io)?)
    } else {
        return Err(ToolError::invalid(format!(
            "remote_path {path:?} is relative, and this session's working directory is not known (no shell \
             integration): give an absolute path"
        )));
    };
    Ok(normalize(&full))
}

/// This machine's path for `local_path`: relative to the server's working directory, `~/` from
/// the home; over HTTP only inside `--local-files` (checked on the real path, links resolved).
async fn local_path(path: &str, http: bool, settings: &FileSettings) -> Result<String, ToolError> {
    check_path("local_path", path)?;
    let full = if path.starts_with('/') {
        PathBuf::from(path)
    } else if let Some(rest) = path.strip_prefix("~/") {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest)
    } else {
        std::env::current_dir().map_err(|e| io_error(&e))?.join(path)
    };
    let full = normalize(&full.to_string_lossy());
    if http {
        let Some(root) = settings.local_root else {
            return Err(ToolError::new(
                Code::PermissionDenied,
                "local_path is not available over HTTP: this server's files are not the operator's. Use content \
                 and download without local_path, or start the server with --local-files DIR",
            ));
        };
        // With every link resolved, it must lie inside the root.
        let real = PathBuf::from(Fs::Local.realpath(&full).await.map_err(|e| io_error(&e))?);
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        if !real.starts_with(&root) {
            return Err(ToolError::new(
                Code::PermissionDenied,
                format!("local_path {path:?} is outside {} (--local-files)", root.display()),
            ));
        }
    }
    Ok(full)
}

fn timeout(secs: Option<i64>) -> Duration {
    Duration::from_secs(secs.unwrap_or(DEFAULT_TIMEOUT_SECS).clamp(1, MAX_TIMEOUT_SECS) as u64)
}

fn octal_mode(mode: Option<i64>) -> Result<Option<u32>, ToolError> {
    let Some(m) = mode else { return Ok(None) };
    let bad = || ToolError::invalid(format!("mode {m}: give octal permission digits, e.g. \"0644\" or 755"));
    let digits = m.to_string();
    let value = u32::from_str_radix(&digits, 8).map_err(|_| bad())?;
    if m < 0 || value > 0o7777 {
        return Err(bad());
    }
    Ok(Some(value))
}

fn encoding(e: Option<&str>) -> Result<bool, ToolError> {
    match e.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("text") | Some("utf-8") | Some("utf8") => Ok(false),
        Some("base64") => Ok(true),
        Some(other) => Err(ToolError::invalid(format!("encoding {other:?}: use text or base64"))),
    }
}

/// What is at the target of a write, checked: not a link, not a directory, not there unless it
/// may be replaced; its parent a directory (or to be made).
async fn writable_target(fs: &Fs, path: &str, overwrite: bool, parents: bool) -> Result<Option<Stat>, ToolError> {
    let io = |e: io::Error| io_error(&e);
    let existing = fs.lstat(path).await.map_err(io)?;
    match existing {
        Some(s) if s.is_symlink() => {
            return Err(ToolError::invalid(format!(
                "{path} on {} is a symbolic link: pty-mcp does not write through a link; give the path it points to",
                fs.describe()
            )));
        }
        Some(s) if s.is_dir() => {
            return Err(ToolError::invalid(format!(
                "{path} on {} is a directory; give the file's path inside it",
                fs.describe()
            )));
        }
        Some(s) if !s.is_file() => {
            return Err(ToolError::invalid(format!("{path} on {} is not a regular file", fs.describe())));
        }
        Some(_) if !overwrite => {
            return Err(ToolError::new(
                Code::FileExists,
                format!("{path} already exists on {}; pass overwrite: true to replace it", fs.describe()),
            ));
        }
        _ => {}
    }
    let dir = split(path).0;
    match fs.stat(dir).await.map_err(io)? {
        Some(s) if s.is_dir() => {}
        Some(_) => return Err(ToolError::invalid(format!("{dir} on {} is not a directory", fs.describe()))),
        None if parents => {}
        None => {
            return Err(ToolError::new(
                Code::FileNotFound,
                format!(
                    "the directory {dir} does not exist on {}; pass create_parents: true to make it",
                    fs.describe()
                ),
            ));
        }
    }
    Ok(existing)
}

/// Plans an upload: the bytes (content) or file (local_path) to send, and where.
///
/// # Errors
/// Bad parameters, a session without files, a source or target that cannot be used.
pub async fn plan_upload(sessions: &Sessions<'_>, settings: &FileSettings, p: UploadParams) -> Result<Plan, ToolError> {
    let entry = sessions.get_live(&p.session_id).await?;
    let o = &p.options;
    let base64 = encoding(o.encoding.as_deref())?;
    let mode = octal_mode(o.mode)?;
    let http = sessions.caller.operator.is_some();
    let (from, size, local, source_mode) = match (p.content, p.local_path.filter(|l| !l.is_empty())) {
        (Some(_), Some(_)) => return Err(ToolError::invalid("give content or local_path, not both")),
        (None, None) => return Err(ToolError::invalid("give content (small) or local_path (a file on this machine)")),
        (Some(content), None) => {
            // Bounded before decoding: base64 is 4/3 of the bytes.
            if content.len() > MAX_CONTENT * 4 / 3 + 4 {
                return Err(too_large_content(content.len() as u64));
            }
            let bytes = if base64 {
                base64::engine::general_purpose::STANDARD
                    .decode(content.trim())
                    .map_err(|e| ToolError::invalid(format!("content is not valid base64: {e}")))?
            } else {
                content.into_bytes()
            };
            if bytes.len() > MAX_CONTENT {
                return Err(too_large_content(bytes.len() as u64));
            }
            let size = bytes.len() as u64;
            (Input::Content(bytes), size, None, NEW_FILE_MODE)
        }
        (None, Some(local)) => {
            let path = local_path(&local, http, settings).await?;
            let stat = Fs::Local.stat(&path).await.map_err(|e| io_error(&e))?.ok_or_else(|| {
                ToolError::new(Code::FileNotFound, format!("local_path {path} does not exist on this machine"))
            })?;
            if !stat.is_file() {
                return Err(ToolError::invalid(format!("local_path {path} is not a regular file")));
            }
            (Input::File(Fs::Local, path.clone()), stat.size, Some(path), stat.permissions() & 0o777)
        }
    };
    if size > settings.max_transfer {
        return Err(too_large(size, settings.max_transfer));
    }
    let fs = open_fs(&entry).await?;
    let path = session_path(&fs, &entry, &p.remote_path, Direction::Upload).await?;
    let (overwrite, parents) = (o.overwrite.unwrap_or(false), o.create_parents.unwrap_or(false));
    let existing = writable_target(&fs, &path, overwrite, parents).await?;
    Ok(Plan {
        entry,
        direction: Direction::Upload,
        path: path.clone(),
        local_path: local,
        size: Some(size),
        mode: mode.or(existing.map(|s| s.permissions())).unwrap_or(source_mode),
        from,
        to: Output::File { fs, path, existing, overwrite, parents },
        deadline: timeout(o.timeout),
        limit: settings.max_transfer,
    })
}

/// Plans a download: the session's file, to this machine's `local_path` or into the reply.
///
/// # Errors
/// Bad parameters, a session without files, a missing or unreadable file.
pub async fn plan_download(
    sessions: &Sessions<'_>,
    settings: &FileSettings,
    p: DownloadParams,
) -> Result<Plan, ToolError> {
    let entry = sessions.get_live(&p.session_id).await?;
    let o = &p.options;
    let base64 = encoding(o.encoding.as_deref())?;
    let mode = octal_mode(o.mode)?;
    let http = sessions.caller.operator.is_some();
    let local = match p.local_path.filter(|l| !l.is_empty()) {
        Some(l) => Some(local_path(&l, http, settings).await?),
        None => None,
    };
    let fs = open_fs(&entry).await?;
    let path = session_path(&fs, &entry, &p.remote_path, Direction::Download).await?;
    let stat = fs
        .stat(&path)
        .await
        .map_err(|e| io_error(&e))?
        .ok_or_else(|| ToolError::new(Code::FileNotFound, format!("{path} does not exist on {}", fs.describe())))?;
    if stat.is_dir() {
        return Err(ToolError::invalid(format!(
            "{path} on {} is a directory; download its files one by one (or tar them first)",
            fs.describe()
        )));
    }
    if !stat.is_file() {
        return Err(ToolError::invalid(format!("{path} on {} is not a regular file", fs.describe())));
    }
    if stat.size > settings.max_transfer {
        return Err(too_large(stat.size, settings.max_transfer));
    }
    let to = match &local {
        Some(local) => {
            let (overwrite, parents) = (o.overwrite.unwrap_or(false), o.create_parents.unwrap_or(false));
            let existing = writable_target(&Fs::Local, local, overwrite, parents).await?;
            Output::File { fs: Fs::Local, path: local.clone(), existing, overwrite, parents }
        }
        None => {
            if stat.size > MAX_INLINE_READ {
                return Err(ToolError::new(
                    Code::TooLarge,
                    format!(
                        "{path} is {} bytes: too large to read into a reply (at most {MAX_INLINE_READ}); give local_path \
                         to save it here, or look at parts of it in the session (head, tail, grep)",
                        stat.size
                    ),
                ));
            }
            let cap = p.max_bytes.unwrap_or(DEFAULT_MAX_OUTPUT as i64).clamp(1, MAX_CONTENT as i64) as usize;
            Output::Reply { cap, base64 }
        }
    };
    let existing_mode = match &to {
        Output::File { existing, .. } => existing.map(|s| s.permissions()),
        Output::Reply { .. } => None,
    };
    Ok(Plan {
        entry,
        direction: Direction::Download,
        path: path.clone(),
        local_path: local,
        size: Some(stat.size),
        // A new local file: the remote one's permissions, without set-id bits.
        mode: mode.or(existing_mode).unwrap_or(stat.permissions() & 0o777),
        from: Input::File(fs, path),
        to,
        deadline: timeout(o.timeout),
        limit: settings.max_transfer,
    })
}

fn too_large_content(n: u64) -> ToolError {
    ToolError::new(
        Code::TooLarge,
        format!("content is {n} bytes, over the {MAX_CONTENT} content carries; write it to a file and give local_path"),
    )
}

fn too_large(size: u64, limit: u64) -> ToolError {
    ToolError::new(
        Code::TooLarge,
        format!("the file is {size} bytes, over this server's transfer limit of {limit} bytes (--max-transfer)"),
    )
}

/// The reply's share of a downloaded file: all of it up to the cap, else its head and tail.
struct Kept {
    cap: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl Kept {
    fn new(cap: usize) -> Kept {
        Kept { cap, head: Vec::new(), tail: Default::default(), total: 0 }
    }

    fn put(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.cap.saturating_sub(self.head.len());
        let n = room.min(data.len());
        self.head.extend_from_slice(&data[..n]);
        data = &data[n..];
        let keep = self.cap / 2;
        if data.len() >= keep {
            data = &data[data.len() - keep..];
            self.tail.clear();
        }
        self.tail.extend(data);
        while self.tail.len() > keep {
            self.tail.pop_front();
        }
    }

    /// Text (or base64) of what was kept, whether something was left out, and how much.
    fn shape(self, base64: bool) -> (String, &'static str, bool, u64) {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        if self.total as usize <= self.cap {
            return match (base64, String::from_utf8(self.head)) {
                (false, Ok(text)) => (text, "text", false, 0),
                (_, Ok(text)) => (b64(text.as_bytes()), "base64", false, 0),
                (_, Err(e)) => (b64(e.as_bytes()), "base64", false, 0),
            };
        }
        if base64 || std::str::from_utf8(&self.head[..engine::text::safe_cut(&self.head, self.cap / 2)]).is_err() {
            // Bytes: the head only, as much as the cap holds.
            let omitted = self.total - self.head.len() as u64;
            return (b64(&self.head), "base64", true, omitted);
        }
        let head_len = utf8_prefix(&self.head[..self.cap / 2]);
        let tail: Vec<u8> = self.tail.into_iter().collect();
        let skip = tail.iter().take(3).take_while(|&&b| b & 0xC0 == 0x80).count();
        let tail = &tail[skip..];
        let omitted = self.total - head_len as u64 - tail.len() as u64;
        let text = format!(
            "{}\n[... {omitted} bytes omitted (bytes {head_len}..{} of the file); download_file with local_path gets all of it ...]\n{}",
            String::from_utf8_lossy(&self.head[..head_len]),
            self.total - tail.len() as u64,
            String::from_utf8_lossy(tail)
        );
        (text, "text", true, omitted)
    }
}

/// The longest prefix of `bytes` that is whole UTF-8.
fn utf8_prefix(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    }
}

/// Why a running transfer stopped early.
enum Stop {
    Cancelled,
    TimedOut,
    Io(io::Error),
    OverLimit(u64),
}

impl Stop {
    fn error(self, plan_path: &str, deadline: Duration, partial: Option<String>) -> ToolError {
        let left = partial.map_or(String::new(), |p| {
            format!("; the partial file {p} could not be removed (the link is gone): remove it by hand")
        });
        match self {
            Stop::Cancelled => {
                ToolError::new(Code::TransferFailed, format!("cancelled by the client; {plan_path} is untouched{left}"))
            }
            Stop::TimedOut => ToolError {
                code: Code::TransferFailed,
                message: format!(
                    "the transfer did not finish within {} s (timeout); {plan_path} is untouched{left}",
                    deadline.as_secs()
                ),
                retryable: true,
            },
            Stop::OverLimit(limit) => ToolError::new(
                Code::TooLarge,
                format!("the file grew past this server's transfer limit of {limit} bytes while it was read{left}"),
            ),
            Stop::Io(e) => {
                let mut err = io_error(&e);
                err.message = format!("{}; {plan_path} is untouched{left}", err.message);
                err
            }
        }
    }
}

/// Either outcome of a transfer.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Outcome {
    File(Transferred),
    Reply(Downloaded),
}

impl Outcome {
    /// The size and digest moved, for the audit record.
    pub fn digest(&self) -> (u64, &str) {
        match self {
            Outcome::File(t) => (t.size, &t.sha256),
            Outcome::Reply(d) => (d.size, &d.sha256),
        }
    }
}

/// Runs a planned transfer. Progress goes to `meter`; `stop` cancels it (the temporary file is
/// removed before the call returns).
///
/// # Errors
/// The transfer failed, timed out, was cancelled or grew past the limit; the target is as it was.
pub async fn run(plan: Plan, meter: &Meter, stop: CancellationToken) -> Result<Outcome, ToolError> {
    let started = Instant::now();
    let deadline = started + plan.deadline;
    if let Some(size) = plan.size {
        meter.total.store(size, Ordering::Relaxed);
    }
    let mut source = match &plan.from {
        Input::Content(_) => None,
        Input::File(fs, path) => Some(fs.open(path).await.map_err(|e| io_error(&e))?),
    };
    let mut hash = Sha256::new();
    match plan.to {
        Output::Reply { cap, base64 } => {
            let mut kept = Kept::new(cap);
            let dest = Dest::Reply(&mut kept);
            let copied = copy(&plan.from, source.as_mut(), dest, &mut hash, meter, (deadline, plan.limit), &stop).await;
            copied.map_err(|s| s.error(&plan.path, plan.deadline, None))?;
            let (content, encoding, truncated, omitted_bytes) = kept.shape(base64);
            let mut warnings = Vec::new();
            if encoding == "base64" && !base64 {
                warnings.push("the file is not UTF-8 text: content is base64".to_string());
            }
            Ok(Outcome::Reply(Downloaded {
                path: plan.path,
                size: meter.done.load(Ordering::Relaxed),
                sha256: hex(&hash.finalize()),
                content,
                encoding,
                truncated,
                omitted_bytes,
                warnings,
            }))
        }
        Output::File { fs, path, existing, overwrite, parents } => {
            if parents {
                fs.mkdir_all(split(&path).0).await.map_err(|e| io_error(&e))?;
            }
            let mut sink = fs.begin(&path).await.map_err(|e| io_error(&e))?;
            let dest = Dest::Sink(&mut sink);
            let copied = copy(&plan.from, source.as_mut(), dest, &mut hash, meter, (deadline, plan.limit), &stop).await;
            if let Err(s) = copied {
                let stop = match s {
                    // A remote disk that filled says only "Failure": say what it was.
                    Stop::Io(e) if e.kind() == io::ErrorKind::Other && full(&fs, &path).await => Stop::Io(
                        io::Error::new(io::ErrorKind::StorageFull, format!("{e}: no space left on {}", fs.describe())),
                    ),
                    s => s,
                };
                let left = sink.abort().await;
                return Err(stop.error(&path, plan.deadline, left));
            }
            let owner = existing.and_then(|s| s.uid.zip(s.gid));
            let commit = Commit { target: &path, mode: plan.mode, owner, replace: overwrite };
            let warnings = sink.commit(commit).await.map_err(|e| {
                let mut err = io_error(&e);
                if e.kind() == io::ErrorKind::AlreadyExists {
                    err.message = format!(
                        "{path} appeared on {} during the transfer; pass overwrite: true to replace it",
                        fs.describe()
                    );
                }
                err
            })?;
            Ok(Outcome::File(Transferred {
                path,
                size: meter.done.load(Ordering::Relaxed),
                sha256: hex(&hash.finalize()),
                mode: format!("{:04o}", plan.mode),
                replaced: existing.is_some(),
                source: match plan.direction {
                    Direction::Download => Some(plan.path),
                    Direction::Upload => None,
                },
                duration_ms: started.elapsed().as_millis() as u64,
                warnings,
            }))
        }
    }
}

/// Whether the disk under `path` is (nearly) full.
async fn full(fs: &Fs, path: &str) -> bool {
    fs.free_space(split(path).0).await.is_some_and(|free| free < 64 << 10)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where copied bytes go.
enum Dest<'a> {
    Sink(&'a mut Sink),
    Reply(&'a mut Kept),
}

/// Copies the source (the content, or the open file) to `dest`, hashing and counting on the way.
async fn copy(
    from: &Input,
    source: Option<&mut Source>,
    dest: Dest<'_>,
    hash: &mut Sha256,
    meter: &Meter,
    bounds: (Instant, u64),
    stop: &CancellationToken,
) -> Result<(), Stop> {
    let (deadline, limit) = bounds;
    let mut put = async |chunk: &[u8], dest: &mut Dest<'_>| -> Result<(), Stop> {
        tally(chunk, hash, meter, limit)?;
        match dest {
            Dest::Sink(sink) => bounded(sink.write(chunk), deadline, stop).await,
            Dest::Reply(kept) => {
                kept.put(chunk);
                Ok(())
            }
        }
    };
    let mut dest = dest;
    match (from, source) {
        (Input::Content(bytes), _) => put(bytes, &mut dest).await,
        (Input::File(..), Some(source)) => {
            while let Some(chunk) = bounded(source.next(), deadline, stop).await? {
                put(&chunk, &mut dest).await?;
            }
            Ok(())
        }
        (Input::File(..), None) => Ok(()),
    }
}

fn tally(chunk: &[u8], hash: &mut Sha256, meter: &Meter, limit: u64) -> Result<(), Stop> {
    let done = meter.done.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
    if done > limit {
        return Err(Stop::OverLimit(limit));
    }
    hash.update(chunk);
    Ok(())
}

/// `io` within the deadline, unless cancelled first.
async fn bounded<T>(
    io: impl std::future::Future<Output = io::Result<T>>,
    deadline: Instant,
    stop: &CancellationToken,
) -> Result<T, Stop> {
    tokio::select! {
        r = io => r.map_err(Stop::Io),
        _ = tokio::time::sleep_until(deadline) => Err(Stop::TimedOut),
        _ = stop.cancelled() => Err(Stop::Cancelled),
    }
}

/// The audit record's details of a plan (never the content).
pub fn describe(plan: &Plan) -> serde_json::Value {
    serde_json::json!({
        "direction": plan.direction.as_str(),
        "path": plan.path,
        "local_path": plan.local_path,
        "size": plan.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_lexically_from_the_root() {
        assert_eq!(normalize("/etc/./nginx//nginx.conf"), "/etc/nginx/nginx.conf");
        assert_eq!(normalize("/tmp/../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("/../../x"), "/x");
        assert_eq!(normalize("/a/b/.."), "/a");
    }

    #[test]
    fn modes_are_octal_digits() {
        assert_eq!(octal_mode(Some(644)).unwrap(), Some(0o644));
        assert_eq!(octal_mode(Some(4755)).unwrap(), Some(0o4755));
        assert_eq!(octal_mode(None).unwrap(), None);
        for bad in [999, 80, -1, 17777] {
            assert!(octal_mode(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reply_keeps_the_whole_file_or_its_head_and_tail() {
        let mut k = Kept::new(100);
        k.put(b"short\n");
        assert_eq!(k.shape(false), ("short\n".to_string(), "text", false, 0));

        let text: String = (0..100).map(|i| format!("{i:03}\n")).collect();
        let mut k = Kept::new(100);
        for chunk in text.as_bytes().chunks(7) {
            k.put(chunk);
        }
        let (content, encoding, truncated, omitted) = k.shape(false);
        assert!(truncated && encoding == "text", "{content}");
        assert!(content.starts_with("000\n001\n") && content.ends_with("098\n099\n"), "{content}");
        assert_eq!(omitted, 400 - 100);

        // Not UTF-8: base64 of the bytes, said so.
        let mut k = Kept::new(100);
        k.put(&[0xff, 0xfe, 0x00]);
        assert_eq!(k.shape(false), ("//4A".to_string(), "base64", false, 0));

        // A character cut by the cap is not split.
        let mut k = Kept::new(10);
        k.put("ééééééééééééé".as_bytes());
        let (content, encoding, ..) = k.shape(false);
        assert_eq!(encoding, "text");
        assert!(!content.contains('\u{fffd}'), "{content}");
    }

    #[tokio::test]
    async fn local_paths_over_http_stay_inside_the_given_directory() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        let root_path: &'static Path = Box::leak(root.path().to_path_buf().into_boxed_path());
        let settings = FileSettings { max_transfer: 1 << 30, local_root: Some(root_path) };
        let inside = root.path().join("a/new.txt");
        assert!(local_path(inside.to_str().unwrap(), true, &settings).await.is_ok());
        for bad in [
            outside.path().join("x"),
            root.path().join("../x"),
            root.path().join("escape/x"),
            root.path().join("escape/deeper/x"),
        ] {
            let e = local_path(bad.to_str().unwrap(), true, &settings).await.unwrap_err();
            assert_eq!(e.code, Code::PermissionDenied, "{bad:?}: {e:?}");
        }
        let none = FileSettings { max_transfer: 1 << 30, local_root: None };
        assert_eq!(local_path("/tmp/x", true, &none).await.unwrap_err().code, Code::PermissionDenied);
        assert_eq!(
            local_path("/tmp/x", false, &none).await.unwrap(),
            "/tmp/x",
            "over stdio: the local user's own files"
        );
    }
}
