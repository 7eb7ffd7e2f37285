//! Team mode: `pty-mcp serve --http`, reached by several operators' agents at once over MCP's
//! Streamable HTTP transport, each with a bearer token of their own. Real clients: rmcp's
//! streamable HTTP client, raw HTTP (reqwest) for what a client must be refused.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::harness::*;

pub const ALICE: &str = "alice-token-0123456789abcdef";
pub const BOB: &str = "bob-token-0123456789abcdef00";

/// A `pty-mcp serve --http` on a free loopback port, with alice's and bob's tokens.
pub struct HttpServer {
    child: Child,
    /// `http(s)://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// Every line it wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
    /// How many lines `log` holds, changing as each arrives.
    lines: tokio::sync::watch::Receiver<usize>,
    /// Its HOME and tokens file, removed with it.
    _dir: tempfile::TempDir,
}

/// The tokens file: mode 0600, alice and bob.
pub fn tokens_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("tokens");
    std::fs::write(&path, format!("# operators\n{ALICE} alice\n{BOB} bob\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `pty-mcp serve --http ... ARGS` in `dir` (HOME too), without waiting for it.
fn spawn(dir: &Path, addr: &str, args: &[&str], log_filter: &str) -> Child {
    spawn_env(dir, addr, args, log_filter, &[])
}

fn spawn_env(dir: &Path, addr: &str, args: &[&str], log_filter: &str, env: &[(&str, &str)]) -> Child {
    let tokens = tokens_file(dir);
    Command::new(binary())
        .args(["serve", "--http", addr, "--tokens"])
        .arg(&tokens)
        .args(args)
        .env("HOME", dir)
        .env_remove("DISPLAY")
        .env_remove("PTY_MCP_ASKPASS")
        .env("RUST_LOG", log_filter)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pty-mcp serve --http")
}

impl HttpServer {
    pub async fn start(args: &[&str]) -> HttpServer {
        HttpServer::start_logging(args, "warn").await
    }

    /// [`HttpServer::start`] with `RUST_LOG=filter`.
    pub async fn start_logging(args: &[&str], filter: &str) -> HttpServer {
        HttpServer::start_with(args, filter, &[]).await
    }

    /// [`HttpServer::start`] with `RUST_LOG=filter` and `env`.
    pub async fn start_with(args: &[&str], filter: &str, env: &[(&str, &str)]) -> HttpServer {
        // Its HOME is a developer machine's: startup files that print and take 0.8 s.
        let dir = crate::startup::slow_home();
        let mut child = spawn_env(dir.path(), "127.0.0.1:0", args, filter, env);
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (count_tx, lines) = tokio::sync::watch::channel(0);
        let all = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("pty-mcp serving MCP on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.to_string());
                }
                let mut all = all.lock().unwrap();
                all.push(line);
                count_tx.send_replace(all.len());
            }
        });
        let url = tokio::time::timeout(STEP, rx).await.expect("serving in time").expect("the address it serves");
        HttpServer { child, url, log, lines, _dir: dir }
    }

    /// An MCP client (rmcp's streamable HTTP client) with `token`, as a [`Server`].
    pub async fn client(&self, token: &str) -> Server {
        self.client_with(token, plain_http()).await
    }

    pub async fn client_with(&self, token: &str, http: reqwest::Client) -> Server {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str()).auth_header(token);
        let transport = StreamableHttpClientTransport::with_client(http, config);
        let client =
            tokio::time::timeout(STEP, ().serve(transport)).await.expect("initialize in time").expect("initialize");
        Server { client, pid: self.child.id() }
    }

    /// What it logged, one line each.
    pub fn logged(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// How many lines it logged so far.
    pub fn logged_lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits for a line after the first `from` that `wanted` accepts; returns its index.
    pub async fn wait_logged(&self, from: usize, wanted: impl Fn(&str) -> bool) -> usize {
        let mut rx = self.lines.clone();
        let found = tokio::time::timeout(STEP, async {
            loop {
                if let Some(i) = self.log.lock().unwrap().iter().skip(from).position(|l| wanted(l)) {
                    return from + i;
                }
                rx.changed().await.expect("the server's log is open");
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("not logged in time; the log:\n{}", self.logged()))
    }

    /// A raw POST of `body` with `headers`: (status, headers, body).
    pub async fn post(&self, headers: &[(&str, &str)], body: String) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = plain_http()
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = tokio::time::timeout(STEP, request.send()).await.expect("an answer in time").expect("HTTP");
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap_or_default())
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for `http://` URLs (reqwest is built here without a TLS provider of its own).
fn plain_http() -> reqwest::Client {
    let tls = audit::tls::client_config(false, None).unwrap();
    reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap()
}

/// An `initialize` request's body.
pub fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
    .to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn operators_see_and_use_only_their_own_sessions_and_find_them_again_from_a_new_client() {
    let http = HttpServer::start(&[]).await;
    let alice = http.client(ALICE).await;
    // The user's own bash, under slow, chatty startup files; the first command at once.
    let id = alice.session("bash").await;
    let r = alice.input(&id, "echo from-alice; false").await;
    assert_eq!(
        (output(&r), r["exit_code"].as_i64(), r["completion"].as_str()),
        ("from-alice\n", Some(1), Some("shell"))
    );

    // To bob, alice's session does not exist: every tool says so exactly as for a made-up id.
    let bob = http.client(BOB).await;
    let bobs = bob.session("bash").await;
    let listed = bob.call("list_sessions", json!({})).await;
    let ids: Vec<&str> = listed["result"].as_array().unwrap().iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, [bobs.as_str()], "{listed}");
    let missing = "0123456789abcdef";
    for (tool, extra) in [
        ("send_input", json!({"input": "echo from-bob"})),
        ("read_output", json!({"timeout": 0})),
        ("send_control", json!({"key": "ctrl+c"})),
        ("resize_session", json!({"rows": 10, "cols": 40})),
        ("get_session_state", json!({})),
        ("check_policy", json!({"input": "ls"})),
        ("close_session", json!({})),
        ("detach_session", json!({})),
    ] {
        let mut args = extra.clone();
        args["session_id"] = json!(id);
        let theirs = bob.call_err(tool, args).await;
        let mut args = extra;
        args["session_id"] = json!(missing);
        let none = bob.call_err(tool, args).await;
        assert_eq!(theirs["code"], "SESSION_NOT_FOUND", "{tool}: {theirs}");
        assert_eq!(theirs["message"].as_str().unwrap().replace(&id, missing), none["message"], "{tool}");
    }

    // Alice's client goes away; her session stays, and a new client with her token finds it
    // untouched by bob's attempts.
    alice.client.cancel().await.unwrap();
    let again = http.client(ALICE).await;
    let listed = again.call("list_sessions", json!({})).await;
    assert_eq!(listed["result"][0]["id"], id, "{listed}");
    let r = again.input(&id, "echo still-here").await;
    assert_eq!((output(&r), r["exit_code"].as_i64()), ("still-here\n", Some(0)), "{r}");
    let all = again.call("read_output", json!({"session_id": id, "since_cursor": 0, "timeout": 0})).await;
    assert!(!all["output"].as_str().unwrap().contains("from-bob"), "{all}");
    again.call("close_session", json!({"session_id": id})).await;
    bob.call("close_session", json!({"session_id": bobs})).await;
}

#[tokio::test]
async fn persistent_sessions_keep_their_owner_in_ai_tmux() {
    let rt = crate::persistent::Runtime::new();
    let http = HttpServer::start_with(&[], "warn", &[rt.env()]).await;
    let alice = http.client(ALICE).await;
    let v = alice.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    assert_eq!(output(&alice.input(&id, "echo kept-for-alice").await), "kept-for-alice\n");
    alice.call("detach_session", json!({"session_id": id})).await;
    // The daemon keeps it with its owner: bob neither sees it nor reattaches it.
    let bob = http.client(BOB).await;
    let listed = bob.call("list_remote_sessions", json!({})).await;
    assert!(!listed.to_string().contains(&id), "{listed}");
    let e = bob.call_err("create_local_session", json!({"session_id": id})).await;
    assert_eq!(e["code"], "SESSION_NOT_FOUND", "{e}");
    // Alice, from a new client, finds it and goes on.
    let again = http.client(ALICE).await;
    let listed = again.call("list_remote_sessions", json!({})).await;
    let mine: Vec<&Value> = listed["result"].as_array().unwrap().iter().filter(|s| s["id"] == id.as_str()).collect();
    assert_eq!(mine.len(), 1, "{listed}");
    assert_eq!(mine[0]["owner"], "alice");
    again.call("create_local_session", json!({"session_id": id})).await;
    assert_eq!(output(&again.input(&id, "echo back").await), "back\n");
    again.call("close_session", json!({"session_id": id})).await;
}

#[tokio::test]
async fn idle_close_ends_sessions_nobody_uses() {
    let http = HttpServer::start_logging(&["--idle-close", "1s"], "pty_mcp::manager=info").await;
    let alice = http.client(ALICE).await;
    let idle = alice.bash().await;
    let mark = http.logged_lines();
    http.wait_logged(mark, |l| l.contains(&format!("session {idle} of"))).await;
    let e = alice.call_err("get_session_state", json!({"session_id": idle})).await;
    assert_eq!(e["code"], "SESSION_NOT_FOUND", "{e}");
    // The server goes on: a new session works.
    let id = alice.bash().await;
    assert_eq!(output(&alice.input(&id, "echo fresh").await), "fresh\n");
}

#[tokio::test]
async fn each_operator_is_the_user_of_their_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    // The collector writes its log into a FIFO the test reads as records come.
    let fifo = dir.path().join("audit.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (tx, mut records) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let reading = fifo.clone();
    std::thread::spawn(move || {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(reading).unwrap();
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap());
        }
    });
    let port = free_port();
    let _collector = crate::audit::Collector::start(port, &fifo).await;
    let env = crate::audit::audit_home(dir.path(), port, "best-effort");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let http = HttpServer::start_with(&[], "warn", &env).await;
    for (token, who) in [(ALICE, "alice"), (BOB, "bob")] {
        let client = http.client(token).await;
        let id = client.bash().await;
        client.input(&id, &format!("echo as-{who}")).await;
    }
    let mut users = std::collections::HashMap::new();
    tokio::time::timeout(STEP, async {
        while users.len() < 2 {
            let r = records.recv().await.unwrap();
            if let Some(cmd) = r["cmd"].as_str() {
                users.insert(cmd.to_string(), r["user"].clone());
            }
        }
    })
    .await
    .expect("both commands' records");
    assert_eq!(users["echo as-alice"], "alice");
    assert_eq!(users["echo as-bob"], "bob");
}

