//! The soak run (issue 15): an agent's loop, for `SOAK_MINUTES` (30), over a local shell, an SSH
//! session, a persistent session over SSH, a persistent local one and a serial console, all at
//! once, with sessions closed and opened again as agents do. Every call must succeed with exactly
//! its answer; the server's memory, descriptors and threads are sampled every minute and must be
//! flat after the warm-up. `scripts/soak` runs it (not part of CI: it is ignored here).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Server, output};
use crate::persistent::{Runtime, sshd_with_ai_tmux_at};
use crate::serial::{Cable, login, open, switch};

/// The server's resident memory (KiB), open descriptors and threads.
fn sample(pid: u32) -> (u64, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (field("VmRSS:").unwrap(), fds, field("Threads:").unwrap())
}

/// One agent step on a shell session: a command whose reply must be exactly its own output and
/// status, now and then a burst of output read to the end, a key, a resize, a look at the screen.
async fn shell_step(s: &Server, id: &str, n: u64) {
    let r = s.input(id, &format!("echo soak-{n}; (exit {})", n % 3)).await;
    assert_eq!((output(&r), r["exit_code"].as_u64()), (format!("soak-{n}\n").as_str(), Some(n % 3)), "{id}: {r}");
    match n % 10 {
        3 => {
            let r = s.input(id, "seq 1 3000").await;
            assert!(output(&r).ends_with("2999\n3000\n"), "{id}: {r}");
        }
        5 => {
            let r = s
                .call(
                    "send_input",
                    json!({"session_id": id, "input": format!("sleep 0.2; echo late-{n}"), "wait_for": format!("^late-{n}$"), "wait_for_timeout": 30}),
                )
                .await;
            assert_eq!(r["matched"], true, "{id}: {r}");
        }
        7 => {
            s.call("resize_session", json!({"session_id": id, "rows": 30 + n % 20, "cols": 100 + n % 40})).await;
            let r = s.call("read_output", json!({"session_id": id, "screen": true})).await;
            assert!(r["screen"].is_string(), "{id}: {r}");
        }
        9 => {
            s.call("send_control", json!({"session_id": id, "key": "ctrl+c"})).await;
        }
        _ => {}
    }
}

/// One step on the serial switch: a command and its pager, page by page.
async fn serial_step(s: &Server, id: &str) {
    let r = s.input(id, "show version").await;
    assert_eq!(r["state"], "pager", "{r}");
    let r = s.call("send_control", json!({"session_id": id, "key": "q"})).await;
    assert_eq!(r["state"], "at_prompt", "{r}");
    let r = s.input(id, "dump 200").await;
    assert!(output(&r).contains("0000199 the quick brown fox"), "{r}");
}

#[tokio::test]
#[ignore = "runs for SOAK_MINUTES (30); scripts/soak runs it"]
async fn soak() {
    let minutes: u64 = std::env::var("SOAK_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(30);
    let rt = Runtime::new();
    let sshd = sshd_with_ai_tmux_at(&rt, None).await;
    let s = sshd.server_with(&[rt.env()]).await;
    let dir = tempfile::tempdir().unwrap();
    let _cable = Cable::plug(dir.path()).await;
    let serial = open(&s, dir.path(), json!({})).await;
    let _switch = switch(dir.path());
    login(&s, &serial).await;
    let create = [
        ("create_local_session", json!({"command": "bash"})),
        ("create_ssh_session", json!({"host": "testbox"})),
        ("create_ssh_session", json!({"host": "testbox", "persistent": true, "command": "bash --norc --noprofile"})),
        ("create_local_session", json!({"command": "bash --norc --noprofile", "persistent": true})),
    ];
    let mut shells = Vec::new();
    for (tool, args) in &create {
        shells.push(s.call(tool, args.clone()).await["session_id"].as_str().unwrap().to_string());
    }
    let started = Instant::now();
    let end = started + Duration::from_secs(minutes * 60);
    let mut samples = vec![sample(s.pid)];
    let mut next_sample = started + Duration::from_secs(60);
    let (mut calls, mut n) = (0u64, 0u64);
    let mut slowest = Duration::ZERO;
    eprintln!("soak: minute, RSS KiB, fds, threads: 0 {:?}", samples[0]);
    while Instant::now() < end {
        n += 1;
        for (k, id) in shells.iter_mut().enumerate() {
            let step = Instant::now();
            shell_step(&s, id, n).await;
            slowest = slowest.max(step.elapsed());
            calls += 1;
            // Every 50 rounds one of the sessions is ended and a new one made (a persistent one
            // is detached and reattached), as an agent's sessions come and go.
            if n % 50 == (k as u64) * 10 {
                if create[k].1["persistent"] == true {
                    s.call("detach_session", json!({"session_id": id})).await;
                    let mut again = create[k].1.clone();
                    again["session_id"] = json!(id);
                    s.call(create[k].0, again).await;
                } else {
                    s.call("close_session", json!({"session_id": id})).await;
                    *id = s.call(create[k].0, create[k].1.clone()).await["session_id"].as_str().unwrap().to_string();
                }
                calls += 2;
            }
        }
        if n % 5 == 0 {
            serial_step(&s, &serial).await;
            s.call("list_sessions", json!({})).await;
            calls += 4;
        }
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(60);
            samples.push(sample(s.pid));
            eprintln!("soak: {} {:?} ({calls} calls so far)", samples.len() - 1, samples.last().unwrap());
        }
    }
    let first = samples[samples.len().min(3) - 1]; // after two minutes of warm-up
    let last = *samples.last().unwrap();
    eprintln!(
        "soak: {minutes} min, {calls} calls, none failed; slowest step {slowest:?}; after warm-up {first:?}, at the end {last:?}"
    );
    assert!(last.1 <= first.1, "descriptors grew from {} to {}", first.1, last.1);
    assert!(last.0 <= first.0 + first.0 / 5, "memory grew from {} to {} KiB", first.0, last.0);
}
