//! Delivering records: best-effort through a durable spool, strict before the action.
//!
//! Best-effort: a record is appended to `<state dir>/audit-spool.jsonl` (mode 0600) on the
//! tool's path — a page-cache write, so a killed pty-mcp loses nothing — and a background sender
//! posts the spool in order with backoff, remembering in `audit-spool.pos` how far the
//! collector has accepted. Records carry a `record_id`, so a record sent twice (after a crash
//! between posting and saving the position) is stored once by the collector. One process at a
//! time is the sender (a lock file); others only append. Appends and the sender's truncation
//! each hold the spool's lock, so no record is cut away; an append that fails (a full disk) is
//! cut back to where it began, so no half-written line is ever left for the sender, and every
//! reply says so while the spool cannot be written (`problem`).
//!
//! Strict: the record is posted before the action and the action is refused unless the
//! collector accepted it. The records of what then happened go through the spool, so strict
//! mode also refuses actions while the spool cannot be written (until its file system has room
//! again).

use std::io::{BufRead, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::config::{AuditConfig, Mode};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries slow down to this: a restarted collector is found again within it.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a strict record was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Free space the spool's file system needs before strict mode trusts it again after a failed
/// write.
const SPOOL_ROOM: u64 = 64 << 10;

/// Where the spool's records go.
enum Destination {
    /// The built-in collector (`audit-url`): each record posted, accepted after its fsync.
    Collector { endpoint: String, token: Option<String>, http: reqwest::Client },
    /// A syslog receiver (`audit-sink`).
    Syslog(crate::syslog::Syslog),
}

/// The audit client of one pty-mcp.
pub struct Auditor {
    destination: Destination,
    user: String,
    mode: Mode,
    spool: PathBuf,
    /// Why the last write to the spool failed; None once a write succeeds again.
    spool_failure: std::sync::Mutex<Option<String>>,
    wake: tokio::sync::Notify,
}

impl Auditor {
    /// Starts auditing to `config.url` or `config.sink` (one of them must be set) and the
    /// background sender.
    ///
    /// # Errors
    /// When the `audit-ca` bundle cannot be read, the sink's URL is not a syslog one, both a
    /// collector and a sink are set, or strict mode is asked of a sink.
    pub fn start(config: &AuditConfig, state_dir: PathBuf) -> std::io::Result<Arc<Auditor>> {
        let destination = match (&config.url, &config.sink) {
            (Some(_), Some(_)) => {
                return Err(std::io::Error::other(
                    "audit-url and audit-sink are both set: records go to a collector or to syslog; choose one",
                ));
            }
            (None, Some(_)) if config.mode == Mode::Strict => {
                return Err(std::io::Error::other(
                    "audit-mode strict needs the built-in collector (audit-url), which answers once a record is \
                     on disk; syslog acknowledges nothing",
                ));
            }
            (None, Some(sink)) => Destination::Syslog(crate::syslog::Syslog::new(sink, config.ca.as_deref())?),
            (url, None) => {
                let url = url.clone().unwrap_or_default();
                let tls = crate::tls::client_config(url.starts_with("https:"), config.ca.as_deref())?;
                Destination::Collector {
                    endpoint: format!("{}/audit", url.trim_end_matches('/')),
                    token: config.token.clone(),
                    http: reqwest::Client::builder()
                        .timeout(REQUEST_TIMEOUT)
                        .connect_timeout(Duration::from_secs(2))
                        .tls_backend_preconfigured(tls)
                        .build()
                        .map_err(std::io::Error::other)?,
                }
            }
        };
        let auditor = Arc::new(Auditor {
            destination,
            user: config.user.clone(),
            mode: config.mode,
            spool: state_dir.join("audit-spool.jsonl"),
            spool_failure: std::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        });
        let _ = std::fs::create_dir_all(&state_dir);
        tokio::spawn(send_loop(auditor.clone()));
        Ok(auditor)
    }

    /// The operator name records carry.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Records an action about to happen. Strict: posted now, `Err` unless accepted (then the
    /// action must not happen). Best-effort: spooled; never fails the action.
    ///
    /// # Errors
    /// [`Unavailable`] in strict mode when the collector did not accept the record.
    pub async fn before(&self, record: Value) -> Result<(), Unavailable> {
        match self.mode {
            Mode::Strict => {
                if let Some(problem) = self.spool_still_failing() {
                    return Err(Unavailable(format!(
                        "the audit spool cannot be written ({problem}), so what the action does could not be recorded"
                    )));
                }
                self.post(&record.to_string())
                    .await
                    .map_err(|e| Unavailable(format!("the audit collector did not accept the record: {e}")))
            }
            Mode::BestEffort => {
                self.spool(&record);
                Ok(())
            }
        }
    }

    /// Records what happened (the output of a command, the end of a session): always spooled.
    pub fn after(&self, record: Value) {
        self.spool(&record);
    }

    /// Why records cannot be kept right now (the spool's disk is full, its directory is gone),
    /// for a warning in every reply; None when all is well.
    pub fn problem(&self) -> Option<String> {
        let failure = self.spool_failure.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        Some(format!("audit records cannot be written to the spool ({failure}); they are being lost"))
    }

    fn spool(&self, record: &Value) {
        let line = format!("{record}\n");
        let failure = append_whole(&self.spool, line.as_bytes()).err().map(|e| {
            tracing::error!("audit spool {} cannot be written: {e}", self.spool.display());
            format!("{}: {e}", self.spool.display())
        });
        *self.spool_failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
        self.wake.notify_one();
    }

    /// The last spool failure, unless the spool's file system has room again.
    fn spool_still_failing(&self) -> Option<String> {
        let mut failure = self.spool_failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.as_ref()?;
        let dir = self.spool.parent().unwrap_or(std::path::Path::new("/"));
        if free_space(dir).is_some_and(|free| free >= SPOOL_ROOM) {
            *failure = None;
        }
        failure.clone()
    }

    /// Hands one record to the destination: accepted by the collector, or written and flushed
    /// to the syslog receiver.
    async fn post(&self, body: &str) -> Result<(), String> {
        let (endpoint, token, http) = match &self.destination {
            Destination::Collector { endpoint, token, http } => (endpoint, token, http),
            Destination::Syslog(sink) => return sink.send(body).await,
        };
        let mut request = http.post(endpoint).header("content-type", "application/json").body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status().as_u16() == 401 => Err("401 unauthorized: the collector refused the token".to_string()),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) if e.is_timeout() => Err(format!("{endpoint} timed out")),
            Err(e) => Err(format!("{endpoint} unreachable ({e})")),
        }
    }
}

