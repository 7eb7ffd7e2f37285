//! The audit log end to end: a real collector (`pty-mcp audit serve`) and a pty-mcp configured
//! through a private config directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{STEP, Server, binary, free_port, output, spawn_until_ready};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub struct Collector {
    child: tokio::process::Child,
}

impl Collector {
    pub async fn start(port: u16, log: &Path) -> Collector {
        Collector::start_with(port, log, &[]).await
    }

    async fn start_with(port: u16, log: &Path, args: &[&std::ffi::OsStr]) -> Collector {
        let mut cmd = tokio::process::Command::new(binary());
        cmd.args(["audit", "serve", "--port", &port.to_string(), "--log"]).arg(log).env("PTY_MCP_AUDIT_TOKEN", TOKEN);
        cmd.args(args);
        Collector { child: spawn_until_ready(cmd, "listening on").await }
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the collector: a collector that stops answering.
    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A private config and state directory for pty-mcp, auditing to `port`.
pub fn audit_home(dir: &Path, port: u16, mode: &str) -> Vec<(String, String)> {
    audit_home_at(dir, &format!("http://127.0.0.1:{port}"), mode)
}

fn audit_home_at(dir: &Path, url: &str, mode: &str) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let config = dir.join("config/pty-mcp/config");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("audit-url={url}\naudit-user=tester\naudit-mode={mode}\naudit-token={TOKEN}\n"))
        .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    vec![
        ("XDG_CONFIG_HOME".into(), dir.join("config").display().to_string()),
        ("XDG_STATE_HOME".into(), dir.join("state").display().to_string()),
    ]
}

