//! A reply belongs to its own command, on a machine as users have it: startup files that are
//! slow and chatty (pyenv, nvm, conda take about half a second), prompts that take time to draw,
//! and no warm-up command before the first real one. Each case runs many fresh sessions.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Server, output};
use crate::persistent::{Runtime, bin_dir};
use crate::ssh::Sshd;

/// How many fresh sessions each case goes through, and how many run at once (the load of
/// several shells starting together is part of the test).
const ROUNDS: usize = 20;
const AT_ONCE: usize = 4;

/// What slow startup files print before they sleep.
const BANNER: &str = "banner: welcome to the slow machine";

/// A HOME whose startup files for bash, zsh and fish print a banner and a noisy line, then
/// take 0.8 s, as a developer machine's do.
pub fn slow_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let noisy = format!("echo '{BANNER}'; printf 'loading \\033[1mplugins\\033[0m...\\r\\n'; sleep 0.8");
    let bashrc = format!("{noisy}\nPS1='slow \\w\\$ '\n");
    std::fs::write(h.join(".bashrc"), &bashrc).unwrap();
    // A login shell (sshd starts one) reads .bash_profile, which takes .bashrc along.
    std::fs::write(h.join(".bash_profile"), ". ~/.bashrc\n").unwrap();
    std::fs::write(h.join(".zshrc"), format!("{noisy}\nPS1='slow %~%# '\n")).unwrap();
    std::fs::create_dir_all(h.join(".config/fish")).unwrap();
    std::fs::write(h.join(".config/fish/config.fish"), format!("{noisy}\n")).unwrap();
    home
}

/// The first command and its exact answer, in the shell's own syntax.
fn first_command(shell: &str) -> &'static str {
    if shell == "fish" { "echo first-(math 40 + 2)" } else { "echo first-$((40+2))" }
}

/// One fresh session: handed over at its prompt with the banner, the first command answered
/// exactly, and the second too.
async fn fresh_session_is_exact(s: &Server, tool: &str, args: Value, shell: &str, round: usize) {
    let v = s.call(tool, args).await;
    let id = v["session_id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "at_prompt", "round {round}: {v}");
    assert!(output(&v).contains(BANNER), "round {round}: the banner is in the reply: {v}");
    let r = s.input(&id, first_command(shell)).await;
    assert_eq!(
        (output(&r), r["exit_code"].as_i64(), r["completion"].as_str()),
        ("first-42\n", Some(0), Some("shell")),
        "round {round}: the first command's own reply: {r}"
    );
    let r = s.input(&id, &format!("echo second-{round}; false")).await;
    assert_eq!(
        (output(&r), r["exit_code"].as_i64()),
        (format!("second-{round}\n").as_str(), Some(1)),
        "round {round}: the second command's own reply: {r}"
    );
    s.call("close_session", json!({"session_id": id})).await;
}

/// Runs `ROUNDS` fresh sessions, `AT_ONCE` at a time.
async fn rounds(s: &Server, tool: &str, args: impl Fn() -> Value, shell: &str) {
    for batch in (0..ROUNDS).collect::<Vec<_>>().chunks(AT_ONCE) {
        let runs = batch.iter().map(|&round| fresh_session_is_exact(s, tool, args(), shell, round));
        futures::future::join_all(runs).await;
    }
}

async fn local_rounds(shell: &str) {
    let home = slow_home();
    let s = Server::start_with_env(&[("HOME", home.path().to_str().unwrap())]).await;
    let config = home.path().join(".config");
    let args = || json!({"command": shell, "env": {"XDG_CONFIG_HOME": config}});
    rounds(&s, "create_local_session", args, shell).await;
}

#[tokio::test]
async fn bash_with_slow_startup_files_answers_each_command_exactly() {
    local_rounds("bash").await;
}

#[tokio::test]
async fn zsh_with_slow_startup_files_answers_each_command_exactly() {
    local_rounds("zsh").await;
}

#[tokio::test]
async fn fish_with_slow_startup_files_answers_each_command_exactly() {
    local_rounds("fish").await;
}

#[tokio::test]
async fn a_persistent_bash_with_slow_startup_files_answers_each_command_exactly() {
    let home = slow_home();
    let rt = Runtime::new();
    let s = Server::start_with_env(&[("HOME", home.path().to_str().unwrap()), rt.env()]).await;
    rounds(&s, "create_local_session", || json!({"command": "bash", "persistent": true}), "bash").await;
}

/// sshd whose login shells have the slow HOME, and find the built ai-tmux with its daemon's
/// socket in `rt`.
async fn sshd_with_home(home: &Path, rt: &Runtime) -> Sshd {
    let home = home.display().to_string();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    let socket = rt.socket.clone();
    Sshd::start_with(move |_| format!("SetEnv HOME={home} PATH={path} AI_TMUX_SOCKET={socket}\n")).await
}

#[tokio::test]
async fn a_remote_bash_with_slow_startup_files_answers_each_command_exactly() {
    let (home, rt) = (slow_home(), Runtime::new());
    let sshd = sshd_with_home(home.path(), &rt).await;
    let s = sshd.server().await;
    rounds(&s, "create_ssh_session", || json!({"host": "testbox"}), "bash").await;
}

#[tokio::test]
async fn a_persistent_remote_bash_with_slow_startup_files_answers_each_command_exactly() {
    let (home, rt) = (slow_home(), Runtime::new());
    let sshd = sshd_with_home(home.path(), &rt).await;
    let s = sshd.server().await;
    rounds(&s, "create_ssh_session", || json!({"host": "testbox", "persistent": true}), "bash").await;
}

/// A prompt that takes 300 ms to draw: the next command is typed while it is being drawn.
#[tokio::test]
async fn a_slow_prompt_never_shifts_replies() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".bashrc"), "PROMPT_COMMAND='sleep 0.3'\nPS1='p$ '\n").unwrap();
    let s = Server::start_with_env(&[("HOME", home.path().to_str().unwrap())]).await;
    for round in 0..5 {
        let v = s.call("create_local_session", json!({"command": "bash"})).await;
        let id = v["session_id"].as_str().unwrap();
        for (cmd, out, code) in
            [("echo one", "one\n", 0), ("echo two; (exit 2)", "two\n", 2), ("printf three", "three", 0)]
        {
            let r = s.input(id, cmd).await;
            assert_eq!((output(&r), r["exit_code"].as_i64()), (out, Some(code)), "round {round}, {cmd}: {r}");
        }
        s.call("close_session", json!({"session_id": id})).await;
    }
}

