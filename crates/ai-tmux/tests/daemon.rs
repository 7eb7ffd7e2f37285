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
    /// Events that arrived while waiting for a response.
    events: std::collections::VecDeque<Value>,
}

impl<R: tokio::io::AsyncRead + Unpin, W: tokio::io::AsyncWrite + Unpin> Peer<R, W> {
    fn new(read: R, write: W) -> Self {
        Peer { lines: BufReader::new(read).lines(), write, next_id: 1, events: Default::default() }
    }

    async fn raw(&mut self, line: &str) -> Value {
        self.write.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        self.write.flush().await.unwrap();
        loop {
            let line =
                tokio::time::timeout(STEP, self.lines.next_line()).await.expect("reply in time").unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("event").is_none() {
                return v;
            }
            self.events.push_back(v);
        }
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
    start_with(socket, &[]).await
}

async fn start_with(socket: &Path, args: &[&str]) -> Server {
    let mut child = tokio::process::Command::new(binary())
        .arg("server")
        .args(args)
        .arg("--socket")
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
    // The daemon the client starts is detached from this test: stop it however the test ends.
    let _daemon = KillOnDrop(socket.clone());
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
}

/// Kills the processes whose command line names this path (a daemon serving that socket).
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill").arg("-f").arg(&self.0).status();
    }
}

/// Whether this test can act as another user (root, with setpriv); says so when it cannot.
fn can_switch_user() -> bool {
    // SAFETY: getuid has no preconditions.
    let ok = unsafe { libc::getuid() } == 0 && Path::new("/usr/bin/setpriv").exists();
    if !ok {
        eprintln!("skipped: needs root and setpriv to act as another user");
    }
    ok
}

#[tokio::test]
async fn version_and_other_users() {
    let out = std::process::Command::new(binary()).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("ai-tmux {}", env!("CARGO_PKG_VERSION")));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start(&socket).await;
    // Another user cannot reach the socket at all (private directory, 0600 socket).
    if can_switch_user() {
        let script = format!("import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}')", socket.display());
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", &script])
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

/// Reads lines until one is an event satisfying `want`, returning the events seen on the way.
async fn events_until<R: tokio::io::AsyncRead + Unpin, W>(
    peer: &mut Peer<R, W>,
    want: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    tokio::time::timeout(STEP, async {
        loop {
            let v = match peer.events.pop_front() {
                Some(v) => v,
                None => {
                    let line = peer.lines.next_line().await.unwrap().expect("the daemon hung up");
                    serde_json::from_str(&line).unwrap()
                }
            };
            if v.get("event").is_none() {
                continue;
            }
            let done = want(&v);
            seen.push(v);
            if done {
                return;
            }
        }
    })
    .await
    .expect("the event in time");
    seen
}

fn output_of(events: &[Value]) -> (u64, Vec<u8>) {
    use base64::Engine;
    let mut bytes = Vec::new();
    let mut first = None;
    for e in events.iter().filter(|e| e["event"] == "output") {
        first.get_or_insert(e["offset"].as_u64().unwrap());
        bytes.extend(base64::engine::general_purpose::STANDARD.decode(e["data"].as_str().unwrap()).unwrap());
    }
    (first.unwrap_or(0), bytes)
}

#[tokio::test]
async fn extensions_stream_output_from_an_offset_and_remember_what_was_read() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start(&socket).await;
    let mut a = connect(&socket).await;
    let hello = a.call("hello", json!({"client": "test"})).await;
    assert_eq!(hello["result"]["server"], "ai-tmux");
    assert!(hello["result"]["capabilities"].as_array().unwrap().iter().any(|c| c == "attach"));
    let id = a.call("create_session", json!({"command": "bash --norc", "rows": 30, "cols": 100})).await["result"]
        ["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let attached = a.call("attach", json!({"session_id": id, "from": 0})).await;
    assert_eq!((attached["result"]["rows"].as_u64(), attached["result"]["cols"].as_u64()), (Some(30), Some(100)));
    let data = base64::engine::general_purpose::STANDARD.encode("echo streamed-$((6*7))\r");
    let r = a.call("write", json!({"session_id": id, "data": data})).await;
    assert!(r["result"]["offset"].is_u64(), "{r}");
    let events = events_until(&mut a, |e| {
        e["event"] == "output" && String::from_utf8_lossy(&output_of(std::slice::from_ref(e)).1).contains("streamed-42")
    })
    .await;
    let (first, bytes) = output_of(&events);
    assert_eq!(first, 0, "the stream starts where asked");
    let end = first + bytes.len() as u64;
    // The daemon waits server-side for a line; nothing is polled.
    let w = a.call("wait", json!({"session_id": id, "pattern": "streamed-4\\d", "from": 0, "timeout_ms": 20000})).await;
    assert_eq!(w["result"]["matched"], true, "{w}");
    let data = base64::engine::general_purpose::STANDARD.encode("sleep 0.3; echo later\r");
    a.call("write", json!({"session_id": id, "data": data})).await;
    let w = a.call("wait", json!({"session_id": id, "until": "complete", "from": end, "timeout_ms": 20000})).await;
    assert_eq!(w["result"]["settled"], "shell", "the integrated shell said the command ended: {w}");
    assert!(a.call("wait", json!({"session_id": id, "until": "soon"})).await["error"].is_string());
    assert!(
        a.call("wait", json!({"session_id": id, "pattern": "("})).await["error"].as_str().unwrap().contains("invalid")
    );
    assert_eq!(a.call("ack", json!({"session_id": id, "offset": end})).await["result"]["read_offset"], end);
    let since = a.call("read_since", json!({"session_id": id, "offset": 0, "max_bytes": 1 << 20})).await;
    let all = base64::engine::general_purpose::STANDARD.decode(since["result"]["data"].as_str().unwrap()).unwrap();
    assert_eq!(&all[..bytes.len()], &bytes[..], "read_since returns the same bytes the stream did");
    let screen = a.call("screen", json!({"session_id": id})).await;
    assert!(screen["result"]["lines"].as_array().unwrap().iter().any(|l| l == "streamed-42"), "{screen}");
    drop(a);
    // Another client attaching later learns where the reading stopped.
    let mut b = connect(&socket).await;
    let again = b.call("attach", json!({"session_id": id, "from": end})).await;
    assert_eq!(again["result"]["read_offset"], end);
    assert_eq!(again["result"]["from"], end);
    let list = b.call("list_sessions", json!({"status": "running"})).await;
    assert_eq!(list["result"][0]["attached"], 1, "{list}");
    assert_eq!(b.call("list_sessions", json!({"status": "exited"})).await["result"], json!([]));
    assert!(b.call("list_sessions", json!({"status": "sleeping"})).await["error"].is_string());
    let data = base64::engine::general_purpose::STANDARD.encode("exit 5\r");
    b.call("write", json!({"session_id": id, "data": data})).await;
    let events = events_until(&mut b, |e| e["event"] == "exit").await;
    assert_eq!(events.last().unwrap()["exit_code"], 5);
    let exited = b.call("list_sessions", json!({"status": "exited"})).await;
    assert_eq!(
        (exited["result"][0]["id"].as_str(), exited["result"][0]["exit_code"].as_i64()),
        (Some(id.as_str()), Some(5))
    );
    assert_eq!(b.call("detach", json!({"session_id": id})).await["result"]["success"], true);
    assert!(b.call("attach", json!({"session_id": "nope"})).await["error"].as_str().unwrap().contains("not found"));
}

/// The Go daemon's `--idle-timeout` is accepted (a user's scripts pass it) and changes nothing:
/// what closes sessions is the retention, tested in the daemon's unit tests.
#[tokio::test]
async fn the_go_idle_timeout_flag_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start_with(&socket, &["--idle-timeout", "1"]).await;
    let mut a = connect(&socket).await;
    assert!(a.call("create_session", json!({"command": "cat"})).await["result"]["session_id"].is_string());
}

