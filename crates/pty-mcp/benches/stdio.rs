//! `cargo bench`: the built server driven over stdio by the rmcp client, as an agent drives it.
//!
//! Reports: `send_input("echo x")` round trip at a bash prompt; the reaction of a pending
//! `wait_for` to its pattern's bytes; a 100 MB flood through a session beside a bare PTY drained
//! by a minimal reader (the physical limit); the server's peak RSS; CPU used by 10 idle sessions;
//! over HTTP (`serve --http`): the same round trip, 20 clients at once, an idle client's memory;
//! a 50 MB upload and download against `scp` of the same file, with the server's memory during
//! them. Set `BENCH_QUICK=1` for a short run; `BENCH_ONLY=http` or `BENCH_ONLY=files` for one part.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{Peer, RoleClient};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const FLOOD_BYTES: u64 = 100_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let sshd = TestSshd::start().await;
    let control = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pty-mcp"));
    cmd.arg("serve").env("PTY_MCP_CONTROL_DIR", control.path());
    if let Some(sshd) = &sshd {
        cmd.env("HOME", sshd.dir.path())
            .env("PTY_MCP_SSH_CONFIG", sshd.dir.path().join("ssh_config"))
            .env_remove("SSH_AUTH_SOCK");
    }
    let transport = TokioChildProcess::new(cmd)?;
    let pid = transport.id().expect("server pid");
    let client = ().serve(transport).await?;
    let peer = client.peer().clone();

    let rounds = if quick { 50 } else { 300 };
    let shell = session(&peer, "bash --norc --noprofile", true).await?;
    if std::env::var("BENCH_ONLY").as_deref() == Ok("http") {
        http_figures(&peer, &shell, rounds, if quick { 20 } else { 100 }).await?;
        client.cancel().await?;
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("files") {
        if let Some(sshd) = &sshd {
            transfer_figures(&peer, pid, sshd, if quick { 3 } else { 5 }).await?;
        }
        client.cancel().await?;
        return Ok(());
    }
    let plain = session(&peer, "bash --norc --noprofile", false).await?;
    for (id, what) in [(&shell, "shell integration"), (&plain, "heuristic, no integration")] {
        let mut rtt = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let r = call(&peer, "send_input", json!({"session_id": id, "input": "echo x"})).await?;
            rtt.push(t.elapsed());
            assert_eq!(r["is_complete"], true);
        }
        report(&format!("send_input(\"echo x\") round trip at a bash prompt ({what})"), &mut rtt);
    }
    let mut late = Vec::new();
    for _ in 0..if quick { 5 } else { 20 } {
        let t = Instant::now();
        let r = call(&peer, "send_input", json!({"session_id": shell, "input": "sleep 0.5; echo x"})).await?;
        assert_eq!(r["completion"], "shell");
        late.push(t.elapsed().saturating_sub(Duration::from_millis(500)));
    }
    report("send_input(\"sleep 0.5; echo x\") reply time beyond the 500 ms sleep (shell integration)", &mut late);

    slow_startup(&peer, if quick { 3 } else { 10 }).await?;
    interface_cost(&peer, &shell).await?;
    repl_round_trip(&peer, if quick { 50 } else { 300 }).await?;

    let reactions = wait_for_reaction(&peer, if quick { 20 } else { 100 }).await?;
    let mut reactions = reactions;
    report("wait_for reaction (pattern written -> reply received)", &mut reactions);

    // Interleaved, so that both see the same machine load; medians reported.
    let (mut bare, mut through) = (Vec::new(), Vec::new());
    for _ in 0..if quick { 1 } else { 3 } {
        bare.push(bare_pty_flood().await?);
        through.push(server_flood(&peer).await?);
    }
    bare.sort();
    through.sort();
    let (bare, flood) = (bare[bare.len() / 2], through[through.len() / 2]);
    let mb = FLOOD_BYTES as f64 / 1e6;
    println!(
        "flood of {mb:.0} MB (median of {} interleaved runs): bare PTY {:.1} MB/s, through pty-mcp {:.1} MB/s ({:.0}% of bare)",
        through.len(),
        mb / bare.as_secs_f64(),
        mb / flood.as_secs_f64(),
        100.0 * bare.as_secs_f64() / flood.as_secs_f64()
    );
    println!("server peak RSS (VmHWM): {:.1} MiB", peak_rss_kib(pid) as f64 / 1024.0);

    viewer_figures(&peer, control.path(), pid, if quick { 20 } else { 100 }, bare).await?;

    screen_cost(&peer, if quick { 50 } else { 500 }).await?;
    serial_round_trip(&peer, if quick { 20 } else { 100 }).await?;
    match &sshd {
        Some(sshd) => {
            ssh_figures(&peer, if quick { 3 } else { 10 }, if quick { 20 } else { 100 }).await?;
            transfer_figures(&peer, pid, sshd, if quick { 3 } else { 5 }).await?;
        }
        None => println!("ssh: skipped (no /usr/sbin/sshd)"),
    }

    audit_cost(if quick { 50 } else { 300 }).await?;
    policy_cost(if quick { 50 } else { 300 }).await?;
    http_figures(&peer, &shell, rounds, if quick { 20 } else { 100 }).await?;

    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(session(&peer, "bash --norc --noprofile", true).await?);
    }
    let before = cpu_ticks(pid);
    let window = if quick { 3 } else { 10 };
    tokio::time::sleep(Duration::from_secs(window)).await;
    let ticks = cpu_ticks(pid) - before;
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    println!("CPU used by the server over {window} s with 11 idle sessions: {:.3} s", ticks as f64 / hz);
    client.cancel().await?;
    Ok(())
}