pub async fn server_with(env: &[(String, String)], extra: &[(&str, &str)]) -> Server {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    Server::start_with_env(&all).await
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Waits (checking as records arrive, with a generous bound) until `done` holds for the log.
pub async fn wait_until(log: &Path, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let r = records(log);
        if done(&r) {
            return r;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; log has {} records", r.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn events(r: &[Value]) -> Vec<String> {
    r.iter()
        .map(|v| {
            v["event"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| if v.get("cmd").is_some() { "cmd".into() } else { "output".into() })
        })
        .collect()
}

async fn verify(log: &Path) -> std::process::Output {
    tokio::process::Command::new(binary()).args(["audit", "verify", "--log"]).arg(log).output().await.unwrap()
}

#[tokio::test]
async fn a_sessions_whole_life_is_recorded_in_order_and_chained() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let env = audit_home(dir.path(), port, "best-effort");
    let s = server_with(&env, &[]).await;
    let id = s.bash().await;
    let r = s.input(&id, "echo hi; echo password=hunter2").await;
    assert_eq!(output(&r), "hi\npassword=hunter2\n");
    s.call("send_control", json!({"session_id": id, "key": "ctrl+l"})).await;
    s.call("resize_session", json!({"session_id": id, "rows": 30, "cols": 100})).await;
    s.call("close_session", json!({"session_id": id})).await;
    let want = [
        "create_session",
        "session_created",
        "cmd",
        "output",
        "send_control",
        "resize_session",
        "close_session",
        "session_ended",
    ];
    let r = wait_until(&log, "the session's records", |r| events(r).len() >= want.len()).await;
    assert_eq!(events(&r), want);
    assert_eq!(r[2]["cmd_id"], r[3]["cmd_id"]);
    assert_eq!(
        (r[2]["user"].as_str(), r[2]["session_id"].as_str(), r[2]["type"].as_str()),
        (Some("tester"), Some(id.as_str()), Some("local"))
    );
    assert_eq!(r[2]["cmd"], "echo hi; echo password=[REDACTED]");
    assert_eq!(r[3]["output_snippet"], "hi\npassword=[REDACTED]\n");
    assert!(r.iter().all(|v| v["record_id"].is_string() && v["received_at"].is_string() && v["prev_hash"].is_string()));
    assert!(!std::fs::read_to_string(&log).unwrap().contains("hunter2"));
    let v = verify(&log).await;
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // Tampering with one line breaks the chain at the next.
    let text = std::fs::read_to_string(&log).unwrap().replacen("echo hi", "echo HI", 1);
    std::fs::write(&log, text).unwrap();
    let v = verify(&log).await;
    assert!(!v.status.success());
    assert!(String::from_utf8_lossy(&v.stderr).contains("line 4"), "{}", String::from_utf8_lossy(&v.stderr));
}

#[tokio::test]
async fn records_survive_a_dead_collector_and_arrive_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let collector = Collector::start(port, &log).await;
    let env = audit_home(dir.path(), port, "best-effort");
    let s = server_with(&env, &[]).await;
    let id = s.bash().await;
    wait_until(&log, "the first records", |r| r.len() >= 2).await;
    collector.kill().await;
    for i in 0..100 {
        let r = s.input(&id, &format!("echo n{i}")).await;
        assert_eq!(output(&r), format!("n{i}\n"));
    }
    let _collector = Collector::start(port, &log).await;
    let r =
        wait_until(&log, "all 200 command records", |r| r.iter().filter(|v| v.get("cmd_id").is_some()).count() >= 200)
            .await;
    let cmds: Vec<&str> = r.iter().filter_map(|v| v["cmd"].as_str()).collect();
    assert_eq!(cmds, (0..100).map(|i| format!("echo n{i}")).collect::<Vec<_>>());
    let ids: std::collections::HashSet<&str> = r.iter().map(|v| v["record_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), r.len(), "a record was stored twice");
    let verified = verify(&log).await;
    assert!(verified.status.success(), "the chain broke: {}", String::from_utf8_lossy(&verified.stderr));
}

#[tokio::test]
async fn strict_mode_refuses_actions_it_cannot_record() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there
    let env = audit_home(dir.path(), port, "strict");
    let s = server_with(&env, &[]).await;
    let e = s.call_err("create_local_session", json!({"command": "bash --norc"})).await;
    assert_eq!(e["code"], "AUDIT_UNAVAILABLE", "{e}");
    // With a collector that refuses the token, the same: and the client says why.
    let log = dir.path().join("audit.jsonl");
    let collector = Collector::start(port, &log).await;
    let s = server_with(&env, &[]).await;
    let id = s.bash().await;
    collector.kill().await;
    let marker = dir.path().join("should-not-exist");
    let e = s.call_err("send_input", json!({"session_id": id, "input": format!("touch {}", marker.display())})).await;
    assert_eq!(e["code"], "AUDIT_UNAVAILABLE", "{e}");
    let e2 = s.call_err("send_control", json!({"session_id": id, "key": "ctrl+c"})).await;
    assert_eq!(e2["code"], "AUDIT_UNAVAILABLE");
    assert!(!marker.exists());
    let s2 = server_with(&env, &[("PTY_MCP_AUDIT_TOKEN", "wrong")]).await;
    let _collector = Collector::start(port, &log).await;
    let e = s2.call_err("create_local_session", json!({})).await;
    assert!(e["message"].as_str().unwrap().contains("401"), "{e}");
}

/// One raw HTTP request to the collector; returns the status code.
async fn post(port: u16, token: &str, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn the_collector_refuses_bad_requests_and_stores_replays_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let good = br#"{"record_id":"r1","event":"close_session","ts":"2026-01-01T00:00:00Z"}"#;
    assert_eq!(post(port, "wrong", good).await, 401);
    assert_eq!(post(port, TOKEN, b"not json").await, 400);
    assert_eq!(post(port, TOKEN, br#"{"hello":"world"}"#).await, 400);
    assert_eq!(post(port, TOKEN, &vec![b' '; 70 << 10]).await, 413);
    assert_eq!(post(port, TOKEN, good).await, 200);
    assert_eq!(post(port, TOKEN, good).await, 200);
    let r = records(&log);
    assert_eq!(r.len(), 1, "a replay was stored twice");
    assert_eq!(r[0]["peer"].as_str().map(|p| p.starts_with("127.0.0.1:")), Some(true));
}

#[tokio::test]
async fn an_open_config_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let env = audit_home(dir.path(), 9, "best-effort");
    let config: PathBuf = dir.path().join("config/pty-mcp/config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = tokio::process::Command::new(binary())
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn init_enable_and_status_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(binary())
            .args(args)
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .output()
            .unwrap()
    };
    assert!(run(&["audit", "init"]).status.success());
    assert!(!run(&["audit", "init"]).status.success(), "a second init without --force must refuse");
    assert!(run(&["audit", "enable", "http://127.0.0.1:9099"]).status.success());
    let status = String::from_utf8(run(&["audit", "status"]).stdout).unwrap();
    assert!(status.contains("on, to http://127.0.0.1:9099"), "{status}");
    assert!(run(&["audit", "disable"]).status.success());
    let status = String::from_utf8(run(&["audit", "status"]).stdout).unwrap();
    assert!(status.contains("audit: off"), "{status}");
}

#[tokio::test]
async fn a_sent_secret_is_recorded_as_sent_and_nowhere_else() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let askpass = dir.path().join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho 'swordfish-4242'\n").unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = audit_home(dir.path(), port, "best-effort");
    let s = server_with(&env, &[("PTY_MCP_ASKPASS", askpass.to_str().unwrap())]).await;
    let id = s.bash().await;
    s.call("send_input", json!({"session_id": id, "input": "read -r -s -p 'Password: ' p; echo; echo \"got $p\""}))
        .await;
    s.call("send_secret", json!({"session_id": id})).await;
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^got", "timeout": 20})).await;
    assert_eq!(r["match_line"], "got ********", "the echo of the secret is masked: {r}");
    s.call("close_session", json!({"session_id": id})).await;
    let r = wait_until(&log, "the session's end", |r| events(r).contains(&"session_ended".to_string())).await;
    assert!(events(&r).contains(&"send_secret".to_string()));
    assert!(!std::fs::read_to_string(&log).unwrap().contains("swordfish"));
}

/// A throwaway CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: OpenSSL (curl) takes a certificate whose issuer is its subject for
    // a self-signed one.
    ca_params.distinguished_name.push(DnType::CommonName, "pty-mcp test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &ca).unwrap();
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

#[tokio::test]
async fn an_https_collector_is_trusted_through_audit_ca_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start_with(
        port,
        &log,
        &["--tls-cert".as_ref(), cert.as_os_str(), "--tls-key".as_ref(), key.as_os_str()],
    )
    .await;
    let env = audit_home_at(dir.path(), &format!("https://127.0.0.1:{port}"), "strict");
    // Without the CA the certificate is not trusted: strict mode refuses to act.
    let untrusting = server_with(&env, &[]).await;
    let e = untrusting.call_err("create_local_session", json!({"command": "bash --norc"})).await;
    assert_eq!(e["code"], "AUDIT_UNAVAILABLE", "{e}");
    let s = server_with(&env, &[("PTY_MCP_AUDIT_CA", ca.to_str().unwrap())]).await;
    let id = s.bash().await;
    assert_eq!(output(&s.input(&id, "echo over-tls").await), "over-tls\n");
    let r = wait_until(&log, "the command's records", |r| r.iter().any(|v| v["cmd"] == "echo over-tls")).await;
    assert!(r.iter().all(|v| v["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:"))));
    assert!(verify(&log).await.status.success());
}

