//! Faults an agent and the machine inflict (issue 15): calls cancelled at random points, programs
//! stopped, killed or hanging on to their terminal, full disks. What must hold: nothing hangs,
//! nothing is lost, duplicated or mis-attributed, nothing leaks.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::{STEP, Server, binary, numbered, output};
use crate::persistent::{Runtime, read_until};

/// A JSON-RPC client that keeps many calls in flight and cancels them (what `rmcp`'s client
/// does not let a test do at a chosen moment).
struct Rpc {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    answers: Arc<Mutex<HashMap<i64, Value>>>,
    arrived: Arc<tokio::sync::Notify>,
    next: i64,
}

impl Rpc {
    async fn start_with_env(env: &[(&str, &str)]) -> Rpc {
        let mut child = tokio::process::Command::new(binary())
            .arg("serve")
            .envs(env.iter().copied())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let arrived = Arc::new(tokio::sync::Notify::new());
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn({
            let (answers, arrived) = (answers.clone(), arrived.clone());
            async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    let v: Value = serde_json::from_str(&line).expect("stdout carries only JSON-RPC");
                    if let Some(id) = v["id"].as_i64() {
                        answers.lock().unwrap().insert(id, v);
                        arrived.notify_waiters();
                    }
                }
            }
        });
        let mut rpc = Rpc { child, stdin, answers, arrived, next: 1 };
        rpc.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "faults", "version": "0"}}}))
            .await;
        rpc.wait(0).await;
        rpc.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        rpc
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    async fn send(&mut self, v: Value) {
        self.stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Sends a tool call and returns its id, without waiting.
    async fn start_call(&mut self, tool: &str, args: Value) -> i64 {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": args}}))
            .await;
        id
    }

    async fn cancel(&mut self, id: i64) {
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "fault test"}}))
            .await;
    }

    /// The answer to `id`, which must come.
    async fn wait(&self, id: i64) -> Value {
        tokio::time::timeout(STEP, async {
            loop {
                let arrived = self.arrived.notified();
                if let Some(v) = self.answers.lock().unwrap().remove(&id) {
                    return v;
                }
                arrived.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no answer to call {id} in time"))
    }

    /// Calls a tool that must succeed; returns its structured result.
    async fn call(&mut self, tool: &str, args: Value) -> Value {
        let id = self.start_call(tool, args.clone()).await;
        let v = self.wait(id).await;
        assert_ne!(v["result"]["isError"], true, "{tool} {args}: {v}");
        v["result"]["structuredContent"].clone()
    }
}

/// A small seeded generator (xorshift64*), so that a failing run can be repeated exactly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// How many descriptors a process holds open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// `FAULT_CALLS` calls (default 2,000; `scripts/faults` runs 10,000) of every kind on four
/// shells, half of them cancelled at a random point. Afterwards: every shell answers exactly,
/// no cursor went backwards, every command whose reply said it ran printed once and no command
/// printed twice, and the server holds no more descriptors than before.
#[tokio::test]
async fn calls_cancelled_at_random_lose_and_leak_nothing() {
    let calls: u64 = std::env::var("FAULT_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let seed: u64 = std::env::var("FAULT_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(0x5eed_f00d);
    eprintln!("cancellation faults: {calls} calls, FAULT_SEED={seed}");
    let mut rng = Rng(seed.wrapping_mul(2) | 1);
    // Shells as on a developer's machine: startup files that print and take 0.8 s, all four
    // starting at once; the calls begin the moment they are handed over.
    let home = crate::startup::slow_home();
    let mut rpc = Rpc::start_with_env(&[("HOME", home.path().to_str().unwrap())]).await;
    let mut creating = Vec::new();
    for _ in 0..4 {
        creating.push(rpc.start_call("create_local_session", json!({"command": "bash"})).await);
    }
    let mut ids = Vec::new();
    for call in creating {
        let v = rpc.wait(call).await;
        ids.push(v["result"]["structuredContent"]["session_id"].as_str().expect("created").to_string());
    }
    let fds_before = open_fds(rpc.pid());
    let mut cursors: HashMap<&str, u64> = HashMap::new();
    // Per mark: whether a reply said its command ran to the end.
    let mut ran: HashMap<String, bool> = HashMap::new();
    for n in 0..calls {
        let id = ids[rng.below(ids.len() as u64) as usize].as_str();
        let mark = format!("m{n}");
        // The fault: half the calls are cancelled at a random moment (often before the server
        // has even read them, sometimes in the middle of a wait).
        let cancel = rng.below(2) == 0;
        let (tool, args) = match rng.below(5) {
            0 | 1 => ("send_input", json!({"session_id": id, "input": format!("echo {mark}"), "timeout_ms": 5000})),
            // A wait that only a cancellation ends early; uncancelled, a look at what is there.
            2 => (
                "read_output",
                json!({"session_id": id, "wait_for": "never-printed", "timeout": if cancel { 2 } else { 0 }}),
            ),
            3 => {
                let key = ["ctrl+c", "ctrl+l", "enter"][rng.below(3) as usize];
                ("send_control", json!({"session_id": id, "key": key}))
            }
            _ => ("resize_session", json!({"session_id": id, "rows": 20 + rng.below(30), "cols": 60 + rng.below(100)})),
        };
        if tool == "send_input" {
            ran.insert(mark.clone(), false);
        }
        let call = rpc.start_call(tool, args).await;
        if cancel {
            let pause = rng.below(4_000);
            if pause > 0 {
                tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
            }
            rpc.cancel(call).await;
            continue;
        }
        let v = rpc.wait(call).await;
        let r = &v["result"]["structuredContent"];
        if let Some(cursor) = r["cursor"].as_u64() {
            let last = cursors.entry(id).or_default();
            assert!(cursor >= *last, "call {n} ({tool}) moved {id}'s cursor back from {last} to {cursor}: {r}");
            *last = cursor;
        }
        if tool == "send_input" && r["exit_code"] == 0 {
            ran.insert(mark, true);
        }
    }
    // Every shell still answers its own command exactly.
    for (i, id) in ids.iter().enumerate() {
        let r = rpc
            .call("send_input", json!({"session_id": id, "input": format!("echo final{i}"), "timeout_ms": 20000}))
            .await;
        assert_eq!(output(&r).trim(), format!("final{i}"), "{id} no longer answers exactly: {r}");
    }
    // The whole transcript: each command's output line appears at most once, exactly once when
    // its reply said it ran.
    let mut printed: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let mut text = String::new();
        let mut cursor = 0;
        loop {
            let r =
                rpc.call("read_output", json!({"session_id": id, "since_cursor": cursor, "max_bytes": 1 << 20})).await;
            assert_eq!(r["lost_bytes"].as_u64().unwrap_or(0), 0, "the transcript lost its start: {r}");
            text.push_str(output(&r));
            cursor = r["cursor"].as_u64().unwrap();
            if r["has_more"] != true {
                break;
            }
        }
        for line in numbered(&text, "m") {
            *printed.entry(line.to_string()).or_default() += 1;
        }
    }
    for (mark, ran) in &ran {
        let times = printed.get(mark).copied().unwrap_or(0);
        assert!(times <= 1, "{mark} printed {times} times: typed more than once");
        assert!(!ran || times == 1, "{mark}'s reply said it ran, but it printed {times} times");
    }
    let fds_after = open_fds(rpc.pid());
    assert!(fds_after <= fds_before, "descriptors leaked: {fds_before} before, {fds_after} after");
    eprintln!(
        "cancellation faults: {} commands typed, {} printed, {} confirmed; fds {fds_before} -> {fds_after}",
        ran.len(),
        printed.len(),
        ran.values().filter(|r| **r).count()
    );
}

/// Whether process `pid` still runs (a zombie, killed and waiting for its parent, does not).
fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).is_some_and(|s| s != "Z")
}

