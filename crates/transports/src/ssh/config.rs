//! Where and how to connect, as the user's own `ssh` would: asked of `ssh -G` (OpenSSH's exact
//! reading of ssh_config, `Match` and `%` tokens included), with plain defaults when no OpenSSH
//! client is installed. Unknown keywords are OpenSSH's business and never fatal here.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The settings for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The address to connect to (`HostName`).
    pub hostname: String,
    /// `Port`.
    pub port: u16,
    /// `User`.
    pub user: String,
    /// `IdentityFile`s, in order.
    pub identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly`: only the identity files, not every key of the agent.
    pub identities_only: bool,
    /// `IdentityAgent` (`none` disables the agent).
    pub identity_agent: Option<String>,
    /// `ProxyJump`.
    pub proxy_jump: Option<String>,
    /// `UserKnownHostsFile`s then `GlobalKnownHostsFile`s.
    pub known_hosts: Vec<PathBuf>,
    /// `StrictHostKeyChecking` as written (`yes`, `accept-new`, `no`, `ask`).
    pub strict_host_key_checking: Option<String>,
    /// `ServerAliveInterval` (0 = off in OpenSSH; we keep our default then).
    pub server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<usize>,
    /// `ConnectTimeout`.
    pub connect_timeout: Option<Duration>,
}

/// The home directory the password database gives this user (what OpenSSH's `~` means).
fn passwd_home() -> Option<PathBuf> {
    let mut buf = vec![0u8; 16 << 10];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, and buf outlives the use of pw's fields.
    let rc = unsafe { libc::getpwuid_r(libc::getuid(), &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

/// `$HOME`, when it is set and differs from the password database's home: then `ssh -G`, which
/// follows the database, must be told where the user's files are.
fn home_override() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?);
    (passwd_home().as_deref() != Some(home.as_path())).then_some(home)
}

/// A path `ssh -G` expanded from `~` against the password database's home, rebased onto `home`.
fn rebase(path: &str, passwd: Option<&Path>, home: Option<&Path>) -> PathBuf {
    let path = expand_home(path);
    match (passwd, home) {
        (Some(pw), Some(home)) => path.strip_prefix(pw).map_or(path.clone(), |rest| home.join(rest)),
        _ => path,
    }
}

/// `~` and `~/…` with `$HOME` (OpenSSH uses the password database; we honour `HOME` so that a
/// server started with a private HOME uses its files).
pub fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => PathBuf::from(format!("{home}{rest}")),
        _ => PathBuf::from(path),
    }
}

impl HostConfig {
    /// OpenSSH's defaults for `host`, used when `ssh -G` is not available.
    pub fn defaults(host: &str) -> HostConfig {
        HostConfig {
            hostname: host.to_string(),
            port: 22,
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            identity_files: ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"]
                .iter()
                .map(|p| expand_home(p))
                .collect(),
            identities_only: false,
            identity_agent: None,
            proxy_jump: None,
            known_hosts: vec![expand_home("~/.ssh/known_hosts"), PathBuf::from("/etc/ssh/ssh_known_hosts")],
            strict_host_key_checking: None,
            server_alive_interval: None,
            server_alive_count_max: None,
            connect_timeout: None,
        }
    }

    /// Sets the single-valued keyword `key` (lower case) from `value`; a bad value leaves the
    /// setting as it was. Both readings of ssh_config, `ssh -G`'s and ours, go through here.
    fn apply(&mut self, key: &str, value: &str) {
        let seconds = |v: &str| v.parse().ok().map(Duration::from_secs);
        match key {
            "hostname" => self.hostname = value.to_string(),
            "port" => self.port = value.parse().unwrap_or(self.port),
            "user" => self.user = value.to_string(),
            "identitiesonly" => self.identities_only = value == "yes",
            "identityagent" => self.identity_agent = Some(value.to_string()),
            "proxyjump" => self.proxy_jump = Some(value.to_string()).filter(|v| v != "none"),
            "stricthostkeychecking" => self.strict_host_key_checking = Some(value.to_string()),
            "serveraliveinterval" => self.server_alive_interval = seconds(value).filter(|d| !d.is_zero()),
            "serveralivecountmax" => self.server_alive_count_max = value.parse().ok(),
            "connecttimeout" => self.connect_timeout = seconds(value),
            _ => {}
        }
    }

    /// Parses `ssh -G` output (`keyword value` lines, keywords in lower case). Paths under the
    /// password database's home are taken as under `$HOME` when that differs.
    pub fn from_ssh_g(host: &str, text: &str) -> HostConfig {
        let home = home_override();
        let passwd = home.as_ref().and_then(|_| passwd_home());
        HostConfig::from_ssh_g_rebased(host, text, passwd.as_deref(), home.as_deref())
    }

    fn from_ssh_g_rebased(host: &str, text: &str, passwd: Option<&Path>, home: Option<&Path>) -> HostConfig {
        let expand = |p: &str| rebase(p, passwd, home);
        let mut c = HostConfig::defaults(host);
        c.identity_files.clear();
        c.known_hosts.clear();
        let mut global_known = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else { continue };
            let value = value.trim();
            match key {
                "identityfile" => c.identity_files.push(expand(value)),
                "userknownhostsfile" => c.known_hosts.extend(value.split_whitespace().map(expand)),
                "globalknownhostsfile" => global_known.extend(value.split_whitespace().map(expand)),
                _ => c.apply(key, value),
            }
        }
        c.known_hosts.extend(global_known);
        c
    }
}

/// Reads ssh_config files the way OpenSSH does, for machines without an `ssh` binary: `Host`
/// patterns (`*`, `?`, `!negation`), the first value of a keyword wins (`IdentityFile`
/// accumulates), `Include` (globs, relative to `~/.ssh`), `%d %u %r %h %p %%` tokens in
/// `IdentityFile`. `Match` blocks are skipped with a warning: `ssh -G` is the exact reading.
pub fn parse_files(host: &str, files: &[PathBuf]) -> HostConfig {
    let mut seen: Vec<(String, String)> = Vec::new();
    for file in files {
        read_file(host, file, &mut seen, 0);
    }
    let mut c = HostConfig::defaults(host);
    let mut applied: Vec<&str> = Vec::new();
    for (key, value) in &seen {
        // The first value of a keyword wins.
        if !applied.contains(&key.as_str()) {
            applied.push(key);
            c.apply(key, value);
        }
    }
    c.hostname = c.hostname.replace("%h", host);
    let ids: Vec<PathBuf> =
        seen.iter().filter(|(k, _)| k == "identityfile").map(|(_, v)| expand_home(&tokens(v, &c))).collect();
    if !ids.is_empty() {
        c.identity_files = ids;
    }
    if let Some((_, v)) = seen.iter().find(|(k, _)| k == "userknownhostsfile") {
        c.known_hosts = v.split_whitespace().map(expand_home).collect();
        c.known_hosts.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    }
    c
}

fn tokens(value: &str, c: &HostConfig) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    let local = std::env::var("USER").unwrap_or_default();
    value
        .replace("%%", "\u{0}")
        .replace("%d", &home)
        .replace("%u", &local)
        .replace("%r", &c.user)
        .replace("%h", &c.hostname)
        .replace("%p", &c.port.to_string())
        .replace('\u{0}', "%")
}

fn read_file(host: &str, file: &Path, seen: &mut Vec<(String, String)>, depth: usize) {
    let Ok(text) = std::fs::read_to_string(file) else { return };
    let mut active = true;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches(|c: char| c.is_whitespace() || c == '=').trim().trim_matches('"').to_string(),
            ),
            None => continue,
        };
        match key.as_str() {
            "host" => active = host_matches(&value, host),
            "match" => {
                tracing::warn!("ssh_config Match blocks need `ssh -G`; this one is skipped");
                active = false;
            }
            "include" if active && depth < 8 => {
                for pattern in value.split_whitespace() {
                    let path = expand_home(pattern);
                    let path = if path.is_relative() { expand_home("~/.ssh").join(path) } else { path };
                    for included in glob_files(&path) {
                        read_file(host, &included, seen, depth + 1);
                    }
                }
            }
            _ if active => seen.push((key, value)),
            _ => {}
        }
    }
}

/// Whether a `Host` line's patterns select `host` (a `!pattern` match excludes).
fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for p in patterns.split_whitespace() {
        match p.strip_prefix('!') {
            Some(neg) if super::known_hosts::glob(neg, host) => return false,
            Some(_) => {}
            None if super::known_hosts::glob(p, host) => matched = true,
            None => {}
        }
    }
    matched
}

/// Files matching a path whose last component may hold `*` or `?`.
fn glob_files(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| super::known_hosts::glob(&name, &n.to_string_lossy())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Resolves `host` through `ssh -G` (with `-F config_file` when given), falling back to our own
/// reading of the config files when `ssh` is not installed or fails. Both readings take the
/// user's files from `$HOME`: when it is not the password database's home (which `ssh` follows),
/// `ssh -G` reads a configuration that includes `$HOME/.ssh/config` and the system's.
pub async fn resolve(host: &str, config_file: Option<&Path>) -> HostConfig {
    let mut cmd = tokio::process::Command::new("ssh");
    let mut stdin = None;
    if let Some(file) = config_file {
        cmd.arg("-F").arg(file);
    } else if let Some(home) = home_override() {
        let user = home.join(".ssh/config");
        stdin = Some(format!("Include \"{}\"\nInclude /etc/ssh/ssh_config\n", user.display()));
        cmd.arg("-F").arg("/dev/stdin");
    }
    // `--` keeps a host name from being read as an option.
    cmd.arg("-G").arg("--").arg(host).kill_on_drop(true);
    cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let run = async {
        let mut child = cmd.spawn()?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            pipe.write_all(text.as_bytes()).await?;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(out)) if out.status.success() => HostConfig::from_ssh_g(host, &String::from_utf8_lossy(&out.stdout)),
        other => {
            tracing::debug!("ssh -G unavailable ({other:?}); reading ssh_config ourselves for {host}");
            let files = match config_file {
                Some(f) => vec![f.to_path_buf()],
                None => vec![expand_home("~/.ssh/config"), PathBuf::from("/etc/ssh/ssh_config")],
            };
            parse_files(host, &files)
        }
    }
}

/// One hop of a ProxyJump list: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// User, when given.
    pub user: Option<String>,
    /// Host or alias.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
}

/// Splits a ProxyJump value (`bastion,user@inner:2222`) into hops.
pub fn parse_jumps(spec: &str) -> Vec<Hop> {
    spec.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty() && *h != "none")
        .map(|hop| {
            let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
            let (user, rest) = match hop.rsplit_once('@') {
                Some((u, r)) => (Some(u.to_string()), r),
                None => (None, hop),
            };
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => (h.to_string(), p.parse().ok()),
                _ => (rest.to_string(), None),
            };
            Hop { user, host, port }
        })
        .collect()
}

/// Resolves every hop of a ProxyJump value, as `ssh -J` would.
pub async fn resolve_jumps(spec: &str, config_file: Option<&Path>) -> Vec<HostConfig> {
    let mut out = Vec::new();
    for hop in parse_jumps(spec) {
        let mut c = resolve(&hop.host, config_file).await;
        if let Some(user) = hop.user {
            c.user = user;
        }
        if let Some(port) = hop.port {
            c.port = port;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_reads_hosts_includes_and_first_values() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("conf.d")).unwrap();
        std::fs::write(d.join("conf.d/10-box"), "Host box\n  Port 2200\n").unwrap();
        std::fs::write(
            d.join("config"),
            format!(
                "Include {}/conf.d/*\nHost box !bad\n  HostName 10.0.0.9\n  User admin\n  IdentityFile /k/%r-%h\n  Port 9999\n\
                 Match user nobody\n  User wrong\nHost *\n  IdentityFile /k/default\n  ServerAliveInterval 7\n  User fallback\n",
                d.display()
            ),
        )
        .unwrap();
        let c = parse_files("box", &[d.join("config")]);
        assert_eq!((c.hostname.as_str(), c.port, c.user.as_str()), ("10.0.0.9", 2200, "admin"));
        assert_eq!(c.identity_files, [PathBuf::from("/k/admin-10.0.0.9"), PathBuf::from("/k/default")]);
        assert_eq!(c.server_alive_interval, Some(Duration::from_secs(7)));
        let other = parse_files("bad", &[d.join("config")]);
        assert_eq!((other.hostname.as_str(), other.user.as_str()), ("bad", "fallback"));
    }

    #[test]
    fn jump_specs() {
        let hops = parse_jumps("bastion, admin@inner:2222,ssh://u@h");
        assert_eq!(hops[0], Hop { user: None, host: "bastion".into(), port: None });
        assert_eq!(hops[1], Hop { user: Some("admin".into()), host: "inner".into(), port: Some(2222) });
        assert_eq!(hops[2], Hop { user: Some("u".into()), host: "h".into(), port: None });
    }

    #[test]
    fn paths_under_the_password_home_follow_home() {
        let text = "hostname h\nidentityfile ~/.ssh/id_x\nuserknownhostsfile /root/.ssh/known_hosts /etc/kh\n";
        let (pw, home) = (Path::new("/root"), Path::new("/tmp/h"));
        let c = HostConfig::from_ssh_g_rebased("h", text, Some(pw), Some(home));
        assert_eq!(c.known_hosts, [PathBuf::from("/tmp/h/.ssh/known_hosts"), PathBuf::from("/etc/kh")]);
        assert_eq!(rebase("/rootless/x", Some(pw), Some(home)), PathBuf::from("/rootless/x"));
    }

    #[test]
    fn reads_ssh_g_output() {
        let text = "host alias\nhostname 10.1.2.3\nport 2222\nuser admin\nidentityfile /k/one\nidentityfile /k/two\n\
                    identitiesonly yes\nproxyjump bastion\nuserknownhostsfile /k/known /k/known2\n\
                    globalknownhostsfile /etc/ssh/ssh_known_hosts\nserveraliveinterval 5\nserveralivecountmax 2\n\
                    stricthostkeychecking accept-new\nsomethingnew whatever\n";
        let c = HostConfig::from_ssh_g("alias", text);
        assert_eq!((c.hostname.as_str(), c.port, c.user.as_str()), ("10.1.2.3", 2222, "admin"));
        assert_eq!(c.identity_files, [PathBuf::from("/k/one"), PathBuf::from("/k/two")]);
        assert!(c.identities_only);
        assert_eq!(c.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(c.known_hosts.len(), 3);
        assert_eq!(c.server_alive_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.strict_host_key_checking.as_deref(), Some("accept-new"));
    }
}