async fn call(peer: &Peer<RoleClient>, tool: &str, args: Value) -> anyhow::Result<Value> {
    let params =
        CallToolRequestParams::new(tool.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default());
    let r = peer.call_tool(params).await?;
    anyhow::ensure!(r.is_error != Some(true), "{tool} failed: {:?}", r.structured_content);
    Ok(r.structured_content.unwrap_or_default())
}

async fn session(peer: &Peer<RoleClient>, command: &str, integrate: bool) -> anyhow::Result<String> {
    let v = call(
        peer,
        "create_local_session",
        json!({"command": command, "env": {"PS1": "bench$ "}, "shell_integration": integrate}),
    )
    .await?;
    Ok(v["session_id"].as_str().unwrap_or_default().to_string())
}

/// A session runs `cat` on a FIFO; for each round a `wait_for` is pending on the server, then the
/// bench writes the pattern into the FIFO and times until the reply arrives.
/// A bash whose `.bashrc` takes 0.8 s (as pyenv, nvm or conda do): how long beyond those
/// 0.8 s `create_local_session` takes to hand the session over at its prompt, and the first
/// command's round trip right after.
async fn slow_startup(peer: &Peer<RoleClient>, rounds: usize) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    std::fs::write(home.path().join(".bashrc"), "sleep 0.8\nPS1='slow$ '\n")?;
    let (mut create, mut first) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let v = call(peer, "create_local_session", json!({"command": "bash", "env": {"HOME": home.path()}})).await?;
        create.push(t.elapsed().saturating_sub(Duration::from_millis(800)));
        anyhow::ensure!(v["state"] == "at_prompt", "not handed over at the prompt: {v}");
        let id = v["session_id"].clone();
        let t = Instant::now();
        let r = call(peer, "send_input", json!({"session_id": id, "input": "echo first"})).await?;
        first.push(t.elapsed());
        anyhow::ensure!(r["output"] == "first\n", "the first reply is not its own: {r}");
        call(peer, "close_session", json!({"session_id": id})).await?;
    }
    report("create_local_session to at_prompt beyond a 0.8 s .bashrc", &mut create);
    report("first send_input(\"echo first\") round trip after it", &mut first);
    Ok(())
}

/// What the interface costs the model: tools/list as a model sees it (name, description and
/// input schema of each), and the text of a typical reply.
async fn interface_cost(peer: &Peer<RoleClient>, shell: &str) -> anyhow::Result<()> {
    let tools = peer.list_all_tools().await?;
    let size: usize = tools
        .iter()
        .map(|t| {
            json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}).to_string().len()
        })
        .sum();
    println!("tools/list as a model sees it: {size} characters for {} tools (target <= 10000)", tools.len());
    let params = CallToolRequestParams::new("send_input")
        .with_arguments(json!({"session_id": shell, "input": "echo x"}).as_object().cloned().unwrap_or_default());
    let r = peer.call_tool(params).await?;
    let text = r.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
    // The same reply as it was before: pretty-printed, with cursor_end repeating cursor.
    let mut before: Value = serde_json::from_str(&text)?;
    before["cursor_end"] = before["cursor"].clone();
    println!(
        "send_input(\"echo x\") reply text: {} bytes (was {} pretty-printed with cursor_end)",
        text.len(),
        serde_json::to_string_pretty(&before)?.len()
    );
    Ok(())
}

/// `print(1)` in a python3 REPL started directly: completion by its prompt.
async fn repl_round_trip(peer: &Peer<RoleClient>, rounds: usize) -> anyhow::Result<()> {
    let v = call(peer, "create_local_session", json!({"command": "python3 -q"})).await?;
    let id = v["session_id"].clone();
    let mut rtt = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let r = call(peer, "send_input", json!({"session_id": id, "input": "print(1)"})).await?;
        rtt.push(t.elapsed());
        anyhow::ensure!(r["output"] == "1\n" && r["is_complete"] == true, "unexpected reply: {r}");
    }
    report("send_input(\"print(1)\") round trip in python3 (prompt completion)", &mut rtt);
    call(peer, "close_session", json!({"session_id": id})).await?;
    Ok(())
}

