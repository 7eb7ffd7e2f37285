//! Persistent sessions: programs kept by a real ai-tmux daemon (the one built beside pty-mcp),
//! on this machine and behind a real sshd, surviving pty-mcp being killed.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{STEP, Server, binary, output};
use crate::secrets::{Operator, READ_SECRET, SECRET, sha256_prefix};
use crate::ssh::Sshd;

/// A private runtime directory for the daemons a test starts; they are stopped with it.
pub struct Runtime {
    dir: tempfile::TempDir,
    /// Where the daemon's socket goes.
    pub socket: String,
}

impl Runtime {
    pub fn new() -> Runtime {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("ai-tmux/ai-tmux.sock").display().to_string();
        Runtime { dir, socket }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env(&self) -> (&'static str, &str) {
        ("AI_TMUX_SOCKET", &self.socket)
    }

    /// Stops the daemons started under this directory (their command line names the socket).
    pub fn kill_daemons(&self) {
        let _ = std::process::Command::new("pkill").args(["-9", "-f"]).arg(self.path()).status();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.kill_daemons();
    }
}

/// The directory holding pty-mcp and the ai-tmux built with it.
pub fn bin_dir() -> PathBuf {
    let dir = Path::new(binary()).parent().unwrap().to_path_buf();
    assert!(dir.join("ai-tmux").is_file(), "ai-tmux is not built: run the whole workspace's tests (scripts/test)");
    dir
}

fn lines_with(text: &str, prefix: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| l.starts_with(prefix)).map(String::from).collect()
}