#[tokio::test]
async fn shared_mode_lets_every_operator_use_every_session() {
    let http = HttpServer::start(&["--shared"]).await;
    let alice = http.client(ALICE).await;
    let id = alice.bash().await;
    let bob = http.client(BOB).await;
    let r = bob.input(&id, "echo bob-was-here").await;
    assert_eq!(output(&r), "bob-was-here\n", "{r}");
    let listed = bob.call("list_sessions", json!({})).await;
    assert_eq!(listed["result"][0]["id"], id);
}

#[tokio::test]
async fn bad_tokens_bodies_origins_and_floods_are_refused_and_the_server_keeps_serving() {
    let http =
        HttpServer::start(&["--max-body", "65536", "--max-mcp-sessions", "3", "--max-sessions-per-operator", "2"])
            .await;
    let alice = http.client(ALICE).await;
    let id = alice.bash().await;

    // No token, a wrong one, a token with a character changed: 401 and nothing else said.
    let wrong = format!("{}x", &ALICE[..ALICE.len() - 1]);
    for auth in [None, Some("Bearer nope".to_string()), Some(bearer(&wrong)), Some(ALICE.to_string())] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, headers, body) = http.post(&headers, initialize()).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert_eq!(headers["www-authenticate"], "Bearer realm=\"pty-mcp\"");
        assert_eq!(body, r#"{"error":"unauthorized"}"#);
    }
    // A body over the limit: 413, before any of it is looked at.
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(70_000));
    let (status, _, _) = http.post(&[("authorization", &bearer(ALICE))], big).await;
    assert_eq!(status, 413);
    // A browser page from another site (DNS rebinding): refused by Origin, and by Host.
    let (status, _, _) =
        http.post(&[("authorization", &bearer(ALICE)), ("origin", "https://evil.example")], initialize()).await;
    assert_eq!(status, 403);
    let (status, _, _) =
        http.post(&[("authorization", &bearer(ALICE)), ("host", "evil.example:8765")], initialize()).await;
    assert_eq!(status, 403);

    // Bob presenting alice's MCP session: as if it did not exist.
    let (status, headers, _) = http.post(&[("authorization", &bearer(ALICE))], initialize()).await;
    assert_eq!(status, 200);
    let session = headers["mcp-session-id"].to_str().unwrap().to_string();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let (status, _, body) = http
        .post(
            &[("authorization", &bearer(BOB)), ("mcp-session-id", &session), ("mcp-protocol-version", "2025-06-18")],
            list,
        )
        .await;
    assert_eq!(status, 404, "{body}");

    // Alice opening 1,000 MCP sessions: 3 at most (her client and the raw one hold 2).
    let mut codes = Vec::new();
    for _ in 0..1000 {
        let (status, headers, _) = http.post(&[("authorization", &bearer(ALICE))], initialize()).await;
        if status == 429 {
            assert!(headers.contains_key("retry-after"));
        }
        codes.push(status);
    }
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 429).count(), 999, "{codes:?}");
    // Bob is not held up by alice's sessions.
    let (status, _, _) = http.post(&[("authorization", &bearer(BOB))], initialize()).await;
    assert_eq!(status, 200);

    // Terminal sessions: 2 for alice, whatever the server's room.
    let _second = alice.bash().await;
    let e = alice.call_err("create_local_session", json!({"command": "bash --norc"})).await;
    assert_eq!(e["code"], "SESSION_LIMIT_REACHED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("for operator alice"), "{e}");

    // Nothing of this changed alice's terminal.
    let r = alice.input(&id, "echo unharmed").await;
    assert_eq!((output(&r), r["exit_code"].as_i64()), ("unharmed\n", Some(0)), "{r}");
}

