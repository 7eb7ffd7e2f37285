//! Serial consoles over real pseudo-terminal pairs (socat), with a scripted switch on the far end.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use crate::harness::{Server, output, spawn_until_ready};

/// A null-modem cable: a socat pty pair whose ends are `dir/dev` (ours) and `dir/far`.
pub struct Cable {
    socat: tokio::process::Child,
}

impl Cable {
    pub async fn plug(dir: &Path) -> Cable {
        let mut cmd = tokio::process::Command::new("socat");
        cmd.args(["-d", "-d"])
            .arg(format!("pty,raw,echo=0,link={}", dir.join("dev").display()))
            .arg(format!("pty,raw,echo=0,link={}", dir.join("far").display()));
        // socat says when both ends are ready.
        Cable { socat: spawn_until_ready(cmd, "starting data transfer loop").await }
    }

    async fn unplug(mut self) {
        self.socat.kill().await.unwrap();
    }
}

/// The scripted switch on the far end; every byte it receives goes to `dir/raw`.
pub fn switch(dir: &Path) -> tokio::process::Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/switch.py");
    tokio::process::Command::new("python3")
        .arg(script)
        .arg(dir.join("far"))
        .arg(dir.join("raw"))
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

pub async fn open(s: &Server, dir: &Path, extra: Value) -> String {
    let mut args = json!({"device": dir.join("dev")});
    if extra.get("baud").is_none() {
        args["baud_rate"] = json!(115200);
    }
    args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let baud = args.get("baud").or(args.get("baud_rate")).cloned().unwrap();
    let v = s.call("create_serial_session", args).await;
    assert_eq!(v["target"], format!("{}@{baud}", dir.join("dev").display()));
    v["session_id"].as_str().unwrap().to_string()
}

async fn wait_for(s: &Server, id: &str, pattern: &str) -> Value {
    let r = s.call("read_output", json!({"session_id": id, "wait_for": pattern, "timeout": 30})).await;
    assert_eq!(r["matched"], true, "waiting for {pattern}: {r}");
    r
}

pub async fn login(s: &Server, id: &str) {
    wait_for(s, id, "Username:").await;
    let r = s.input(id, "admin").await;
    assert_eq!(r["state"], "password_prompt", "{r}");
    let r = s.input(id, "cisco").await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    assert_eq!(r["prompt"], "switch>", "{r}");
}

#[tokio::test]
async fn a_switch_console_logs_in_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let _cable = Cable::plug(dir.path()).await;
    let s = Server::start().await;
    let id = open(&s, dir.path(), json!({})).await;
    let _switch = switch(dir.path());
    login(&s, &id).await;
    let r = s.input(&id, "enable").await;
    assert_eq!(r["prompt"], "switch#", "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(
        (st["type"].as_str(), st["state"].as_str(), st["last_prompt"].as_str()),
        (Some("serial"), Some("at_prompt"), Some("switch#"))
    );
    let r = s.input(&id, "show version").await;
    assert_eq!(r["state"], "pager", "{r}");
    assert!(output(&r).contains("version line 20"));
    let r = s.call("send_control", json!({"session_id": id, "key": "space"})).await;
    assert!(output(&r).contains("version line 40"), "{r}");
    let r = s.call("send_control", json!({"session_id": id, "key": "q"})).await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    // CR is what the device received for Enter, by default.
    let raw = std::fs::read(dir.path().join("raw")).unwrap();
    assert!(raw.windows(7).any(|w| w == b"enable\r") && !raw.windows(2).any(|w| w == b"\r\n"));
    // A pseudo-terminal carries no BREAK, but the call reaches the line discipline and succeeds.
    let r = s.call("send_break", json!({"session_id": id, "duration_ms": 50})).await;
    assert_eq!(r["success"], true);
}

#[tokio::test]
async fn crlf_line_endings_reach_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let _cable = Cable::plug(dir.path()).await;
    let s = Server::start().await;
    // (Linux pseudo-terminals refuse 7-bit characters and parity, so the line stays 8N1 here.)
    let id = open(&s, dir.path(), json!({"line_ending": "crlf", "baud": 9600, "stop_bits": 2})).await;
    let _switch = switch(dir.path());
    login(&s, &id).await;
    let raw = std::fs::read(dir.path().join("raw")).unwrap();
    assert!(raw.windows(7).any(|w| w == b"admin\r\n"), "{raw:?}");
}