/// Reads (consuming) until a line satisfies `done`, returning everything read.
async fn read_until_line(s: &Server, id: &str, done: impl Fn(&str) -> bool) -> String {
    let mut all = String::new();
    tokio::time::timeout(STEP, async {
        while !all.lines().any(|l| done(l.trim())) {
            let r = s.call("read_output", json!({"session_id": id, "timeout": 10})).await;
            all.push_str(output(&r));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not in time; read so far: {all:?}"));
    all
}

/// Reads until a line is `line`.
pub async fn read_until(s: &Server, id: &str, line: &str) -> String {
    read_until_line(s, id, |l| l == line).await
}

const TICKS: &str = "for i in 1 2 3 4 5; do echo tick$i; sleep 1; done";

#[tokio::test]
async fn a_local_job_survives_a_killed_pty_mcp_and_is_read_exactly_once() {
    let rt = Runtime::new();
    let s = Server::start_with_env(&[rt.env()]).await;
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    assert_eq!(v["type"], "local");
    let r = s.input(&id, "echo hello-$((6*7))").await;
    assert_eq!((output(&r), r["exit_code"].as_i64()), ("hello-42\n", Some(0)), "{r}");
    // Start the job and leave before it ends.
    let r = s.call("send_input", json!({"session_id": id, "input": TICKS, "timeout_ms": 200})).await;
    let mut seen = output(&r).to_string();
    s.kill9();
    let s = Server::start_with_env(&[rt.env()]).await;
    let list = s.call("list_remote_sessions", json!({"status": "running"})).await;
    let listed: Vec<&Value> = list["result"].as_array().unwrap().iter().filter(|e| e["id"] == id.as_str()).collect();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["command"], "bash --norc --noprofile");
    let v = s.call("create_local_session", json!({"session_id": id})).await;
    assert_eq!(v["session_id"], id.as_str());
    assert_eq!(v["output"], "", "reattaching consumes nothing: {v}");
    seen.push_str(&read_until(&s, &id, "tick5").await);
    let ticks = lines_with(&seen, "tick");
    assert_eq!(ticks, ["tick1", "tick2", "tick3", "tick4", "tick5"], "each line exactly once: {seen:?}");
    // Everything works on it as on a direct session: completion, wait_for, screen.
    // The job was still running (its last sleep): `false` gets its own status and duration.
    let r = s.input(&id, "false").await;
    assert_eq!(r["exit_code"], 1, "{r}");
    assert!(r["duration_ms"].as_u64().is_some_and(|d| d < 900), "its own duration, not the job's: {r}");
    s.input_until(&id, "sleep 1; echo ready-now", "^ready-now").await;
    let screen = s.call("read_output", json!({"session_id": id, "screen": true, "screen_lines": true})).await;
    assert!(screen["screen_lines"].as_array().unwrap().iter().any(|l| l == "ready-now"), "{screen}");
    // A resize reaches the daemon's terminal.
    s.call("resize_session", json!({"session_id": id, "rows": 30, "cols": 100})).await;
    assert_eq!(output(&s.input(&id, "stty size").await), "30 100\n");
    // close_session ends the program in the daemon too.
    s.call("close_session", json!({"session_id": id})).await;
    let list = s.call("list_remote_sessions", json!({})).await;
    assert!(list["result"].as_array().unwrap().iter().all(|e| e["id"] != id.as_str()), "{list}");
}

#[tokio::test]
async fn detach_leaves_the_program_running_and_a_killed_daemon_is_reported_not_hung() {
    let rt = Runtime::new();
    let s = Server::start_with_env(&[rt.env()]).await;
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    s.input(&id, "cd /tmp && X=kept").await;
    let d = s.call("detach_session", json!({"session_id": id})).await;
    assert!(d["note"].as_str().unwrap().contains("keeps running"), "{d}");
    assert_eq!(s.call_err("read_output", json!({"session_id": id})).await["code"], "SESSION_NOT_FOUND");
    s.call("create_local_session", json!({"session_id": id})).await;
    let r = s.input(&id, "echo $X $PWD").await;
    assert_eq!(output(&r), "kept /tmp\n", "the same shell, state and all: {r}");
    assert!(
        s.call_err("create_local_session", json!({"session_id": "0000000000000000"})).await["code"]
            .as_str()
            .is_some_and(|c| c == "SESSION_NOT_FOUND")
    );
    // The daemon dies: the session is reported gone, and nothing hangs.
    rt.kill_daemons();
    // The next call reattaches, which finds a fresh daemon without the session.
    let gone = "[pty-mcp: ai-tmux no longer has this session (was the daemon restarted?)]";
    read_until(&s, &id, gone).await;
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["state"], "exited", "{st}");
}

#[tokio::test]
async fn a_secret_reaches_a_program_in_a_persistent_session() {
    let rt = Runtime::new();
    let op = Operator::new(SECRET, "");
    let askpass = op.askpass();
    let s = Server::start_with_env(&[rt.env(), ("PTY_MCP_ASKPASS", &askpass)]).await;
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    send_secret_through(&s, v["session_id"].as_str().unwrap()).await;
    // And in a persistent session on an SSH host.
    let sshd = sshd_with_ai_tmux(&rt).await;
    let s = sshd.server_with(&[("PTY_MCP_ASKPASS", &askpass)]).await;
    let args = json!({"host": "testbox", "persistent": true, "command": "bash --norc --noprofile"});
    let v = s.call("create_ssh_session", args).await;
    send_secret_through(&s, v["session_id"].as_str().unwrap()).await;
}

/// A program reads a password; the operator's secret reaches it, and only it.
async fn send_secret_through(s: &Server, id: &str) {
    s.call("send_input", json!({"session_id": id, "input": READ_SECRET, "wait_for": "Password:"})).await;
    s.call("send_secret", json!({"session_id": id, "prompt": "Password for the test"})).await;
    let got = read_until_line(s, id, |l| l.starts_with("got ")).await;
    assert!(got.contains(&format!("got {} {}", SECRET.len(), sha256_prefix(SECRET))), "{got}");
    assert!(!got.contains(SECRET.trim()), "{got}");
}

/// A bash (no startup files) in the ai-tmux of sshd `testbox`: its session id, and the reply.
pub async fn remote_bash(s: &Server) -> (String, Value) {
    let args = json!({"host": "testbox", "persistent": true, "command": "bash --norc --noprofile"});
    let v = s.call("create_ssh_session", args).await;
    (v["session_id"].as_str().unwrap_or_else(|| panic!("{v}")).to_string(), v)
}

/// sshd whose sessions find the built ai-tmux on PATH and keep their daemon in `rt`.
async fn sshd_with_ai_tmux(rt: &Runtime) -> Sshd {
    sshd_with_ai_tmux_at(rt, None).await
}

/// The same, inside a network namespace when given (see `links`); with SFTP, for file transfers.
pub async fn sshd_with_ai_tmux_at(rt: &Runtime, netns: Option<(&str, &str)>) -> Sshd {
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    let socket = rt.socket.clone();
    Sshd::start_at(netns, move |_| {
        format!("SetEnv PATH={path} AI_TMUX_SOCKET={socket}\nSubsystem sftp internal-sftp\n")
    })
    .await
}

#[tokio::test]
async fn an_ssh_job_survives_a_killed_pty_mcp_and_a_cut_link() {
    let rt = Runtime::new();
    let sshd = sshd_with_ai_tmux(&rt).await;
    let s = sshd.server().await;
    let (id, v) = remote_bash(&s).await;
    assert_eq!(v["type"], "remote", "{v}");
    assert!(v["target"].as_str().unwrap().starts_with("root@127.0.0.1:"), "{v}");
    let r = s.input(&id, "echo over-$((40+2))").await;
    assert_eq!((output(&r), r["exit_code"].as_i64()), ("over-42\n", Some(0)), "{r}");
    let r = s.call("send_input", json!({"session_id": id, "input": TICKS, "timeout_ms": 200})).await;
    let mut seen = output(&r).to_string();
    s.kill9();
    let s = sshd.server().await;
    let running = s.call("list_remote_sessions", json!({"host": "testbox", "status": "running"})).await;
    assert!(
        running["result"].as_array().unwrap().iter().any(|e| e["id"] == id.as_str() && e["is_alive"] == true),
        "{running}"
    );
    let exited = s.call("list_remote_sessions", json!({"host": "testbox", "status": "exited"})).await;
    assert!(exited["result"].as_array().unwrap().iter().all(|e| e["id"] != id.as_str()), "{exited}");
    s.call("create_ssh_session", json!({"host": "testbox", "session_id": id})).await;
    seen.push_str(&read_until(&s, &id, "tick5").await);
    assert_eq!(lines_with(&seen, "tick"), ["tick1", "tick2", "tick3", "tick4", "tick5"], "{seen:?}");
    s.input_until(&id, "sleep 1; echo remote-ready", "^remote-ready").await;
    // The link is cut (sshd's connection processes killed): the next call reattaches.
    sshd.cut_connections();
    // The call in flight may see the cut (state disconnected) or beat it; either way the line is
    // typed once: what the lost link swallowed is sent again on reattaching, and the daemon
    // skips what it already had.
    let r = s.call("send_input", json!({"session_id": id, "input": "echo after-the-cut", "timeout_ms": 20000})).await;
    let mut seen = output(&r).to_string();
    if lines_with(&seen, "after-the-cut").is_empty() {
        seen.push_str(&read_until(&s, &id, "after-the-cut").await);
    }
    assert_eq!(lines_with(&seen, "after-the-cut"), ["after-the-cut"], "{seen:?} after {r}");
    // Closing ends the program in the daemon before it answers.
    s.call("close_session", json!({"session_id": id})).await;
    let all = s.call("list_remote_sessions", json!({"host": "testbox"})).await;
    assert!(all["result"].as_array().unwrap().iter().all(|e| e["id"] != id.as_str()), "{all}");
}

#[tokio::test]
async fn a_host_without_ai_tmux_says_so_and_install_puts_it_there() {
    let rt = Runtime::new();
    let socket = rt.socket.clone();
    let home = rt.path().join("remote-home");
    std::fs::create_dir_all(&home).unwrap();
    let home_s = home.display().to_string();
    let sshd = Sshd::start_with(move |_| {
        format!("SetEnv PATH=/usr/local/bin:/usr/bin:/bin AI_TMUX_SOCKET={socket} HOME={home_s}\n")
    })
    .await;
    let s = sshd.server().await;
    let e = s.call_err("create_ssh_session", json!({"host": "testbox", "persistent": true})).await;
    assert_eq!(e["code"], "DAEMON_UNAVAILABLE", "{e}");
    assert!(e["message"].as_str().unwrap().contains("install_ai_tmux"), "{e}");
    let v = s
        .call(
            "create_ssh_session",
            json!({"host": "testbox", "persistent": true, "install_ai_tmux": true, "command": "bash --norc"}),
        )
        .await;
    assert!(home.join(".local/bin/ai-tmux").is_file());
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("installed ai-tmux")), "{v}");
    let id = v["session_id"].as_str().unwrap();
    assert_eq!(output(&s.input(id, "echo installed-ok").await), "installed-ok\n");
}