#[tokio::test]
async fn two_daemons_started_at_once_leave_one() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let spawn = || {
        tokio::process::Command::new(binary())
            .args(["server", "--socket"])
            .arg(&socket)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let (mut one, mut two) = (spawn(), spawn());
    for child in [&mut one, &mut two] {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(STEP, lines.next_line()).await.unwrap().unwrap().unwrap();
        assert!(ready.starts_with("ready"));
    }
    // The one that found the other already listening exits; the other serves.
    let exited = tokio::time::timeout(STEP, async {
        tokio::select! {
            s = one.wait() => (s.unwrap(), &mut two),
            s = two.wait() => (s.unwrap(), &mut one),
        }
    })
    .await
    .expect("one of the two exits");
    assert!(exited.0.success());
    assert!(exited.1.try_wait().unwrap().is_none(), "the other still serves");
    let mut a = connect(&socket).await;
    assert_eq!(a.call("list_sessions", json!({})).await["result"], json!([]));
}

#[tokio::test]
async fn the_daemon_refuses_a_connection_from_another_uid() {
    if !can_switch_user() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start(&socket).await;
    // A careless chmod opens the way; the daemon's uid check still stands (it hangs up at once,
    // so the request may meet a closed socket: a broken pipe is the same refusal).
    std::fs::set_permissions(socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('{}')\n\
         try:\n    s.sendall(b'{{\"id\":1,\"method\":\"list_sessions\"}}\\n')\n    print(repr(s.recv(100)))\n\
         except (ConnectionResetError, BrokenPipeError):\n    print(repr(b''))\n",
        socket.display()
    );
    let out = tokio::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", &script])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b''", "{}", String::from_utf8_lossy(&out.stderr));
    // And our own client refuses a socket that is not ours: run it as nobody against root's.
    let out = tokio::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(binary())
        .args(["list", "--socket"])
        .arg(&socket)
        .env("HOME", "/nonexistent")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("uid"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn two_clients_attached_at_once_both_see_the_output() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("private/ai-tmux.sock");
    let _server = start(&socket).await;
    let (mut a, mut b) = (connect(&socket).await, connect(&socket).await);
    let id = a.call("create_session", json!({"command": "bash --norc"})).await["result"]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    for peer in [&mut a, &mut b] {
        assert!(peer.call("attach", json!({"session_id": id, "client": "x"})).await["result"].is_object());
    }
    // Both type; the daemon serialises the writes, and each sees both answers.
    for (peer, word) in [(&mut a, "from-a"), (&mut b, "from-b")] {
        let data = base64::engine::general_purpose::STANDARD.encode(format!("echo {word}-$((1+1))\r"));
        peer.call("write", json!({"session_id": id, "data": data})).await;
    }
    for peer in [&mut a, &mut b] {
        let mut text = String::new();
        while !(text.contains("from-a-2") && text.contains("from-b-2")) {
            let events = events_until(peer, |e| e["event"] == "output").await;
            text.push_str(&String::from_utf8_lossy(&output_of(&events).1));
        }
    }
}
