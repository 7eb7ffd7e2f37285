//! `install.sh` against a release directory served over HTTP on 127.0.0.1, the way a user runs
//! it: the archive is made by `scripts/dist package` from this build's binaries.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::harness::{Server, binary, free_port, spawn_until_ready};
use crate::persistent::bin_dir;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// This machine's archive target, as install.sh picks it.
fn target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// `scripts/dist WHAT TARGET BIN_DIR` on this build's binaries, into `into`.
fn dist(what: &str, into: &Path) {
    let out = std::process::Command::new(repo().join("scripts/dist"))
        .args([what, target()])
        .arg(bin_dir())
        .env("DIST_DIR", into)
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/dist {what}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A release directory holding this build's archive and SHA256SUMS, served on 127.0.0.1.
pub struct Release {
    dir: tempfile::TempDir,
    pub url: String,
    _server: tokio::process::Child,
}

impl Release {
    pub async fn new() -> Release {
        let dir = tempfile::tempdir().unwrap();
        dist("package", dir.path());
        let port = free_port();
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(format!(
            "exec python3 -u -m http.server --bind 127.0.0.1 --directory '{}' {port} 1>&2",
            dir.path().display()
        ));
        let server = spawn_until_ready(cmd, "Serving HTTP").await;
        Release { dir, url: format!("http://127.0.0.1:{port}"), _server: server }
    }

    fn archive(&self) -> PathBuf {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .expect("an archive")
    }

    /// Runs install.sh into `into`, with `extra` environment.
    fn install(&self, into: &Path, extra: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg(repo().join("install.sh"))
            .env("PTY_MCP_RELEASE_URL", &self.url)
            .env("PTY_MCP_INSTALL_DIR", into)
            .env("HOME", into.parent().unwrap())
            .env_remove("PTY_MCP_TARGET");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn version_of(program: &Path) -> String {
    let out = std::process::Command::new(program).arg("--version").output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn install_sh_installs_verified_binaries_that_answer_mcp() {
    let release = Release::new().await;
    let home = tempfile::tempdir().unwrap();
    let into = home.path().join("bin");
    let out = release.install(&into, &[]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}");
    assert!(out.stdout.is_empty(), "install.sh keeps stdout clean");
    assert!(said.contains("claude mcp add pty-mcp --"), "{said}");
    assert_eq!(version_of(&into.join("pty-mcp")), version_of(Path::new(binary())));
    assert!(into.join("ai-tmux").is_file());
    // The installed server answers an MCP client.
    let s = Server::start_from(tokio::process::Command::new(into.join("pty-mcp")), &[], None).await;
    assert_eq!(s.client.peer_info().unwrap().server_info.as_ref().unwrap().name, "pty-mcp");
    drop(s);
    // Twice: upgraded in place, nothing left behind.
    let out = release.install(&into, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> =
        std::fs::read_dir(&into).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    names.sort();
    assert_eq!(names, ["ai-tmux", "pty-mcp"]);
}

#[tokio::test]
async fn install_sh_refuses_a_tampered_archive_and_a_missing_platform() {
    let release = Release::new().await;
    let archive = release.archive();
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();
    let home = tempfile::tempdir().unwrap();
    let into = home.path().join("bin");
    let out = release.install(&into, &[]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("does not match SHA256SUMS"), "{said}");
    assert!(!into.exists() || std::fs::read_dir(&into).unwrap().next().is_none(), "nothing installed");

    let out = release.install(&into, &[("PTY_MCP_TARGET", "riscv64gc-unknown-linux-musl")]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("no archive for riscv64gc-unknown-linux-musl"), "{said}");

    let out = release.install(&into, &[("PTY_MCP_RELEASE_URL", "http://127.0.0.1:1/nothing")]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("could not download"), "{said}");
    assert!(!into.exists() || std::fs::read_dir(&into).unwrap().next().is_none(), "nothing installed");
}

/// The Claude Desktop bundle: built by `scripts/dist mcpb` (which validates its manifest with the
/// mcpb tool from npm), it unpacks to this version's manifest and both binaries.
#[test]
fn the_claude_desktop_bundle_validates_and_carries_both_binaries() {
    let dist = tempfile::tempdir().unwrap();
    self::dist("mcpb", dist.path());
    let bundle = dist.path().join(format!("pty-mcp-{}-{}.mcpb", env!("CARGO_PKG_VERSION"), target()));
    let tool = repo().join("target/dist-tools/node/node_modules/.bin/mcpb");
    let info = std::process::Command::new(&tool).arg("info").arg(&bundle).output().unwrap();
    assert!(info.status.success(), "mcpb info: {}", String::from_utf8_lossy(&info.stderr));
    let unpacked = dist.path().join("unpacked");
    let status = std::process::Command::new(&tool).arg("unpack").arg(&bundle).arg(&unpacked).status().unwrap();
    assert!(status.success());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(unpacked.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["compatibility"]["platforms"], serde_json::json!(["linux"]));
    assert_eq!(version_of(&unpacked.join("server/pty-mcp")), version_of(Path::new(binary())));
    assert!(unpacked.join("server/ai-tmux").is_file());
}
