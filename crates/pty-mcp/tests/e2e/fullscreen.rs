//! Full-screen programs, the key grammar, session state and session logs.

use serde_json::{Value, json};

use crate::harness::{Server, output};

#[tokio::test]
async fn less_pages_with_space_and_quits_with_q() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.call("send_input", json!({"session_id": id, "input": "seq 1 200 | LESS= less"})).await;
    assert_eq!(r["state"], "pager", "{r}");
    let screen = s.call("read_output", json!({"session_id": id, "screen": true})).await;
    assert_eq!(screen["alt_screen"], true);
    assert!(screen["screen"].as_str().unwrap().starts_with("1\n2\n3\n"), "{screen}");
    let r = s.call("send_control", json!({"session_id": id, "key": "space"})).await;
    // Full-screen programs answer with the screen: the next page starts at line 40.
    assert!(r["screen"].as_str().unwrap().starts_with("40\n41\n"), "{r}");
    assert_eq!(r["state"], "pager");
    let r = s.call("send_control", json!({"session_id": id, "key": "q"})).await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["state"], "at_prompt");
}

/// A program that waits on something else before it reads its key (a socket, for 0.6 s), in a
/// kernel wait that `/proc` shows like a terminal read: as a pager looks on a machine so loaded
/// that the key still sits in the kernel's buffers.
const LATE_READER: &str = r#"python3 -c "import os,socket,struct,tty
a=socket.create_server(('127.0.0.1',0)); c=socket.create_connection(a.getsockname())
c.setsockopt(socket.SOL_SOCKET,socket.SO_RCVTIMEO,struct.pack('ll',0,600000))
tty.setcbreak(0); print('ready',flush=True)
try: c.recv(1)
except OSError: pass
print('got',os.read(0,1))""#;

#[tokio::test]
async fn a_key_read_late_is_answered_by_what_it_caused() {
    let s = Server::start().await;
    let id = s.bash().await;
    for round in 0..5 {
        s.input_until(&id, LATE_READER, "^ready").await;
        // Quiet while the program has not read the key is not its answer.
        let r = s.call("send_control", json!({"session_id": id, "key": "x"})).await;
        assert!(output(&r).contains("got b'x'"), "round {round}: {r}");
        assert_eq!(r["is_complete"], true, "round {round}: {r}");
    }
}

#[tokio::test]
async fn vim_edits_and_saves_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("note.txt");
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s
        .call(
            "send_input",
            json!({"session_id": id, "input": format!("vim -u NONE -N -n {}", file.display()), "settle_ms": 500}),
        )
        .await;
    assert_eq!(r["state"], "full_screen", "{r}");
    s.call("send_control", json!({"session_id": id, "key": "i"})).await;
    s.call("send_input", json!({"session_id": id, "input": "hello from vim", "raw": true})).await;
    let r = s.call("send_control", json!({"session_id": id, "key": ["escape", ":", "w", "q", "enter"]})).await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello from vim\n");
}

/// A program that switches cursor-key mode as told, then prints the bytes one key sends.
const SHOW_KEY: &str = r#"python3 -c "import os,sys,tty
sys.stdout.write(sys.argv[1]); tty.setraw(0); sys.stdout.write('ready\r\n'); sys.stdout.flush()
b=os.read(0,16); tty.setcbreak(0); print('got', repr(b))""#;

async fn key_bytes(s: &Server, id: &str, mode: &str, key: Value) -> String {
    s.input_until(id, &format!("{SHOW_KEY} $'{mode}'"), "^ready").await;
    let r = s.call("send_control", json!({"session_id": id, "key": key})).await;
    got_line(s, id, &r).await
}

/// The program's `got …` line: in the reply that sent the key, or still to come.
async fn got_line(s: &Server, id: &str, reply: &Value) -> String {
    if let Some(line) = output(reply).lines().find(|l| l.starts_with("got")) {
        return line.to_string();
    }
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^got", "timeout": 20})).await;
    r["match_line"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn arrows_follow_the_programs_cursor_key_mode() {
    let s = Server::start().await;
    let id = s.bash().await;
    assert_eq!(key_bytes(&s, &id, "\\e[?1h", json!("up")).await, r"got b'\x1bOA'");
    assert_eq!(key_bytes(&s, &id, "\\e[?1l", json!("up")).await, r"got b'\x1b[A'");
    assert_eq!(key_bytes(&s, &id, "", json!("alt+x f5 ctrl+a")).await, r"got b'\x1bx\x1b[15~\x01'");
}

#[tokio::test]
async fn bracketed_paste_wraps_input_when_the_program_asks() {
    let s = Server::start().await;
    let id = s.bash().await;
    s.input_until(&id, &format!("{SHOW_KEY} $'\\e[?2004h'"), "^ready").await;
    let r = s.call("send_input", json!({"session_id": id, "input": "a\nb", "paste": true, "raw": true})).await;
    assert_eq!(got_line(&s, &id, &r).await, r"got b'\x1b[200~a\nb\x1b[201~'");
}

#[tokio::test]
async fn a_yes_no_question_is_a_confirmation() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.call("send_input", json!({"session_id": id, "input": "python3 -c 'input(\"Continue? [y/N] \")'"})).await;
    assert_eq!(r["state"], "confirmation", "{r}");
    let r = s.input(&id, "y").await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["last_prompt"], "test$");
}