#[tokio::test]
async fn a_client_gone_mid_wait_cancels_the_wait_and_leaves_the_terminal_alone() {
    // One request in flight per operator: a wait that were not cancelled would keep the next
    // call out. The server logs (at debug) each request it admits and each that ends.
    let http = HttpServer::start_logging(&["--max-requests", "1"], "pty_mcp::server::http=debug").await;
    let alice = http.client(ALICE).await;
    let id = alice.bash().await;
    // A client of alice's of the plainest kind (raw HTTP): its wait, then it vanishes.
    let auth = bearer(ALICE);
    let (status, headers, _) = http.post(&[("authorization", &auth)], initialize()).await;
    assert_eq!(status, 200);
    let session = headers["mcp-session-id"].to_str().unwrap().to_string();
    let mcp = [("authorization", auth.as_str()), ("mcp-session-id", &session), ("mcp-protocol-version", "2025-06-18")];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    assert_eq!(http.post(&mcp, initialized).await.0, 202);
    let wait = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "read_output",
        "arguments": {"session_id": id, "wait_for": "never-printed", "timeout": 600}}});
    let mark = http.logged_lines();
    let request = mcp.iter().fold(plain_http().post(&http.url), |r, (k, v)| r.header(*k, *v));
    let waiting = tokio::spawn(async move {
        let response = request
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(wait.to_string())
            .send()
            .await
            .unwrap();
        // Holds the event stream open, reading nothing, until the task is dropped.
        std::future::pending::<()>().await;
        drop(response);
    });
    let admitted = http.wait_logged(mark, |l| l.contains("alice: request admitted")).await;
    let (status, _, _) = http.post(&[("authorization", &auth)], initialize()).await;
    assert_eq!(status, 429, "the wait holds alice's one request");
    // The client goes away mid-wait: its connection closes, the wait ends with it.
    waiting.abort();
    let _ = waiting.await;
    http.wait_logged(admitted, |l| l.contains("alice: request ended")).await;
    let r = alice.input(&id, "echo after-the-wait").await;
    assert_eq!((output(&r), r["exit_code"].as_i64()), ("after-the-wait\n", Some(0)), "{r}");
}

