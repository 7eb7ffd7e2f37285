//! Local sessions doing real work.

use serde_json::json;

use crate::harness::{STEP, Server, output};

#[tokio::test]
async fn python_repl_keeps_state_across_calls() {
    let s = Server::start().await;
    let id = s.session("python3 -q").await;
    let r = s.input(&id, "x = 6 * 7").await;
    assert_eq!(r["is_complete"], true);
    // The reply holds the answer: no echo of the line, the prompt apart.
    let r = s.input(&id, "print(x + 1)").await;
    assert_eq!((output(&r), r["prompt"].as_str()), ("43\n", Some(">>>")), "{r}");
    assert_eq!(r["state"], "at_prompt");
}

#[tokio::test]
async fn a_command_line_with_arguments_runs() {
    let s = Server::start().await;
    let v = s.call("create_local_session", json!({"command": "python3 -c \"print('a b', 1 + 2)\""})).await;
    let id = v["session_id"].as_str().unwrap();
    let r = s.call("read_output", json!({"session_id": id, "timeout": 10})).await;
    let all = format!("{}{}", v["output"].as_str().unwrap(), output(&r));
    assert!(all.contains("a b 3"), "{all}");
    // Additive `args` are passed through unparsed.
    let v = s.call("create_local_session", json!({"command": "printf", "args": ["<%s>", "x y"]})).await;
    let id = v["session_id"].as_str().unwrap();
    let r = s.call("read_output", json!({"session_id": id, "timeout": 10})).await;
    assert!(format!("{}{}", v["output"], output(&r)).contains("<x y>"));
}

#[tokio::test]
async fn wait_for_returns_context_before_and_after() {
    let s = Server::start().await;
    let id = s.bash().await;
    s.call(
        "send_input",
        json!({"session_id": id, "input": "sleep 0.5; seq 1 20; echo MARK-$((40+2)); seq 101 103", "timeout_ms": 0}),
    )
    .await;
    let r = s
        .call(
            "read_output",
            json!({"session_id": id, "wait_for": "MARK-\\d+", "timeout": 20, "context_lines": 2, "tail_lines": 1}),
        )
        .await;
    assert_eq!(r["matched"], true, "{r}");
    assert_eq!(r["match_line"], "MARK-42");
    assert_eq!(r["context"], "19\n20\nMARK-42\n101\n102", "{r}");
    // The typed command (which contains the pattern's text) was never the match.
    assert!(r["cursor"].as_u64().unwrap() > r["cursor_start"].as_u64().unwrap());
}

#[tokio::test]
async fn send_input_wait_for_skips_the_echo_and_carries_output() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input_until(&id, "sleep 0.3; echo DONE-NOW", "DONE-NOW").await;
    assert_eq!(r["match_line"], "DONE-NOW");
    assert!(output(&r).starts_with("sleep 0.3; echo DONE-NOW\n"), "{r}");
    assert!(r["cursor_start"].as_u64().unwrap() < r["cursor"].as_u64().unwrap());
}

#[tokio::test]
async fn ctrl_c_interrupts_and_the_shell_is_usable_after() {
    // Started with SIGINT ignored, as a background job of a script: the session must not be.
    let s = Server::start_in_background().await;
    let id = s.bash().await;
    let r = s.call("send_input", json!({"session_id": id, "input": "sleep 100", "timeout_ms": 300})).await;
    assert_eq!(r["state"], "running", "{r}");
    let r = s.call("send_control", json!({"session_id": id, "key": "ctrl+c"})).await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    let r = s.input(&id, "echo still-here").await;
    assert_eq!(output(&r), "still-here\n", "{r}");
}

