//! Guardrails (issue 17): a policy of what may be typed where. A denied command is proved never
//! to reach the terminal by the marker file it would create; `ask` goes to a test approver that
//! approves, refuses, hangs or crashes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{Server, output};

/// A policy file, an approver script and a marker path in a directory of their own.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new(policy: &str) -> Setup {
        let setup = Setup { dir: tempfile::tempdir().unwrap() };
        setup.write_policy(policy);
        // The approver: logs what it was shown, then does what the file `answer` says.
        let approver = setup.path("approve.sh");
        std::fs::write(
            &approver,
            "#!/bin/sh\nd=$(dirname \"$0\")\nprintf '%s|%s|%s\\n' \"$1\" \"$2\" \"$3\" >> \"$d/asked\"\n\
             case $(cat \"$d/answer\" 2>/dev/null) in\n  yes) exit 0 ;;\n  hang) exec sleep 60 ;;\n  crash) kill -9 $$ ;;\n  *) exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&approver, std::fs::Permissions::from_mode(0o755)).unwrap();
        setup
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_policy(&self, text: &str) {
        let path = self.path("policy.toml");
        std::fs::write(&path, text.replace("MARKER", &self.marker().display().to_string())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn answer(&self, answer: &str) {
        std::fs::write(self.path("answer"), answer).unwrap();
    }

    /// The file a denied command would create.
    fn marker(&self) -> PathBuf {
        self.path("marker")
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PTY_MCP_POLICY".into(), self.path("policy.toml").display().to_string()),
            ("PTY_MCP_APPROVE".into(), self.path("approve.sh").display().to_string()),
        ]
    }

    /// A collector of its own, and this policy's environment with strict auditing to it: the
    /// collector (stopped when dropped), its log, the environment.
    pub async fn audited(&self) -> (crate::audit::Collector, PathBuf, Vec<(String, String)>) {
        let port = crate::harness::free_port();
        let log = self.path("audit.jsonl");
        let collector = crate::audit::Collector::start(port, &log).await;
        let mut env = crate::audit::audit_home(self.dir.path(), port, "strict");
        env.extend(self.env());
        (collector, log, env)
    }

    async fn server(&self) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_with_env(&env).await
    }
}

const DENY_TOUCH: &str = r#"
default = "allow"
[[rule]]
action = "deny"
match = '^touch\b'
reason = "no touching"
"#;

/// Every way of slipping `touch MARKER` past a text filter that issue trackers report.
fn bypasses(marker: &Path) -> Vec<String> {
    let m = marker.display();
    vec![
        format!("touch {m}"),
        format!("   touch {m}"),
        format!("echo a; touch {m}"),
        format!("true && touch {m}"),
        format!("false || touch {m}"),
        format!("echo a | touch {m}"),
        format!("echo a\ntouch {m}"),
        format!("echo $(touch {m})"),
        format!("echo `touch {m}`"),
        format!("sh -c 'touch {m}'"),
        format!("bash -c \"echo x; touch {m}\""),
        format!("sudo touch {m}"),
        format!("env A=1 touch {m}"),
        format!("A=1 touch {m}"),
        format!("nohup touch {m}"),
        format!("'touch' {m}"),
        format!("\\touch {m}"),
        format!("/usr/bin/touch {m}"),
        format!("echo {m} | xargs touch"),
        format!("(touch {m})"),
    ]
}