async fn wait_for_reaction(peer: &Peer<RoleClient>, rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap())?;
    // SAFETY: mkfifo reads a valid C string.
    anyhow::ensure!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0, "mkfifo failed");
    // Opened read-write so that neither side blocks and cat never sees end-of-file.
    let mut writer = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(&fifo)?;
    let id = session(peer, &format!("cat {}", fifo.display()), false).await?;
    let mut out = Vec::new();
    for i in 0..rounds {
        let pattern = format!("MARK-{i}-END");
        let p = peer.clone();
        let args = json!({"session_id": id, "wait_for": pattern, "timeout": 30});
        let pending = tokio::spawn(async move { call(&p, "read_output", args).await });
        // Let the request reach the server and its wait begin (this is a benchmark, not a test).
        tokio::time::sleep(Duration::from_millis(30)).await;
        let t = Instant::now();
        writer.write_all(format!("{pattern}\n").as_bytes())?;
        let r = pending.await??;
        out.push(t.elapsed());
        anyhow::ensure!(r["matched"] == true, "no match: {r}");
    }
    Ok(out)
}

const FLOOD: &str = "head -c 75000000 /dev/zero | base64 -w 99";

/// The same producer on a PTY drained by a minimal reader: the physical limit.
async fn bare_pty_flood() -> anyhow::Result<Duration> {
    let (pty, pts) = pty_process::open()?;
    pty.resize(pty_process::Size::new(40, 120))?;
    let mut child = pty_process::Command::new("sh").arg("-c").arg(FLOOD).spawn(pts)?;
    let (mut reader, _writer) = pty.into_split();
    let mut buf = vec![0u8; 64 << 10];
    let t = Instant::now();
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
    let elapsed = t.elapsed();
    child.wait().await?;
    anyhow::ensure!(total >= FLOOD_BYTES, "bare flood carried only {total} bytes");
    Ok(elapsed)
}

async fn server_flood(peer: &Peer<RoleClient>) -> anyhow::Result<Duration> {
    flood_in(peer, &session(peer, "bash --norc --noprofile", true).await?).await
}

/// The flood through session `id`: how long until its end came back.
async fn flood_in(peer: &Peer<RoleClient>, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let r = call(
        peer,
        "send_input",
        json!({"session_id": id, "input": format!("{FLOOD}; echo FLOOD-DONE"), "wait_for": "^FLOOD-DONE", "wait_for_timeout": 600}),
    )
    .await?;
    let elapsed = t.elapsed();
    anyhow::ensure!(r["matched"] == true, "flood did not finish: {r}");
    let state = call(peer, "get_session_state", json!({"session_id": id})).await?;
    anyhow::ensure!(state["cursor"].as_u64().unwrap_or(0) >= FLOOD_BYTES, "flood carried too little: {state}");
    Ok(elapsed)
}

/// `read_output(screen: true)` on a full 200×60 screen: through MCP, and the engine's own part.
async fn screen_cost(peer: &Peer<RoleClient>, rounds: usize) -> anyhow::Result<()> {
    let v = call(peer, "create_local_session", json!({"command": "bash --norc --noprofile", "rows": 60, "cols": 200}))
        .await?;
    let id = v["session_id"].as_str().unwrap_or_default().to_string();
    call(
        peer,
        "send_input",
        json!({"session_id": id, "input": "for i in $(seq 1 80); do printf '%0199d\\n' $i; done"}),
    )
    .await?;
    let mut through = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        call(peer, "read_output", json!({"session_id": id, "screen": true})).await?;
        through.push(t.elapsed());
    }
    report("read_output(screen:true) on 200x60, MCP round trip", &mut through);

    let cmd = engine::transport::local::LocalCommand {
        rows: 60,
        cols: 200,
        shell_integration: false,
        ..engine::transport::local::LocalCommand::parse("bash --norc --noprofile")?
    };
    let config = engine::SessionConfig { rows: 60, cols: 200, ..engine::SessionConfig::default() };
    let session = engine::Session::start(engine::transport::local::spawn(&cmd)?, config, None);
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(10);
    let quiet = Duration::from_millis(300);
    session.settle(engine::Settle::after_input(engine::Offset(0), quiet), deadline()).await;
    let start = session.write(b"for i in $(seq 1 80); do printf '%0199d\\n' $i; done\r", deadline()).await?;
    session.settle(engine::Settle::after_input(start, quiet), deadline()).await;
    anyhow::ensure!(session.screen(0).lines.iter().filter(|l| l.len() == 199).count() >= 50, "screen not full");
    let mut inside = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let view = session.screen(0);
        inside.push(t.elapsed());
        assert_eq!(view.cols, 200);
    }
    report("engine screen view of 200x60 (caught up)", &mut inside);
    Ok(())
}