/// Waits until `pid` has ended (a zombie counts), up to `bound`: the kernel says so through a
/// pidfd, which becomes readable then. How long it took, or None.
async fn gone_within(pid: i32, bound: std::time::Duration) -> Option<std::time::Duration> {
    use std::os::fd::FromRawFd;
    let started = std::time::Instant::now();
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return Some(std::time::Duration::ZERO); // no such process: gone already
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw as i32) };
    // SAFETY: the AsyncFd owns the descriptor for as long as it is registered.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.expect("register a pidfd");
    let _exited = tokio::time::timeout(bound, fd.readable()).await.ok()?.ok()?;
    Some(started.elapsed())
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory effects; the test signals its own children.
    unsafe { libc::kill(pid, sig) };
}

/// Starts `command` in a local session; returns its id and the pid the program printed first
/// as `pid N` (in the create reply's banner, or read after it).
async fn start_printing_pid(s: &Server, command: &str) -> (String, i32) {
    let v = s.call("create_local_session", json!({"command": command})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    let pid_in = |text: &str| text.lines().find_map(|l| l.trim().strip_prefix("pid ").and_then(|p| p.parse().ok()));
    if let Some(pid) = pid_in(output(&v)) {
        return (id, pid);
    }
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^pid \\d+", "timeout": 20})).await;
    assert_eq!(r["matched"], true, "{r}");
    let pid = pid_in(r["match_line"].as_str().unwrap()).unwrap();
    (id, pid)
}

/// A program stopped (SIGSTOP) mid-output blocks no call, of its session or another; continued,
/// it carries on, and its whole output is there once, in order.
#[tokio::test]
async fn a_stopped_program_blocks_nothing_and_loses_nothing() {
    let s = Server::start().await;
    // It counts once told to go, so that the count starts after the session is handed over.
    let counter = "python3 -u -c 'import os, sys, time\nprint(\"pid\", os.getpid())\nsys.stdin.readline()\nfor i in range(1, 301):\n    print(f\"c{i}\"); time.sleep(0.004)\nprint(\"DONE\")'";
    let (id, pid) = start_printing_pid(&s, counter).await;
    s.call("send_input", json!({"session_id": id, "input": "go", "timeout_ms": 0})).await;
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^c50$", "timeout": 20})).await;
    assert_eq!(r["matched"], true, "{r}");
    signal(pid, libc::SIGSTOP);
    let other = s.bash().await;
    let started = std::time::Instant::now();
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^DONE$", "timeout": 1})).await;
    assert_eq!((r["matched"].as_bool(), r["timed_out"].as_bool()), (Some(false), Some(true)), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a wait on a stopped program overran its timeout");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["is_alive"], true, "{st}");
    assert_eq!(output(&s.input(&other, "echo other-answers").await), "other-answers\n");
    signal(pid, libc::SIGCONT);
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "^DONE$", "timeout": 30})).await;
    assert_eq!(r["matched"], true, "{r}");
    let all = s.call("read_output", json!({"session_id": id, "since_cursor": 0, "max_bytes": 1 << 20})).await;
    let counted = numbered(output(&all), "c");
    assert_eq!(counted, (1..=300).map(|i| format!("c{i}")).collect::<Vec<_>>(), "lost, repeated or reordered");
}

