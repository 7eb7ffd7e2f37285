//! Operator secrets: from a test askpass program into the terminal, and nowhere else.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{Server, output};

/// The secret the test operator types, with the spaces it must keep.
pub const SECRET: &str = "  correct horse battery  ";

pub struct Operator {
    dir: tempfile::TempDir,
}

impl Operator {
    /// An askpass that records its prompt and prints `answer` (plus a newline, as dialogs do);
    /// `extra` runs first (e.g. a long sleep).
    pub fn new(answer: &str, extra: &str) -> Operator {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("answer"), format!("{answer}\n")).unwrap();
        let script =
            format!("#!/bin/sh\n{extra}\nprintf '%s' \"$*\" > '{0}/prompt'\ncat '{0}/answer'\n", dir.path().display());
        write_executable(&dir.path().join("askpass"), &script);
        Operator { dir }
    }

    pub fn askpass(&self) -> String {
        self.dir.path().join("askpass").display().to_string()
    }

    fn prompt_seen(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("prompt")).ok()
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The first 16 hex digits of the SHA-256 of `text`, by the same tool the shell uses.
pub fn sha256_prefix(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()[..16].to_string()
}

pub const READ_SECRET: &str =
    r#"IFS= read -r -s -p 'Password: ' p; echo; echo "got ${#p} $(printf %s "$p" | sha256sum | cut -c1-16)""#;