#[tokio::test]
async fn nothing_is_exposed_by_default() {
    let dir = tempfile::tempdir().unwrap();
    // Beyond loopback without TLS: refused, saying what to do.
    let out = spawn(dir.path(), "0.0.0.0:0", &[], "warn").wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("--tls-cert") && said.contains("--insecure-http"), "{said}");
    // A tokens file others may read: refused.
    let tokens = tokens_file(dir.path());
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out =
        Command::new(binary()).args(["serve", "--http", "127.0.0.1:0", "--tokens"]).arg(&tokens).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("chmod 600") && !said.contains(ALICE), "{said}");
    // --insecure-http: served, with a warning at start.
    let http = HttpServer::start(&["--insecure-http"]).await;
    assert!(http.url.starts_with("http://127.0.0.1:"));
    let mut insecure = spawn(dir.path(), "0.0.0.0:0", &["--insecure-http"], "warn");
    let mut lines = BufReader::new(insecure.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("warning: serving MCP on 0.0.0.0:") && first.contains("plain HTTP"), "{first}");
    let _ = insecure.kill();
    let _ = insecure.wait();
}

#[tokio::test]
async fn over_tls_a_client_trusting_the_ca_works_and_one_that_does_not_is_refused_and_logged_once() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::audit::tls_files(certs.path());
    let http = HttpServer::start(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]).await;
    assert!(http.url.starts_with("https://127.0.0.1:"), "{}", http.url);
    let trusting = audit::tls::client_config(false, Some(&ca)).unwrap();
    let client = reqwest::Client::builder().tls_backend_preconfigured(trusting).build().unwrap();
    let alice = http.client_with(ALICE, client).await;
    let id = alice.bash().await;
    assert_eq!(output(&alice.input(&id, "echo over-tls").await), "over-tls\n");
    // A client without the CA fails its handshake; the server says so once.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = crate::audit::tls_files(other.path());
    let untrusting = audit::tls::client_config(false, Some(&other_ca)).unwrap();
    let client = reqwest::Client::builder().tls_backend_preconfigured(untrusting).build().unwrap();
    let failed = client.post(&http.url).body(initialize()).send().await;
    assert!(failed.is_err());
    http.wait_logged(0, |l| l.contains("TLS handshake")).await;
    // Its own connection's failure, once; alice's handshake went unremarked.
    let logged = http.logged();
    assert_eq!(logged.matches("TLS handshake").count(), 1, "{logged}");
}

