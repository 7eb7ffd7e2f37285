//! known_hosts, read and matched in our own code: OpenSSH's format with hashed names,
//! `[host]:port` entries, `*`/`?`/`!` patterns, tabs as separators, and the `@revoked` and
//! `@cert-authority` markers (russh's own check misses several of these).

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use russh::keys::{Algorithm, PublicKey};

/// What the files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A recorded key matches.
    Known,
    /// Nothing is recorded for this host (or only keys of other types).
    Unknown,
    /// A key of the same type is recorded and it differs: possibly an attack.
    Changed {
        /// Where the recorded key is.
        file: PathBuf,
        /// Its line number.
        line: usize,
    },
    /// The key is marked `@revoked`.
    Revoked,
}

/// The name a host is recorded under: `host`, or `[host]:port` when the port is not 22.
pub fn entry_name(host: &str, port: u16) -> String {
    if port == 22 { host.to_string() } else { format!("[{host}]:{port}") }
}

struct Entry {
    file: PathBuf,
    line: usize,
    marker: Option<String>,
    hosts: String,
    key_type: String,
    key_blob: String,
}

fn entries(files: &[PathBuf]) -> Vec<Entry> {
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for (i, line) in text.lines().enumerate() {
            let mut fields = line.split_whitespace();
            let Some(mut first) = fields.next() else { continue };
            if first.starts_with('#') {
                continue;
            }
            let mut marker = None;
            if first.starts_with('@') {
                marker = Some(first.to_string());
                let Some(next) = fields.next() else { continue };
                first = next;
            }
            let (Some(key_type), Some(key_blob)) = (fields.next(), fields.next()) else { continue };
            out.push(Entry {
                file: file.clone(),
                line: i + 1,
                marker,
                hosts: first.to_string(),
                key_type: key_type.to_string(),
                key_blob: key_blob.to_string(),
            });
        }
    }
    out
}

/// Whether a host field (`name,pattern,!negated` or `|1|salt|hash`) matches `name`.
fn host_matches(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let Some((salt, hash)) = hashed.split_once('|') else { return false };
        let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else { return false };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        return ring::hmac::verify(&key, name.as_bytes(), &hash).is_ok();
    }
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated, name) {
                return false;
            }
        } else if glob(pattern, name) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards, case-insensitive, as OpenSSH matches host patterns.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) =
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn blob_of(key: &PublicKey) -> Option<(String, String)> {
    let text = key.to_openssh().ok()?;
    let mut parts = text.split_whitespace();
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

/// The known_hosts lines that name one host, read once per connection: the key check, the
/// key types to ask for and the certificate authorities all come from them.
pub struct HostEntries(Vec<Entry>);

impl HostEntries {
    /// Reads `files` and keeps the lines that match `host`:`port` (hashed names included).
    pub fn load(files: &[PathBuf], host: &str, port: u16) -> HostEntries {
        let name = entry_name(host, port);
        HostEntries(entries(files).into_iter().filter(|e| host_matches(&e.hosts, &name)).collect())
    }

    /// Checks `key` against the lines.
    pub fn check(&self, key: &PublicKey) -> Verdict {
        let Some((key_type, key_blob)) = blob_of(key) else { return Verdict::Unknown };
        if self.0.iter().any(|e| e.marker.as_deref() == Some("@revoked") && e.key_blob == key_blob) {
            return Verdict::Revoked;
        }
        let plain = || self.0.iter().filter(|e| e.marker.is_none());
        if plain().any(|e| e.key_type == key_type && e.key_blob == key_blob) {
            return Verdict::Known;
        }
        match plain().find(|e| e.key_type == key_type) {
            Some(e) => Verdict::Changed { file: e.file.clone(), line: e.line },
            None => Verdict::Unknown,
        }
    }

    /// The key algorithms recorded for the host, so the server can be asked for one of those.
    pub fn recorded_algorithms(&self) -> Vec<Algorithm> {
        self.0.iter().filter(|e| e.marker.is_none()).filter_map(|e| e.key_type.parse().ok()).collect()
    }

    /// The certificate authorities trusted for the host (its `@cert-authority` lines).
    pub fn cert_authorities(&self) -> Vec<PublicKey> {
        self.0
            .iter()
            .filter(|e| e.marker.as_deref() == Some("@cert-authority"))
            .filter_map(|e| PublicKey::from_openssh(&format!("{} {}", e.key_type, e.key_blob)).ok())
            .collect()
    }
}

/// Records `key` for `host`:`port` at the end of `file` (created 0600, its directory 0700).
pub fn append(file: &Path, host: &str, port: u16, key: &PublicKey) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let (key_type, key_blob) = blob_of(key).ok_or_else(|| io::Error::other("cannot encode the key"))?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(file)?;
    writeln!(f, "{} {key_type} {key_blob}", entry_name(host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(files: &[PathBuf], host: &str, port: u16, key: &PublicKey) -> Verdict {
        HostEntries::load(files, host, port).check(key)
    }

    fn recorded_algorithms(files: &[PathBuf], host: &str, port: u16) -> Vec<Algorithm> {
        HostEntries::load(files, host, port).recorded_algorithms()
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMtfqy0OuKuy4RxoCy/UjhMuU3L0FC1NmuYeLX4t5D4q";
    const OTHER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPx4Kb8NBIvx4/XsU0KtlT1hgdw4ZT9u6y7YM7VJvXZ8";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    fn file(text: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("known_hosts");
        std::fs::write(&p, text).unwrap();
        (d, vec![p])
    }

    #[test]
    fn plain_patterns_ports_and_tabs() {
        let (_d, f) = file(&format!("# comment\n*.example.com,!bad.example.com\t{KEY}\n[10.0.0.1]:2222 {KEY}\n"));
        assert_eq!(check(&f, "web.example.com", 22, &key(KEY)), Verdict::Known);
        assert_eq!(check(&f, "bad.example.com", 22, &key(KEY)), Verdict::Unknown);
        assert_eq!(check(&f, "10.0.0.1", 2222, &key(KEY)), Verdict::Known);
        assert_eq!(check(&f, "10.0.0.1", 22, &key(KEY)), Verdict::Unknown);
        assert!(matches!(check(&f, "web.example.com", 22, &key(OTHER)), Verdict::Changed { line: 2, .. }));
    }

    #[test]
    fn hashed_names_and_markers() {
        // `ssh-keygen -H` form of "[127.0.0.1]:2222", with a fixed salt.
        let salt = [7u8; 20];
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt),
            b"[127.0.0.1]:2222",
        );
        let hashed = format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(mac.as_ref()));
        let (_d, f) = file(&format!("{hashed} {KEY}\n@revoked * {OTHER}\n"));
        assert_eq!(check(&f, "127.0.0.1", 2222, &key(KEY)), Verdict::Known);
        assert_eq!(check(&f, "127.0.0.2", 2222, &key(KEY)), Verdict::Unknown);
        assert_eq!(check(&f, "anything", 22, &key(OTHER)), Verdict::Revoked);
        assert_eq!(recorded_algorithms(&f, "127.0.0.1", 2222), vec![Algorithm::Ed25519]);
    }

    #[test]
    fn appended_entries_are_found() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/known_hosts");
        append(&p, "127.0.0.1", 2200, &key(KEY)).unwrap();
        assert_eq!(check(&[p], "127.0.0.1", 2200, &key(KEY)), Verdict::Known);
    }

    #[test]
    fn globs() {
        assert!(glob("*.example.com", "a.b.example.com"));
        assert!(glob("h?st", "host"));
        assert!(!glob("h?st", "hoost"));
        assert!(glob("*", ""));
    }
}