/// A program that closes its terminal but keeps running is still ended by close_session.
#[tokio::test]
async fn a_program_that_lets_go_of_its_terminal_is_still_ended_by_close() {
    let s = Server::start().await;
    let cmd = "bash -c 'echo pid $$; sleep 0.2; exec sleep 1000 </dev/null >/dev/null 2>&1'";
    let (id, pid) = start_printing_pid(&s, cmd).await;
    // Its terminal is closed now: the session sees end of output, the program still runs.
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert!(st["state"].is_string(), "{st}");
    assert!(running(pid));
    s.call("close_session", json!({"session_id": id})).await;
    let took = gone_within(pid, std::time::Duration::from_secs(10)).await;
    assert!(took.is_some(), "the program outlived close_session");
}

/// A program ignoring SIGHUP, with children that inherit that, is killed on close within a bound.
#[tokio::test]
async fn a_program_ignoring_hangups_is_killed_on_close_within_a_bound() {
    let s = Server::start().await;
    let cmd = "bash -c 'trap \"\" HUP; sleep 1000 & echo pid $!; while :; do sleep 1; done'";
    let (id, child) = start_printing_pid(&s, cmd).await;
    let started = std::time::Instant::now();
    s.call("close_session", json!({"session_id": id})).await;
    let took = gone_within(child, std::time::Duration::from_secs(10)).await;
    assert!(took.is_some(), "a child ignoring SIGHUP outlived close_session by 10 s");
    eprintln!("close_session to a HUP-ignoring child gone: {:?}", started.elapsed());
}