#[tokio::test]
async fn a_secret_reaches_the_program_and_nothing_else() {
    let op = Operator::new(SECRET, "");
    let logs = tempfile::tempdir().unwrap();
    let stderr_path = logs.path().join("stderr");
    let cast = logs.path().join("s.cast");
    let raw = logs.path().join("s.log");
    let s = Server::start_logging(
        &[("PTY_MCP_ASKPASS", &op.askpass()), ("RUST_LOG", "trace")],
        Some(std::fs::File::create(&stderr_path).unwrap()),
    )
    .await;
    let mut replies: Vec<Value> = Vec::new();
    let mut ids = Vec::new();
    for (log, format) in [(&cast, "asciicast"), (&raw, "raw")] {
        let v = s
            .call("create_local_session", json!({"command": "bash --norc", "log_file": log, "log_format": format}))
            .await;
        ids.push(v["session_id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let r = s.call("send_input", json!({"session_id": id, "input": READ_SECRET})).await;
        assert_eq!(r["state"], "password_prompt", "{r}");
        let r = s.call("send_secret", json!({"session_id": id, "prompt": "Password for the test box"})).await;
        assert_eq!(r, json!({"success": true}));
        let r = s.call("read_output", json!({"session_id": id, "wait_for": "^got", "timeout": 20})).await;
        assert_eq!(r["match_line"], format!("got {} {}", SECRET.len(), sha256_prefix(SECRET)), "{r}");
        replies.push(r);
        replies.push(s.call("get_session_state", json!({"session_id": id})).await);
        replies.push(s.call("read_output", json!({"session_id": id, "since_cursor": 0})).await);
        replies.push(s.call("read_output", json!({"session_id": id, "screen": true, "scrollback_lines": 100})).await);
    }
    assert_eq!(op.prompt_seen().as_deref(), Some("Password for the test box"));
    for id in &ids {
        s.call("close_session", json!({"session_id": id})).await;
    }
    drop(s);
    let needle = SECRET.trim();
    for r in &replies {
        assert!(!r.to_string().contains(needle), "a reply holds the secret: {r}");
    }
    for file in [&stderr_path, &cast, &raw] {
        let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        assert!(!text.contains(needle), "{} holds the secret", file.display());
    }
}

#[tokio::test]
async fn a_prepared_secret_is_typed_once_at_the_next_password_prompt() {
    let op = Operator::new(SECRET, "");
    let s = Server::start_with_env(&[("PTY_MCP_ASKPASS", &op.askpass())]).await;
    let id = s.bash().await;
    let r = s.call("prepare_secret", json!({"session_id": id})).await;
    assert_eq!(r, json!({"success": true, "buffered": true}));
    assert_eq!(s.call("get_session_state", json!({"session_id": id})).await["awaiting_secret"], true);
    let script = r#"sleep 1; IFS= read -r -s -p 'Password: ' p; echo; echo "first ${#p}"; IFS= read -r -s -p 'Password: ' q; echo; echo "second ${#q}""#;
    s.call("send_input", json!({"session_id": id, "input": script, "timeout_ms": 0})).await;
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^first", "timeout": 20})).await;
    assert_eq!(r["match_line"], format!("first {}", SECRET.len()), "{r}");
    // The second prompt gets nothing: the secret was used and forgotten.
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["awaiting_secret"], false);
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^second", "timeout": 1})).await;
    assert_eq!(r["timed_out"], true, "{r}");
    assert_eq!(s.call("get_session_state", json!({"session_id": id})).await["state"], "password_prompt");
}

#[tokio::test]
async fn a_secret_is_never_typed_where_it_would_show() {
    let op = Operator::new(SECRET, "");
    let s = Server::start_with_env(&[("PTY_MCP_ASKPASS", &op.askpass())]).await;
    let cat = s.session("cat").await;
    let e = s.call_err("send_secret", json!({"session_id": cat})).await;
    assert_eq!(e["code"], "SECRET_ECHO_ON", "{e}");
    let shell = s.bash().await;
    let e = s.call_err("send_secret", json!({"session_id": shell})).await;
    assert_eq!(e["code"], "SECRET_ECHO_ON", "{e}");
    // Refused before the operator was even asked, and nothing reached the terminals.
    assert_eq!(op.prompt_seen(), None);
    for id in [&cat, &shell] {
        let all = s.call("read_output", json!({"session_id": id, "since_cursor": 0})).await;
        assert!(!output(&all).contains(SECRET.trim()));
    }
}

#[tokio::test]
async fn empty_cancelled_and_unanswered_prompts_fail_cleanly() {
    for (answer, extra, code) in
        [("", "", "SECRET_EMPTY"), ("x", "exit 1", "SECRET_CANCELLED"), ("x", "sleep 30", "SECRET_TIMEOUT")]
    {
        let op = Operator::new(answer, extra);
        let s = Server::start_with_env(&[("PTY_MCP_ASKPASS", &op.askpass()), ("PTY_MCP_SECRET_TIMEOUT", "10")]).await;
        let id = s.bash().await;
        let other = s.bash().await;
        s.call("send_input", json!({"session_id": id, "input": READ_SECRET})).await;
        let peer = s.client.peer().clone();
        let asking = tokio::spawn(async move {
            let args = json!({"session_id": id}).as_object().cloned().unwrap();
            peer.call_tool(rmcp::model::CallToolRequestParams::new("send_secret").with_arguments(args)).await
        });
        // Other sessions keep answering while the operator is being asked.
        let r = s.input(&other, "echo alive").await;
        assert_eq!(output(&r), "alive\n");
        if code == "SECRET_TIMEOUT" {
            assert!(!asking.is_finished(), "the answer came while the operator was still being asked");
        }
        let result = asking.await.unwrap().unwrap();
        assert_eq!(result.is_error, Some(true));
        assert_eq!(result.structured_content.unwrap()["code"], code);
    }
    let op = Operator::new("", "");
    let s = Server::start_with_env(&[("PTY_MCP_ASKPASS", &op.askpass())]).await;
    let id = s.bash().await;
    s.call("send_input", json!({"session_id": id, "input": READ_SECRET})).await;
    s.call("send_secret", json!({"session_id": id, "allow_empty": true})).await;
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^got", "timeout": 20})).await;
    assert!(r["match_line"].as_str().unwrap().starts_with("got 0 "), "{r}");
}

#[tokio::test]
async fn a_dialog_program_gets_the_prompt_verbatim() {
    let bin = tempfile::tempdir().unwrap();
    let seen: PathBuf = bin.path().join("args");
    // A stand-in zenity: records its arguments, answers like the real one.
    write_executable(
        &bin.path().join("zenity"),
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > '{}'\necho 'dialog secret'\n",
            seen.display()
        ),
    );
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap());
    let s = Server::start_with_env(&[("DISPLAY", ":99"), ("PATH", &path)]).await;
    let id = s.bash().await;
    s.call("send_input", json!({"session_id": id, "input": READ_SECRET})).await;
    let prompt = "He said \"don't\"\n$(touch /tmp/pwned) — πάσσγουορντ";
    s.call("send_secret", json!({"session_id": id, "prompt": prompt})).await;
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^got", "timeout": 20})).await;
    assert_eq!(r["match_line"], format!("got 13 {}", sha256_prefix("dialog secret")), "{r}");
    let args = std::fs::read_to_string(&seen).unwrap();
    let args: Vec<&str> = args.trim_end_matches('\0').split('\0').collect();
    assert_eq!(args, ["--password", "--title", prompt]);
}

#[tokio::test]
async fn a_forced_secret_that_is_echoed_back_is_masked() {
    let op = Operator::new(SECRET, "");
    let s = Server::start_with_env(&[("PTY_MCP_ASKPASS", &op.askpass())]).await;
    let cat = s.session("cat").await;
    s.call("send_secret", json!({"session_id": cat, "force": true})).await;
    let r = s.call("read_output", json!({"session_id": cat, "wait_for": "\\*{8}", "timeout": 20})).await;
    assert_eq!(r["matched"], true, "{r}");
    let all = s.call("read_output", json!({"session_id": cat, "since_cursor": 0})).await;
    assert!(!output(&all).contains(SECRET.trim()), "{all}");
    let screen = s.call("read_output", json!({"session_id": cat, "screen": true})).await;
    assert!(!screen["screen"].as_str().unwrap().contains(SECRET.trim()));
}