/// The official MCP Python SDK's version the tests drive.
const PYTHON_SDK: &str = "2.3.0";
/// The official MCP TypeScript SDK's version the tests drive.
const TYPESCRIPT_SDK: &str = "1.32.2";

/// Runs `install` once per machine into `dir` under the target directory (the marker file
/// `done` says it finished), holding a lock so parallel tests install it once.
fn installed(dir: &str, install: impl FnOnce(&Path)) -> PathBuf {
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&prefix).unwrap();
    let lock = std::fs::File::create(prefix.with_extension("lock")).unwrap();
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if !prefix.join("done").is_file() {
        install(&prefix);
        std::fs::write(prefix.join("done"), "").unwrap();
    }
    prefix
}

fn python_sdk() -> PathBuf {
    let venv = installed(&format!("python-mcp-{PYTHON_SDK}"), |venv| {
        assert!(Command::new("python3").args(["-m", "venv"]).arg(venv).status().unwrap().success());
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", &format!("mcp=={PYTHON_SDK}")])
            .status()
            .expect("pip");
        assert!(pip.success(), "pip install mcp failed");
    });
    venv.join("bin/python")
}

fn typescript_sdk() -> PathBuf {
    installed(&format!("ts-mcp-{TYPESCRIPT_SDK}"), |prefix| {
        let npm = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(prefix)
            .arg(format!("@modelcontextprotocol/sdk@{TYPESCRIPT_SDK}"))
            .status()
            .expect("npm (scripts/test installs it)");
        assert!(npm.success(), "npm install of the TypeScript SDK failed");
    })
}

fn client_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/clients").join(name)
}

