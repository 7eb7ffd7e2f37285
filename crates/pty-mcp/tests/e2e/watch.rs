//! The browser page (`pty-mcp watch`, issue 16) in headless Chromium: the agent's terminal on the
//! page, a wrong token refused, and taking over.

use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::harness::{STEP, Server, binary, output};

/// `GET path` on 127.0.0.1:`port`: the status code and the body.
async fn get(port: u16, path: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(STEP, tcp.read_to_string(&mut answer)).await.unwrap().unwrap();
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// Headless Chromium's view of `url` once its scripts ran: the DOM, and a screenshot in `shot`.
fn chromium(url: &str, shot: &std::path::Path) -> String {
    let common =
        ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000", "--window-size=1100,700"];
    let out = std::process::Command::new("chromium").args(common).args(["--dump-dom", url]).output().unwrap();
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let shot_arg = format!("--screenshot={}", shot.display());
    let status = std::process::Command::new("chromium").args(common).args([shot_arg.as_str(), url]).output().unwrap();
    assert!(status.status.success(), "chromium screenshot: {}", String::from_utf8_lossy(&status.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_watch_page_shows_the_agents_terminal_live() {
    let control = tempfile::tempdir().unwrap();
    let dir = control.path().to_str().unwrap();
    let s = Server::start_with_env(&[("PTY_MCP_CONTROL_DIR", dir)]).await;
    let v =
        s.call("create_local_session", json!({"command": "bash --norc --noprofile", "env": {"PS1": "agent$ "}})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    s.input(&id, "printf '\\033[1;31m%s\\033[0m\\n' agent-on-the-page").await;
    s.input(&id, "(exit 3)").await;
    let mut watch = tokio::process::Command::new(binary())
        .args(["watch", "--no-open"])
        .env("PTY_MCP_CONTROL_DIR", dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(STEP, lines.next_line()).await.unwrap().unwrap().expect("the URL");
    let (base, token) = url.split_once("/?token=").expect("a URL with a token");
    assert!(base.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    // A wrong or missing token: 401, and nothing about the sessions.
    for path in ["/?token=0000", "/sessions?token=nope", &format!("/stream?token=x&pid={}&session={id}", s.pid), "/"] {
        let (status, body) = get(port, path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(!body.contains(&id), "{path} leaked a session: {body}");
    }
    let (status, body) = get(port, &format!("/sessions?token={token}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&id), "{body}");
    // The page in a real browser: the agent's output, in its colour.
    let shots = tempfile::tempdir().unwrap();
    // (`once`: each terminal stops following after its first frame, so that the browser's
    // virtual time can run out; a live stream never lets the page settle.)
    let dom = chromium(&format!("{url}&once=1"), &shots.path().join("page.png"));
    assert!(dom.contains("agent-on-the-page") && dom.contains(&id), "the page does not show the session:\n{dom}");
    assert!(dom.contains("color: rgb(205, 0, 0)"), "the red text lost its colour:\n{dom}");
    // The margin marks the agent's commands with how they ended.
    assert!(dom.contains(r#"aria-label="(exit 3): exit 3">✗ 3<"#), "no failed command in the margin:\n{dom}");
    assert!(dom.contains(r#"">✓<"#), "no command that succeeded in the margin:\n{dom}");
    let png = std::fs::read(shots.path().join("page.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "no screenshot");
    // Taking over: keys sent as the page sends them reach the session.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let body = "echo typed-on-the-page\r";
    let post = format!(
        "POST /input?token={token}&pid={}&session={id} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        s.pid,
        body.len()
    );
    tcp.write_all(post.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^typed-on-the-page$", "timeout": 20})).await;
    assert_eq!(r["matched"], true, "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["operator_typed"], true, "{st}");
    assert_eq!(output(&s.input(&id, "echo agent-again").await), "agent-again\n");
}

/// Beyond loopback the page is served only over HTTPS: refused without a certificate; with one,
/// a client that trusts it gets the sessions and one without the token gets 401.
#[tokio::test]
async fn watch_beyond_loopback_needs_tls() {
    let control = tempfile::tempdir().unwrap();
    let dir = control.path().to_str().unwrap();
    let s = Server::start_with_env(&[("PTY_MCP_CONTROL_DIR", dir)]).await;
    let id = s.bash().await;
    let plain = std::process::Command::new(binary())
        .args(["watch", "--no-open", "--bind", "0.0.0.0"])
        .env("PTY_MCP_CONTROL_DIR", dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success() && said.contains("--tls-cert"), "{said}");
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::audit::tls_files(certs.path());
    let mut watch = tokio::process::Command::new(binary())
        .args(["watch", "--no-open", "--bind", "0.0.0.0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("PTY_MCP_CONTROL_DIR", dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(STEP, lines.next_line()).await.unwrap().unwrap().expect("the URL");
    assert!(url.starts_with("https://"), "{url}");
    let (base, token) = url.split_once("/?token=").unwrap();
    let port = base.rsplit(':').next().unwrap();
    let curl = |path: String, trust: bool| {
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "-o", "-", "-w", "\n%{http_code}"]);
        if trust {
            c.arg("--cacert").arg(&ca);
        }
        let out = c.arg(format!("https://127.0.0.1:{port}{path}")).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), said)
    };
    let (code, body) = curl(format!("/sessions?token={token}"), true);
    assert!(code == Some(0) && body.contains(&id) && body.ends_with("200"), "{code:?} {body}");
    let (_, body) = curl("/sessions?token=nope".into(), true);
    assert!(body.ends_with("401") && !body.contains(&id), "{body}");
    // Curl's "the certificate is not trusted".
    assert_eq!(curl(format!("/sessions?token={token}"), false).0, Some(60));
}
