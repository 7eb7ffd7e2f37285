//! The audit configuration file: `<config dir>/pty-mcp/config`, `key=value` lines, `#` comments,
//! mode 0600. Keys: `audit-url`, `audit-user`, `audit-mode` (`best-effort` | `strict`),
//! `audit-token` (64 hex characters), and ours: `audit-ca` (a PEM CA bundle trusted for an
//! `https://` collector or a `syslog+tls://` sink besides the system's roots) and `audit-sink`
//! (`syslog://host:port` or `syslog+tls://host:port`: records go to the team's syslog pipeline
//! instead of a collector). `audit disable` comments out `audit-url`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Whether an action waits for the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Records are spooled and delivered in the background; actions never wait.
    BestEffort,
    /// An action happens only after the collector accepted its record.
    Strict,
}

impl Mode {
    /// Parses `best-effort` or `strict`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "best-effort" | "besteffort" | "" => Some(Mode::BestEffort),
            "strict" => Some(Mode::Strict),
            _ => None,
        }
    }
}

/// The settings of the audit client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The collector's base URL (records go to `<url>/audit`); `None` when audit is off.
    pub url: Option<String>,
    /// Who the records name as the operator.
    pub user: String,
    /// best-effort or strict.
    pub mode: Mode,
    /// The bearer token.
    pub token: Option<String>,
    /// Extra CA certificates (PEM) for an `https://` collector or a `syslog+tls://` sink.
    pub ca: Option<PathBuf>,
    /// A syslog receiver records go to instead of a collector (see [`crate::syslog`]).
    pub sink: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig { url: None, user: default_user(), mode: Mode::BestEffort, token: None, ca: None, sink: None }
    }
}

/// A problem with the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Group or others may read the file, which holds the token.
    #[error("{0} is readable by group or others (mode {1:o}); run: chmod 600 {0}")]
    TooOpen(String, u32),
    /// A value is wrong.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
}

/// `<config dir>/pty-mcp/config`, where the Go pty-mcp reads it (Go's `os.UserConfigDir`):
/// `$XDG_CONFIG_HOME`, else `~/.config`; on macOS `~/Library/Application Support`.
pub fn default_path() -> PathBuf {
    config_dir().join("config")
}

/// `<config dir>/pty-mcp`: where the config file and the policy (`policy.toml`) live.
pub fn config_dir() -> PathBuf {
    app_dir("XDG_CONFIG_HOME", ".config")
}

/// Where the spool lives: `$XDG_STATE_HOME/pty-mcp`, else `~/.local/state/pty-mcp`; on macOS
/// the same directory as the config.
pub fn state_dir() -> PathBuf {
    app_dir("XDG_STATE_HOME", ".local/state")
}

/// `pty-mcp` under the base directory the variable `xdg` names, else under `$HOME/fallback`.
/// macOS has one place for an application's files and Go ignores the XDG variables there.
fn app_dir(xdg: &str, fallback: &str) -> PathBuf {
    let home = || PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()));
    let base = if cfg!(target_os = "macos") {
        home().join("Library/Application Support")
    } else {
        std::env::var_os(xdg).map(PathBuf::from).unwrap_or_else(|| home().join(fallback))
    };
    base.join("pty-mcp")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io { path: path.display().to_string(), source }
}

/// The `key=value` pairs of a file (later lines win), ignoring comments.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

