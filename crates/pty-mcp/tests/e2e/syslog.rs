//! Audit records into a team's syslog pipeline (`audit-sink`): a real `rsyslogd` (Debian's,
//! started by the test with a config of its own on a free loopback port, writing what it
//! receives into a FIFO the test reads), over TCP and over TLS (its gtls driver); and a receiver
//! that accepts but never reads.

use std::io::{BufRead, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::harness::*;

/// A private config and state directory for pty-mcp, auditing to the syslog receiver `sink`.
fn sink_home(dir: &Path, sink: &str, extra: &str) -> Vec<(String, String)> {
    let config = dir.join("config/pty-mcp/config");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, format!("audit-sink={sink}\naudit-user=tester\n{extra}")).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    vec![
        ("XDG_CONFIG_HOME".into(), dir.join("config").display().to_string()),
        ("XDG_STATE_HOME".into(), dir.join("state").display().to_string()),
    ]
}

/// The lines rsyslogd writes into a FIFO, as they come (`msgid sd json`).
struct Received {
    lines: mpsc::UnboundedReceiver<String>,
    /// Every record so far, in arrival order.
    records: Vec<Value>,
}

impl Received {
    /// Reads `fifo` (opened read-write: rsyslogd may open and close it across restarts).
    fn from_fifo(fifo: &Path) -> Received {
        let path = fifo.to_path_buf();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
            for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Received { lines, records: Vec::new() }
    }

    /// Takes lines until a record satisfies `done`; returns all records so far.
    async fn until(&mut self, what: &str, done: impl Fn(&Value) -> bool) -> &[Value] {
        if self.records.iter().any(&done) {
            return &self.records;
        }
        let found = tokio::time::timeout(STEP, async {
            while let Some(line) = self.lines.recv().await {
                let record = parse_line(&line);
                let hit = done(&record);
                self.records.push(record);
                if hit {
                    return;
                }
            }
        })
        .await;
        assert!(found.is_ok(), "no {what} in time; received {} records", self.records.len());
        &self.records
    }
}

/// `msgid [sd] json` → the JSON record, checked against its structured data and message id.
fn parse_line(line: &str) -> Value {
    let (msgid, rest) = line.split_once(' ').expect("msgid");
    let json_at = rest.find("] {").expect("structured data, then the record") + 2;
    let (sd, text) = rest.split_at(json_at);
    let record: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    for key in ["record_id", "user", "session_id", "type", "target"] {
        let value = record[key].as_str().unwrap_or("");
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
        assert!(sd.contains(&format!("{key}=\"{escaped}\"")), "{key} in {sd}");
    }
    let expected = record["event"].as_str().unwrap_or(if record.get("cmd_id").is_some() { "command" } else { "-" });
    assert_eq!(msgid, expected, "{line}");
    record
}

/// The commands typed, in the order their records arrived; every record_id once.
fn commands(records: &[Value]) -> Vec<String> {
    let mut ids = std::collections::HashSet::new();
    for r in records {
        assert!(ids.insert(r["record_id"].as_str().unwrap().to_string()), "a record arrived twice: {r}");
        // (A command's output record carries its cmd_id only, as the Go version's.)
        assert!(r.get("user").is_none_or(|u| u == "tester"), "{r}");
    }
    records.iter().filter_map(|r| r["cmd"].as_str().map(String::from)).collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("echo mark-{i}")).collect()
}

/// A `rsyslogd -n` with a config of its own, receiving on `port` and writing pty-mcp's
/// messages to `fifo`.
struct Rsyslogd {
    child: Child,
}

impl Rsyslogd {
    fn start(dir: &Path, port: u16, fifo: &Path, tls: Option<&(PathBuf, PathBuf, PathBuf)>) -> Rsyslogd {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let (global_tls, driver) = match tls {
            Some((ca, cert, key)) => (
                format!(
                    " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
                     defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    ca.display(),
                    cert.display(),
                    key.display()
                ),
                " StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\"",
            ),
            None => (String::new(), ""),
        };
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\"{global_tls})\n\
                 module(load=\"imtcp\"{driver})\n\
                 input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"line\" type=\"string\" string=\"%msgid% %structured-data% %msg%\\n\")\n\
                 if $app-name == \"pty-mcp\" then {{ action(type=\"ompipe\" pipe=\"{fifo}\" template=\"line\") }}\n",
                work = work.display(),
                fifo = fifo.display(),
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .spawn()
            .expect("rsyslogd (scripts/test installs rsyslog)");
        Rsyslogd { child }
    }

    /// SIGTERM, and wait for it to be gone.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap();
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with `env` whose log lines arrive on the returned channel as it writes them.
async fn server_saying(env: &[(String, String)]) -> (Server, mpsc::UnboundedReceiver<String>) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (log_read, log_write) = std::io::pipe().unwrap();
    let s = Server::start_logging(&env, Some(std::fs::File::from(std::os::fd::OwnedFd::from(log_write)))).await;
    let (said_tx, said) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(log_read).lines().map_while(Result::ok) {
            let _ = said_tx.send(line);
        }
    });
    (s, said)
}