/// Runs a client program to its end; returns the JSON object it printed last.
async fn run_client(mut cmd: tokio::process::Command, bound: std::time::Duration) -> Value {
    let out = tokio::time::timeout(bound, cmd.kill_on_drop(true).output())
        .await
        .expect("the client finished in time")
        .expect("the client ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "client failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn the_official_python_sdk_runs_a_session_and_a_90_second_wait_with_progress() {
    let python = tokio::task::spawn_blocking(python_sdk).await.unwrap();
    let http = HttpServer::start(&[]).await;
    // 90 s, as long as a reboot or a slow upgrade step; HTTP_WAIT_SECS shortens it by hand.
    let wait: u64 = std::env::var("HTTP_WAIT_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(90);
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(client_script("python_http.py")).args([&http.url, ALICE, &wait.to_string()]);
    let seen = run_client(cmd, STEP + std::time::Duration::from_secs(wait * 2)).await;
    assert_eq!(seen["tools"], 19, "{seen}");
    assert_eq!(seen["echo"], json!({"output": "py-42\n", "exit_code": 1, "completion": "shell"}), "{seen}");
    let waited = &seen["wait"];
    assert_eq!(waited["matched"], "done-waiting", "{seen}");
    assert!(waited["seconds"].as_f64().unwrap() >= wait as f64, "{seen}");
    // Every 5 s while it waits: the client hears the server is working, and for how long.
    assert!(waited["progress"].as_u64().unwrap() >= wait / 5 - 1, "{seen}");
    assert_eq!(waited["last"]["total"], (wait + 60) as f64, "{seen}");
}

#[tokio::test]
async fn the_official_typescript_sdk_runs_a_session() {
    let prefix = tokio::task::spawn_blocking(typescript_sdk).await.unwrap();
    let http = HttpServer::start(&[]).await;
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(client_script("ts_http.mjs")).args([&http.url, BOB]).env("SDK_PREFIX", &prefix);
    let seen = run_client(cmd, STEP).await;
    assert_eq!(seen, json!({"tools": 19, "echo": {"output": "ts-42\n", "exit_code": 1, "completion": "shell"}}));
}

#[tokio::test]
async fn claude_code_connects_with_a_bearer_header() {
    let claude = tokio::task::spawn_blocking(crate::plugin::claude).await.unwrap();
    let http = HttpServer::start(&[]).await;
    let home = tempfile::tempdir().unwrap();
    let header = format!("Authorization: Bearer {ALICE}");
    let run = |args: Vec<String>| {
        let (claude, home) = (claude.clone(), home.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::plugin::run(&claude, &home, &args, &[])
        })
    };
    let add = ["mcp", "add", "--transport", "http", "pty-team", &http.url, "--header", &header];
    run(add.iter().map(|s| s.to_string()).collect()).await.unwrap();
    let listed = run(vec!["mcp".into(), "list".into()]).await.unwrap();
    assert!(listed.contains("pty-team") && listed.contains("✔ Connected"), "{listed}");
    // With a wrong token it does not connect.
    let header = format!("Authorization: Bearer {}", "x".repeat(ALICE.len()));
    let add = ["mcp", "add", "--transport", "http", "pty-wrong", &http.url, "--header", &header];
    run(add.iter().map(|s| s.to_string()).collect()).await.unwrap();
    let listed = run(vec!["mcp".into(), "list".into()]).await.unwrap();
    let wrong = listed.lines().find(|l| l.contains("pty-wrong")).unwrap_or_default().to_string();
    assert!(!wrong.contains("✔ Connected"), "{listed}");
}

/// An OAuth issuer on loopback for the tests: its metadata (RFC 8414), its JWKS of EC P-256
/// keys, and access tokens it signs.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<(String, rcgen::KeyPair)>>>,
    _served: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start() -> Issuer {
        use base64::Engine as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys: Arc<Mutex<Vec<(String, rcgen::KeyPair)>>> = Arc::default();
        let (meta_url, jwks) = (url.clone(), keys.clone());
        let metadata = move || {
            let doc = json!({"issuer": meta_url, "jwks_uri": format!("{meta_url}/jwks")});
            std::future::ready(axum::Json(doc))
        };
        let keyset = move || {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let keys: Vec<Value> = jwks
                .lock()
                .unwrap()
                .iter()
                .map(|(kid, key)| {
                    let raw = key.public_key_raw();
                    json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                        "x": b64.encode(&raw[1..33]), "y": b64.encode(&raw[33..65])})
                })
                .collect();
            std::future::ready(axum::Json(json!({"keys": keys})))
        };
        let app = axum::Router::new()
            .route("/.well-known/oauth-authorization-server", axum::routing::get(metadata))
            .route("/jwks", axum::routing::get(keyset));
        let served = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let issuer = Issuer { url, keys, _served: served };
        issuer.rotate();
        issuer
    }

    /// Adds a key to the JWKS; returns its id.
    fn rotate(&self) -> String {
        let mut keys = self.keys.lock().unwrap();
        let kid = format!("key-{}", keys.len() + 1);
        keys.push((kid.clone(), rcgen::KeyPair::generate().unwrap()));
        kid
    }

    /// A token signed with key `kid` (or a key of nobody's, for `None`).
    fn token(&self, kid: Option<&str>, claims: Value) -> String {
        let stranger = rcgen::KeyPair::generate().unwrap();
        let keys = self.keys.lock().unwrap();
        let key = kid.map_or(&stranger, |kid| &keys.iter().find(|(k, _)| k == kid).unwrap().1);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.unwrap_or("key-1").to_string());
        let pkcs8 = key.serialize_der();
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&pkcs8)).unwrap()
    }

    fn claims(&self, sub: &str, audience: &str, expires_in: i64) -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        json!({"iss": self.url, "aud": audience, "sub": sub, "iat": now, "exp": now + expires_in})
    }
}

