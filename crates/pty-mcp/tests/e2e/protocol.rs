//! The MCP protocol itself: listing, progress, cancellation, malformed input, shutdown.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{STEP, Server, binary};

#[tokio::test]
async fn tools_are_listed_with_schemas_and_annotations() {
    let s = Server::start().await;
    let tools = s.client.peer().list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for name in [
        "create_local_session",
        "send_input",
        "read_output",
        "send_control",
        "resize_session",
        "get_session_state",
        "list_sessions",
        "close_session",
        "detach_session",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let read = tools.iter().find(|t| t.name == "read_output").unwrap();
    assert_eq!(read.annotations.as_ref().unwrap().read_only_hint, Some(true));
    let schema = serde_json::to_value(&read.input_schema).unwrap();
    assert!(schema["properties"]["wait_for"]["description"].is_string());
    let info = s.client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "pty-mcp");
}

/// What a client puts into the model's context for the tools (name, description and input
/// schema of each, as JSON): the budget it must stay within. 17 tools fitted in 10,000; the two
/// file tools cost 1,340 more (about 340 tokens).
pub const TOOLS_BUDGET: usize = 11_500;

pub fn model_view_size(tools: &[rmcp::model::Tool]) -> usize {
    tools
        .iter()
        .map(|t| {
            json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}).to_string().len()
        })
        .sum()
}

#[tokio::test]
async fn the_tool_list_costs_the_model_little_and_keeps_every_parameter() {
    let s = Server::start().await;
    let tools = s.client.peer().list_all_tools().await.unwrap();
    let size = model_view_size(&tools);
    assert!(size <= TOOLS_BUDGET, "tools/list as a model sees it is {size} characters, over {TOOLS_BUDGET}");
    let text = serde_json::to_string(&tools).unwrap();
    for noise in ["$schema", "\"format\"", "\"default\":null", "\"null\""] {
        assert!(!text.contains(noise), "{noise} in the tool list");
    }
    // Every parameter is still there, the Go version's names included.
    let send = tools.iter().find(|t| t.name == "send_input").unwrap();
    let props = send.input_schema["properties"].as_object().unwrap();
    for p in ["session_id", "input", "raw", "paste", "timeout_ms", "settle_ms", "wait_for", "wait_for_timeout"] {
        assert!(props.contains_key(p), "send_input lost {p}");
    }
}

/// A raw JSON-RPC conversation with the binary, for what a well-behaved client never sends.
struct Raw {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Raw {
    async fn start() -> Raw {
        let mut child = tokio::process::Command::new(binary())
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut raw = Raw { child, stdin, lines };
        raw.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}))
            .await;
        let init = raw.response(0).await;
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
        raw.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        raw
    }

    async fn send(&mut self, v: Value) {
        self.send_line(&v.to_string()).await;
    }

    async fn send_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next message with this id, skipping notifications.
    async fn response(&mut self, id: i64) -> Value {
        loop {
            let line =
                tokio::time::timeout(STEP, self.lines.next_line()).await.expect("answer in time").unwrap().unwrap();
            let v: Value = serde_json::from_str(&line).expect("stdout carries only JSON-RPC");
            if v["id"] == id {
                return v;
            }
        }
    }

    async fn call(&mut self, id: i64, tool: &str, args: Value) -> Value {
        self.send(
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}}),
        )
        .await;
        self.response(id).await
    }
}

#[tokio::test]
async fn malformed_json_rpc_does_not_stop_the_server() {
    let mut raw = Raw::start().await;
    raw.send_line("this is not json").await;
    raw.send_line("{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": ").await;
    raw.send(json!({"jsonrpc": "2.0", "id": 6, "method": "no/such/method"})).await;
    raw.send(json!({"jsonrpc": "2.0", "id": 7, "method": "ping"})).await;
    let pong = raw.response(7).await;
    assert!(pong.get("result").is_some(), "{pong}");
    let r = raw.call(8, "list_sessions", json!({})).await;
    assert!(r["result"]["content"].is_array(), "{r}");
}

#[tokio::test]
async fn stdin_eof_ends_the_server_and_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let mut raw = Raw::start().await;
    let cmd = format!("bash -c 'echo $$ > {}; exec sleep 1000'", pid_file.display());
    let r = raw.call(1, "create_local_session", json!({"command": cmd})).await;
    assert!(r["result"]["structuredContent"]["session_id"].is_string(), "{r}");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    drop(raw.stdin);
    let status = tokio::time::timeout(STEP, raw.child.wait()).await.expect("exits on EOF").unwrap();
    assert!(status.success(), "{status}");
    // Killed, it may linger as a zombie until init reaps it; a zombie runs nothing.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let running = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|s| s != "Z");
    assert!(!running, "the session's program survived the server: {stat}");
}

#[tokio::test]
async fn cancellation_stops_a_wait_and_the_server_keeps_serving() {
    let mut raw = Raw::start().await;
    let r = raw.call(1, "create_local_session", json!({"command": "cat"})).await;
    let id = r["result"]["structuredContent"]["session_id"].as_str().unwrap().to_string();
    // A wait of 600 s that holds the session's input lock: typing into the session again is
    // possible only once the cancellation has really stopped it.
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "send_input",
        "arguments": {"session_id": id, "input": "x", "wait_for": "never", "wait_for_timeout": 600}}}))
        .await;
    raw.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})).await;
    let r = raw.call(3, "send_input", json!({"session_id": id, "input": "again", "timeout_ms": 500})).await;
    assert_eq!(r["id"], 3);
    assert!(r["result"]["structuredContent"]["output"].as_str().unwrap().contains("again"), "{r}");
}

#[tokio::test]
async fn long_waits_report_progress() {
    let mut raw = Raw::start().await;
    let r = raw.call(1, "create_local_session", json!({"command": "cat"})).await;
    let id = r["result"]["structuredContent"]["session_id"].as_str().unwrap().to_string();
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "read_output",
        "_meta": {"progressToken": "tok"}, "arguments": {"session_id": id, "wait_for": "never", "timeout": 7}}}))
        .await;
    let mut progress = Vec::new();
    loop {
        let line = tokio::time::timeout(STEP, raw.lines.next_line()).await.unwrap().unwrap().unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["method"] == "notifications/progress" {
            progress.push(v["params"].clone());
        } else if v["id"] == 2 {
            assert_eq!(v["result"]["structuredContent"]["timed_out"], true);
            break;
        }
    }
    assert!(!progress.is_empty(), "no progress during a 7 s wait");
    assert_eq!(progress[0]["progressToken"], "tok");
    assert_eq!(progress[0]["total"], 7.0);
}