/// A stand-in for the Go ai-tmux (which cannot run here): its `--version`, and its basic
/// protocol, which knows no `hello` and ignores the `status` filter.
const GO_AI_TMUX: &str = r#"#!/usr/bin/python3
import json, sys
if sys.argv[1:] == ["--version"]:
    print("ai-tmux 0.10.0")
    sys.exit(0)
sessions = [
    {"id": "aaaa000000000001", "name": "", "command": "apt upgrade -y", "is_alive": True,
     "created_at": "2026-11-26T10:00:00Z", "last_used": "2026-11-26T10:05:00Z"},
    {"id": "aaaa000000000002", "name": "", "command": "make", "is_alive": False,
     "created_at": "2026-11-26T09:00:00Z", "last_used": "2026-11-26T09:30:00Z"},
]
for line in sys.stdin:
    req = json.loads(line)
    if req["method"] == "list_sessions":
        reply = {"id": req["id"], "result": sessions}
    else:
        reply = {"id": req["id"], "error": "unknown method: " + req["method"]}
    print(json.dumps(reply), flush=True)
"#;

#[tokio::test]
async fn a_go_ai_tmux_is_listed_but_not_used_for_persistent_sessions() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Runtime::new();
    let bin = rt.path().join("go-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("ai-tmux"), GO_AI_TMUX).unwrap();
    std::fs::set_permissions(bin.join("ai-tmux"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let sshd = Sshd::start_with(move |_| format!("SetEnv PATH={path}\n")).await;
    let s = sshd.server().await;
    let e = s.call_err("create_ssh_session", json!({"host": "testbox", "persistent": true})).await;
    assert_eq!(e["code"], "DAEMON_UNAVAILABLE", "{e}");
    assert!(e["message"].as_str().unwrap().contains("basic protocol"), "{e}");
    let all = s.call("list_remote_sessions", json!({"host": "testbox"})).await;
    assert_eq!(all["result"].as_array().unwrap().len(), 2, "{all}");
    let running = s.call("list_remote_sessions", json!({"host": "testbox", "status": "running"})).await;
    let ids: Vec<&str> = running["result"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["aaaa000000000001"], "the filter works even where the daemon ignores it");
    let bad = s.call_err("list_remote_sessions", json!({"host": "testbox", "status": "sleeping"})).await;
    assert_eq!(bad["code"], "INVALID_PARAMS");
    // SSH's own failures keep their codes on the way to the daemon.
    sshd.write_client_config(&["id_other"]);
    for (tool, args) in [
        ("create_ssh_session", json!({"host": "testbox", "persistent": true})),
        ("list_remote_sessions", json!({"host": "testbox"})),
    ] {
        assert_eq!(s.call_err(tool, args).await["code"], "SSH_AUTH_FAILED");
    }
}