/// Bytes and records not yet delivered, from the spool's saved position.
pub fn backlog(state_dir: &std::path::Path) -> (u64, usize) {
    let spool = state_dir.join("audit-spool.jsonl");
    let pos = read_pos(&spool);
    let Ok(mut f) = std::fs::File::open(&spool) else { return (0, 0) };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if f.seek(std::io::SeekFrom::Start(pos)).is_err() {
        return (0, 0);
    }
    let records = std::io::BufReader::new(f).lines().count();
    (len.saturating_sub(pos), records)
}

fn pos_path(spool: &std::path::Path) -> PathBuf {
    spool.with_extension("pos")
}

fn read_pos(spool: &std::path::Path) -> u64 {
    std::fs::read_to_string(pos_path(spool)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn write_pos(spool: &std::path::Path, pos: u64) {
    let tmp = pos_path(spool).with_extension("pos.tmp");
    if std::fs::write(&tmp, pos.to_string()).is_ok() {
        let _ = std::fs::rename(tmp, pos_path(spool));
    }
}

/// The next undelivered line at or after `pos`, and where it ends.
fn next_line(spool: &std::path::Path, pos: u64) -> Option<(String, u64)> {
    let mut f = std::fs::File::open(spool).ok()?;
    f.seek(std::io::SeekFrom::Start(pos)).ok()?;
    let mut line = String::new();
    let n = std::io::BufReader::new(f).read_line(&mut line).ok()?;
    // A line still being written (no newline yet) waits for the next round.
    (n > 0 && line.ends_with('\n')).then(|| (line.trim_end().to_string(), pos + n as u64))
}

/// Becomes the sender (holding the lock file) and delivers the spool in order, forever.
async fn send_loop(auditor: Arc<Auditor>) {
    let spool = auditor.spool.clone();
    let lock_path = spool.with_extension("lock");
    // Held for the life of the task: the lock says "this process sends". While another pty-mcp
    // sends (it delivers our lines too), this waits in the kernel and takes over when it exits.
    let lock = tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new().create(true).write(true).truncate(false).mode(0o600).open(lock_path)?;
        flock(&f, LOCK_EX).map(|()| f)
    })
    .await;
    let _lock = match lock {
        Ok(Ok(lock)) => lock,
        other => {
            tracing::error!("audit: cannot take the sender lock, records stay in the spool: {other:?}");
            return;
        }
    };
    let mut backoff = Duration::from_millis(250);
    let mut pos = read_pos(&spool);
    loop {
        let notified = auditor.wake.notified();
        match next_line(&spool, pos) {
            None => {
                // Everything delivered: start the spool afresh so it never grows without bound.
                if pos > 0 && truncate_if_delivered(&spool, pos) {
                    pos = 0;
                    write_pos(&spool, 0);
                }
                notified.await;
            }
            Some((line, end)) => match auditor.post(&line).await {
                Ok(()) => {
                    pos = end;
                    write_pos(&spool, pos);
                    backoff = Duration::from_millis(250);
                }
                Err(e) => {
                    // New records must not cut the pause short: the collector is what is failing.
                    tracing::warn!("audit delivery failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            },
        }
    }
}

/// Empties the spool if it holds nothing beyond `pos`, under an exclusive lock, so that no
/// record appended meanwhile (by this or another pty-mcp) is cut away.
fn truncate_if_delivered(spool: &std::path::Path, pos: u64) -> bool {
    let Ok(f) = std::fs::OpenOptions::new().write(true).open(spool) else { return false };
    flock(&f, LOCK_EX).is_ok() && f.metadata().is_ok_and(|m| m.len() == pos) && f.set_len(0).is_ok()
}

const LOCK_EX: i32 = 2;

/// Appends `line` to the spool whole or not at all, under the spool's lock.
fn append_whole(path: &std::path::Path, line: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    flock(&f, LOCK_EX)?;
    write_whole(&mut f, line)
}

/// Appends `line` to the file opened for appending whole or not at all: a write that fails
/// part-way (a full disk) is cut back to where it began, so no reader ever meets half a line
/// (the spool's sender would wait at it for good; the collector's chain would break at it).
pub(crate) fn write_whole(f: &mut std::fs::File, line: &[u8]) -> std::io::Result<()> {
    let start = f.metadata()?.len();
    f.write_all(line).inspect_err(|_| {
        let _ = f.set_len(start);
    })
}

/// Bytes an unprivileged user may still write on the file system holding `dir`.
fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills a struct we own from a NUL-terminated path.
    #[allow(clippy::unnecessary_cast)] // the field types differ between Linux and macOS
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c_dir.as_ptr(), &mut st) == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
    }
}

/// Takes an advisory lock, waiting for it; released when the file is closed.
fn flock(f: &std::fs::File, op: i32) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc_flock(f.as_raw_fd(), op) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

unsafe extern "C" {
    #[link_name = "flock"]
    fn libc_flock(fd: i32, op: i32) -> i32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spool_is_emptied_only_when_everything_in_it_was_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("audit-spool.jsonl");
        std::fs::write(&spool, "{\"a\":1}\n{\"b\":2}\n").unwrap();
        // A record appended after the sender read up to 8 bytes stays.
        assert!(!truncate_if_delivered(&spool, 8));
        assert_eq!(std::fs::metadata(&spool).unwrap().len(), 16);
        assert!(truncate_if_delivered(&spool, 16));
        assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);
    }
}
