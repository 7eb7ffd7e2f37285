//! The Claude Code plugin, with the real Claude Code CLI (from npm) in a scratch HOME: the
//! marketplace at this checkout, the plugin installed from it, and `claude mcp list` connecting
//! to its server — once through a `pty-mcp` on PATH, once through the launcher fetching and
//! verifying the release from a local release server.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::install::{Release, repo};

/// The Claude Code CLI version the test drives.
const CLAUDE_CODE: &str = "2.1.332";

/// The CLI's native binary, installed from npm under the target directory once per machine.
pub fn claude() -> PathBuf {
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("claude-code");
    std::fs::create_dir_all(&prefix).unwrap();
    let package = prefix.join("node_modules/@anthropic-ai/claude-code");
    let exe = package.join("bin/claude.exe");
    let lock = std::fs::File::create(prefix.with_extension("lock")).unwrap();
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if !exe.is_file() || version(&exe).is_none_or(|v| !v.contains(CLAUDE_CODE)) {
        std::fs::create_dir_all(&prefix).unwrap();
        let npm = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(format!("@anthropic-ai/claude-code@{CLAUDE_CODE}"))
            .status()
            .expect("npm (scripts/test installs it)");
        assert!(npm.success(), "npm install of the Claude Code CLI failed");
        // Its postinstall places the native binary; npm may not have run it.
        let placed = Command::new("node").arg("install.cjs").current_dir(&package).status().unwrap();
        assert!(placed.success(), "the Claude Code CLI's install.cjs failed");
    }
    exe
}

fn version(exe: &Path) -> Option<String> {
    let out = Command::new(exe).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Runs `claude ARGS` with a scratch HOME and `env`; returns what it printed.
pub fn run(claude: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(claude);
    cmd.args(args).env("HOME", home).env_remove("PTY_MCP_BIN").env_remove("CLAUDE_PLUGIN_DATA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "claude {args:?}: {text}");
    text
}

/// A copy of the marketplace and the plugin (the checkout's target/ is not part of it).
fn marketplace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for part in [".claude-plugin", "plugin"] {
        let status = Command::new("cp").arg("-r").arg(repo().join(part)).arg(dir.path()).status().unwrap();
        assert!(status.success());
    }
    dir
}

#[tokio::test]
async fn the_plugin_connects_with_pty_mcp_on_path_and_by_fetching_the_release() {
    let claude = claude();
    let (home, market) = (tempfile::tempdir().unwrap(), marketplace());
    let h = home.path();
    run(&claude, h, &["plugin", "marketplace", "add", market.path().to_str().unwrap()], &[]);
    run(&claude, h, &["plugin", "install", "pty-mcp@pty-mcp"], &[]);
    let base_path = "/usr/local/bin:/usr/bin:/bin";

    // A pty-mcp of this version on PATH is used as it is.
    let on_path = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(crate::harness::binary(), on_path.path().join("pty-mcp")).unwrap();
    let path = format!("{}:{base_path}", on_path.path().display());
    let listed = run(&claude, h, &["mcp", "list"], &[("PATH", &path)]);
    assert!(listed.contains("plugin:pty-mcp:pty-mcp") && listed.contains("✔ Connected"), "{listed}");
    let fetched = h.join(".claude/plugins/data");
    assert!(!has_file_named(&fetched, "pty-mcp"), "nothing fetched while one is on PATH");

    // None anywhere: the launcher fetches this version's release, verifies it, and runs it.
    let release = Release::new().await;
    let listed = run(&claude, h, &["mcp", "list"], &[("PATH", base_path), ("PTY_MCP_RELEASE_URL", &release.url)]);
    assert!(listed.contains("✔ Connected"), "{listed}");
    assert!(has_file_named(&fetched, "pty-mcp"), "the release was installed in the plugin's data directory");
}

fn has_file_named(dir: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() { has_file_named(&p, name) } else { p.file_name().is_some_and(|n| n == name) }
    })
}

#[test]
fn every_package_names_this_version() {
    let version = env!("CARGO_PKG_VERSION");
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    let plugin: serde_json::Value = serde_json::from_str(&read("plugin/.claude-plugin/plugin.json")).unwrap();
    let market: serde_json::Value = serde_json::from_str(&read(".claude-plugin/marketplace.json")).unwrap();
    assert_eq!(plugin["version"], version);
    assert_eq!(market["plugins"][0]["version"], version);
    let desktop: serde_json::Value = serde_json::from_str(&read("packaging/claude-desktop/manifest.json")).unwrap();
    assert_eq!(desktop["version"], version);
    assert!(read("packaging/python/pyproject.toml").contains(&format!("\nversion = \"{version}\"\n")));
    assert!(read("plugin/bin/pty-mcp-launch").contains(&format!("\nVERSION={version}\n")));
    assert_eq!(read("install.sh"), read("plugin/scripts/install.sh"), "the plugin's install.sh is the root's");
}
