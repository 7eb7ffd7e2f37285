//! The browser page (`pty-mcp watch`, issue 16) in headless Chromium: the agent's terminal on the
//! page, a wrong token refused, and taking over.

use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The decoded length of base64 `text`.
fn base64_len(text: &str) -> usize {
    text.trim_end_matches('=').len() * 3 / 4
}

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

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// Chromium reads commands on descriptor 3 and answers on 4, each message ending in a NUL), so
/// the test uses the live page as a person does: waits for text to appear, clicks, types.
struct Browser {
    to: tokio::net::unix::pipe::Sender,
    from: BufReader<tokio::net::unix::pipe::Receiver>,
    next_id: u64,
    /// The page's DevTools session.
    page: Option<String>,
    /// Events that came while an answer was awaited.
    events: Vec<serde_json::Value>,
    _chromium: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(url: &str) -> Browser {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: pipe fills the two descriptors we pass; fcntl marks ours close-on-exec
            // (the child gets its ends through dup2, which clears the flag on the copies).
            unsafe {
                assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
                for fd in fds {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            // SAFETY: both descriptors were just opened and are owned here alone.
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let (commands_read, commands_write) = pipe();
        let (answers_read, answers_write) = pipe();
        let profile = tempfile::tempdir().unwrap();
        let mut chromium = tokio::process::Command::new("chromium");
        chromium
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--window-size=1100,700"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let (theirs_in, theirs_out) = (commands_read.as_raw_fd(), answers_write.as_raw_fd());
        // SAFETY: only dup2 runs between fork and exec; it is async-signal-safe.
        unsafe {
            chromium.pre_exec(move || {
                if libc::dup2(theirs_in, 3) < 0 || libc::dup2(theirs_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = chromium.spawn().expect("chromium (scripts/test installs it)");
        drop((commands_read, answers_write));
        let to = tokio::net::unix::pipe::Sender::from_owned_fd(commands_write).unwrap();
        let from = BufReader::new(tokio::net::unix::pipe::Receiver::from_owned_fd(answers_read).unwrap());
        let mut b =
            Browser { to, from, next_id: 0, page: None, events: Vec::new(), _chromium: child, _profile: profile };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let attached = b.call("Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        b.page = Some(attached["sessionId"].as_str().unwrap().to_string());
        // Scripts run only once the page has loaded: before that, the blank page's context is
        // the one evaluated in, and navigating destroys it.
        b.call("Page.enable", json!({})).await;
        b.call("Page.navigate", json!({"url": url})).await;
        b.event("Page.loadEventFired").await;
        b
    }

    /// The next message from Chromium.
    async fn message(&mut self) -> serde_json::Value {
        let mut raw = Vec::new();
        self.from.read_until(0, &mut raw).await.unwrap();
        assert!(raw.pop() == Some(0), "chromium closed the pipe");
        serde_json::from_slice(&raw).unwrap()
    }

    /// Waits for the event `method` (one that came while waiting for an answer counts).
    async fn event(&mut self, method: &str) -> serde_json::Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(i);
        }
        let waited = tokio::time::timeout(STEP, async {
            loop {
                let v = self.message().await;
                if v["method"] == method {
                    return v;
                }
            }
        });
        waited.await.unwrap_or_else(|_| panic!("chromium never sent {method}"))
    }

    /// Sends a command (to the page, once attached) and returns its result.
    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(page) = &self.page {
            message["sessionId"] = page.clone().into();
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).await.unwrap();
        let answer = tokio::time::timeout(STEP, async {
            loop {
                let v = self.message().await;
                if v["id"] == id {
                    return v;
                }
                if v.get("method").is_some() {
                    self.events.push(v);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Evaluates `expression` in the page (awaiting a promise), returning its value.
    async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true}))
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until the page's text contains `text` (the page's own changes wake the wait).
    async fn until_text(&mut self, text: &str) -> String {
        let expression = format!(
            "new Promise((done) => {{ const has = () => document.body && document.body.innerText.includes({t});
               if (has()) return done(document.body.innerText);
               new MutationObserver((_, o) => {{ if (has()) {{ o.disconnect(); done(document.body.innerText); }} }})
                 .observe(document, {{subtree: true, childList: true, characterData: true}}); }})",
            t = serde_json::Value::from(text)
        );
        let waited = tokio::time::timeout(STEP, self.eval(&expression)).await;
        waited.unwrap_or_else(|_| panic!("the page never showed {text:?}")).as_str().unwrap_or_default().to_string()
    }

    /// Presses keys as a person does (on the focused element).
    async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let key = if c == '\r' {
                json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
            } else {
                json!({"type": "keyDown", "key": c.to_string(), "text": c.to_string()})
            };
            self.call("Input.dispatchKeyEvent", key).await;
        }
    }
}

/// `pty-mcp watch --no-open` with `extra` arguments for the servers whose sockets are in
/// `control`: the process, and the URL it printed.
async fn watch(control: &str, extra: &[&std::ffi::OsStr]) -> (tokio::process::Child, String) {
    let mut watch = tokio::process::Command::new(binary())
        .args(["watch", "--no-open"])
        .args(extra)
        .env("PTY_MCP_CONTROL_DIR", control)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(STEP, lines.next_line()).await.unwrap().unwrap().expect("the URL");
    (watch, url)
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
    let (_watch, url) = watch(dir, &[]).await;
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
    // The page in a real browser, live: the agent's output in its colour, and what the agent
    // does next.
    let mut browser = Browser::open(&url).await;
    browser.until_text("agent-on-the-page").await;
    let dom = browser.eval("document.documentElement.outerHTML").await.as_str().unwrap().to_string();
    assert!(dom.contains(&id), "the page does not name the session:\n{dom}");
    assert!(dom.contains("color: rgb(205, 0, 0)"), "the red text lost its colour:\n{dom}");
    // The margin marks the agent's commands with how they ended.
    assert!(dom.contains(r#"aria-label="(exit 3): exit 3">✗ 3<"#), "no failed command in the margin:\n{dom}");
    assert!(dom.contains(r#"">✓<"#), "no command that succeeded in the margin:\n{dom}");
    s.input(&id, "echo live-$((6*7))").await;
    browser.until_text("live-42").await;
    let shot = browser.call("Page.captureScreenshot", json!({"format": "png"})).await;
    let png = base64_len(shot["data"].as_str().unwrap());
    assert!(png > 1000, "no screenshot");
    // The accessibility tree has the terminal's text too.
    let tree = browser.call("Accessibility.getFullAXTree", json!({})).await.to_string();
    assert!(tree.contains("live-42"), "not in the accessibility tree");
    // Taking over: tick the switch, type; the keys reach the session as the operator's.
    browser.eval("document.querySelector('section.session input[type=checkbox]').click()").await;
    browser.type_text("echo typed-on-the-page\r").await;
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^typed-on-the-page$", "timeout": 20})).await;
    assert_eq!(r["matched"], true, "{r}");
    browser.until_text("\ntyped-on-the-page\n").await;
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
    let tls = [
        "--bind".as_ref(),
        "0.0.0.0".as_ref(),
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ];
    let (_watch, url) = watch(dir, &tls).await;
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