/// A session log on a full disk: the session goes on, the log stops whole (no half event), and
/// the next reply and the session's state say why.
#[tokio::test]
async fn a_full_disk_stops_the_session_log_not_the_session() {
    let Some(disk) = crate::harness::SmallDisk::new("256k") else { return };
    let s = Server::start().await;
    let cast = disk.path().join("session.cast");
    let v = s
        .call(
            "create_local_session",
            json!({"command": "bash --norc --noprofile", "env": {"PS1": "$ "}, "log_file": cast, "log_format": "asciicast"}),
        )
        .await;
    let id = v["session_id"].as_str().unwrap().to_string();
    s.input(&id, "echo logged").await;
    disk.fill();
    // Output the log can no longer hold (more than a page of slack).
    let r = s.input(&id, "seq 1 4000").await;
    assert_eq!(r["exit_code"], 0, "{r}");
    let warned = r["warnings"].to_string();
    let r2 = s.input(&id, "echo still-here").await;
    assert_eq!(output(&r2), "still-here\n", "{r2}");
    let warned = format!("{warned}{}", r2["warnings"]);
    assert!(warned.contains("stopped") && warned.contains("No space left"), "no reply said the log stopped: {warned}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert!(st["log_error"].as_str().is_some_and(|e| e.contains("No space left")), "{st}");
    let log = std::fs::read_to_string(&cast).unwrap();
    assert!(log.ends_with('\n'), "the log ends in half an event");
    for line in log.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("a broken event ({e}): {line}"));
    }
}

/// The ai-tmux daemon killed (-9) mid-stream: its sessions are reported gone, a new daemon
/// starts for the next persistent session, and its stale socket is no obstacle.
#[tokio::test]
async fn a_killed_daemon_is_replaced_and_its_socket_is_no_obstacle() {
    let rt = Runtime::new();
    let s = Server::start_with_env(&[rt.env()]).await;
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let old = v["session_id"].as_str().unwrap().to_string();
    s.call(
        "send_input",
        json!({"session_id": old, "input": "while :; do echo tick; sleep 0.05; done", "timeout_ms": 0}),
    )
    .await;
    rt.kill_daemons();
    assert!(std::path::Path::new(&rt.socket).exists(), "the dead daemon's socket is left behind");
    let v = s.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let new = v["session_id"].as_str().unwrap().to_string();
    assert_eq!(output(&s.input(&new, "echo fresh-daemon").await), "fresh-daemon\n");
    let r = s
        .call("read_output", json!({"session_id": old, "wait_for": "no longer has this session", "timeout": 30}))
        .await;
    assert_eq!(r["matched"], true, "the lost session was not reported: {r}");
}

