//! SSH against a real OpenSSH server started by each test on 127.0.0.1 with throwaway keys.
//! pty-mcp runs with a private HOME and its own ssh_config (PTY_MCP_SSH_CONFIG), so the
//! machine's own ~/.ssh is never read or written.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::json;

use crate::harness::{STEP, Server, free_port, output, spawn_until_ready};

pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: tokio::process::Child,
}

fn keygen(path: &Path, kind: &str) {
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen (scripts/test installs openssh)");
    assert!(status.success());
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

impl Sshd {
    pub async fn start() -> Sshd {
        Sshd::start_with(|_| String::new()).await
    }

    /// Starts sshd; `extra` may prepare files in the directory (keys exist by then) and
    /// returns lines to add to sshd_config.
    pub async fn start_with(extra: impl FnOnce(&Path) -> String) -> Sshd {
        Sshd::start_at(None, extra).await
    }

    /// Starts sshd inside network namespace `netns` (listening on `addr` there) when given,
    /// else on 127.0.0.1.
    pub async fn start_at(netns: Option<(&str, &str)>, extra: impl FnOnce(&Path) -> String) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"), "ed25519");
        keygen(&d.join("id_ed25519"), "ed25519");
        keygen(&d.join("id_other"), "ed25519");
        std::fs::write(d.join("authorized_keys"), read(d.join("id_ed25519.pub"))).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress {2}\nHostKey {0}/host_key\nAuthorizedKeysFile {0}/authorized_keys\n\
             PidFile {0}/sshd.pid\nUsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nClientAliveInterval 0\n{1}",
            d.display(),
            extra(d),
            netns.map_or("127.0.0.1", |(_, addr)| addr),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut cmd = match netns {
            Some((name, _)) => {
                let mut cmd = tokio::process::Command::new("ip");
                cmd.args(["netns", "exec", name, "/usr/sbin/sshd"]);
                cmd
            }
            None => tokio::process::Command::new("/usr/sbin/sshd"),
        };
        cmd.args(["-D", "-e", "-f"]).arg(d.join("sshd_config"));
        let child = spawn_until_ready(cmd, "Server listening").await;
        let sshd = Sshd { dir, port, child };
        sshd.write_client_config(&["id_ed25519"]);
        sshd.trust_host_key();
        sshd
    }

    /// Points the client config (`testbox`, known_hosts) at 127.0.0.1:`port`: a relay in front.
    pub fn reach_through(&mut self, port: u16) {
        self.port = port;
        self.write_client_config(&["id_ed25519"]);
        self.trust_host_key();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// pty-mcp's ssh_config: alias `testbox` for this server, keys tried in `identities` order.
    pub fn write_client_config(&self, identities: &[&str]) {
        let ids: String = identities.iter().map(|i| format!("  IdentityFile {}\n", self.path(i).display())).collect();
        let text = format!(
            "Host testbox\n  HostName 127.0.0.1\n  Port {}\n  User root\n{ids}  IdentitiesOnly yes\n  IdentityAgent none\n\
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
            self.port,
            self.path("known_hosts").display()
        );
        std::fs::write(self.path("ssh_config"), text).unwrap();
    }

    fn trust_host_key(&self) {
        let key = read(self.path("host_key.pub"));
        let key: Vec<&str> = key.split_whitespace().take(2).collect();
        std::fs::write(self.path("known_hosts"), format!("[127.0.0.1]:{} {} {}\n", self.port, key[0], key[1])).unwrap();
    }

    pub async fn server(&self) -> Server {
        self.server_with(&[]).await
    }

    /// pty-mcp with a private HOME, this server's ssh_config, no agent, and `extra`.
    pub async fn server_with(&self, extra: &[(&str, &str)]) -> Server {
        let home = self.path("home");
        std::fs::create_dir_all(&home).unwrap();
        let config = self.path("ssh_config");
        let mut env = vec![
            ("HOME", home.to_str().unwrap()),
            ("PTY_MCP_SSH_CONFIG", config.to_str().unwrap()),
            ("SSH_AUTH_SOCK", ""),
        ];
        env.extend_from_slice(extra);
        Server::start_with_env(&env).await
    }

    /// Cuts the link: kills (SIGKILL) every sshd process serving a connection.
    pub fn cut_connections(&self) {
        let connections = self.connection_processes();
        assert!(!connections.is_empty(), "no SSH connection to cut");
        for pid in connections {
            assert!(std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
        }
    }

    /// The sshd processes serving connections (children of the listener).
    pub fn connection_processes(&self) -> Vec<i32> {
        let main = self.child.id().unwrap() as i32;
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid: i32 =
                stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0);
            if ppid == main {
                out.push(pid);
            }
        }
        out
    }
}