#[tokio::test]
async fn a_full_disk_at_the_collector_keeps_records_in_the_client_spool() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Every write to /dev/full fails with ENOSPC: the collector answers 500 and stores nothing.
    let full = Collector::start(port, Path::new("/dev/full")).await;
    let strict = server_with(&audit_home(&dir.path().join("strict"), port, "strict"), &[]).await;
    let e = strict.call_err("create_local_session", json!({"command": "bash --norc"})).await;
    assert!(e["message"].as_str().unwrap().contains("500"), "{e}");
    let env = audit_home(dir.path(), port, "best-effort");
    let s = server_with(&env, &[]).await;
    let id = s.bash().await;
    for i in 0..5 {
        assert_eq!(output(&s.input(&id, &format!("echo full{i}")).await), format!("full{i}\n"));
    }
    full.kill().await;
    // Space again: everything kept in the spool arrives, once each.
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let r =
        wait_until(&log, "the five commands", |r| r.iter().filter(|v| v.get("output_bytes").is_some()).count() >= 5)
            .await;
    let cmds: Vec<&str> = r.iter().filter_map(|v| v["cmd"].as_str()).collect();
    assert_eq!(cmds, (0..5).map(|i| format!("echo full{i}")).collect::<Vec<_>>());
    assert_eq!(events(&r)[..2], ["create_session", "session_created"]);
}

