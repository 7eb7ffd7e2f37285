//! upload_file and download_file against a real OpenSSH server (its `internal-sftp`), over the
//! session's own connection, and on a local session's file system. The "remote" host is this
//! machine, so the test looks at what was written with its own eyes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{STEP, Server, SmallDisk, output};
use crate::links::{Mode, Relay};
use crate::ssh::Sshd;

const SFTP: &str = "Subsystem sftp internal-sftp\n";

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` bytes no compressor shrinks.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

async fn ssh_session(s: &Server) -> String {
    let v = s.call("create_ssh_session", json!({"host": "testbox"})).await;
    v["session_id"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
}

/// An sshd with SFTP, a server for it (with `env`), a session on it, and a work directory.
async fn sftp_box(env: &[(&str, &str)]) -> (Sshd, Server, String, tempfile::TempDir) {
    let sshd = Sshd::start_with(|_| SFTP.into()).await;
    let s = sshd.server_with(env).await;
    let id = ssh_session(&s).await;
    (sshd, s, id, tempfile::tempdir().unwrap())
}

/// Files left beside `target` by a transfer (its temporary files).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("pty-mcp-part"))
        .collect()
}

#[tokio::test]
async fn text_and_50_mb_of_bytes_go_both_ways_over_the_sessions_own_connection() {
    let (_sshd, s, id, work) = sftp_box(&[]).await;
    let dir = work.path().join("dir with spaces");
    std::fs::create_dir(&dir).unwrap();

    // Text in, text out.
    let remote = dir.join("hello \"quoted\".txt");
    let r = s.call("upload_file", json!({"session_id": id, "remote_path": remote, "content": "héllo\nworld\n"})).await;
    assert_eq!(std::fs::read_to_string(&remote).unwrap(), "héllo\nworld\n");
    assert_eq!(
        (r["size"].as_u64(), r["sha256"].as_str()),
        (Some(13), Some(sha256("héllo\nworld\n".as_bytes()).as_str())),
        "{r}"
    );
    assert_eq!(
        (r["path"].as_str(), r["mode"].as_str(), r["replaced"].as_bool()),
        (remote.to_str(), Some("0644"), Some(false)),
        "{r}"
    );
    let r = s.call("download_file", json!({"session_id": id, "remote_path": remote})).await;
    assert_eq!(
        (r["content"].as_str(), r["encoding"].as_str(), r["truncated"].as_bool()),
        (Some("héllo\nworld\n"), Some("text"), Some(false)),
        "{r}"
    );

    // 50 MB of random bytes up from a file here, and down again into another.
    let data = random_bytes(50 << 20);
    let digest = sha256(&data);
    let local = work.path().join("local.bin");
    std::fs::write(&local, &data).unwrap();
    let remote = dir.join("big.bin");
    let r = s.call("upload_file", json!({"session_id": id, "remote_path": remote, "local_path": local})).await;
    assert_eq!((r["size"].as_u64(), r["sha256"].as_str()), (Some(50 << 20), Some(digest.as_str())), "{r}");
    assert_eq!(sha256(&std::fs::read(&remote).unwrap()), digest, "the file on the host");
    let back = work.path().join("back here.bin");
    let r = s.call("download_file", json!({"session_id": id, "remote_path": remote, "local_path": back})).await;
    assert_eq!((r["size"].as_u64(), r["sha256"].as_str()), (Some(50 << 20), Some(digest.as_str())), "{r}");
    assert_eq!(sha256(&std::fs::read(&back).unwrap()), digest, "the file brought back");
    assert!(leftovers(&dir).is_empty() && leftovers(work.path()).is_empty(), "temporary files left");

    // Bytes that are not text come back as base64, said so; a cap keeps head (and tail).
    let r = s.call("download_file", json!({"session_id": id, "remote_path": remote, "max_bytes": 1000})).await;
    assert_eq!((r["encoding"].as_str(), r["truncated"].as_bool()), (Some("base64"), Some(true)), "{r}");
    assert_eq!(r["sha256"], digest.as_str(), "the digest is of the whole file");
    let log = dir.join("app.log");
    let lines: String = (1..=5000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, &lines).unwrap();
    let r = s.call("download_file", json!({"session_id": id, "remote_path": log, "max_bytes": 2000})).await;
    let text = r["content"].as_str().unwrap();
    assert!(text.starts_with("line 1\nline 2\n") && text.ends_with("line 5000\n"), "{text}");
    assert!(
        text.contains("bytes omitted") && r["truncated"] == true && r["omitted_bytes"].as_u64().unwrap() > 0,
        "{r}"
    );

    // The session's terminal is untouched by all this.
    let r = s.input(&id, "echo still-$((6*7))").await;
    assert_eq!(output(&r), "still-42\n", "{r}");
}

#[tokio::test]
async fn writes_are_safe_overwrite_asked_mode_kept_links_refused() {
    let (_sshd, s, id, work) = sftp_box(&[]).await;
    let target = work.path().join("app.conf");
    std::fs::write(&target, "old\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();

    let e = s.call_err("upload_file", json!({"session_id": id, "remote_path": target, "content": "new\n"})).await;
    assert_eq!(e["code"], "FILE_EXISTS", "{e}");
    assert!(e["message"].as_str().unwrap().contains("overwrite: true"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");

    let r = s
        .call("upload_file", json!({"session_id": id, "remote_path": target, "content": "new\n", "overwrite": true}))
        .await;
    assert_eq!((r["replaced"].as_bool(), r["mode"].as_str()), (Some(true), Some("0640")), "{r}");
    assert_eq!((std::fs::read_to_string(&target).unwrap().as_str(), mode_of(&target)), ("new\n", 0o640));

    // A mode given wins; an octal string and plain digits mean the same.
    let script = work.path().join("run.sh");
    s.call("upload_file", json!({"session_id": id, "remote_path": script, "content": "#!/bin/sh\n", "mode": "0755"}))
        .await;
    assert_eq!(mode_of(&script), 0o755);

    // A link at the final component is not written through.
    let link = work.path().join("link.conf");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = s
        .call_err("upload_file", json!({"session_id": id, "remote_path": link, "content": "x", "overwrite": true}))
        .await;
    assert!(e["code"] == "INVALID_PARAMS" && e["message"].as_str().unwrap().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");

    // No parent directory unless asked.
    let deep = work.path().join("a/b/c.txt");
    let e = s.call_err("upload_file", json!({"session_id": id, "remote_path": deep, "content": "x"})).await;
    assert_eq!(e["code"], "FILE_NOT_FOUND", "{e}");
    s.call("upload_file", json!({"session_id": id, "remote_path": deep, "content": "x", "create_parents": true})).await;
    assert_eq!(std::fs::read_to_string(&deep).unwrap(), "x");
    assert!(leftovers(work.path()).is_empty());
}

#[tokio::test]
async fn bad_transfers_get_clear_errors_and_change_nothing() {
    let (_sshd, s, id, work) = sftp_box(&[("PTY_MCP_MAX_TRANSFER", "8M")]).await;
    let w = work.path();
    let cases = [
        (json!({"remote_path": w.join("none.txt")}), "download_file", "FILE_NOT_FOUND"),
        (json!({"remote_path": w}), "download_file", "INVALID_PARAMS"),
        (json!({"remote_path": w, "content": "x", "overwrite": true}), "upload_file", "INVALID_PARAMS"),
        (
            json!({"remote_path": w.join("x"), "content": "x", "local_path": "/etc/hostname"}),
            "upload_file",
            "INVALID_PARAMS",
        ),
        (json!({"remote_path": w.join("x")}), "upload_file", "INVALID_PARAMS"),
        (json!({"remote_path": w.join("x"), "content": "%%%", "encoding": "base64"}), "upload_file", "INVALID_PARAMS"),
        (json!({"remote_path": w.join("x"), "content": "x", "mode": "0999"}), "upload_file", "INVALID_PARAMS"),
        (json!({"remote_path": w.join("x"), "content": "x".repeat(2 << 20)}), "upload_file", "TOO_LARGE"),
        (json!({"remote_path": w.join("x"), "local_path": w.join("missing")}), "upload_file", "FILE_NOT_FOUND"),
        (json!({"remote_path": "", "content": "x"}), "upload_file", "INVALID_PARAMS"),
        (json!({"remote_path": "~nobody/x", "content": "x"}), "upload_file", "INVALID_PARAMS"),
        (json!({"remote_path": w.join("dir/"), "content": "x"}), "upload_file", "INVALID_PARAMS"),
    ];
    for (mut args, tool, code) in cases {
        args["session_id"] = json!(id);
        let e = s.call_err(tool, args.clone()).await;
        assert_eq!(e["code"], code, "{tool} {args}: {e}");
    }
    assert_eq!(std::fs::read_dir(w).unwrap().count(), 0, "nothing was written");

    // Too large: over the server's limit (8M here), and a 2 GB file into a reply, refused before
    // a byte is read (the file is sparse: reading it would take seconds).
    let over = w.join("over.bin");
    std::fs::write(&over, random_bytes(9 << 20)).unwrap();
    let e = s.call_err("upload_file", json!({"session_id": id, "remote_path": w.join("o"), "local_path": over})).await;
    assert!(e["code"] == "TOO_LARGE" && e["message"].as_str().unwrap().contains("--max-transfer"), "{e}");
    let huge = w.join("huge.img");
    std::fs::File::create(&huge).unwrap().set_len(2 << 30).unwrap();
    let e = s.call_err("download_file", json!({"session_id": id, "remote_path": huge})).await;
    assert_eq!(e["code"], "TOO_LARGE", "{e}");
    // Refused on its size, not stopped part-way through reading it.
    assert!(!e["message"].as_str().unwrap().contains("while it was read"), "{e}");
    std::fs::remove_file(&over).unwrap();
    std::fs::remove_file(&huge).unwrap();

    // No permission: another user over the same server.
    let user = crate::ssh::TestUser::create("pw-4-files");
    let v = s.call("create_ssh_session", json!({"host": "testbox", "user": user.0, "password": "pw-4-files"})).await;
    let theirs = v["session_id"].as_str().unwrap().to_string();
    let e = s.call_err("upload_file", json!({"session_id": theirs, "remote_path": "/root/x", "content": "x"})).await;
    assert_eq!(e["code"], "PERMISSION_DENIED", "{e}");
    let e = s.call_err("download_file", json!({"session_id": theirs, "remote_path": "/etc/shadow"})).await;
    assert_eq!(e["code"], "PERMISSION_DENIED", "{e}");

    // A path with a newline and quotes is just a name.
    let odd = w.join("line\nbreak 'q' \"qq\"");
    s.call("upload_file", json!({"session_id": id, "remote_path": odd, "content": "odd"})).await;
    assert_eq!(std::fs::read_to_string(&odd).unwrap(), "odd");

    // A full disk on the host: the error says so, the old file stays, no temporary file is left.
    if let Some(disk) = SmallDisk::new("1m") {
        let target = disk.path().join("keep.txt");
        std::fs::write(&target, "kept\n").unwrap();
        let big = w.join("big.bin");
        std::fs::write(&big, random_bytes(4 << 20)).unwrap();
        let e = s
            .call_err(
                "upload_file",
                json!({"session_id": id, "remote_path": target, "local_path": big, "overwrite": true}),
            )
            .await;
        assert_eq!(e["code"], "NO_SPACE", "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept\n");
        assert!(leftovers(disk.path()).is_empty(), "{:?}", leftovers(disk.path()));
        // And a full disk here, downloading.
        let remote = w.join("remote.bin");
        std::fs::write(&remote, random_bytes(4 << 20)).unwrap();
        let e = s
            .call_err(
                "download_file",
                json!({"session_id": id, "remote_path": remote, "local_path": disk.path().join("in.bin")}),
            )
            .await;
        assert_eq!(e["code"], "NO_SPACE", "{e}");
        assert!(leftovers(disk.path()).is_empty(), "{:?}", leftovers(disk.path()));
    }
    // The server serves on.
    let r = s.input(&id, "echo fine").await;
    assert_eq!(output(&r), "fine\n");
}

#[tokio::test]
async fn a_host_without_sftp_and_a_serial_line_say_what_to_do() {
    let sshd = Sshd::start().await;
    let s = sshd.server().await;
    let id = ssh_session(&s).await;
    let e = s.call_err("download_file", json!({"session_id": id, "remote_path": "/etc/hostname"})).await;
    assert_eq!(e["code"], "NOT_SUPPORTED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("Subsystem sftp"), "{e}");
    let r = s.input(&id, "echo ok").await;
    assert_eq!(output(&r), "ok\n", "the session is unharmed: {r}");
    // A serial console has no files at all.
    let dir = tempfile::tempdir().unwrap();
    let _cable = crate::serial::Cable::plug(dir.path()).await;
    let serial = crate::serial::open(&s, dir.path(), json!({})).await;
    let e = s.call_err("upload_file", json!({"session_id": serial, "remote_path": "/x", "content": "x"})).await;
    assert_eq!(e["code"], "NOT_SUPPORTED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("serial"), "{e}");
}

#[tokio::test]
async fn a_cut_link_leaves_the_target_as_it_was() {
    let mut sshd = Sshd::start_with(|_| SFTP.into()).await;
    let relay = Relay::start(format!("127.0.0.1:{}", sshd.port())).await;
    sshd.reach_through(relay.port);
    let s = sshd.server().await;
    let id = ssh_session(&s).await;
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("firmware.bin");
    std::fs::write(&target, "the old firmware").unwrap();
    let local = work.path().join("new.bin");
    std::fs::write(&local, random_bytes(40 << 20)).unwrap();
    // The link goes after 8 MB.
    relay.set(Mode::CutAfter(8 << 20));
    let e = s
        .call_err(
            "upload_file",
            json!({"session_id": id, "remote_path": target, "local_path": local, "overwrite": true}),
        )
        .await;
    assert_eq!(e["code"], "TRANSFER_FAILED", "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), b"the old firmware", "the target is untouched");
    // The partial file cannot be removed over a dead link: it is named in the error.
    let left = leftovers(work.path());
    for name in &left {
        assert!(e["message"].as_str().unwrap().contains(name.as_str()), "{name} not named in {e}");
    }
}

#[tokio::test]
async fn a_local_session_transfers_relative_to_its_working_directory() {
    let home = crate::startup::slow_home();
    let s = Server::start_with_env(&[("HOME", home.path().to_str().unwrap())]).await;
    // The user's own bash with its slow, chatty startup files; no warm-up command.
    let v = s.call("create_local_session", json!({})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    s.input(&id, &format!("cd '{}'", work.path().display())).await;
    let r =
        s.call("upload_file", json!({"session_id": id, "remote_path": "notes.txt", "content": "kept here\n"})).await;
    assert_eq!(r["path"], work.path().join("notes.txt").to_str().unwrap(), "{r}");
    let r = s.input(&id, "cat notes.txt").await;
    assert_eq!(output(&r), "kept here\n", "{r}");
    let r = s.call("download_file", json!({"session_id": id, "remote_path": "./notes.txt"})).await;
    assert_eq!(r["content"], "kept here\n", "{r}");
    let e = s.call_err("download_file", json!({"session_id": id, "remote_path": "../../../none/x"})).await;
    assert_eq!(e["code"], "FILE_NOT_FOUND", "{e}");
}

#[tokio::test]
async fn a_persistent_sessions_files_go_over_the_connection_it_attaches_through() {
    let rt = crate::persistent::Runtime::new();
    let sshd = crate::persistent::sshd_with_ai_tmux_at(&rt, None).await;
    let s = sshd.server().await;
    let (id, _) = crate::persistent::remote_bash(&s).await;
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("kept.txt");
    let r = s.call("upload_file", json!({"session_id": id, "remote_path": target, "content": "persistent\n"})).await;
    assert_eq!(r["size"], 11, "{r}");
    let before = sshd.connection_processes().len();
    let r = s.call("download_file", json!({"session_id": id, "remote_path": target})).await;
    assert_eq!(r["content"], "persistent\n", "{r}");
    assert_eq!(sshd.connection_processes().len(), before, "no new connection for a transfer");
    sshd.cut_connections();
    // Whether or not the session has seen its link go yet, the transfer finds a way.
    let r = s.call("download_file", json!({"session_id": id, "remote_path": target})).await;
    assert_eq!(r["content"], "persistent\n", "{r}");
    // After pty-mcp restarts and reattaches, transfers work again.
    s.kill9();
    let s = sshd.server().await;
    s.call("create_ssh_session", json!({"host": "testbox", "session_id": id})).await;
    let r = s.call("download_file", json!({"session_id": id, "remote_path": target})).await;
    assert_eq!(r["content"], "persistent\n", "{r}");
    s.call("close_session", json!({"session_id": id})).await;
}

#[tokio::test]
async fn transfers_follow_the_policys_path_rules_and_are_audited() {
    use crate::audit::{events, wait_until};
    let work = tempfile::tempdir().unwrap();
    let (protected, asked) = (work.path().join("etc"), work.path().join("srv"));
    std::fs::create_dir(&protected).unwrap();
    std::fs::create_dir(&asked).unwrap();
    let setup = crate::policy::Setup::new(&format!(
        "default = \"allow\"\n[[path]]\naction = \"deny\"\npaths = [\"{}/*\"]\ndirection = \"upload\"\n\
         reason = \"change process\"\n[[path]]\naction = \"ask\"\npaths = [\"{}/*\"]\n",
        protected.display(),
        asked.display()
    ));
    let (_collector, log, env) = setup.audited().await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (_sshd, s, id, _) = sftp_box(&env).await;
    const SECRET_CONTENT: &str = "listen 443 ssl; # only-in-the-file";

    // Denied: nothing written; neither `..` nor a linked directory gets round it.
    let sneaky = asked.join("../etc/nginx.conf");
    let link = work.path().join("innocent");
    std::os::unix::fs::symlink(&protected, &link).unwrap();
    for path in [protected.join("nginx.conf"), sneaky, link.join("nginx.conf")] {
        let e =
            s.call_err("upload_file", json!({"session_id": id, "remote_path": path, "content": SECRET_CONTENT})).await;
        assert_eq!(e["code"], "POLICY_DENIED", "{e}");
        assert!(e["message"].as_str().unwrap().contains("nothing was transferred"), "{e}");
    }
    assert_eq!(std::fs::read_dir(&protected).unwrap().count(), 0);
    // Downloads from there are not ruled.
    std::fs::write(protected.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let r = s.call("download_file", json!({"session_id": id, "remote_path": protected.join("hosts")})).await;
    assert_eq!(r["content"], "127.0.0.1 localhost\n", "{r}");
    // Asked: the operator refuses, then approves.
    setup.answer("no");
    let target = asked.join("site.conf");
    let e =
        s.call_err("upload_file", json!({"session_id": id, "remote_path": target, "content": SECRET_CONTENT})).await;
    assert_eq!(e["code"], "APPROVAL_DENIED", "{e}");
    setup.answer("yes");
    let r = s.call("upload_file", json!({"session_id": id, "remote_path": target, "content": SECRET_CONTENT})).await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), SECRET_CONTENT);
    let asked_lines = std::fs::read_to_string(setup.path("asked")).unwrap();
    assert!(asked_lines.contains(&format!("upload {}", target.display())), "{asked_lines}");

    // The audit log: each transfer before and after, with size and digest, never the content.
    let transfers = |r: &[Value]| r.iter().filter(|v| v["event"] == "file_transferred").count();
    let records = wait_until(&log, "both transfers' records", |r| transfers(r) >= 2).await;
    let ev = events(&records);
    assert_eq!(ev.iter().filter(|e| *e == "file_transfer").count(), 2, "{ev:?}");
    let done: Vec<&Value> = records.iter().filter(|v| v["event"] == "file_transferred").collect();
    assert_eq!(done[1]["direction"], "upload");
    assert_eq!(done[1]["path"], target.to_str().unwrap());
    assert_eq!((done[1]["sha256"].as_str(), done[1]["size"].as_u64()), (r["sha256"].as_str(), r["size"].as_u64()));
    assert_eq!(done[0]["direction"], "download");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("only-in-the-file"), "the content reached the audit log");
}

/// A slow transfer (the relay holds each chunk back), cancelled by the client after its first
/// progress notification: the call ends, and the temporary file is gone with it.
#[tokio::test]
async fn a_cancelled_transfer_removes_its_temporary_file() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut sshd = Sshd::start_with(|_| SFTP.into()).await;
    let relay = Relay::start(format!("127.0.0.1:{}", sshd.port())).await;
    sshd.reach_through(relay.port);
    let home = sshd.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = tokio::process::Command::new(crate::harness::binary())
        .arg("serve")
        .env("HOME", &home)
        .env("PTY_MCP_SSH_CONFIG", sshd.path("ssh_config"))
        .env("SSH_AUTH_SOCK", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |v: Value| stdin.write_all(format!("{v}\n").as_bytes()).await.unwrap();
    send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}))
    .await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "create_ssh_session",
        "arguments": {"host": "testbox"}}}))
    .await;
    let mut next = async || -> Value {
        let line = tokio::time::timeout(STEP, lines.next_line()).await.expect("in time").unwrap().unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let id = loop {
        let v = next().await;
        if v["id"] == 1 {
            break v["result"]["structuredContent"]["session_id"].as_str().unwrap().to_string();
        }
    };
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("big.bin");
    std::fs::write(&local, random_bytes(20 << 20)).unwrap();
    relay.set(Mode::Pass(std::time::Duration::from_millis(5)));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "upload_file",
        "_meta": {"progressToken": "up"},
        "arguments": {"session_id": id, "remote_path": work.path().join("target.bin"), "local_path": local}}}))
    .await;
    let progress = loop {
        let v = next().await;
        assert_ne!(v["id"], 2, "the upload ended before any progress: {v}");
        if v["method"] == "notifications/progress" {
            break v["params"].clone();
        }
    };
    assert!(progress["progress"].as_f64().unwrap() > 0.0 && progress["total"] == (20 << 20) as f64, "{progress}");
    assert!(!leftovers(work.path()).is_empty(), "the temporary file is there while the upload runs");
    send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})).await;
    relay.set(Mode::Pass(std::time::Duration::ZERO));
    // The server logs the transfer's end once its temporary file is gone.
    tokio::time::timeout(STEP, async {
        while let Some(line) = log.next_line().await.unwrap() {
            if line.contains("upload of") && line.contains("cancelled") {
                return;
            }
        }
        panic!("the server's log ended");
    })
    .await
    .expect("the cancelled upload is logged");
    assert!(!work.path().join("target.bin").exists(), "no target from a cancelled upload");
    assert!(leftovers(work.path()).is_empty(), "{:?}", leftovers(work.path()));
}