async fn connect(s: &Server, extra: serde_json::Value) -> serde_json::Value {
    let mut args = json!({"host": "testbox"});
    args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.try_call("create_ssh_session", args).await.0
}

#[tokio::test]
async fn key_login_runs_commands_and_reports_exit() {
    let sshd = Sshd::start().await;
    let s = sshd.server().await;
    let v = connect(&s, json!({})).await;
    assert_eq!(v["target"], format!("root@127.0.0.1:{}", sshd.port), "{v}");
    let id = v["session_id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "at_prompt", "{v}");
    // The remote bash was integrated by a typed bootstrap the agent never sees.
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["shell_integration"], true, "{st}");
    assert!(!v["output"].as_str().unwrap().contains("ptymcp"), "{v}");
    let r = s.input(&id, "false").await;
    assert_eq!((r["completion"].as_str(), r["exit_code"].as_i64(), output(&r)), (Some("shell"), Some(1), ""), "{r}");
    let r = s.input(&id, "echo hello-over-$((6*7))").await;
    assert_eq!(output(&r), "hello-over-42\n", "{r}");
    let r = s.input(&id, "history | tail -n 3").await;
    assert!(!output(&r).contains("ptymcp"), "the bootstrap stays out of history: {r}");
    let r = s.call("resize_session", json!({"session_id": id, "rows": 31, "cols": 99})).await;
    assert_eq!(r["success"], true);
    let r = s.input(&id, "stty size").await;
    assert_eq!(output(&r), "31 99\n", "{r}");
    let r = s.input(&id, "exit 3").await;
    assert_eq!((r["is_alive"].as_bool(), r["exit_code"].as_i64()), (Some(false), Some(3)), "{r}");
}

#[tokio::test]
async fn the_second_identity_is_tried_when_the_first_is_refused() {
    let sshd = Sshd::start().await;
    sshd.write_client_config(&["id_other", "id_ed25519"]);
    let s = sshd.server().await;
    let v = connect(&s, json!({})).await;
    assert!(v["session_id"].is_string(), "{v}");
}

#[tokio::test]
async fn host_keys_are_verified() {
    let sshd = Sshd::start().await;
    std::fs::remove_file(sshd.path("known_hosts")).unwrap();
    let s = sshd.server().await;
    let e = connect(&s, json!({})).await;
    assert_eq!(e["code"], "SSH_HOST_KEY_UNKNOWN", "{e}");
    let fingerprint = String::from_utf8(
        std::process::Command::new("ssh-keygen").arg("-lf").arg(sshd.path("host_key.pub")).output().unwrap().stdout,
    )
    .unwrap();
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();
    assert!(e["message"].as_str().unwrap().contains(&fingerprint), "{e} lacks {fingerprint}");
    // Trust on first use records the key, as OpenSSH's accept-new does.
    let v = connect(&s, json!({"host_key_policy": "accept-new"})).await;
    assert!(v["session_id"].is_string(), "{v}");
    assert!(read(sshd.path("known_hosts")).contains(&format!("[127.0.0.1]:{} ssh-ed25519", sshd.port)));
    let v = connect(&s, json!({})).await;
    assert!(v["session_id"].is_string(), "now known: {v}");
    // A different key for the same host is refused, whatever the policy short of insecure.
    keygen(&sshd.path("impostor"), "ed25519");
    let impostor = read(sshd.path("impostor.pub"));
    let impostor: Vec<&str> = impostor.split_whitespace().take(2).collect();
    std::fs::write(sshd.path("known_hosts"), format!("[127.0.0.1]:{}\t{} {}\n", sshd.port, impostor[0], impostor[1]))
        .unwrap();
    for policy in ["strict", "accept-new"] {
        let e = connect(&s, json!({"host_key_policy": policy})).await;
        assert_eq!(e["code"], "SSH_HOST_KEY_CHANGED", "{policy}: {e}");
    }
    let v = connect(&s, json!({"ignore_host_key": true})).await;
    assert!(v["warnings"][0].as_str().unwrap().contains("not verified"), "{v}");
}

