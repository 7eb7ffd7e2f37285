//! `pty-mcp demo`: a scripted tour through the real MCP interface, as an agent would drive it.

use std::time::Instant;

use anyhow::Context;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{Peer, RoleClient};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

/// Starts this binary as a server, runs the tour, prints every call and reply.
pub async fn run() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("serve");
    let client = ().serve(TokioChildProcess::new(cmd)?).await.context("cannot start the MCP server")?;
    let peer = client.peer().clone();
    let tools = peer.list_all_tools().await?;
    println!("# pty-mcp demo: the server offers {} tools\n", tools.len());

    let bash =
        call(&peer, "create_local_session", json!({"command": "bash --norc --noprofile", "env": {"PS1": "demo$ "}}))
            .await?;
    let id = bash["session_id"].as_str().unwrap_or_default().to_string();
    call(&peer, "send_input", json!({"session_id": id, "input": "echo hello from $BASH_VERSION; uname -s"})).await?;
    call(&peer, "send_input", json!({"session_id": id, "input": "for i in 1 2 3; do echo step $i; sleep 0.1; done"}))
        .await?;
    call(
        &peer,
        "send_input",
        json!({"session_id": id, "input": "(sleep 1; echo READY) &", "wait_for": "READY", "wait_for_timeout": 5}),
    )
    .await?;
    call(&peer, "send_input", json!({"session_id": id, "input": "sleep 100", "timeout_ms": 500})).await?;
    call(&peer, "send_control", json!({"session_id": id, "key": "ctrl+c"})).await?;
    call(
        &peer,
        "send_input",
        json!({"session_id": id, "input": "clear; printf '\\e[5;20Hdrawn at row 5, column 20\\e[10;1H'"}),
    )
    .await?;
    call(&peer, "read_output", json!({"session_id": id, "screen": true})).await?;
    call(&peer, "get_session_state", json!({"session_id": id})).await?;

    let py = call(&peer, "create_local_session", json!({"command": "python3 -q"})).await?;
    let py_id = py["session_id"].as_str().unwrap_or_default().to_string();
    call(&peer, "send_input", json!({"session_id": py_id, "input": "x = 6 * 7"})).await?;
    call(&peer, "send_input", json!({"session_id": py_id, "input": "print(x)"})).await?;
    call(&peer, "send_input", json!({"session_id": py_id, "input": "import sys; sys.exit(3)"})).await?;

    call(&peer, "list_sessions", json!({})).await?;
    call(&peer, "close_session", json!({"session_id": id})).await?;
    client.cancel().await?;
    Ok(())
}

async fn call(peer: &Peer<RoleClient>, tool: &str, args: Value) -> anyhow::Result<Value> {
    println!("→ {tool} {args}");
    let started = Instant::now();
    let params =
        CallToolRequestParams::new(tool.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default());
    let result: CallToolResult = peer.call_tool(params).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let value = result.structured_content.clone().unwrap_or(Value::Null);
    let shown = serde_json::to_string_pretty(&value)?;
    println!("← {ms:.1} ms{}\n{shown}\n", if result.is_error == Some(true) { " (error)" } else { "" });
    Ok(value)
}