/// `send_input` at a serial console's prompt, over a socat pseudo-terminal pair with the test
/// suite's scripted switch on the far end (skipped when socat is missing).
async fn serial_round_trip(peer: &Peer<RoleClient>, rounds: usize) -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir()?;
    let Ok(mut socat) = tokio::process::Command::new("socat")
        .args(["-d", "-d"])
        .arg(format!("pty,raw,echo=0,link={}", dir.path().join("dev").display()))
        .arg(format!("pty,raw,echo=0,link={}", dir.path().join("far").display()))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    else {
        println!("serial round trip: skipped (no socat)");
        return Ok(());
    };
    let mut lines = tokio::io::BufReader::new(socat.stderr.take().expect("stderr")).lines();
    while let Some(line) = lines.next_line().await? {
        if line.contains("starting data transfer loop") {
            break;
        }
    }
    let v = call(peer, "create_serial_session", json!({"device": dir.path().join("dev"), "baud_rate": 115200})).await?;
    let id = v["session_id"].as_str().unwrap_or_default().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/switch.py");
    let _switch = tokio::process::Command::new("python3")
        .args([script, &dir.path().join("far").display().to_string(), &dir.path().join("raw").display().to_string()])
        .kill_on_drop(true)
        .spawn()?;
    call(peer, "read_output", json!({"session_id": id, "wait_for": "Username:", "timeout": 30})).await?;
    call(peer, "send_input", json!({"session_id": id, "input": "admin"})).await?;
    call(peer, "send_input", json!({"session_id": id, "input": "cisco"})).await?;
    let mut rtt = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let r = call(peer, "send_input", json!({"session_id": id, "input": "enable"})).await?;
        rtt.push(t.elapsed());
        anyhow::ensure!(r["state"] == "at_prompt", "{r}");
    }
    report("send_input at a serial switch prompt (heuristic: includes the 20 ms prompt confirmation)", &mut rtt);
    Ok(())
}

/// `send_input("echo x")` with no policy and with the `destructive` preset, interleaved; and
/// `check_policy` of a 10,000-line paste.
async fn policy_cost(rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, "include = [\"destructive\"]\n")?;
    let mut peers = Vec::new();
    for policy in [None, Some(&file)] {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pty-mcp"));
        cmd.arg("serve").env("PTY_MCP_POLICY", policy.map_or(dir.path().join("none.toml"), |p| p.to_path_buf()));
        let client = ().serve(TokioChildProcess::new(cmd)?).await?;
        let id = session(client.peer(), "bash --norc --noprofile", true).await?;
        peers.push((client, id));
    }
    let sessions: Vec<_> = peers.iter().map(|(client, id)| (client.peer(), id.as_str())).collect();
    let [mut bare, mut checked] = <[_; 2]>::try_from(echo_interleaved(&sessions, rounds).await?).expect("two servers");
    let paste = "echo line; ls -l | wc -l\n".repeat(10_000);
    let (client, id) = &peers[1];
    let t = Instant::now();
    call(client.peer(), "check_policy", json!({"session_id": id, "input": paste})).await?;
    let paste_time = t.elapsed();
    let [(a, _), (b, _)] = <[_; 2]>::try_from(peers).map_err(|_| anyhow::anyhow!("two servers"))?;
    report("send_input(\"echo x\") with no policy (interleaved)", &mut bare);
    report("send_input(\"echo x\") with the destructive preset (interleaved)", &mut checked);
    println!("check_policy of a 10,000-line paste (30,000 commands): {:.1} ms", paste_time.as_secs_f64() * 1000.0);
    a.cancel().await?;
    b.cancel().await?;
    Ok(())
}

/// `send_input("echo x")` (shell integration) with audit off, best-effort and strict, against a
/// loopback collector started from the same binary.
async fn audit_cost(rounds: usize) -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir()?;
    let token = "ab".repeat(32);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut collector = tokio::process::Command::new(env!("CARGO_BIN_EXE_pty-mcp"))
        .args(["audit", "serve", "--port", &port.to_string(), "--log"])
        .arg(dir.path().join("audit.jsonl"))
        .env("PTY_MCP_AUDIT_TOKEN", &token)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(collector.stderr.take().expect("stderr")).lines();
    while let Some(line) = lines.next_line().await? {
        if line.contains("listening on") {
            break;
        }
    }
    for mode in ["off", "best-effort", "strict"] {
        let home = dir.path().join(mode);
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pty-mcp"));
        cmd.arg("serve").env("XDG_CONFIG_HOME", home.join("config")).env("XDG_STATE_HOME", home.join("state"));
        if mode != "off" {
            cmd.args(["--audit-url", &format!("http://127.0.0.1:{port}"), "--audit-mode", mode])
                .env("PTY_MCP_AUDIT_TOKEN", &token);
        }
        let client = ().serve(TokioChildProcess::new(cmd)?).await?;
        let peer = client.peer().clone();
        let id = session(&peer, "bash --norc --noprofile", true).await?;
        let mut rtt = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            call(&peer, "send_input", json!({"session_id": id, "input": "echo x"})).await?;
            rtt.push(t.elapsed());
        }
        report(&format!("send_input(\"echo x\") with audit {mode}"), &mut rtt);
        client.cancel().await?;
    }
    Ok(())
}

