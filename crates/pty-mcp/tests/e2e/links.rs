//! Link faults (issue 15), for real: sshd runs in a network namespace the test makes (a veth
//! pair with addresses of its own; nothing leaves the machine), and a TCP relay in the test
//! stands between pty-mcp and it, able to add latency, stall (stop forwarding while both
//! connections stay open) and cut. The link itself goes down and up, or is blackholed.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::harness::{STEP, numbered, output};
use crate::persistent::{Runtime, sshd_with_ai_tmux_at};
use crate::ssh::Sshd;

/// A network namespace joined to this one by a veth pair: 10.231.N.1 here, 10.231.N.2 there.
struct Netns {
    name: String,
    here: String,
    addr: String,
}

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip").args(args).status().is_ok_and(|s| s.success())
}

impl Netns {
    /// None (the test then passes without running, saying so) where namespaces cannot be made:
    /// not root.
    fn new() -> Option<Netns> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // SAFETY: geteuid only reads.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: network namespaces need root (CI runs as root)");
            return None;
        }
        // A /30 of its own per namespace, inside 10.231.0.0/16.
        let n = (std::process::id() % 2000) * 8 + NEXT.fetch_add(1, Ordering::Relaxed) % 8;
        let name = format!("ptymcp{n}");
        let (here, there) = (format!("pmh{n}"), format!("pmt{n}"));
        let host = |i: u32| format!("10.231.{}.{}", (n * 4 + i) / 256 % 256, (n * 4 + i) % 256);
        let (mine, theirs) = (host(1), host(2));
        let _ = ip(&["netns", "del", &name]);
        let _ = ip(&["link", "del", &here]);
        assert!(ip(&["netns", "add", &name]), "ip netns add");
        let ns = Netns { name: name.clone(), here: here.clone(), addr: theirs.clone() };
        assert!(ip(&["link", "add", &here, "type", "veth", "peer", "name", &there]));
        assert!(ip(&["link", "set", &there, "netns", &name]));
        assert!(ip(&["addr", "add", &format!("{mine}/30"), "dev", &here]));
        assert!(ip(&["link", "set", &here, "up"]));
        let inside = |args: &[&str]| {
            let mut full = vec!["netns", "exec", &name, "ip"];
            full.extend_from_slice(args);
            assert!(ip(&full), "{full:?}");
        };
        inside(&["addr", "add", &format!("{theirs}/30"), "dev", &there]);
        inside(&["link", "set", &there, "up"]);
        inside(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    fn link(&self, up: bool) {
        assert!(ip(&["link", "set", &self.here, if up { "up" } else { "down" }]));
    }

    fn blackhole(&self, on: bool) {
        let route = format!("{}/32", self.addr);
        assert!(ip(&["route", if on { "add" } else { "del" }, "blackhole", &route]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["route", "del", "blackhole", &format!("{}/32", self.addr)]);
        let _ = ip(&["link", "del", &self.here]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// What the relay does with bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Forwards each chunk after this delay.
    Pass(Duration),
    /// Forwards nothing, reads nothing, keeps every connection open.
    Stall,
    /// Forwards, and cuts every connection once one direction of one has carried this many
    /// bytes while in this mode.
    CutAfter(u64),
}

/// A TCP relay on 127.0.0.1 in front of `upstream`.
pub struct Relay {
    pub port: u16,
    mode: watch::Sender<Mode>,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u32>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, _) = watch::channel(Mode::Pass(Duration::ZERO));
        let (cuts, _) = watch::channel(0u32);
        let task = tokio::spawn({
            let (mode, cuts) = (mode.clone(), cuts.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(Ok(server)) =
                        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&upstream)).await
                    else {
                        continue; // the link is down: the client sees its connection close
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    for (from, to) in [(Box::new(cr) as Box<_>, Box::new(sw) as Box<_>), (Box::new(sr), Box::new(cw))] {
                        tokio::spawn(pump(from, to, mode.subscribe(), cuts.clone()));
                    }
                }
            }
        });
        Relay { port, mode, cuts, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

async fn pump(mut from: Reader, mut to: Writer, mut mode: watch::Receiver<Mode>, cut_all: watch::Sender<u32>) {
    let mut buf = vec![0u8; 16 << 10];
    let mut cuts = cut_all.subscribe();
    // Bytes carried in `CutAfter` mode.
    let mut carried = 0u64;
    loop {
        // Stalled: read nothing (the sender's window fills) until told otherwise or cut.
        let n = tokio::select! {
            r = async {
                mode.wait_for(|m| *m != Mode::Stall).await.map_err(|_| ())?;
                match from.read(&mut buf).await { Ok(0) | Err(_) => Err(()), Ok(n) => Ok(n) }
            } => match r { Ok(n) => n, Err(()) => return },
            _ = cuts.changed() => return,
        };
        // The mode as it is now, after the read (a stall that began meanwhile holds the chunk).
        let delay = tokio::select! {
            m = mode.wait_for(|m| *m != Mode::Stall) => match m.map(|m| *m) {
                Ok(Mode::Pass(delay)) => delay,
                Ok(Mode::CutAfter(limit)) => {
                    carried += n as u64;
                    if carried > limit {
                        cut_all.send_modify(|n| *n += 1);
                        return;
                    }
                    Duration::ZERO
                }
                _ => return,
            },
            _ = cuts.changed() => return,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// sshd in a namespace of its own, reached through a relay.
async fn setup(rt: Option<&Runtime>) -> Option<(Netns, Sshd, Relay)> {
    let ns = Netns::new()?;
    let at = Some((ns.name.as_str(), ns.addr.as_str()));
    let mut sshd = match rt {
        Some(rt) => sshd_with_ai_tmux_at(rt, at).await,
        None => Sshd::start_at(at, |_| String::new()).await,
    };
    let relay = Relay::start(format!("{}:{}", ns.addr, sshd.port())).await;
    sshd.reach_through(relay.port);
    Some((ns, sshd, relay))
}

/// 200 ms each way, from the first byte of the login: slow, and still exact (a reply once
/// concluded "quiet" before the echo of its line had even come back).
#[tokio::test]
async fn latency_each_way_keeps_every_reply_exact() {
    let Some((_ns, sshd, relay)) = setup(None).await else { return };
    let s = sshd.server().await;
    relay.set(Mode::Pass(Duration::from_millis(200)));
    let v = s.call("create_ssh_session", json!({"host": "testbox"})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    for i in 0..5 {
        let started = Instant::now();
        let r = s.input(&id, &format!("echo slow-{i}; false")).await;
        assert_eq!((output(&r), r["exit_code"].as_i64()), (format!("slow-{i}\n").as_str(), Some(1)), "{r}");
        assert!(started.elapsed() >= Duration::from_millis(400), "the latency was not there");
    }
}

/// A stalled link (nothing forwarded, both connections open: the nastiest case) and a cut: the
/// session is `disconnected` within the keepalive budget (1 s × 2 here) and every waiter wakes.
#[tokio::test]
async fn a_stalled_or_cut_link_wakes_every_waiter_within_the_keepalive_budget() {
    let Some((_ns, sshd, relay)) = setup(None).await else { return };
    let s = sshd.server().await;
    for fault in ["stall", "cut"] {
        let v = s.call("create_ssh_session", json!({"host": "testbox"})).await;
        let id = v["session_id"].as_str().unwrap().to_string();
        assert_eq!(output(&s.input(&id, "echo up").await), "up\n");
        let waiter =
            |pattern: &str| s.call("read_output", json!({"session_id": id, "wait_for": pattern, "timeout": 120}));
        let started = Instant::now();
        let (a, b, ()) = tokio::join!(waiter("never-a"), waiter("never-b"), async {
            // The fault comes while both waits are in flight.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if fault == "stall" { relay.set(Mode::Stall) } else { relay.cut() }
        });
        let took = started.elapsed();
        assert!(took < Duration::from_secs(15), "{fault}: the waiters woke only after {took:?}: {a} {b}");
        for r in [&a, &b] {
            assert_eq!(r["matched"], false, "{r}");
            assert_ne!(r["timed_out"], true, "{fault}: a waiter ran to its timeout: {r}");
        }
        let st = s.call("get_session_state", json!({"session_id": id})).await;
        assert_eq!(st["state"], "disconnected", "{fault}: {st}");
        eprintln!("{fault}: waiters woke after {took:?}");
        relay.set(Mode::Pass(Duration::ZERO));
    }
}

/// A persistent session while its link goes down (veth down, a blackhole route, then the relay
/// stalling for `FAULT_STALL_SECS`: 3 s here, 30 s in `scripts/faults`) and comes back each time:
/// the remote job runs on, the next call reattaches, and its counter reads each line once; a line
/// typed during an outage is typed once or refused with a clear error, never twice.
#[tokio::test]
async fn a_persistent_session_outlives_a_dead_link_with_nothing_lost_or_doubled() {
    let rt = Runtime::new();
    let stall = Duration::from_secs(std::env::var("FAULT_STALL_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3));
    let Some((ns, sshd, relay)) = setup(Some(&rt)).await else { return };
    let s = sshd.server().await;
    let (id, _) = crate::persistent::remote_bash(&s).await;
    assert_eq!(output(&s.input(&id, "echo linked").await), "linked\n");
    let job = "for i in $(seq 1 120); do echo n$i; sleep 0.05; done; echo END";
    let r = s.call("send_input", json!({"session_id": id, "input": job, "timeout_ms": 0})).await;
    let mut seen = output(&r).to_string();
    let mut typed = Vec::new();
    for (k, outage) in ["link down", "blackhole", "stall"].into_iter().enumerate() {
        let began = Instant::now();
        match outage {
            "link down" => ns.link(false),
            "blackhole" => ns.blackhole(true),
            _ => relay.set(Mode::Stall),
        }
        // Calls during the outage end (disconnected or an error), never hang. (A plain read: a
        // wait_for that ends unmatched moves the read cursor past what it saw without returning
        // it, which would leave lines out of `seen`.)
        let (r, _) = s.try_call("read_output", json!({"session_id": id, "timeout": 5})).await;
        seen.push_str(output(&r));
        let line = format!("typed-in-outage-{k}");
        let (r, refused) = s
            .try_call("send_input", json!({"session_id": id, "input": format!("echo {line}"), "timeout_ms": 3000}))
            .await;
        if refused {
            assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "a refusal says why: {r}");
        } else {
            seen.push_str(output(&r));
        }
        typed.push((line, refused));
        if outage == "stall" {
            // The fault's length, not a synchronisation: the stall lasts this long in all.
            tokio::time::sleep(stall.saturating_sub(began.elapsed())).await;
        }
        match outage {
            "link down" => ns.link(true),
            "blackhole" => ns.blackhole(false),
            _ => relay.set(Mode::Pass(Duration::ZERO)),
        }
        eprintln!("{outage}: {:?}", began.elapsed());
    }
    // Back: the next calls reattach and read the rest.
    tokio::time::timeout(STEP, async {
        while !seen.lines().any(|l| l.trim() == "END") {
            let (r, _) = s.try_call("read_output", json!({"session_id": id, "timeout": 10})).await;
            seen.push_str(output(&r));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("END never came after the link returned; read: {seen:?}"));
    let counted = numbered(&seen, "n");
    let want: Vec<String> = (1..=120).map(|i| format!("n{i}")).collect();
    assert_eq!(counted, want, "lost or repeated across the outages");
    // A line typed in an outage: once, or (refused) at most once if it went out before the refusal.
    s.input(&id, "echo flush").await;
    let all = s.call("read_output", json!({"session_id": id, "since_cursor": 0, "max_bytes": 1 << 20})).await;
    for (line, refused) in typed {
        let times = output(&all).lines().filter(|l| l.trim() == line).count();
        assert!(times <= 1, "{line} ran {times} times");
        assert!(refused || times == 1, "{line} was accepted but never ran");
    }
}
