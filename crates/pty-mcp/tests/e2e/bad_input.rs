//! Bad input gets a clear error or a documented clamp, and changes nothing else.

use serde_json::json;

use crate::harness::{Server, output};

#[tokio::test]
async fn unknown_sessions_are_reported() {
    let s = Server::start().await;
    for tool in ["send_input", "read_output", "send_control", "get_session_state", "close_session", "resize_session"] {
        let e = s
            .call_err(
                tool,
                json!({"session_id": "0123456789abcdef", "input": "x", "key": "enter", "rows": 5, "cols": 5}),
            )
            .await;
        assert_eq!(e["code"], "SESSION_NOT_FOUND", "{tool}: {e}");
        assert_eq!(e["retryable"], false);
    }
}

#[tokio::test]
async fn bad_and_catastrophic_regexes_fall_back_to_literal_text() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input_until(&id, "echo 'a(b' found", "a(b").await;
    assert!(r["warning"].as_str().unwrap().contains("literal"));
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "(a{1000}){1000}", "timeout": 1})).await;
    assert_eq!(r["timed_out"], true, "{r}");
}

#[tokio::test]
async fn unknown_keys_list_the_grammar() {
    let s = Server::start().await;
    let id = s.bash().await;
    let e = s.call_err("send_control", json!({"session_id": id, "key": "ctrl+banana"})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    assert!(e["message"].as_str().unwrap().contains("pageup"), "{e}");
    let e = s.call_err("send_control", json!({"session_id": id, "key": ""})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
}

#[tokio::test]
async fn timeouts_and_sizes_are_clamped_or_refused() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.call("send_input", json!({"session_id": id, "input": "echo ok", "timeout_ms": "-5"})).await;
    assert!(r["warnings"][0].as_str().unwrap().contains("timeout_ms -5"), "{r}");
    let r = s.call("send_input", json!({"session_id": id, "input": "echo ok", "timeout_ms": "99999999"})).await;
    assert!(r["warnings"][0].as_str().unwrap().contains("30000"), "{r}");
    let e = s.call_err("resize_session", json!({"session_id": id, "rows": 0, "cols": 80})).await;
    assert_eq!(e["message"], "rows and cols must be positive integers");
    let e = s.call_err("resize_session", json!({"session_id": id, "rows": 501, "cols": 80})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    let e = s.call_err("create_local_session", json!({"rows": 10, "cols": 100000})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    let huge = "x".repeat(2 << 20);
    let e = s.call_err("send_input", json!({"session_id": id, "input": huge})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    // The session is untouched by all of that.
    let r = s.input(&id, "echo fine").await;
    assert_eq!(output(&r), "fine\n");
}

#[tokio::test]
async fn programs_that_cannot_start_say_why() {
    let s = Server::start().await;
    let e = s.call_err("create_local_session", json!({"command": "/no/such/program"})).await;
    assert_eq!(e["code"], "PTY_OPEN_FAILED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("/no/such/program"));
    let e = s.call_err("create_local_session", json!({"command": "echo 'unterminated"})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    let e = s.call_err("create_local_session", json!({"cwd": "/no/such/dir"})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
}

#[tokio::test]
async fn invalid_utf8_from_a_program_is_replaced_not_fatal() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input(&id, "printf 'a\\377\\376b\\n'").await;
    assert!(output(&r).contains("a\u{fffd}\u{fffd}b"), "{r}");
}

#[tokio::test]
async fn the_fifty_first_session_is_refused() {
    let s = Server::start().await;
    for _ in 0..50 {
        s.call("create_local_session", json!({"command": "cat"})).await;
    }
    let e = s.call_err("create_local_session", json!({"command": "cat"})).await;
    assert_eq!(e["code"], "SESSION_LIMIT_REACHED");
    assert_eq!(e["retryable"], true);
    let list = s.call("list_sessions", json!({})).await;
    let first = list["result"][0]["id"].as_str().unwrap().to_string();
    s.call("close_session", json!({"session_id": first})).await;
    s.call("create_local_session", json!({"command": "cat"})).await;
}

#[tokio::test]
async fn lenient_arguments_are_accepted() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s
        .call("send_input", json!({"session_id": id, "input": "echo -n hi", "raw": "false", "timeout_ms": "5000"}))
        .await;
    assert_eq!(r["is_complete"], true);
    let e = s.call_err("send_input", json!({"session_id": id, "input": "x", "raw": "perhaps"})).await;
    assert!(e.to_string().contains("boolean"), "{e}");
}