/// pty-mcp killed (-9) in the middle of a send_input on a persistent session: the job goes on,
/// and the next pty-mcp reads every line of it exactly once (the killed call delivered nothing,
/// so nothing of it may count as read).
#[tokio::test]
async fn a_pty_mcp_killed_mid_call_is_resumed_exactly_by_the_next() {
    let rt = Runtime::new();
    let mut rpc = Rpc::start_with_env(&[rt.env()]).await;
    let v = rpc.call("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    let r = rpc.call("send_input", json!({"session_id": id, "input": "echo ready", "timeout_ms": 20000})).await;
    assert_eq!(output(&r), "ready\n", "{r}");
    let job = "for i in $(seq 1 40); do echo n$i; sleep 0.05; done; echo END";
    rpc.start_call("send_input", json!({"session_id": id, "input": job, "wait_for": "^END$", "wait_for_timeout": 60}))
        .await;
    // The fault, at a moment inside the call (the job prints for 2 s).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    rpc.child.start_kill().unwrap();
    let _ = rpc.child.wait().await;
    let s = Server::start_with_env(&[rt.env()]).await;
    s.call("create_local_session", json!({"session_id": id})).await;
    let seen = read_until(&s, &id, "END").await;
    let lines = numbered(&seen, "n");
    let want: Vec<String> = (1..=40).map(|i| format!("n{i}")).collect();
    assert_eq!(lines, want, "lost or repeated across the kill: {seen:?}");
}

/// A number from the environment (the long form in `scripts/faults`), or `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// A process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

/// The `q`-quantile of `samples` (sorted in place).
fn quantile(samples: &mut [std::time::Duration], q: f64) -> std::time::Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

/// The server's stated memory bound with 50 sessions that print as fast as they can: each holds
/// its 1 MiB transcript, a screen and 500 rows above it (1.9 MB at 120 columns); measured
/// 185–193 MiB peak (the README has the figures).
const FLOOD_RSS_BOUND_MIB: u64 = 256;

/// The server's session limit (the Go pty-mcp's).
const MAX_SESSIONS: usize = 50;

/// 50 sessions, the most a server keeps open: 49 shells each printing as fast as the terminal
/// takes it for `FLOOD_SECS` (4 s; 60 s in `scripts/faults`), all at once, and a quiet one that
/// meanwhile keeps answering its
/// `echo` exactly and every flooding session answers a read; afterwards every flooding shell
/// answers its own `echo` exactly, and the server's peak memory stayed under the stated bound.
/// The latencies are printed (figures for the README, not asserted).
#[tokio::test]
async fn fifty_sessions_flooding_at_once_stay_responsive_within_a_memory_bound() {
    use std::time::{Duration, Instant};
    let secs = env_or("FLOOD_SECS", 4);
    let s = Server::start().await;
    let mut ids = Vec::new();
    for _ in 1..MAX_SESSIONS {
        ids.push(s.bash().await);
    }
    let probe = s.bash().await;
    let line = "x".repeat(100);
    let floods = ids.iter().enumerate().map(|(i, id)| {
        let input = format!("timeout {secs} yes {line}; echo flood-end-$((1000+{i}))");
        s.call("send_input", json!({"session_id": id, "input": input, "timeout_ms": 100}))
    });
    futures::future::join_all(floods).await;
    let flood_ends = Instant::now() + Duration::from_secs(secs);
    let (mut echoes, mut reads) = (Vec::new(), Vec::new());
    let mut k = 0;
    while Instant::now() < flood_ends {
        let started = Instant::now();
        let r = s.input(&probe, &format!("echo probe-{k}")).await;
        echoes.push(started.elapsed());
        if output(&r) != format!("probe-{k}\n") {
            let all =
                s.call("read_output", json!({"session_id": probe, "since_cursor": 0, "max_bytes": 1 << 20})).await;
            let st = s.call("get_session_state", json!({"session_id": probe})).await;
            panic!("the quiet shell's reply under the flood: {r}\nstate {st}\ntranscript {all}");
        }
        let id = &ids[k % ids.len()];
        let started = Instant::now();
        s.call("read_output", json!({"session_id": id, "timeout": 0, "max_bytes": 4096})).await;
        reads.push(started.elapsed());
        k += 1;
    }
    // Typed while the flood may still run (it queues behind it): the reply is the echo's alone,
    // none of the flood's lines nor its end line.
    for (i, id) in ids.iter().enumerate() {
        let r = s.input(id, &format!("echo after-{i}")).await;
        assert_eq!((output(&r), r["exit_code"].as_i64()), (format!("after-{i}\n").as_str(), Some(0)), "{r}");
    }
    let peak = peak_rss_kib(s.pid) / 1024;
    eprintln!(
        "flood: {} sessions × {secs} s: quiet shell's echo p50 {:?} p99 {:?} max {:?} ({} calls); \
         read on a flooding session p50 {:?} p99 {:?}; server peak RSS {peak} MiB",
        ids.len(),
        quantile(&mut echoes, 0.5),
        quantile(&mut echoes, 0.99),
        echoes.last().unwrap(),
        echoes.len(),
        quantile(&mut reads, 0.5),
        quantile(&mut reads, 0.99),
    );
    assert!(peak <= FLOOD_RSS_BOUND_MIB, "the server's peak RSS {peak} MiB is over {FLOOD_RSS_BOUND_MIB} MiB");
}