fn code(e: &Value) -> &str {
    e["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_denied_command_never_reaches_the_terminal_however_it_is_typed() {
    let setup = Setup::new(DENY_TOUCH);
    let s = setup.server().await;
    let id = s.bash().await;
    for input in bypasses(&setup.marker()) {
        let e = s.call_err("send_input", json!({"session_id": id, "input": input})).await;
        assert_eq!(code(&e), "POLICY_DENIED", "{input:?}: {e}");
        assert!(e["message"].as_str().unwrap().contains("no touching"), "{e}");
    }
    // A multi-line paste.
    let paste = format!("echo 1\ntouch {}\necho 2", setup.marker().display());
    let e = s.call_err("send_input", json!({"session_id": id, "input": paste, "paste": true})).await;
    assert_eq!(code(&e), "POLICY_DENIED", "{e}");
    // Typed in pieces without Enter, then Enter as a key: the whole line is checked.
    s.call("send_input", json!({"session_id": id, "input": "tou", "raw": true})).await;
    s.call("send_input", json!({"session_id": id, "input": format!("ch {}", setup.marker().display()), "raw": true}))
        .await;
    let e = s.call_err("send_control", json!({"session_id": id, "key": "enter"})).await;
    assert_eq!(code(&e), "POLICY_DENIED", "{e}");
    let e = s.call_err("send_input", json!({"session_id": id, "input": "\r", "raw": true})).await;
    assert_eq!(code(&e), "POLICY_DENIED", "{e}");
    // The agent clears the line it typed; the session goes on.
    s.call("send_control", json!({"session_id": id, "key": "ctrl+u"})).await;
    assert_eq!(output(&s.input(&id, "echo still-here").await), "still-here\n");
    assert!(!setup.marker().exists(), "a denied command ran");
    // The command of a new session is checked too.
    let e = s.call_err("create_local_session", json!({"command": format!("touch {}", setup.marker().display())})).await;
    assert_eq!(code(&e), "POLICY_DENIED", "{e}");
    assert!(!setup.marker().exists(), "a denied session command ran");
    // What is allowed runs.
    assert_eq!(output(&s.input(&id, "echo touch is a word").await), "touch is a word\n");
}

#[tokio::test]
async fn ask_goes_to_the_operator_who_approves_refuses_or_does_not_answer() {
    let setup = Setup::new(
        r#"
approval_timeout = 2
remember_approval = 600
[[rule]]
action = "ask"
match = '^touch\b'
reason = "touching needs a person"
"#,
    );
    let s = setup.server().await;
    let id = s.bash().await;
    let touch = format!("touch {}", setup.marker().display());
    // Refused.
    setup.answer("no");
    let e = s.call_err("send_input", json!({"session_id": id, "input": touch})).await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
    assert!(!setup.marker().exists());
    // The approver saw the target, the exact command and the reason.
    let asked = std::fs::read_to_string(setup.path("asked")).unwrap();
    assert_eq!(asked.trim(), format!("local|{touch}|touching needs a person"), "{asked}");
    // Crashed: denied, and nobody else is asked.
    setup.answer("crash");
    let e = s.call_err("send_input", json!({"session_id": id, "input": touch})).await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
    // No answer: denied after the timeout; the session is still usable.
    setup.answer("hang");
    let e = s.call_err("send_input", json!({"session_id": id, "input": touch})).await;
    assert_eq!(code(&e), "APPROVAL_TIMEOUT", "{e}");
    assert!(!setup.marker().exists());
    assert_eq!(output(&s.input(&id, "echo usable").await), "usable\n");
    // Approved: it runs.
    setup.answer("yes");
    let r = s.input(&id, &touch).await;
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(setup.marker().exists(), "the approved command did not run");
    // Remembered for this session and this exact command only.
    setup.answer("no");
    let asked = std::fs::read_to_string(setup.path("asked")).unwrap().lines().count();
    assert_eq!(s.input(&id, &touch).await["exit_code"], 0);
    assert_eq!(std::fs::read_to_string(setup.path("asked")).unwrap().lines().count(), asked, "asked again");
    let e = s.call_err("send_input", json!({"session_id": id, "input": format!("{touch} x")})).await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
    let other = s.bash().await;
    let e = s.call_err("send_input", json!({"session_id": other, "input": touch})).await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
}

#[tokio::test]
async fn presets_check_policy_and_the_state_show_the_policy() {
    let setup = Setup::new("include = [\"read-only\"]\n");
    let s = setup.server().await;
    let id = s.bash().await;
    assert_eq!(output(&s.input(&id, "echo looking | cat").await), "looking\n");
    let e = s
        .call_err("send_input", json!({"session_id": id, "input": format!("touch {}", setup.marker().display())}))
        .await;
    assert_eq!(code(&e), "POLICY_DENIED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("read-only"), "{e}");
    let c = s.call("check_policy", json!({"session_id": id, "input": "ls -l; sed -i s/a/b/ f"})).await;
    assert_eq!((c["action"].as_str(), c["command"].as_str()), (Some("deny"), Some("sed -i s/a/b/ f")), "{c}");
    let c = s.call("check_policy", json!({"session_id": id, "input": "ls -l"})).await;
    assert_eq!(c["action"], "allow", "{c}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["policy"]["presets"], json!(["read-only"]), "{st}");
    let list = s.call("list_sessions", json!({})).await;
    assert!(list.to_string().contains("read-only"), "{list}");
    assert!(!setup.marker().exists());
    // The destructive preset (check_policy types nothing, so nothing risky is typed here).
    setup.write_policy("include = [\"destructive\"]\n");
    for (input, action) in [
        ("rm -rf /", "ask"),
        ("cd /tmp && rm -r -f ~", "ask"),
        ("sudo -u root dd if=/dev/zero of=/dev/sda", "ask"),
        ("bash -c 'shutdown -h now'", "ask"),
        ("git push --force origin main", "ask"),
        ("rm -rf ./build", "allow"),
        ("echo reboot", "allow"),
    ] {
        let c = s.call("check_policy", json!({"session_id": id, "input": input})).await;
        assert_eq!(c["action"], action, "{input}: {c}");
    }
}

/// `approval = "client"` asks the MCP client (elicitation); a client that cannot be asked (this
/// test client declares no elicitation) means no, and the message says why.
#[tokio::test]
async fn client_approval_without_a_client_that_can_answer_is_a_refusal() {
    let setup = Setup::new("approval = \"client\"\n[[rule]]\naction = \"ask\"\nmatch = '^touch\\b'\n");
    let s = setup.server().await;
    let id = s.bash().await;
    setup.answer("yes");
    let e = s
        .call_err("send_input", json!({"session_id": id, "input": format!("touch {}", setup.marker().display())}))
        .await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
    assert!(e["message"].as_str().unwrap().contains("client"), "{e}");
    assert!(!setup.marker().exists());
    assert!(!setup.path("asked").exists(), "the operator's approver was asked instead of the client");
}

#[tokio::test]
async fn the_policy_is_reloaded_and_a_bad_edit_keeps_the_last_good_one() {
    let setup = Setup::new(DENY_TOUCH);
    let s = setup.server().await;
    let id = s.bash().await;
    let touch = format!("touch {}", setup.marker().display());
    let c = s.call("check_policy", json!({"session_id": id, "input": touch})).await;
    assert_eq!(c["action"], "deny", "{c}");
    // A bad edit: the last good policy stays, and the state says why.
    setup.write_policy("[[rule]]\naction = \"deny\"\nmatch = '('\n");
    let c = s.call("check_policy", json!({"session_id": id, "input": touch})).await;
    assert_eq!(c["action"], "deny", "{c}");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert!(st["policy"]["problem"].as_str().is_some_and(|p| p.contains("rule 1")), "{st}");
    // A good edit takes over.
    setup.write_policy("default = \"allow\"\n# touching is fine now\n");
    let r = s.input(&id, &touch).await;
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(setup.marker().exists());
    // A server does not start with a bad policy, nor one others may write.
    setup.write_policy("default = \"sometimes\"");
    let out = start_and_fail(&setup).await;
    assert!(out.contains("sometimes"), "{out}");
    setup.write_policy(DENY_TOUCH);
    std::fs::set_permissions(setup.path("policy.toml"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = start_and_fail(&setup).await;
    assert!(out.contains("writable"), "{out}");
}

/// Runs the server with `setup`'s policy, expecting it to refuse to start; returns its stderr.
async fn start_and_fail(setup: &Setup) -> String {
    let out = tokio::process::Command::new(crate::harness::binary())
        .envs(setup.env())
        .stdin(std::process::Stdio::piped())
        .output();
    let out = tokio::time::timeout(crate::harness::STEP, out).await.unwrap().unwrap();
    assert!(!out.status.success(), "the server started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn decisions_are_audited() {
    use crate::audit::wait_until;
    let setup = Setup::new(&format!("{DENY_TOUCH}\n[[rule]]\naction = \"ask\"\nmatch = '^mkdir\\b'\n"));
    let (_collector, log, env) = setup.audited().await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = Server::start_with_env(&env).await;
    let id = s.bash().await;
    let e = s.call_err("send_input", json!({"session_id": id, "input": "touch /nonexistent/x"})).await;
    assert_eq!(code(&e), "POLICY_DENIED", "{e}");
    let dir = setup.path("made");
    setup.answer("no");
    let e = s.call_err("send_input", json!({"session_id": id, "input": format!("mkdir {}", dir.display())})).await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
    setup.answer("yes");
    s.input(&id, &format!("mkdir {}", dir.display())).await;
    assert!(dir.is_dir());
    let decided = |r: &[Value]| r.iter().filter(|v| v["event"] == "policy_decision").cloned().collect::<Vec<_>>();
    let records = wait_until(&log, "the three decisions", |r| decided(r).len() >= 3).await;
    let seen: Vec<(String, String, String)> = decided(&records)
        .iter()
        .map(|d| {
            let field = |k: &str| d[k].as_str().unwrap_or("-").to_string();
            (field("decision"), field("rule"), field("approver"))
        })
        .collect();
    let expected = [
        ("denied", "rule 1", "-"),
        ("refused", "rule 2", "PTY_MCP_APPROVE"),
        ("approved", "rule 2", "PTY_MCP_APPROVE"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(seen, expected);
    // Only the approved command was typed.
    let typed: Vec<&str> = records.iter().filter_map(|r| r["cmd"].as_str()).collect();
    assert_eq!(typed, [format!("mkdir {}", dir.display())], "{records:?}");
}

#[tokio::test]
async fn over_ssh_the_same_rules_hold() {
    let sshd = crate::ssh::Sshd::start().await;
    let setup = Setup::new(
        r#"
[[rule]]
action = "deny"
match = '^touch\b'
targets = ["testbox"]
reason = "not on testbox"
"#,
    );
    let env = setup.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let s = sshd.server_with(&env).await;
    let v = s.call("create_ssh_session", json!({"host": "testbox"})).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    for input in bypasses(&setup.marker()) {
        let e = s.call_err("send_input", json!({"session_id": id, "input": input})).await;
        assert_eq!(code(&e), "POLICY_DENIED", "{input:?}: {e}");
    }
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(st["policy"]["rules"], 1, "{st}");
    assert_eq!(output(&s.input(&id, "echo over-ssh").await), "over-ssh\n");
    assert!(!setup.marker().exists(), "a denied command ran over SSH");
    // The presets and ask hold over SSH too (check_policy types nothing: no reboot is risked).
    setup.write_policy("include = [\"destructive\"]\n[[rule]]\naction = \"ask\"\nmatch = '^touch\\b'\n");
    for (input, action) in [("sudo reboot", "ask"), ("echo $(mkfs.ext4 /dev/sdz)", "ask"), ("ls", "allow")] {
        let c = s.call("check_policy", json!({"session_id": id, "input": input})).await;
        assert_eq!(c["action"], action, "{input}: {c}");
    }
    setup.answer("no");
    let e = s
        .call_err("send_input", json!({"session_id": id, "input": format!("touch {}", setup.marker().display())}))
        .await;
    assert_eq!(code(&e), "APPROVAL_DENIED", "{e}");
    assert!(!setup.marker().exists(), "a refused command ran over SSH");
    let asked = std::fs::read_to_string(setup.path("asked")).unwrap();
    assert!(asked.starts_with(&format!("root@127.0.0.1:{}|", sshd.port())), "{asked}");
    setup.write_policy("[[rule]]\naction = \"deny\"\nmatch = '^touch\\b'\ntargets = [\"testbox\"]\n");
    // The rule names testbox only: a local session may touch.
    let local = s.bash().await;
    assert_eq!(s.input(&local, &format!("touch {}", setup.marker().display())).await["exit_code"], 0);
}
