//! Where and how to connect, as the user's own `ssh` would: asked of `ssh -G` (OpenSSH's exact
//! reading of ssh_config, `Match` and `%` tokens included), with plain defaults when no OpenSSH
//! client is installed. Unknown keywords are OpenSSH's business and never fatal here.

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

    /// Parses `ssh -G` output (`keyword value` lines, keywords in lower case).
    pub fn from_ssh_g(host: &str, text: &str) -> HostConfig {
        let mut c = HostConfig::defaults(host);
        c.identity_files.clear();
        c.known_hosts.clear();
        let mut global_known = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else { continue };
            let value = value.trim();
            match key {
                "hostname" => c.hostname = value.to_string(),
                "port" => c.port = value.parse().unwrap_or(22),
                "user" => c.user = value.to_string(),
                "identityfile" => c.identity_files.push(expand_home(value)),
                "identitiesonly" => c.identities_only = value == "yes",
                "identityagent" => c.identity_agent = Some(value.to_string()),
                "proxyjump" if value != "none" => c.proxy_jump = Some(value.to_string()),
                "userknownhostsfile" => c.known_hosts.extend(value.split_whitespace().map(expand_home)),
                "globalknownhostsfile" => global_known.extend(value.split_whitespace().map(expand_home)),
                "stricthostkeychecking" => c.strict_host_key_checking = Some(value.to_string()),
                "serveraliveinterval" => {
                    c.server_alive_interval = value.parse().ok().filter(|&s| s > 0).map(Duration::from_secs)
                }
                "serveralivecountmax" => c.server_alive_count_max = value.parse().ok(),
                "connecttimeout" => c.connect_timeout = value.parse().ok().map(Duration::from_secs),
                _ => {}
            }
        }
        c.known_hosts.extend(global_known);
        c
    }
}

/// Resolves `host` through `ssh -G` (with `-F config_file` when given), falling back to plain
/// defaults when `ssh` is not installed or fails.
pub async fn resolve(host: &str, config_file: Option<&Path>) -> HostConfig {
    let mut cmd = tokio::process::Command::new("ssh");
    if let Some(file) = config_file {
        cmd.arg("-F").arg(file);
    }
    // `--` keeps a host name from being read as an option.
    cmd.arg("-G").arg("--").arg(host).stdin(std::process::Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(5), cmd.output()).await {
        Ok(Ok(out)) if out.status.success() => HostConfig::from_ssh_g(host, &String::from_utf8_lossy(&out.stdout)),
        other => {
            tracing::debug!("ssh -G unavailable ({other:?}); using defaults for {host}");
            HostConfig::defaults(host)
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
    #[test]
    fn jump_specs() {
        let hops = parse_jumps("bastion, admin@inner:2222,ssh://u@h");
        assert_eq!(hops[0], Hop { user: None, host: "bastion".into(), port: None });
        assert_eq!(hops[1], Hop { user: Some("admin".into()), host: "inner".into(), port: Some(2222) });
        assert_eq!(hops[2], Hop { user: Some("u".into()), host: "h".into(), port: None });
    }

    use super::*;

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