/// Loads the file; `Ok(None)` when it does not exist.
///
/// # Errors
/// When it is readable by others, unreadable, or holds a bad `audit-mode`.
pub fn load(path: &Path) -> Result<Option<AuditConfig>, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::TooOpen(path.display().to_string(), mode));
    }
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let mut config = AuditConfig::default();
    for (key, value) in pairs(&text) {
        match key.as_str() {
            "audit-url" => config.url = Some(value).filter(|v| !v.is_empty()),
            "audit-user" => config.user = value,
            "audit-mode" => {
                config.mode = Mode::parse(&value)
                    .ok_or_else(|| ConfigError::Invalid(format!("audit-mode {value:?}: use best-effort or strict")))?
            }
            "audit-token" => config.token = Some(value).filter(|v| !v.is_empty()),
            "audit-ca" => config.ca = Some(PathBuf::from(value)).filter(|v| !v.as_os_str().is_empty()),
            "audit-sink" => config.sink = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
    Ok(Some(config))
}

/// The local user name, for `audit-user` when it is not set.
pub fn default_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

/// A fresh token: 32 random bytes as 64 hex characters.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, text: &str) -> Result<(), ConfigError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(path))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(text.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// `audit init`: writes a config with a new token (refusing to overwrite unless `force`).
/// Returns the token.
///
/// # Errors
/// When the file exists (without `force`) or cannot be written.
pub fn init(path: &Path, force: bool) -> Result<String, ConfigError> {
    if path.exists() && !force {
        return Err(ConfigError::Invalid(format!(
            "{} exists; use --force to replace it (and its token)",
            path.display()
        )));
    }
    let token = new_token();
    let text = format!(
        "# pty-mcp audit configuration (mode 0600: it holds the collector's token)\n\
         # audit-url=http://127.0.0.1:9099\n\
         audit-user={}\naudit-mode=best-effort\naudit-token={token}\n",
        default_user()
    );
    write_private(path, &text)?;
    Ok(token)
}

/// What `audit enable` / `audit disable` do to `audit-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlChange {
    /// Turn audit on, with this URL or the one the file remembers (commented out).
    Enable(Option<String>),
    /// Turn audit off, keeping the URL as a comment.
    Disable,
}

/// `audit enable [URL]` / `audit disable`: sets or comments out `audit-url`, keeping the rest.
///
/// # Errors
/// When the file is missing, too open, cannot be written, or no URL is known to enable.
pub fn set_url(path: &Path, change: UrlChange) -> Result<(), ConfigError> {
    load(path)?.ok_or_else(|| {
        ConfigError::Invalid(format!("{} does not exist; run pty-mcp audit init first", path.display()))
    })?;
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let mut known = None;
    let mut kept = Vec::new();
    for line in text.lines() {
        let bare = line.trim().trim_start_matches('#').trim();
        match bare.strip_prefix("audit-url").and_then(|r| r.trim_start().strip_prefix('=')) {
            Some(v) if !v.trim().is_empty() => known = Some(v.trim().to_string()),
            Some(_) => {}
            None => kept.push(line.to_string()),
        }
    }
    let line = match (change, known) {
        (UrlChange::Enable(Some(url)), _) | (UrlChange::Enable(None), Some(url)) => format!("audit-url={url}"),
        (UrlChange::Enable(None), None) => {
            return Err(ConfigError::Invalid(
                "no audit-url known: pass one, e.g. pty-mcp audit enable http://127.0.0.1:9099".into(),
            ));
        }
        (UrlChange::Disable, Some(url)) => format!("# audit-url={url}"),
        (UrlChange::Disable, None) => return Ok(()),
    };
    kept.push(line);
    write_private(path, &(kept.join("\n") + "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_load_enable_disable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pty-mcp/config");
        let token = init(&path, false).unwrap();
        assert_eq!(token.len(), 64);
        assert!(init(&path, false).is_err());
        let c = load(&path).unwrap().unwrap();
        assert_eq!((c.url.as_deref(), c.token.as_deref(), c.mode), (None, Some(token.as_str()), Mode::BestEffort));
        set_url(&path, UrlChange::Enable(Some("http://127.0.0.1:9".into()))).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().url.as_deref(), Some("http://127.0.0.1:9"));
        set_url(&path, UrlChange::Disable).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().url, None);
        assert!(std::fs::read_to_string(&path).unwrap().contains("# audit-url=http://127.0.0.1:9"));
        set_url(&path, UrlChange::Enable(None)).unwrap();
        assert_eq!(load(&path).unwrap().unwrap().url.as_deref(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn an_open_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, "audit-url=http://x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }
}