/// A throwaway sshd on 127.0.0.1 and an ssh_config alias `benchbox` for it.
struct TestSshd {
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Drop for TestSshd {
    /// Stops the ai-tmux daemons the run started (their sockets are under the directory).
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill").arg("-f").arg(self.dir.path()).status();
    }
}

impl TestSshd {
    async fn start() -> Option<TestSshd> {
        use tokio::io::AsyncBufReadExt;
        if !std::path::Path::new("/usr/sbin/sshd").exists() {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let d = dir.path();
        for key in ["host_key", "id_ed25519"] {
            std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .status()
                .ok()?;
        }
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).ok()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        // Sessions find the ai-tmux built beside pty-mcp, and keep their daemon in the directory.
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pty-mcp")).parent()?.display().to_string();
        let cfg = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\nPidFile {0}/pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\n\
             SetEnv PATH={bin}:/usr/local/bin:/usr/bin:/bin AI_TMUX_SOCKET={0}/run/ai-tmux.sock\nSubsystem sftp internal-sftp\n",
            d.display()
        );
        std::fs::write(d.join("sshd_config"), cfg).ok()?;
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).ok()?;
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {} {}\n", host_key[0], host_key[1])).ok()?;
        let client = format!(
            "Host benchbox\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {0}/id_ed25519\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {0}/known_hosts\n",
            d.display()
        );
        std::fs::write(d.join("ssh_config"), client).ok()?;
        std::fs::create_dir_all("/run/sshd").ok()?;
        let mut child = tokio::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let mut lines = tokio::io::BufReader::new(child.stderr.take()?).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Server listening") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(TestSshd { dir, _child: child })
    }
}

