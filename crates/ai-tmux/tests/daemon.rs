//! The ai-tmux daemon over its real socket, spoken to in the Go protocol's JSON lines.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const STEP: Duration = Duration::from_secs(60);

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ai-tmux")
}

/// A JSON-lines conversation over any pair of streams.
struct Peer<R, W> {
    lines: tokio::io::Lines<BufReader<R>>,
    write: W,
    next_id: u64,
}

impl<R: tokio::io::AsyncRead + Unpin, W: tokio::io::AsyncWrite + Unpin> Peer<R, W> {
    fn new(read: R, write: W) -> Self {
        Peer { lines: BufReader::new(read).lines(), write, next_id: 1 }
    }

    async fn raw(&mut self, line: &str) -> Value {
        self.write.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        self.write.flush().await.unwrap();
        let reply = tokio::time::timeout(STEP, self.lines.next_line()).await.expect("reply in time").unwrap().unwrap();
        serde_json::from_str(&reply).unwrap()
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let reply = self.raw(&json!({"id": id, "method": method, "params": params}).to_string()).await;
        assert_eq!(reply["id"], id, "ids are echoed");
        reply
    }
}

/// The daemon, stopped when the test ends.
struct Server {
    _child: tokio::process::Child,
}

async fn start(socket: &Path) -> Server {
    let mut child = tokio::process::Command::new(binary())
        .args(["server", "--socket"])
        .arg(socket)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(STEP, lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(ready.starts_with("ready"), "{ready}");
    Server { _child: child }
}

async fn connect(socket: &Path) -> Peer<tokio::net::unix::OwnedReadHalf, tokio::net::unix::OwnedWriteHalf> {
    let (r, w) = tokio::net::UnixStream::connect(socket).await.unwrap().into_split();
    Peer::new(r, w)
}

#[tokio::test]
async fn sessions_live_in_the_daemon_across_clients() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start(&socket).await;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(socket.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let mut a = connect(&socket).await;
    let created = a.call("create_session", json!({"command": "bash --norc", "name": "build"})).await;
    let id = created["result"]["session_id"].as_str().unwrap().to_string();
    assert_eq!((created["result"]["type"].as_str(), created["result"]["name"].as_str()), (Some("pty"), Some("build")));
    let r = a.call("send_input", json!({"session_id": id, "input": "echo from-$((40+2))"})).await;
    assert!(r["result"]["output"].as_str().unwrap().contains("from-42"), "{r}");
    assert_eq!(r["result"]["is_alive"], true);
    drop(a);
    // Another client finds the same session, still alive.
    let mut b = connect(&socket).await;
    let list = b.call("list_sessions", json!({})).await;
    let sessions = list["result"].as_array().unwrap();
    assert_eq!(
        (sessions.len(), sessions[0]["id"].as_str(), sessions[0]["is_alive"].as_bool()),
        (1, Some(id.as_str()), Some(true))
    );
    let r = b.call("send_control", json!({"session_id": id, "key": "ctrl+c"})).await;
    assert_eq!(r["result"]["is_alive"], true);
    assert_eq!(
        b.call("resize_session", json!({"session_id": id, "rows": 0, "cols": 0})).await["error"]
            .as_str()
            .map(|e| e.contains("positive")),
        Some(true)
    );
    assert_eq!(b.call("no_such_method", json!({})).await["error"], "unknown method: no_such_method");
    assert!(b.raw("{not json").await["error"].as_str().unwrap().starts_with("malformed request"));
    assert_eq!(b.call("close_session", json!({"session_id": id})).await["result"]["success"], true);
    assert!(
        b.call("send_input", json!({"session_id": id, "input": "x"})).await["error"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
}

#[tokio::test]
async fn the_client_bridges_and_starts_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket: PathBuf = dir.path().join("run/ai-tmux.sock");
    let mut client = tokio::process::Command::new(binary())
        .args(["client", "--socket"])
        .arg(&socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut peer = Peer::new(client.stdout.take().unwrap(), client.stdin.take().unwrap());
    let r = peer.call("create_session", json!({"command": "cat"})).await;
    assert!(r["result"]["session_id"].is_string(), "{r}");
    drop(peer);
    let _ = client.wait().await;
    // `ai-tmux list` reaches the daemon the client started, which outlived the client.
    let out = tokio::process::Command::new(binary()).args(["list", "--socket"]).arg(&socket).output().await.unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // Stop the detached daemon this test started.
    let _ = std::process::Command::new("pkill").arg("-f").arg(socket.display().to_string()).status();
}

#[tokio::test]
async fn version_and_other_users() {
    let out = std::process::Command::new(binary()).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ai-tmux {}", env!("CARGO_PKG_VERSION")));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start(&socket).await;
    // Another user cannot reach the socket at all (private directory, 0600 socket).
    if std::path::Path::new("/usr/bin/setpriv").exists() {
        let script = format!("import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}')", socket.display());
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "python3", "-c", &script])
            .output()
            .unwrap();
        assert!(!out.status.success(), "nobody connected");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