/// A command whose reply timed out is still running when the next one is typed: the next
/// reply waits for its own command and never reports the earlier one's end as its own.
#[tokio::test]
async fn a_reply_after_a_timeout_is_its_own_commands() {
    let s = Server::start().await;
    for round in 0..5 {
        let id = s.bash().await;
        let r = s
            .call("send_input", json!({"session_id": id, "input": "sleep 1; echo late; (exit 7)", "timeout_ms": 100}))
            .await;
        assert_eq!(r["is_complete"], false, "{r}");
        let r = s.input(&id, "echo next").await;
        assert_eq!(
            (output(&r), r["exit_code"].as_i64(), r["completion"].as_str()),
            ("next\n", Some(0), Some("shell")),
            "round {round}: {r}"
        );
        let warning = r["warnings"].to_string();
        assert!(warning.contains("exit status 7"), "the earlier command's end is reported apart: {r}");
        // Two lines queued behind a running command: each reply is its own.
        s.call("send_input", json!({"session_id": id, "input": "sleep 1; echo a", "timeout_ms": 50})).await;
        s.call("send_input", json!({"session_id": id, "input": "echo b; (exit 4)", "timeout_ms": 50})).await;
        let r = s.input(&id, "echo c").await;
        assert_eq!((output(&r), r["exit_code"].as_i64()), ("c\n", Some(0)), "round {round}: {r}");
        s.call("close_session", json!({"session_id": id})).await;
    }
}

/// The home rule: `$HOME/.ssh/config` and `$HOME/.ssh/known_hosts` are the user's files
/// whether `ssh -G` reads the config or pty-mcp does (no `ssh` on PATH).
#[tokio::test]
async fn ssh_config_and_known_hosts_come_from_home_with_and_without_ssh() {
    let sshd = Sshd::start().await;
    let home = tempfile::tempdir().unwrap();
    let dot_ssh = home.path().join(".ssh");
    std::fs::create_dir_all(&dot_ssh).unwrap();
    std::fs::copy(sshd.path("id_ed25519"), dot_ssh.join("id_alias")).unwrap();
    std::fs::copy(sshd.path("known_hosts"), dot_ssh.join("known_hosts")).unwrap();
    std::fs::write(
        dot_ssh.join("config"),
        format!(
            "Host myalias\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_alias\n  \
             IdentityAgent none\n",
            sshd.port()
        ),
    )
    .unwrap();
    let home_s = home.path().to_str().unwrap();
    for path in [std::env::var("PATH").unwrap(), "/nonexistent".to_string()] {
        let s = Server::start_with_env(&[("HOME", home_s), ("PATH", &path), ("SSH_AUTH_SOCK", "")]).await;
        let v = s.call("create_ssh_session", json!({"host": "myalias", "command": "bash --norc"})).await;
        let id = v["session_id"].as_str().unwrap();
        let r =
            s.call("send_input", json!({"session_id": id, "input": "echo in-$((40+2))", "wait_for": "^in-42"})).await;
        assert_eq!(r["matched"], true, "PATH={path}: {r}");
    }
}