/// A 50 MB file up and down over SFTP on a session's connection, interleaved with `scp` of the
/// same file both ways (medians), and the server's resident memory while it transfers.
async fn transfer_figures(peer: &Peer<RoleClient>, pid: u32, sshd: &TestSshd, rounds: usize) -> anyhow::Result<()> {
    const SIZE: usize = 50 << 20;
    let work = tempfile::tempdir()?;
    let (local, remote, back) =
        (work.path().join("local.bin"), work.path().join("remote.bin"), work.path().join("back.bin"));
    let mut data = vec![0u8; SIZE];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&local, &data)?;
    let v = call(peer, "create_ssh_session", json!({"host": "benchbox"})).await?;
    let id = v["session_id"].as_str().unwrap_or_default().to_string();
    let config = sshd.dir.path().join("ssh_config");
    let scp = |from: String, to: String| {
        let config = config.clone();
        async move {
            let t = Instant::now();
            let status =
                tokio::process::Command::new("scp").arg("-qF").arg(&config).arg(&from).arg(&to).status().await?;
            anyhow::ensure!(status.success(), "scp {from} {to} failed");
            Ok::<_, anyhow::Error>(t.elapsed())
        }
    };
    let (mut ours_up, mut ours_down, mut scp_up, mut scp_down) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let base = rss_kib(pid);
    let mut peak = base;
    for _ in 0..rounds {
        scp_up.push(scp(local.display().to_string(), format!("benchbox:{}", remote.display())).await?);
        scp_down.push(scp(format!("benchbox:{}", remote.display()), back.display().to_string()).await?);
        std::fs::remove_file(&back)?;
        // Sampled beside the call (a measurement, not the product: every 5 ms).
        let up = json!({"session_id": id, "remote_path": remote, "local_path": local, "overwrite": true});
        let (t, rss) = sampled(pid, call(peer, "upload_file", up)).await?;
        ours_up.push(t);
        let down = json!({"session_id": id, "remote_path": remote, "local_path": back, "overwrite": true});
        let (t2, rss2) = sampled(pid, call(peer, "download_file", down)).await?;
        ours_down.push(t2);
        peak = peak.max(rss).max(rss2);
        anyhow::ensure!(std::fs::read(&back)? == data, "the file came back different");
        std::fs::remove_file(&back)?;
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mb = SIZE as f64 / 1e6;
    for (what, ours, theirs) in [("upload", &mut ours_up, &mut scp_up), ("download", &mut ours_down, &mut scp_down)] {
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "50 MB {what} over SFTP on loopback (median of {rounds} interleaved): pty-mcp {:.0} MB/s on its open session, scp {:.0} MB/s with its own login ({:.0}% of scp)",
            mb / ours.as_secs_f64(),
            mb / theirs.as_secs_f64(),
            100.0 * theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
    println!(
        "server RSS during 50 MB transfers: {:.1} MiB before, {:.1} MiB at most",
        base as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}

/// How long `call` took, and the server's largest RSS seen while it ran.
async fn sampled(
    pid: u32,
    call: impl std::future::Future<Output = anyhow::Result<Value>>,
) -> anyhow::Result<(Duration, u64)> {
    let t = Instant::now();
    let mut call = std::pin::pin!(call);
    let mut peak = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        tokio::select! {
            r = &mut call => {
                let r = r?;
                anyhow::ensure!(r["sha256"].is_string(), "transfer failed: {r}");
                return Ok((t.elapsed(), peak.max(rss_kib(pid))));
            }
            _ = tick.tick() => peak = peak.max(rss_kib(pid)),
        }
    }
}

/// Connection set-up to the first prompt, and `echo` round trips, over SSH on loopback.
async fn ssh_figures(peer: &Peer<RoleClient>, connects: usize, rounds: usize) -> anyhow::Result<()> {
    let mut setup = Vec::new();
    let mut id = String::new();
    for _ in 0..connects {
        let t = Instant::now();
        let v = call(peer, "create_ssh_session", json!({"host": "benchbox"})).await?;
        setup.push(t.elapsed());
        anyhow::ensure!(v["state"] == "at_prompt", "{v}");
        id = v["session_id"].as_str().unwrap_or_default().to_string();
    }
    report("create_ssh_session to the first prompt (loopback sshd), with shell integration", &mut setup);
    let mut plain = Vec::new();
    for _ in 0..connects {
        let t = Instant::now();
        call(peer, "create_ssh_session", json!({"host": "benchbox", "shell_integration": false})).await?;
        plain.push(t.elapsed());
    }
    report("create_ssh_session to the first prompt (loopback sshd), without integration", &mut plain);
    let mut rtt = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        call(peer, "send_input", json!({"session_id": id, "input": "echo x"})).await?;
        rtt.push(t.elapsed());
    }
    report("send_input(\"echo x\") over SSH, direct session", &mut rtt);
    persistent_figures(peer, &id, rounds).await
}

/// `echo` through a persistent session next to a direct one, and replaying a 1 MiB backlog on
/// reattach, over SSH and on this machine.
async fn persistent_figures(peer: &Peer<RoleClient>, direct: &str, rounds: usize) -> anyhow::Result<()> {
    let daemon = std::path::Path::new(env!("CARGO_BIN_EXE_pty-mcp")).with_file_name("ai-tmux");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(&daemon) else {
        println!("persistent: skipped (build ai-tmux first: cargo build --release -p pty-mcp-ai-tmux)");
        return Ok(());
    };
    // cargo bench builds pty-mcp only: say so when ai-tmux's sources are newer than its binary.
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newest_source = ["ai-tmux/src", "engine/src", "engine/src/transport"]
        .iter()
        .flat_map(|d| std::fs::read_dir(crates.join(d)).into_iter().flatten().flatten())
        .filter_map(|e| modified(&e.path()))
        .max();
    if newest_source.is_some_and(|newest| newest > built) {
        println!("persistent: ai-tmux is older than its sources; run cargo build --release -p pty-mcp-ai-tmux first");
    }
    let bash = "bash --norc --noprofile";
    // The daemon's default shell reads the same startup files as the direct session's login
    // shell (prompt hooks included), so the two differ only by the path through ai-tmux.
    let v = call(peer, "create_ssh_session", json!({"host": "benchbox", "persistent": true})).await?;
    let id = v["session_id"].as_str().unwrap_or_default().to_string();
    let [mut through, mut plain] =
        <[_; 2]>::try_from(echo_interleaved(&[(peer, id.as_str()), (peer, direct)], rounds).await?)
            .expect("two sessions");
    report("send_input(\"echo x\") over SSH, direct session (interleaved)", &mut plain);
    report("send_input(\"echo x\") over SSH, persistent session through ai-tmux (interleaved)", &mut through);
    let local = call(peer, "create_local_session", json!({"command": bash, "persistent": true})).await?;
    let local = local["session_id"].as_str().unwrap_or_default().to_string();
    for (session, how) in [(&id, "ssh"), (&local, "local")] {
        let mut replays = Vec::new();
        for _ in 0..3 {
            // 1 MiB of output, then the agent goes away; reattaching replays the daemon's ring.
            let make = "head -c 786432 /dev/zero | base64 -w 1023; echo made";
            call(peer, "send_input", json!({"session_id": session, "input": make, "timeout_ms": 30000})).await?;
            call(peer, "detach_session", json!({"session_id": session})).await?;
            let t = Instant::now();
            let args = if how == "ssh" {
                json!({"host": "benchbox", "session_id": session})
            } else {
                json!({"session_id": session})
            };
            call(peer, if how == "ssh" { "create_ssh_session" } else { "create_local_session" }, args).await?;
            let r = call(peer, "read_output", json!({"session_id": session, "since_cursor": 0, "max_bytes": 2 << 20}))
                .await?;
            replays.push(t.elapsed());
            let got = r["output"].as_str().unwrap_or_default().len();
            anyhow::ensure!(got >= 1_000_000, "backlog incomplete: {got} bytes");
        }
        report(&format!("reattach and read a 1 MiB backlog ({how}, includes connecting)"), &mut replays);
    }
    for session in [&id, &local] {
        call(peer, "close_session", json!({"session_id": session})).await?;
    }
    Ok(())
}

