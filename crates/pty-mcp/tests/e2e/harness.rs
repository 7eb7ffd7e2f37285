//! Starting the server and calling its tools.

use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

/// Generous bound for any single test step on a loaded 2-core machine.
pub const STEP: Duration = Duration::from_secs(60);

/// A running `pty-mcp` and a connected client.
pub struct Server {
    pub client: RunningService<RoleClient, ()>,
    /// The pty-mcp process.
    pub pid: u32,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pty-mcp")
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with_env(&[]).await
    }

    pub async fn start_with_env(env: &[(&str, &str)]) -> Server {
        Server::start_logging(env, None).await
    }

    /// Starts the server with `env` (and no display, so that no real dialog can appear),
    /// sending its log lines to `stderr` when given.
    pub async fn start_logging(env: &[(&str, &str)], stderr: Option<std::fs::File>) -> Server {
        Server::start_from(tokio::process::Command::new(binary()), env, stderr).await
    }

    /// Starts the server as a non-interactive shell starts a background job: SIGINT and SIGQUIT
    /// ignored (which its sessions must not inherit).
    pub async fn start_in_background() -> Server {
        let mut cmd = tokio::process::Command::new(binary());
        // SAFETY: signal() is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGQUIT, libc::SIG_IGN);
                Ok(())
            });
        }
        Server::start_from(cmd, &[], None).await
    }

    pub async fn start_from(
        mut cmd: tokio::process::Command,
        env: &[(&str, &str)],
        stderr: Option<std::fs::File>,
    ) -> Server {
        cmd.arg("serve").env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY").env_remove("PTY_MCP_ASKPASS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let stderr = stderr.map_or_else(std::process::Stdio::inherit, std::process::Stdio::from);
        let (transport, _) = TokioChildProcess::builder(cmd).stderr(stderr).spawn().expect("spawn pty-mcp");
        let pid = transport.id().expect("pty-mcp's pid");
        let client =
            tokio::time::timeout(STEP, ().serve(transport)).await.expect("initialize in time").expect("initialize");
        Server { client, pid }
    }

    /// `kill -9`: the server gets no chance to detach or clean up.
    pub fn kill9(self) {
        let status = std::process::Command::new("kill").args(["-9", &self.pid.to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Calls a tool; returns the structured result and whether it is an error.
    pub async fn try_call(&self, tool: &str, args: Value) -> (Value, bool) {
        let params =
            CallToolRequestParams::new(tool.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default());
        let result = tokio::time::timeout(STEP, self.client.peer().call_tool(params))
            .await
            .unwrap_or_else(|_| panic!("{tool} did not answer in time"))
            .unwrap_or_else(|e| panic!("{tool} failed at the protocol level: {e}"));
        // The text copy is the seed's pretty JSON of the same value.
        let text = result.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
        let from_text: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("text content is not JSON ({e}): {text}"));
        let structured = result.structured_content.clone().expect("structured content");
        if structured.get("result").is_none() {
            assert_eq!(from_text, structured, "text and structured content agree");
        }
        (structured, result.is_error == Some(true))
    }

    /// Calls a tool that must succeed.
    pub async fn call(&self, tool: &str, args: Value) -> Value {
        let (v, is_error) = self.try_call(tool, args.clone()).await;
        assert!(!is_error, "{tool} {args} failed: {v}");
        v
    }

    /// Calls a tool that must fail; returns `{code, message, retryable}`.
    pub async fn call_err(&self, tool: &str, args: Value) -> Value {
        let (v, is_error) = self.try_call(tool, args.clone()).await;
        assert!(is_error, "{tool} {args} should fail, got {v}");
        v
    }

    /// A bash without startup files and with a known prompt.
    pub async fn bash(&self) -> String {
        self.session("bash --norc --noprofile").await
    }

    pub async fn session(&self, command: &str) -> String {
        let v = self.call("create_local_session", json!({"command": command, "env": {"PS1": "test$ "}})).await;
        v["session_id"].as_str().expect("session_id").to_string()
    }

    /// Types `input` and waits (20 s at most) for a line matching `pattern`, which must come.
    pub async fn input_until(&self, id: &str, input: &str, pattern: &str) -> Value {
        let args = json!({"session_id": id, "input": input, "wait_for": pattern, "wait_for_timeout": 20});
        let r = self.call("send_input", args).await;
        assert_eq!(r["matched"], true, "{input:?} never printed {pattern:?}: {r}");
        r
    }

    pub async fn input(&self, id: &str, input: &str) -> Value {
        self.call("send_input", json!({"session_id": id, "input": input, "timeout_ms": 20000})).await
    }
}

/// The output of a reply as a string.
pub fn output(v: &Value) -> &str {
    v["output"].as_str().unwrap_or_default()
}

/// The lines of `text` (trimmed) that are `prefix` followed by a number: a counter's lines
/// (`n1`, `n2`…), in the order printed.
pub fn numbered<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        .collect()
}

/// A loopback port nobody listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Spawns `cmd` with stderr piped and returns once a line of its stderr contains `ready` (a
/// daemon saying it listens); the rest of stderr is drained in the background.
pub async fn spawn_until_ready(mut cmd: tokio::process::Command, ready: &str) -> tokio::process::Child {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = cmd.stderr(std::process::Stdio::piped()).kill_on_drop(true).spawn().expect("spawn helper process");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::time::timeout(STEP, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if line.contains(ready) {
                return;
            }
        }
        panic!("the process ended before saying {ready:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {ready:?} in time"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// A small file system of the test's own (tmpfs with a size limit) for disk-full faults;
/// unmounted when dropped. Mounting needs root, as CI has: elsewhere `new` says so and returns
/// None, and the test passes without running.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn new(size: &str) -> Option<SmallDisk> {
        // SAFETY: geteuid only reads.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: mounting a small tmpfs needs root (CI runs as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mount -t tmpfs failed");
        Some(SmallDisk { dir })
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills what is left with a file `filler` (until ENOSPC); returns its path. Again, it fills
    /// what was freed since.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..1]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}