#[tokio::test]
async fn a_wrong_password_fails_without_showing_it() {
    let sshd = Sshd::start().await;
    sshd.write_client_config(&["no-such-key"]);
    let s = sshd.server().await;
    let e = connect(&s, json!({"password": "hunter2-wrong"})).await;
    assert_eq!(e["code"], "SSH_AUTH_FAILED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("password"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = connect(&s, json!({"port": 1})).await;
    assert_eq!((e["code"].as_str(), e["retryable"].as_bool()), (Some("SSH_CONNECT_FAILED"), Some(true)), "{e}");
}

#[tokio::test]
async fn a_frozen_server_is_detected_by_keepalives() {
    let sshd = Sshd::start().await;
    let s = sshd.server().await;
    let v = connect(&s, json!({})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    let frozen = sshd.connection_processes();
    assert!(!frozen.is_empty());
    for pid in &frozen {
        // SAFETY: stopping the test's own sshd processes.
        unsafe { kill(*pid, 19) }; // SIGSTOP: the link stays up but nothing answers
    }
    // Keepalive every 1 s, 2 misses: well within the wait's generous bound (without keepalives
    // the TCP connection would stay up and the wait would time out).
    let r = s.call("read_output", json!({"session_id": id, "wait_for": "connection was lost", "timeout": 30})).await;
    assert_eq!(r["matched"], true, "{r}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!((st["state"].as_str(), st["is_alive"].as_bool()), (Some("disconnected"), Some(false)), "{st}");
    for pid in &frozen {
        // SAFETY: as above.
        unsafe { kill(*pid, 9) };
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// An encrypted key's passphrase comes from the operator (askpass), never from the agent.
#[tokio::test]
async fn an_encrypted_key_is_unlocked_by_the_operator() {
    let sshd = Sshd::start().await;
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "open sesame", "-f"])
        .arg(sshd.path("id_locked"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(sshd.path("authorized_keys"), read(sshd.path("id_locked.pub"))).unwrap();
    sshd.write_client_config(&["id_locked"]);
    let askpass = sshd.path("askpass");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\necho 'open sesame'\n", sshd.path("asked").display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = sshd.server_with(&[("PTY_MCP_ASKPASS", askpass.to_str().unwrap())]).await;
    let v = connect(&s, json!({})).await;
    assert!(v["session_id"].is_string(), "{v}");
    assert!(!v.to_string().contains("sesame"));
    assert!(read(sshd.path("asked")).contains("Passphrase for"), "the operator was asked");
}

#[tokio::test]
async fn proxy_jump_goes_through_a_bastion() {
    let bastion = Sshd::start().await;
    let inner = Sshd::start().await;
    // One identity for both servers; both host keys known.
    std::fs::copy(bastion.path("id_ed25519.pub"), inner.path("authorized_keys")).unwrap();
    let key = |s: &Sshd| {
        let k = read(s.path("host_key.pub"));
        let k: Vec<&str> = k.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {} {}\n", s.port, k[0], k[1])
    };
    std::fs::write(bastion.path("known_hosts"), key(&bastion) + &key(&inner)).unwrap();
    let common = format!(
        "  HostName 127.0.0.1\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
        bastion.path("id_ed25519").display(),
        bastion.path("known_hosts").display()
    );
    let config = format!(
        "Host bastion\n  Port {}\n{common}Host inner\n  Port {}\n  ProxyJump bastion\n{common}",
        bastion.port, inner.port
    );
    std::fs::write(bastion.path("ssh_config"), config).unwrap();
    let s = bastion.server().await;
    let v = s.call("create_ssh_session", json!({"host": "inner"})).await;
    assert_eq!(v["target"], format!("root@127.0.0.1:{}", inner.port), "{v}");
    let id = v["session_id"].as_str().unwrap();
    let r = s.input(id, "echo via-$((40+2))").await;
    assert!(output(&r).contains("via-42"), "{r}");
    // The same through the `jump` parameter, with the hop written out.
    let v =
        s.call("create_ssh_session", json!({"host": "inner", "jump": format!("root@bastion:{}", bastion.port)})).await;
    assert!(v["session_id"].is_string(), "{v}");
    // An unreachable next hop is reported as a connection failure.
    let e = s.call_err("create_ssh_session", json!({"host": "127.0.0.1", "port": 1, "jump": "bastion"})).await;
    assert_eq!(e["code"], "SSH_CONNECT_FAILED", "{e}");
}

#[tokio::test]
async fn an_rsa_key_and_the_agent_are_used() {
    let sshd = Sshd::start().await;
    keygen(&sshd.path("id_rsa"), "rsa");
    std::fs::write(sshd.path("authorized_keys"), read(sshd.path("id_rsa.pub"))).unwrap();
    sshd.write_client_config(&["id_rsa"]);
    let s = sshd.server().await;
    let v = connect(&s, json!({})).await;
    assert!(v["session_id"].is_string(), "RSA with SHA-2 signatures: {v}");
    drop(s);
    // The agent: a key only the agent holds.
    let sock = sshd.path("agent.sock");
    let mut agent = tokio::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(STEP, async {
        while !sock.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("agent socket");
    let added =
        std::process::Command::new("ssh-add").arg(sshd.path("id_other")).env("SSH_AUTH_SOCK", &sock).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    std::fs::write(sshd.path("authorized_keys"), read(sshd.path("id_other.pub"))).unwrap();
    // With IdentitiesOnly the agent's key is not offered: only the configured id_rsa is.
    let with_agent = read(sshd.path("ssh_config")).replace("  IdentityAgent none\n", "");
    std::fs::write(sshd.path("ssh_config"), &with_agent).unwrap();
    let s = sshd.server_with(&[("SSH_AUTH_SOCK", sock.to_str().unwrap())]).await;
    let e = connect(&s, json!({})).await;
    assert_eq!(e["code"], "SSH_AUTH_FAILED", "{e}");
    assert!(!e["message"].as_str().unwrap().contains("agent key"), "{e}");
    drop(s);
    let text = with_agent.replace("  IdentitiesOnly yes\n", "");
    std::fs::write(sshd.path("ssh_config"), text).unwrap();
    let s = sshd.server_with(&[("SSH_AUTH_SOCK", sock.to_str().unwrap())]).await;
    let v = connect(&s, json!({})).await;
    assert!(v["session_id"].is_string(), "agent key: {v}");
    agent.kill().await.unwrap();
}

/// A throwaway local user with a password (the test runs as root, like CI); removed on drop.
pub struct TestUser(pub String);

impl TestUser {
    pub fn create(password: &str) -> TestUser {
        // Unique among the tests running at once in this process.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("ptymcp{}x{n}", std::process::id());
        let ok = std::process::Command::new("useradd")
            .args(["-M", "-N", "-s", "/bin/bash", "-d", "/tmp", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "useradd");
        let mut chpasswd = std::process::Command::new("chpasswd").stdin(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        chpasswd.stdin.take().unwrap().write_all(format!("{name}:{password}\n").as_bytes()).unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
        TestUser(name)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel").arg(&self.0).status();
    }
}

#[tokio::test]
async fn password_login_from_the_call_or_from_the_operator() {
    let sshd = Sshd::start().await;
    let user = TestUser::create("pw-4-tests");
    sshd.write_client_config(&["no-such-key"]);
    let s = sshd.server().await;
    let v = connect(&s, json!({"user": user.0, "password": "pw-4-tests"})).await;
    assert!(v["session_id"].is_string(), "{v}");
    let r = s.input(v["session_id"].as_str().unwrap(), "whoami").await;
    assert_eq!(output(&r), format!("{}\n", user.0), "{r}");
    drop(s);
    // Without `password`, the operator is asked (askpass), and the agent never holds it.
    let askpass = sshd.path("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho 'pw-4-tests'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = sshd.server_with(&[("PTY_MCP_ASKPASS", askpass.to_str().unwrap())]).await;
    let v = connect(&s, json!({"user": user.0})).await;
    assert!(v["session_id"].is_string(), "{v}");
}

#[tokio::test]
async fn host_certificates_from_a_trusted_authority_are_accepted() {
    let sign = |d: &Path, principal: &str| {
        keygen(&d.join("ca"), "ed25519");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(d.join("ca"))
            .args(["-I", "test-host", "-h", "-n", principal, "-V", "-5m:+1h"])
            .arg(d.join("host_key.pub"))
            .status()
            .unwrap();
        assert!(status.success());
        format!("HostCertificate {}/host_key-cert.pub\n", d.display())
    };
    for (principal, accepted) in [("127.0.0.1", true), ("someone-else.example", false)] {
        let sshd = Sshd::start_with(|d| sign(d, principal)).await;
        // Only the authority is on record, not the host's own key.
        let ca = read(sshd.path("ca.pub"));
        let ca: Vec<&str> = ca.split_whitespace().take(2).collect();
        std::fs::write(
            sshd.path("known_hosts"),
            format!("@cert-authority [127.0.0.1]:{} {} {}\n", sshd.port, ca[0], ca[1]),
        )
        .unwrap();
        let s = sshd.server().await;
        let v = connect(&s, json!({})).await;
        if accepted {
            assert!(v["session_id"].is_string(), "{v}");
        } else {
            assert_eq!(v["code"], "SSH_HOST_KEY_UNKNOWN", "{v}");
            assert!(v["message"].as_str().unwrap().contains("other hosts"), "{v}");
        }
    }
}