/// A viewer on the control socket (`attach` with a 40×120 terminal, or the page's `watch`),
/// its first answer read; the rest of its stream is returned.
async fn viewer(control: &std::path::Path, pid: u32, request: Value) -> anyhow::Result<tokio::net::UnixStream> {
    use tokio::io::AsyncWriteExt;
    let host = ai_tmux::paths::host_name();
    let mut stream = tokio::net::UnixStream::connect(control.join(format!("{host}-{pid}.sock"))).await?;
    stream.write_all(format!("{request}\n").as_bytes()).await?;
    // The answer line, a byte at a time: the drawing follows it at once.
    let mut first = Vec::new();
    while first.last() != Some(&b'\n') {
        first.push(stream.read_u8().await?);
    }
    anyhow::ensure!(!String::from_utf8_lossy(&first).contains("error"), "{}", String::from_utf8_lossy(&first));
    Ok(stream)
}

/// Reads `stream` until `needle` appears (the viewer's screen shows it).
async fn read_until_seen(stream: &mut tokio::net::UnixStream, needle: &[u8], seen: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "the viewer's stream ended");
        seen.extend_from_slice(&buf[..n]);
    }
    seen.clear();
    Ok(())
}

/// The operator's view: from the program's output to the bytes that draw it on an attached
/// terminal and in the page's frame; and a flood with a viewer attached, against a bare PTY.
async fn viewer_figures(
    peer: &Peer<RoleClient>,
    control: &std::path::Path,
    pid: u32,
    rounds: usize,
    bare: Duration,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap())?;
    // SAFETY: mkfifo reads a valid C string.
    anyhow::ensure!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0, "mkfifo failed");
    let mut writer = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(&fifo)?;
    let id = session(peer, &format!("cat {}", fifo.display()), false).await?;
    for (what, request) in [
        ("attach", json!({"op": "attach", "session_id": id, "rows": 40, "cols": 120})),
        ("page (watch frames)", json!({"op": "watch", "session_id": id})),
    ] {
        let mut stream = viewer(control, pid, request).await?;
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for i in 0..rounds {
            // Apart, as a person's commands are (frames come at most every few ms in a flood).
            tokio::time::sleep(Duration::from_millis(25)).await;
            let mark = format!("SHOWN-{i}-{what}");
            let t = Instant::now();
            writer.write_all(format!("{mark}\n").as_bytes())?;
            read_until_seen(&mut stream, mark.as_bytes(), &mut seen).await?;
            out.push(t.elapsed());
        }
        report(&format!("program output -> operator's {what}"), &mut out);
    }
    // A flood in a session a viewer watches (it reads as fast as it can; frames skip ahead).
    let flood_id = session(peer, "bash --norc --noprofile", true).await?;
    let mut stream =
        viewer(control, pid, json!({"op": "attach", "session_id": flood_id, "rows": 40, "cols": 120})).await?;
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let watched = flood_in(peer, &flood_id).await?;
    drain.abort();
    println!(
        "flood of {:.0} MB in a session a viewer watches: {:.0}% of a bare PTY",
        FLOOD_BYTES as f64 / 1e6,
        100.0 * bare.as_secs_f64() / watched.as_secs_f64()
    );
    Ok(())
}

