//! The operator's view (issue 16): `pty-mcp ls` and `pty-mcp attach` in a real terminal (tmux),
//! while an MCP client drives the agent's side.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{STEP, Server, binary, output};

/// A server whose control socket is in a directory of the test's own.
async fn server(control: &Path) -> Server {
    Server::start_with_env(&[("PTY_MCP_CONTROL_DIR", control.to_str().unwrap())]).await
}

/// `pty-mcp ls --json` against `control`.
fn ls(control: &Path) -> Vec<Value> {
    ls_with(control, &[])
}

fn ls_with(control: &Path, env: &[(&str, &str)]) -> Vec<Value> {
    let out = std::process::Command::new(binary())
        .args(["ls", "--json"])
        .env("PTY_MCP_CONTROL_DIR", control)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "ls failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ls --json ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A tmux server of the test's own with one pane running `command`; a control-mode client tells
/// when the pane's output changes, so waits are on events, not polls.
struct Tmux {
    socket: PathBuf,
    dir: tempfile::TempDir,
    events: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    _client: tokio::process::Child,
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

impl Tmux {
    async fn start(command: &str, control: &Path, rows: u16, cols: u16) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let status = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", &cols.to_string(), "-y", &rows.to_string()])
            .args(["-e", &format!("PTY_MCP_CONTROL_DIR={}", control.display())])
            // The program's exit status goes to a file, then a tmux channel says it ended.
            .arg(format!(
                "{command}; echo $? > {}; tmux -S {} wait-for -S exited",
                dir.path().join("status").display(),
                socket.display()
            ))
            .args([";", "set-option", "-g", "window-size", "manual", ";", "set-option", "-g", "remain-on-exit", "on"])
            .status()
            .unwrap();
        assert!(status.success(), "tmux new-session");
        let mut client = tokio::process::Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["-C", "attach-session", "-t", "t"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let events = BufReader::new(client.stdout.take().unwrap()).lines();
        Tmux { socket, dir, events, _client: client }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the operator sees.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Waits until the operator's screen satisfies `done`; returns it.
    async fn until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let waited = tokio::time::timeout(STEP, async {
            loop {
                let screen = self.screen();
                if done(&screen) {
                    return screen;
                }
                // The next change of the pane (or of the client's state).
                match self.events.next_line().await {
                    Ok(Some(_)) => {}
                    _ => return self.screen(),
                }
            }
        })
        .await;
        let screen = waited.unwrap_or_else(|_| self.screen());
        assert!(done(&screen), "the operator's screen never showed {what}:\n{screen}");
        screen
    }

    /// The exit status of the pane's program once it ended.
    async fn exited(&mut self) -> i32 {
        let mut wait = tokio::process::Command::new("tmux");
        wait.arg("-S").arg(&self.socket).args(["wait-for", "exited"]).kill_on_drop(true);
        let done = tokio::time::timeout(STEP, wait.status()).await;
        assert!(matches!(done, Ok(Ok(s)) if s.success()), "the attach never ended: {done:?}");
        let status = std::fs::read_to_string(self.dir.path().join("status")).unwrap();
        status.trim().parse().unwrap()
    }
}

async fn bash(s: &Server) -> String {
    let v =
        s.call("create_local_session", json!({"command": "bash --norc --noprofile", "env": {"PS1": "agent$ "}})).await;
    v["session_id"].as_str().unwrap().to_string()
}

/// The agent works, the operator watches: the pane shows the agent's commands and a full-screen
/// program as they are; the operator's keys go nowhere; ls counts the viewer; ctrl+] detaches
/// with status 0 and the session goes on.
#[tokio::test]
async fn a_read_only_viewer_sees_the_agent_work_and_cannot_type() {
    let control = tempfile::tempdir().unwrap();
    let s = server(control.path()).await;
    let id = bash(&s).await;
    s.input(&id, "echo agent-was-here").await;
    // (Taller than the session's 40 rows: a smaller one crops, see render.rs's tests.)
    let mut t = Tmux::start(&format!("{} attach {id}", binary()), control.path(), 45, 130).await;
    t.until("the agent's output and the status line", |sc| {
        sc.contains("agent-was-here") && sc.contains("read-only") && sc.contains(&id)
    })
    .await;
    assert_eq!(ls(control.path())[0]["attached"], 1);
    // Live: the agent's next command appears.
    s.input(&id, "echo second-$((6*7))").await;
    t.until("the agent's next output", |sc| sc.contains("second-42")).await;
    // The operator's keys do nothing.
    t.keys(&["echo operator-typed", "Enter"]);
    let r = s.input(&id, "echo after").await;
    assert_eq!(output(&r), "after\n", "{r}");
    let all = s.call("read_output", json!({"session_id": id, "since_cursor": 0, "max_bytes": 1 << 20})).await;
    assert!(!output(&all).contains("operator-typed"), "a read-only viewer typed: {all}");
    // A full-screen program as a person sees it.
    s.call("send_input", json!({"session_id": id, "input": "top -d 0.5", "timeout_ms": 3000})).await;
    t.until("top's header", |sc| sc.contains("load average") && sc.contains("Tasks:")).await;
    s.call("send_control", json!({"session_id": id, "key": "q"})).await;
    t.keys(&["C-]"]);
    assert_eq!(t.exited().await, 0);
    assert_eq!(ls(control.path())[0]["attached"], 0);
    assert_eq!(output(&s.input(&id, "echo still-here").await), "still-here\n");
}

/// With --write the operator types into the session; the agent's next read has it, and
/// get_session_state says an operator is attached and typed.
#[tokio::test]
async fn a_writing_viewer_types_into_the_session() {
    let control = tempfile::tempdir().unwrap();
    let s = server(control.path()).await;
    let id = bash(&s).await;
    let mut t = Tmux::start(&format!("{} attach --write {id}", binary()), control.path(), 24, 80).await;
    t.until("typing on", |sc| sc.contains("typing on")).await;
    t.keys(&["echo from-operator", "Enter"]);
    t.until("the operator's command's output", |sc| sc.lines().any(|l| l.trim() == "from-operator")).await;
    let r = s.call("read_output", json!({"session_id": id, "timeout": 1})).await;
    assert!(output(&r).contains("from-operator"), "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!((st["operator_attached"].as_u64(), st["operator_typed"].as_bool()), (Some(1), Some(true)), "{st}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert!(st.get("operator_typed").is_none(), "reported once: {st}");
    t.keys(&["C-]"]);
    assert_eq!(t.exited().await, 0);
}

/// Two viewers at once; the session ends while they watch: both say so and exit 0.
#[tokio::test]
async fn two_viewers_and_a_session_that_ends() {
    let control = tempfile::tempdir().unwrap();
    let s = server(control.path()).await;
    let id = bash(&s).await;
    let mut a = Tmux::start(&format!("{} attach {id}", binary()), control.path(), 24, 80).await;
    let mut b = Tmux::start(&format!("{} attach {id}", binary()), control.path(), 40, 60).await;
    a.until("the status line", |sc| sc.contains("read-only")).await;
    b.until("the status line", |sc| sc.contains("read-only")).await;
    assert_eq!(ls(control.path())[0]["attached"], 2);
    s.call("send_input", json!({"session_id": id, "input": "exit 3", "timeout_ms": 3000})).await;
    assert_eq!(a.exited().await, 0);
    assert_eq!(b.exited().await, 0);
    for t in [&a, &b] {
        let all = t.tmux(&["capture-pane", "-p", "-S", "-200", "-t", "t"]);
        assert!(all.contains("ended"), "the viewer does not say the session ended: {all:?}");
    }
}

/// A viewer that stops reading holds up neither the session nor the agent, and is brought to
/// the current screen once it reads again; one that vanishes mid-stream leaves nothing behind.
#[tokio::test]
async fn a_stalled_or_vanished_viewer_holds_nothing_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let control = tempfile::tempdir().unwrap();
    let s = server(control.path()).await;
    let id = bash(&s).await;
    let socket = control.path().join(format!("{}-{}.sock", ai_tmux::paths::host_name(), s.pid));
    let attach = || async {
        let mut viewer = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let request = json!({"op": "attach", "session_id": id, "rows": 24, "cols": 80});
        viewer.write_all(format!("{request}\n").as_bytes()).await.unwrap();
        viewer
    };
    let mut stalled = attach().await;
    let vanishing = attach().await;
    // The agent floods the terminal while neither viewer reads.
    let flood = json!({"session_id": id, "input": "seq 1 300000", "timeout_ms": 30000, "max_output_bytes": 1024});
    let r = s.call("send_input", flood).await;
    assert!(output(&r).ends_with("\n300000\n"), "the flood's reply ends early: {r}");
    drop(vanishing);
    assert_eq!(output(&s.input(&id, "echo agent-goes-on").await), "agent-goes-on\n");
    // Reading again, the stalled viewer catches up with the current screen.
    let mut seen = String::new();
    let caught_up = tokio::time::timeout(STEP, async {
        let mut buf = vec![0u8; 64 << 10];
        while !seen.contains("agent-goes-on") {
            let n = stalled.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stalled viewer was dropped");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(caught_up.is_ok(), "the stalled viewer never caught up");
    // The server notices the vanished viewer when its socket closes, in a task of its own: on a
    // busy machine that may come after the catch-up above, so look again after each agent call.
    let mut attached = ls(control.path())[0]["attached"].clone();
    for _ in 0..50 {
        if attached == 1 {
            break;
        }
        s.input(&id, "true").await;
        attached = ls(control.path())[0]["attached"].clone();
    }
    assert_eq!(attached, 1, "the vanished viewer is still counted");
}

/// A socket left by a server that crashed is removed, not mistaken for a live one; an unknown
/// session is a clear error.
#[tokio::test]
async fn a_crashed_servers_socket_is_cleaned_up() {
    let control = tempfile::tempdir().unwrap();
    std::fs::set_permissions(control.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let host = ai_tmux::paths::host_name();
    let stale = control.path().join(format!("{host}-999999.sock"));
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let s = server(control.path()).await;
    let id = bash(&s).await;
    let sessions = ls(control.path());
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(
        (sessions[0]["session_id"].as_str(), sessions[0]["server_pid"].as_u64()),
        (Some(id.as_str()), Some(u64::from(s.pid)))
    );
    assert!(!stale.exists(), "the stale socket is still there");
    let out = std::process::Command::new(binary())
        .args(["attach", "0000000000000000"])
        .env("PTY_MCP_CONTROL_DIR", control.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no live session"));
}

/// What an operator does is audited under the operator's name, not the agent's: attaching, each
/// line typed (redacted like agent input), detaching.
#[tokio::test]
async fn an_operators_actions_are_audited_as_the_operators() {
    use crate::audit::{Collector, audit_home, events, server_with, wait_until};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::harness::free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let control = tempfile::tempdir().unwrap();
    let env = audit_home(dir.path(), port, "best-effort");
    let s = server_with(&env, &[("PTY_MCP_CONTROL_DIR", control.path().to_str().unwrap())]).await;
    let id = bash(&s).await;
    let mut t = Tmux::start(&format!("{} attach --write {id}", binary()), control.path(), 24, 80).await;
    t.until("typing on", |sc| sc.contains("typing on")).await;
    t.keys(&["echo by-hand token=hunter2", "Enter"]);
    t.until("the operator's command's output", |sc| sc.lines().any(|l| l.trim() == "by-hand token=hunter2")).await;
    t.keys(&["C-]"]);
    assert_eq!(t.exited().await, 0);
    let all = wait_until(&log, "the operator's records", |r| events(r).iter().any(|e| e == "operator_detached")).await;
    let ops: Vec<Value> =
        all.iter().filter(|v| v["user"].as_str().is_some_and(|u| u.starts_with("operator:"))).cloned().collect();
    assert_eq!(events(&ops), ["operator_attached", "cmd", "operator_detached"], "{ops:?}");
    let cmd = ops[1]["cmd"].as_str().unwrap();
    assert!(cmd.contains("echo by-hand") && !cmd.contains("hunter2"), "{cmd}");
    assert!(all.iter().all(|v| !v.to_string().contains("hunter2")), "the secret reached a record");
}

/// A persistent session that no server has open (detached) is listed from this machine's
/// ai-tmux; one a server has open is listed once, under that server.
#[tokio::test]
async fn ls_lists_detached_persistent_sessions_too() {
    let rt = crate::persistent::Runtime::new();
    let control = tempfile::tempdir().unwrap();
    let env = [rt.env(), ("PTY_MCP_CONTROL_DIR", control.path().to_str().unwrap())];
    let s = Server::start_with_env(&env).await;
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    let rows = ls_with(control.path(), &[rt.env()]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["server_pid"].as_u64(), Some(u64::from(s.pid)), "{rows:?}");
    s.call("detach_session", json!({"session_id": id})).await;
    let rows = ls_with(control.path(), &[rt.env()]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["session_id"].as_str(), rows[0]["type"].as_str()), (Some(id.as_str()), Some("persistent")));
    assert!(rows[0]["server_pid"].is_null(), "{rows:?}");
}

/// `ai-tmux attach ID` shows a persistent session from the daemon itself, as `pty-mcp attach`
/// does; with --write the operator types into it, and detaching leaves it running for the agent.
#[tokio::test]
async fn ai_tmux_attach_shows_a_persistent_session() {
    let rt = crate::persistent::Runtime::new();
    let s = Server::start_with_env(&[rt.env()]).await;
    let v = s
        .call(
            "create_local_session",
            json!({"command": "env PS1='agent$ ' bash --norc --noprofile", "persistent": true}),
        )
        .await;
    let id = v["session_id"].as_str().unwrap().to_string();
    s.input(&id, "echo persistent-$((6*7))").await;
    let ai_tmux = crate::persistent::bin_dir().join("ai-tmux");
    let command = format!("{} attach --write --socket {} {id}", ai_tmux.display(), rt.socket);
    let unused = tempfile::tempdir().unwrap();
    let mut t = Tmux::start(&command, unused.path(), 24, 80).await;
    t.until("the session and the status line", |sc| sc.contains("persistent-42") && sc.contains("typing on")).await;
    t.keys(&["echo from-operator", "Enter"]);
    t.until("the operator's command's output", |sc| sc.lines().any(|l| l.trim() == "from-operator")).await;
    let r = s.call("read_output", json!({"session_id": id, "timeout": 1})).await;
    assert!(output(&r).contains("from-operator"), "{r}");
    t.keys(&["C-]"]);
    assert_eq!(t.exited().await, 0);
    assert_eq!(output(&s.input(&id, "echo still-here").await), "still-here\n");
}

/// Another user on the machine reaches nothing: the directory and socket are private, and
/// even with both opened up (an administrator's mistake) the server answers no peer of another
/// uid.
#[tokio::test]
async fn another_user_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("SKIPPED: needs root and setpriv to act as another user");
        return;
    }
    let control = tempfile::tempdir().unwrap();
    let s = server(control.path()).await;
    bash(&s).await;
    let socket = control.path().join(format!("{}-{}.sock", ai_tmux::paths::host_name(), s.pid));
    let as_nobody = || {
        let script = format!(
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect('{}'); s.sendall(b'{{\"op\":\"list\"}}\\n'); \
             print(repr(s.recv(65536)))",
            socket.display()
        );
        std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", &script])
            .output()
            .unwrap()
    };
    let out = as_nobody();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    std::fs::set_permissions(control.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("session"), "another user was answered: {said}");
}