#[tokio::test]
async fn a_megabyte_dump_loses_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let _cable = Cable::plug(dir.path()).await;
    // The dump is larger than the default 1 MiB transcript; keep it all to read it back.
    let s = Server::start_with_env(&[("PTY_MCP_BUFFER_SIZE", "4194304")]).await;
    let id = open(&s, dir.path(), json!({})).await;
    let _switch = switch(dir.path());
    login(&s, &id).await;
    let start = s.call("get_session_state", json!({"session_id": id})).await["cursor"].as_u64().unwrap();
    s.call(
        "send_input",
        json!({"session_id": id, "input": "dump 20000", "wait_for": "^0019999 ", "wait_for_timeout": 120}),
    )
    .await;
    let mut cursor = start;
    let mut text = String::new();
    loop {
        let c = s.call("read_output", json!({"session_id": id, "since_cursor": cursor, "max_bytes": 65536})).await;
        assert_eq!(c["is_truncated"], false);
        text.push_str(output(&c));
        cursor = c["cursor"].as_u64().unwrap();
        if c["has_more"] == false {
            break;
        }
    }
    let numbers: Vec<u64> = text.lines().filter_map(|l| l.split(' ').next()?.parse().ok()).collect();
    assert!(numbers == (0..20000).collect::<Vec<_>>(), "{} lines, first {:?}", numbers.len(), numbers.first());
}

#[tokio::test]
async fn an_unplugged_device_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cable = Cable::plug(dir.path()).await;
    let s = Server::start().await;
    let id = open(&s, dir.path(), json!({})).await;
    cable.unplug().await;
    let r = wait_for(&s, &id, "disconnected").await;
    assert!(r["match_line"].as_str().unwrap().contains("pty-mcp"), "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["state"], "disconnected", "{st}");
    assert!(st["disconnect_reason"].as_str().unwrap().contains("dev"), "{st}");
}

#[tokio::test]
async fn a_replugged_device_resumes_the_same_session() {
    let dir = tempfile::tempdir().unwrap();
    let cable = Cable::plug(dir.path()).await;
    let s = Server::start().await;
    let id = open(&s, dir.path(), json!({"reconnect": true})).await;
    let mut first = switch(dir.path());
    login(&s, &id).await;
    cable.unplug().await;
    first.kill().await.unwrap();
    wait_for(&s, &id, "waiting for it to come back").await;
    assert_eq!(s.call("get_session_state", json!({"session_id": id})).await["state"], "disconnected");
    let _cable = Cable::plug(dir.path()).await;
    wait_for(&s, &id, "reconnected").await;
    let _switch = switch(dir.path());
    login(&s, &id).await;
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!((st["state"].as_str(), st["is_alive"].as_bool()), (Some("at_prompt"), Some(true)));
}

#[tokio::test]
async fn bad_devices_and_settings_are_refused() {
    let s = Server::start().await;
    for (device, needle) in [
        ("/etc/passwd", "not a character device"),
        ("/dev/../etc/passwd", "not a character device"),
        ("/dev/ttyNOPE0", "no such device"),
    ] {
        let e = s.call_err("create_serial_session", json!({"device": device})).await;
        assert_eq!(e["code"], "SERIAL_OPEN_FAILED", "{device}: {e}");
        assert!(e["message"].as_str().unwrap().contains(needle), "{device}: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let _cable = Cable::plug(dir.path()).await;
    let dev: PathBuf = dir.path().join("dev");
    for bad in [
        json!({"data_bits": 9}),
        json!({"parity": "weird"}),
        json!({"stop_bits": 3}),
        json!({"baud_rate": 0}),
        json!({"flow_control": "telepathy"}),
        json!({"line_ending": "nl"}),
    ] {
        let mut args = json!({"device": dev});
        args.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
        let e = s.call_err("create_serial_session", args).await;
        assert_eq!(e["code"], "INVALID_PARAMS", "{bad}: {e}");
    }
    let e = s.call_err("create_serial_session", json!({})).await;
    assert_eq!(e["code"], "INVALID_PARAMS");
    let id = s.bash().await;
    let e = s.call_err("send_break", json!({"session_id": id})).await;
    assert_eq!(e["code"], "INVALID_PARAMS", "{e}");
    let ports = s.call("list_serial_ports", json!({})).await;
    assert!(ports["result"].is_array());
}