/// `serve --http`: `send_input("echo x")` over Streamable HTTP on loopback, interleaved with the
/// same over stdio (`stdio`, session `stdio_shell`); 20 clients (one operator each) running
/// `per_client` commands each at once; the memory an idle client (connected, its event stream
/// open) costs the server. `BENCH_ONLY=http` runs only these.
async fn http_figures(
    stdio: &Peer<RoleClient>,
    stdio_shell: &str,
    rounds: usize,
    per_client: usize,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncBufReadExt;
    const CLIENTS: usize = 20;
    const IDLE: usize = 100;
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    let lines: String = (0..CLIENTS).map(|i| format!("bench-token-{i:04}-0123456789 op{i}\n")).collect();
    std::fs::write(&tokens, lines)?;
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600))?;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pty-mcp"))
        .args(["serve", "--http", "127.0.0.1:0", "--max-mcp-sessions", "200", "--tokens"])
        .arg(&tokens)
        .env("HOME", dir.path())
        .env("PTY_MCP_CONTROL_DIR", dir.path())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().expect("pid");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = stderr.next_line().await?.ok_or_else(|| anyhow::anyhow!("serve --http ended"))?;
        if let Some(url) = line.strip_prefix("pty-mcp serving MCP on ") {
            break url.to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let connect = |i: usize| {
        let url = url.clone();
        async move {
            use rmcp::transport::StreamableHttpClientTransport;
            use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
            let tls = audit::tls::client_config(false, None)?;
            let http = reqwest::Client::builder().tls_backend_preconfigured(tls).build()?;
            let config = StreamableHttpClientTransportConfig::with_uri(url)
                .auth_header(format!("bench-token-{i:04}-0123456789"));
            anyhow::Ok(().serve(StreamableHttpClientTransport::with_client(http, config)).await?)
        }
    };
    let first = connect(0).await?;
    let shell = session(first.peer(), "bash --norc --noprofile", true).await?;
    let [mut over_http, mut over_stdio] =
        <[_; 2]>::try_from(echo_interleaved(&[(first.peer(), shell.as_str()), (stdio, stdio_shell)], rounds).await?)
            .expect("two sessions");
    report("send_input(\"echo x\") round trip over stdio (interleaved with HTTP)", &mut over_stdio);
    report("send_input(\"echo x\") round trip over HTTP on loopback (interleaved with stdio)", &mut over_http);

    let mut clients = vec![first];
    for i in 1..CLIENTS {
        clients.push(connect(i).await?);
    }
    let started = Instant::now();
    let runs = clients.iter().map(|c| async move {
        let id = session(c.peer(), "bash --norc --noprofile", true).await?;
        let (mut times, mut errors) = (Vec::new(), 0);
        for k in 0..per_client {
            let t = Instant::now();
            match call(c.peer(), "send_input", json!({"session_id": id, "input": format!("echo c{k}")})).await {
                Ok(r) if r["output"] == format!("c{k}\n") => times.push(t.elapsed()),
                _ => errors += 1,
            }
        }
        anyhow::Ok((times, errors))
    });
    let (mut all, mut errors) = (Vec::new(), 0);
    for outcome in futures::future::join_all(runs).await {
        let (times, e) = outcome?;
        all.extend(times);
        errors += e;
    }
    let wall = started.elapsed();
    report(
        &format!("{CLIENTS} HTTP clients at once, {per_client} commands each ({errors} errors, {wall:.1?} in all)"),
        &mut all,
    );
    let p99 = all[((all.len() as f64 - 1.0) * 0.99).round() as usize];
    println!("  p99 {:.2} ms", p99.as_secs_f64() * 1000.0);

    let before = rss_kib(pid);
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let c = connect(0).await?;
        c.peer().list_all_tools().await?;
        idle.push(c);
    }
    let after = rss_kib(pid);
    println!(
        "memory per idle HTTP client (connected, event stream open; {IDLE} clients): {:.1} KiB",
        after.saturating_sub(before) as f64 / IDLE as f64
    );
    for c in clients.into_iter().chain(idle) {
        let _ = c.cancel().await;
    }
    Ok(())
}

/// `send_input("echo x")` round trips on each of `sessions` in turn, `rounds` times, so that all
/// see the same machine load: one list of samples per session.
async fn echo_interleaved(sessions: &[(&Peer<RoleClient>, &str)], rounds: usize) -> anyhow::Result<Vec<Vec<Duration>>> {
    let mut samples = vec![Vec::with_capacity(rounds); sessions.len()];
    for _ in 0..rounds {
        for ((peer, id), times) in sessions.iter().zip(&mut samples) {
            let t = Instant::now();
            let r = call(peer, "send_input", json!({"session_id": id, "input": "echo x"})).await?;
            times.push(t.elapsed());
            anyhow::ensure!(r["output"] == "x\n", "unexpected reply: {r}");
        }
    }
    Ok(samples)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!("{what}: median {:.2} ms, p90 {:.2} ms, min {:.2} ms ({} runs)", at(0.5), at(0.9), at(0.0), samples.len());
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15 (1-based) -> indices 11 and 12 here.
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}