#[tokio::test]
async fn oauth_access_tokens_from_the_issuer_are_accepted_and_anything_else_refused() {
    const AUDIENCE: &str = "https://pty.example.test/mcp";
    let issuer = Issuer::start().await;
    let http = HttpServer::start(&["--oauth-issuer", &issuer.url, "--oauth-audience", AUDIENCE]).await;

    // The protected-resource metadata (RFC 9728) names the issuer; a 401 points to it.
    let base = http.url.trim_end_matches("/mcp");
    let meta: Value = plain_http()
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&meta["resource"], &meta["authorization_servers"]), (&json!(AUDIENCE), &json!([issuer.url])));
    let (status, headers, _) = http.post(&[], initialize()).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"pty-mcp\", resource_metadata=\"https://pty.example.test/.well-known/oauth-protected-resource/mcp\""
    );

    // A valid token: its subject is the operator, who owns what they create.
    let carol = issuer.token(Some("key-1"), issuer.claims("carol", AUDIENCE, 600));
    let client = http.client(&carol).await;
    let id = client.bash().await;
    assert_eq!(output(&client.input(&id, "echo via-oauth").await), "via-oauth\n");
    let dave = http.client(&issuer.token(Some("key-1"), issuer.claims("dave", AUDIENCE, 600))).await;
    assert_eq!(dave.call_err("get_session_state", json!({"session_id": id})).await["code"], "SESSION_NOT_FOUND");

    // The issuer rotates its keys: a token signed with the new one is accepted at once.
    let kid = issuer.rotate();
    let rotated = issuer.token(Some(&kid), issuer.claims("carol", AUDIENCE, 600));
    let (status, _, body) = http.post(&[("authorization", &bearer(&rotated))], initialize()).await;
    assert_eq!(status, 200, "{body}");

    // Everything else: 401 and nothing more.
    let mut other_issuer = issuer.claims("carol", AUDIENCE, 600);
    other_issuer["iss"] = json!("https://evil.example");
    let mut no_subject = issuer.claims("carol", AUDIENCE, 600);
    no_subject.as_object_mut().unwrap().remove("sub");
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &issuer.claims("carol", AUDIENCE, 600),
        &jsonwebtoken::EncodingKey::from_secret(b"anything"),
    )
    .unwrap();
    let mut tampered: Vec<String> = carol.split('.').map(String::from).collect();
    tampered[1] = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&b64.decode(&tampered[1]).unwrap()).unwrap();
        claims["sub"] = json!("root");
        b64.encode(claims.to_string())
    };
    for (what, token) in [
        ("expired", issuer.token(Some("key-1"), issuer.claims("carol", AUDIENCE, -3600))),
        ("another audience", issuer.token(Some("key-1"), issuer.claims("carol", "https://other/mcp", 600))),
        ("another issuer", issuer.token(Some("key-1"), other_issuer)),
        ("no subject", issuer.token(Some("key-1"), no_subject)),
        ("signed by a stranger", issuer.token(None, issuer.claims("carol", AUDIENCE, 600))),
        ("HS256", hs256),
        ("tampered", tampered.join(".")),
    ] {
        let (status, _, body) = http.post(&[("authorization", &bearer(&token))], initialize()).await;
        assert_eq!((status, body.as_str()), (401, r#"{"error":"unauthorized"}"#), "{what}");
    }
}