#[tokio::test]
async fn the_last_screen_of_an_ended_session_stays_readable() {
    let s = Server::start().await;
    let id = s.session("bash -c 'printf \"last words\"; exit 0'").await;
    s.call("read_output", json!({"session_id": id, "timeout": 20})).await;
    let v = s.call("read_output", json!({"session_id": id, "screen": true, "screen_lines": true})).await;
    assert_eq!(v["is_alive"], false);
    assert_eq!(v["screen"], "last words");
    assert_eq!(v["screen_lines"].as_array().unwrap().len(), 40);
}

#[tokio::test]
async fn raw_logs_rotate_at_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("session.log");
    let s = Server::start().await;
    let v = s
        .call(
            "create_local_session",
            json!({"command": "bash --norc --noprofile", "env": {"PS1": "test$ "},
            "log_file": log, "log_max_size": 1, "log_max_files": 5}),
        )
        .await;
    let id = v["session_id"].as_str().unwrap();
    let r = s.input(id, "seq 1 300000").await;
    s.call("close_session", json!({"session_id": id})).await;
    // Oldest first: session.log.N … session.log.1, then session.log.
    let mut files: Vec<_> =
        (1..=5).map(|n| dir.path().join(format!("session.log.{n}"))).filter(|p| p.exists()).collect();
    let how = (&r["is_complete"], &r["completion"], &r["exit_code"]);
    assert!(files.len() >= 2, "no rotation happened; seq's reply (complete, completion, status): {how:?}");
    files.reverse();
    files.push(log);
    let mut all = Vec::new();
    for path in files {
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.len() <= 1_000_000, "{} is {} bytes", path.display(), meta.len());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        all.extend(std::fs::read(path).unwrap());
    }
    let text = String::from_utf8_lossy(&all);
    // A raw log keeps the terminal's control sequences: take what follows the last `\r` or BEL.
    let numbers: Vec<u64> = text
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').rsplit(['\r', '\x07']).next()?.trim().parse().ok())
        .collect();
    // Compared whole, reported briefly: a 300000-element diff helps nobody.
    assert!(numbers == (1..=300_000).collect::<Vec<_>>(), "{} numbers, first {:?}", numbers.len(), numbers.first());
}

#[tokio::test]
async fn asciicast_recordings_are_valid_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let cast = dir.path().join("s.cast");
    let s = Server::start().await;
    let v = s
        .call(
            "create_local_session",
            json!({"command": "bash --norc --noprofile", "env": {"PS1": "test$ "},
            "log_file": cast, "log_format": "asciicast"}),
        )
        .await;
    let id = v["session_id"].as_str().unwrap();
    s.input(id, "echo héllo").await;
    s.call("resize_session", json!({"session_id": id, "rows": 30, "cols": 90})).await;
    s.input(id, "printf '\\e[1;31mred\\e[0m\\n'").await;
    s.call("close_session", json!({"session_id": id})).await;
    let text = std::fs::read_to_string(&cast).unwrap();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        (header["version"].as_u64(), header["width"].as_u64(), header["height"].as_u64()),
        (Some(2), Some(120), Some(40))
    );
    let events: Vec<Value> = lines.map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let times: Vec<f64> = events.iter().map(|e| e[0].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "timestamps go back: {times:?}");
    let of = |kind: &str| {
        events.iter().filter(|e| e[1] == kind).map(|e| e[2].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert!(of("i").contains(&"echo héllo\r".to_string()), "{:?}", of("i"));
    assert!(of("o").concat().contains("héllo\r\n"));
    assert_eq!(of("r"), ["90x30"]);
}

#[tokio::test]
async fn bad_log_and_key_parameters_are_refused() {
    let s = Server::start().await;
    let e = s.call_err("create_local_session", json!({"log_file": "/no/such/dir/x.log"})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    assert!(e["message"].as_str().unwrap().contains("/no/such/dir/x.log"), "{e}");
    let e = s.call_err("create_local_session", json!({"log_file": "/tmp/x.log", "log_format": "mp4"})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    let id = s.bash().await;
    let e = s.call_err("send_control", json!({"session_id": id, "key": []})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    let r = s.input(&id, "echo undisturbed").await;
    assert_eq!(output(&r), "undisturbed\n");
}