#[tokio::test]
async fn a_collector_that_stops_answering_never_blocks_best_effort_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let collector = Collector::start(port, &log).await;
    let s = server_with(&audit_home(dir.path(), port, "best-effort"), &[]).await;
    let strict = server_with(&audit_home(&dir.path().join("strict"), port, "strict"), &[]).await;
    let id = s.bash().await;
    let strict_id = strict.bash().await;
    wait_until(&log, "both sessions' first records", |r| r.len() >= 4).await;
    // Stopped, it still accepts connections (the kernel does) but never answers.
    collector.signal("-STOP");
    let marker = dir.path().join("should-not-exist");
    let e = strict
        .call_err("send_input", json!({"session_id": strict_id, "input": format!("touch {}", marker.display())}))
        .await;
    assert!(e["message"].as_str().unwrap().contains("timed out"), "{e}");
    assert!(!marker.exists());
    for i in 0..5 {
        assert_eq!(output(&s.input(&id, &format!("echo slow{i}")).await), format!("slow{i}\n"));
    }
    collector.signal("-CONT");
    let r = wait_until(&log, "the five commands", |r| {
        r.iter().filter(|v| v["cmd"].as_str().is_some_and(|c| c.starts_with("echo slow"))).count() >= 5
            && r.iter().filter(|v| v.get("output_bytes").is_some()).count() >= 5
    })
    .await;
    let ids: std::collections::HashSet<&str> = r.iter().map(|v| v["record_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), r.len(), "a record was stored twice");
    let verified = verify(&log).await;
    assert!(verified.status.success(), "the chain broke: {}", String::from_utf8_lossy(&verified.stderr));
}

#[tokio::test]
async fn reattaching_a_session_already_open_is_not_recorded_as_a_new_one() {
    /// Stops the ai-tmux daemon this test starts (its command line names the socket).
    struct Daemon(PathBuf);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = std::process::Command::new("pkill").args(["-9", "-f"]).arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let socket = dir.path().join("ai-tmux/ai-tmux.sock");
    let _daemon = Daemon(socket.clone());
    let s = server_with(&audit_home(dir.path(), port, "best-effort"), &[("AI_TMUX_SOCKET", socket.to_str().unwrap())])
        .await;
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let id = v["session_id"].as_str().unwrap();
    for _ in 0..2 {
        s.call("create_local_session", json!({"session_id": id})).await;
    }
    s.input(id, "echo after-reattach").await;
    let r = wait_until(&log, "the command", |r| r.iter().any(|v| v["cmd"] == "echo after-reattach")).await;
    assert_eq!(events(&r).iter().filter(|e| *e == "session_created").count(), 1, "{:?}", events(&r));
}

/// The client's own spool on a full disk: best-effort goes on and every reply says records are
/// being lost; strict refuses actions until the disk has room; the spool never holds half a line.
#[tokio::test]
async fn a_full_spool_disk_is_said_in_best_effort_and_refused_in_strict() {
    let Some(disk) = crate::harness::SmallDisk::new("1m") else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("audit.jsonl");
    let _collector = Collector::start(port, &log).await;
    let state = |mode: &str| {
        let mut env = audit_home(&dir.path().join(mode), port, mode);
        env.retain(|(k, _)| k != "XDG_STATE_HOME");
        env.push(("XDG_STATE_HOME".into(), disk.path().join(mode).display().to_string()));
        env
    };
    let (best, strict) = (server_with(&state("best-effort"), &[]).await, server_with(&state("strict"), &[]).await);
    let (best_id, strict_id) = (best.bash().await, strict.bash().await);
    // Both spools delivered first: a spool the sender empties after the disk filled would free
    // room again (seen once under load: the warning was gone).
    wait_until(&log, "both sessions' records", |r| events(r).iter().filter(|e| *e == "session_created").count() == 2)
        .await;
    // Best-effort: the command runs, and the reply says its records are lost. The spool's sender
    // may free a page just after a fill (emptying a spool it has delivered): a record is then
    // kept, rightly without a warning, so the disk is filled again until one is not (seen twice
    // under load in CI when the test filled only twice).
    let filler = disk.fill();
    let mut warned = None;
    for attempt in 0..10 {
        let r = best.input(&best_id, &format!("echo still-works-{attempt}")).await;
        assert_eq!(output(&r), format!("still-works-{attempt}\n"));
        if r["warnings"].to_string().contains("audit records cannot be written") {
            warned = Some(r);
            break;
        }
        disk.fill();
    }
    let r = warned.expect("no reply said its records were lost while the disk was full");
    assert!(r["warnings"].to_string().contains("No space left"), "{r}");
    // Strict: once a record could not be kept, actions are refused.
    strict.input(&strict_id, "echo recorded-before-the-disk-filled").await;
    let e = strict.call_err("send_input", json!({"session_id": strict_id, "input": "echo refused"})).await;
    assert_eq!(e["code"], "AUDIT_UNAVAILABLE", "{e}");
    assert!(e["message"].as_str().unwrap().contains("spool cannot be written"), "{e}");
    // No spool holds half a record.
    for mode in ["best-effort", "strict"] {
        let spool = disk.path().join(mode).join("pty-mcp/audit-spool.jsonl");
        let text = std::fs::read_to_string(&spool).unwrap_or_default();
        assert!(text.is_empty() || text.ends_with('\n'), "{mode}: a half-written record: {text:?}");
        for line in text.lines() {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{mode}: a broken record ({e}): {line}"));
        }
    }
    // Room again: both go on, and the warning is gone once a record is kept.
    std::fs::remove_file(filler).unwrap();
    let r = strict.input(&strict_id, "echo strict-again").await;
    assert_eq!(output(&r), "strict-again\n", "{r}");
    best.input(&best_id, "echo kept-again").await;
    let r = best.input(&best_id, "echo no-warning").await;
    assert!(r.get("warnings").is_none_or(|w| !w.to_string().contains("audit")), "{r}");
}