#[tokio::test]
async fn a_program_exit_status_is_reported() {
    let s = Server::start().await;
    let id = s.session("bash -c 'echo bye; exit 3'").await;
    let r = s.call("read_output", json!({"session_id": id, "timeout": 20})).await;
    assert_eq!(r["is_alive"], false, "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["exit_code"], 3, "{st}");
    assert_eq!(st["state"], "exited");
    // Input to an ended session is a clear error.
    let e = s.call_err("send_input", json!({"session_id": id, "input": "x"})).await;
    assert_eq!(e["code"], "SESSION_CLOSED");
}

/// Collects the numbers printed one per line, in order.
fn numbers(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[tokio::test]
async fn a_long_output_reads_completely_through_cursors() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input(&id, "seq 1 100000").await;
    assert_eq!(r["is_complete"], true);
    // The reply itself is capped, saying what it left out.
    assert!(r["omitted_bytes"].as_u64().unwrap() > 0, "{}", r["omitted_bytes"]);
    let mut cursor = r["cursor_start"].as_u64().unwrap();
    let mut text = String::new();
    loop {
        let c = s.call("read_output", json!({"session_id": id, "since_cursor": cursor, "max_bytes": 7000})).await;
        assert_eq!(c["is_truncated"], false);
        text.push_str(output(&c));
        cursor = c["cursor"].as_u64().unwrap();
        if c["has_more"] == false {
            break;
        }
    }
    let got = numbers(&text);
    assert!(got == (1..=100_000).collect::<Vec<_>>(), "{} numbers, first {:?}", got.len(), got.first());
}

#[tokio::test]
async fn nothing_is_lost_or_repeated_when_the_ring_wraps() {
    let s = Server::start_with_env(&[("PTY_MCP_BUFFER_SIZE", "65536")]).await;
    let id = s.bash().await;
    // About 190 KB, three times the ring, in small paced batches that consuming reads keep up
    // with even on a loaded machine (the ring holds two seconds of production).
    let script = "python3 -c 'import sys,time\nfor i in range(1,30001):\n print(i)\n if i%200==0: sys.stdout.flush(); time.sleep(0.04)'; echo END-OF-RUN";
    let first = s.call("send_input", json!({"session_id": id, "input": script, "timeout_ms": 0})).await;
    let start = first["cursor_start"].as_u64().unwrap();
    let mut text = output(&first).to_string();
    tokio::time::timeout(2 * STEP, async {
        while !text.lines().any(|l| l == "END-OF-RUN") {
            let r = s.call("read_output", json!({"session_id": id, "timeout": 20, "settle_ms": 10})).await;
            assert!(r.get("lost_bytes").is_none(), "lost output: {r}");
            text.push_str(output(&r));
        }
    })
    .await
    .expect("the whole run is read");
    let got = numbers(&text);
    assert!(got == (1..=30_000).collect::<Vec<_>>(), "{} numbers, first {:?}", got.len(), got.first());
    // Reading again from the start now reports exactly what fell off the ring.
    let c = s.call("read_output", json!({"session_id": id, "since_cursor": start, "max_bytes": 100})).await;
    assert_eq!(c["is_truncated"], true);
    let end = s.call("get_session_state", json!({"session_id": id})).await["cursor"].as_u64().unwrap();
    assert_eq!(c["lost_bytes"].as_u64().unwrap(), end - 65536 - start);
}

#[tokio::test]
async fn one_session_waiting_never_delays_another() {
    let s = Server::start().await;
    let slow = s.bash().await;
    let fast = s.bash().await;
    let peer = s.client.peer().clone();
    let waiting = tokio::spawn(async move {
        let params = rmcp::model::CallToolRequestParams::new("read_output").with_arguments(
            json!({"session_id": slow, "wait_for": "never-printed", "timeout": 8}).as_object().cloned().unwrap(),
        );
        peer.call_tool(params).await
    });
    let r = s.input(&fast, "echo quick").await;
    assert_eq!(output(&r), "quick\n");
    // The answer came while the other call was still waiting.
    assert!(!waiting.is_finished(), "the slow wait ended early");
    let slow_reply = waiting.await.unwrap().unwrap();
    let v = slow_reply.structured_content.unwrap();
    assert_eq!(v["timed_out"], true);
}

#[tokio::test]
async fn the_screen_shows_what_a_person_sees() {
    let s = Server::start().await;
    let id = s.bash().await;
    s.input(&id, "clear; printf '\\e[5;20HHELLO\\e[8;3Hworld\\e[12;1H'").await;
    let v = s.call("read_output", json!({"session_id": id, "screen": true})).await;
    let lines: Vec<&str> = v["screen"].as_str().unwrap().split('\n').collect();
    assert_eq!(lines[4], format!("{}HELLO", " ".repeat(19)));
    assert_eq!(lines[7], "  world");
    assert_eq!(v["cursor_row"], 11);
    assert_eq!(v["rows"], 40);
    assert_eq!(v["alt_screen"], false);
}

#[tokio::test]
async fn resize_reaches_the_program() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.call("resize_session", json!({"session_id": id, "rows": 33, "cols": 101})).await;
    assert_eq!(r["success"], true);
    let r = s.input(&id, "stty size").await;
    assert_eq!(output(&r), "33 101\n", "{r}");
}

#[tokio::test]
async fn terminal_queries_are_answered() {
    let s = Server::start().await;
    let id = s.bash().await;
    // A program that blocks until the terminal reports the cursor position.
    let script = r#"python3 -c "import os,sys,tty; tty.setraw(0); os.write(1,b'\x1b[6n'); r=b''
while not r.endswith(b'R'): r+=os.read(0,1)
tty.setcbreak(0); print(); print('CPR', r[1:].decode())""#;
    // The whole line: a PTY reader may see a line part-written, and wait_for matches unfinished
    // lines (prompts end without a newline).
    let r = s.input_until(&id, script, r"^CPR \[").await;
    assert!(r["match_line"].as_str().unwrap().starts_with("CPR ["), "{r}");
}