/// Waits for a log line containing `text`; returns it.
async fn said(lines: &mut mpsc::UnboundedReceiver<String>, text: &str) -> String {
    let found = tokio::time::timeout(STEP, async {
        while let Some(line) = lines.recv().await {
            if line.contains(text) {
                return line;
            }
        }
        panic!("the server's log ended before {text:?}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("the server did not log {text:?} in time"))
}

fn fifo(dir: &Path) -> PathBuf {
    let path = dir.join("received.fifo");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path
}

async fn run_marks(s: &Server, id: &str, range: std::ops::Range<usize>) {
    for i in range {
        let r = s.input(id, &format!("echo mark-{i}")).await;
        assert_eq!(output(&r), format!("mark-{i}\n"));
    }
}

#[tokio::test]
async fn rsyslogd_receives_every_record_once_and_in_order_across_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (port, fifo) = (free_port(), fifo(dir.path()));
    let mut received = Received::from_fifo(&fifo);
    let rsyslogd = Rsyslogd::start(dir.path(), port, &fifo, None);
    let env = sink_home(dir.path(), &format!("syslog://127.0.0.1:{port}"), "");
    let (s, mut log) = server_saying(&env).await;
    let id = s.bash().await;
    run_marks(&s, &id, 0..20).await;
    received.until("mark-19's record", |r| r["cmd"] == "echo mark-19").await;
    // Down in the middle, for the sender's whole backoff ladder (250 ms doubling to 5 s, some
    // 8 s): records wait in the spool while it is away, then go in order.
    rsyslogd.stop();
    run_marks(&s, &id, 20..40).await;
    said(&mut log, "retrying in 5s").await;
    let _back = Rsyslogd::start(dir.path(), port, &fifo, None);
    s.call("close_session", json!({"session_id": id})).await;
    let records = received.until("the session's end", |r| r["event"] == "session_ended").await;
    assert_eq!(commands(records), expected(0..40));
    let outputs: Vec<&Value> = records.iter().filter(|r| r.get("output_snippet").is_some()).collect();
    assert_eq!(outputs.len(), 40, "each command's output once");
    assert_eq!(records[0]["event"], "create_session", "{}", records[0]);
}

#[tokio::test]
async fn over_tls_with_rsyslogds_gtls_driver() {
    let dir = tempfile::tempdir().unwrap();
    let tls = crate::audit::tls_files(dir.path());
    let (port, fifo) = (free_port(), fifo(dir.path()));
    let mut received = Received::from_fifo(&fifo);
    let _rsyslogd = Rsyslogd::start(dir.path(), port, &fifo, Some(&tls));
    let env =
        sink_home(dir.path(), &format!("syslog+tls://127.0.0.1:{port}"), &format!("audit-ca={}\n", tls.0.display()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_with_env(&env).await;
    let id = s.bash().await;
    run_marks(&s, &id, 0..5).await;
    let records = received.until("mark-4's output", |r| r["output_snippet"] == "mark-4\n").await;
    assert_eq!(commands(records), expected(0..5));
}

#[tokio::test]
async fn strict_mode_and_two_destinations_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, said) in [
        ("audit-mode=strict\n", "strict needs the built-in collector"),
        ("audit-url=http://127.0.0.1:9\n", "choose one"),
    ] {
        let env = sink_home(dir.path(), "syslog://127.0.0.1:9", extra);
        let out = Command::new(binary()).arg("serve").envs(env).stdin(std::process::Stdio::piped()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && text.contains(said), "{text}");
    }
}

/// Octet-counted frames in `bytes`: the complete ones, each as its record (a frame cut off by
/// the end of a connection was not delivered).
fn frames(mut bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(space) = bytes.iter().position(|&b| b == b' ') {
        let len: usize = std::str::from_utf8(&bytes[..space]).unwrap().parse().unwrap();
        let Some(message) = bytes.get(space + 1..space + 1 + len) else { break };
        let text = std::str::from_utf8(message).unwrap();
        let json = &text[text.find("] {").unwrap() + 2..];
        out.push(serde_json::from_str(json).unwrap());
        bytes = &bytes[space + 1 + len..];
    }
    out
}

#[tokio::test]
async fn a_receiver_that_never_reads_holds_records_in_the_spool_not_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    // A receiver with the smallest buffer that takes the connection and reads nothing.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let env = sink_home(dir.path(), &format!("syslog://127.0.0.1:{port}"), "");
    let (s, mut log) = server_saying(&env).await;
    let id = s.bash().await;
    // 2 KB of output per command: more than the socket buffers hold, soon.
    let n = 150;
    for i in 0..n {
        let r = s.input(&id, &format!("printf 'mark-{i} %02000d\\n' 0")).await;
        assert!(output(&r).starts_with(&format!("mark-{i} ")), "{r}");
    }
    let stalled = said(&mut log, "took nothing").await;
    assert!(stalled.contains("audit delivery failed"), "{stalled}");
    let spool = dir.path().join("state/pty-mcp/audit-spool.jsonl");
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert!(spooled.contains(&format!("mark-{}", n - 1)), "the newest records wait in the spool");
    // Reading at last: the first connection's records, then the rest on the sender's next one;
    // every record once, in order.
    let last = format!("mark-{} ", n - 1);
    let received = tokio::task::spawn_blocking(move || {
        let mut received = Vec::new();
        for stream in socket.incoming() {
            let mut stream = stream.unwrap();
            stream.set_read_timeout(Some(STEP)).unwrap();
            let (mut bytes, mut chunk) = (Vec::new(), [0u8; 64 << 10]);
            loop {
                let n = stream.read(&mut chunk).expect("records before the timeout");
                bytes.extend_from_slice(&chunk[..n]);
                let these = frames(&bytes);
                let done = these.iter().any(|r| r["output_snippet"].as_str().is_some_and(|o| o.starts_with(&last)));
                if n == 0 || done {
                    received.extend(these);
                    if done {
                        return received;
                    }
                    break;
                }
            }
        }
        unreachable!("incoming() never ends")
    })
    .await
    .unwrap();
    let typed = commands(&received);
    let want: Vec<String> = (0..n).map(|i| format!("printf 'mark-{i} %02000d\\n' 0")).collect();
    assert_eq!(typed, want);
}
