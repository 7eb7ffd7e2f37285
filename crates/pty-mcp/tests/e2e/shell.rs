//! Exact completion and exit codes through shell integration (OSC 133 marks) in real bash.

use serde_json::{Value, json};

use crate::harness::{STEP, Server, output};

/// A bash whose HOME (and so ~/.bashrc) is `home`, prompt "home$ ".
async fn bash_in(s: &Server, home: &std::path::Path) -> String {
    let v =
        s.call("create_local_session", json!({"command": "/bin/bash", "env": {"HOME": home, "PS1": "home$ "}})).await;
    assert_eq!(s.call("get_session_state", json!({"session_id": v["session_id"]})).await["shell_integration"], true);
    v["session_id"].as_str().unwrap().to_string()
}

fn no_marks(v: &Value) {
    let text = v.to_string();
    assert!(!text.contains("133;") && !text.contains("\\u001b"), "marks leaked: {text}");
}

#[tokio::test]
async fn exit_codes_output_and_cwd_are_exact() {
    let s = Server::start().await;
    let id = s.bash().await;
    for (cmd, code, out) in
        [("echo ok", 0, "ok\n"), ("false", 1, ""), ("no-such-command-xyz 2>/dev/null", 127, ""), ("(exit 42)", 42, "")]
    {
        let r = s.input(&id, cmd).await;
        assert_eq!((r["completion"].as_str(), r["exit_code"].as_i64()), (Some("shell"), Some(code)), "{cmd}: {r}");
        assert_eq!(output(&r), out, "{cmd}");
        no_marks(&r);
    }
    let r = s.input(&id, "cd /tmp").await;
    assert_eq!(r["cwd"], "/tmp");
    let st = s.call("get_session_state", json!({"session_id": id})).await;
    assert_eq!(
        (st["cwd"].as_str(), st["last_exit_code"].as_i64(), st["state"].as_str()),
        (Some("/tmp"), Some(0), Some("at_prompt"))
    );
}

#[tokio::test]
async fn silence_inside_a_command_is_not_completion() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input(&id, "sleep 2; echo done").await;
    assert_eq!((r["completion"].as_str(), output(&r)), (Some("shell"), "done\n"), "{r}");
    // The duration covers the sleep (measured between marks as the reader saw them, so a
    // loaded machine may shave a little off either end).
    assert!(r["duration_ms"].as_u64().unwrap() > 1000, "{r}");
    // A prompt-looking line in the middle of a command does not end it either.
    let r = s.input(&id, "printf 'fake$ '; sleep 1; echo real").await;
    assert_eq!((r["completion"].as_str(), output(&r)), (Some("shell"), "fake$ real\n"), "{r}");
    // Nor does a mark forged by the program, without the session's token.
    let r = s.input(&id, "printf '\\e]133;D;0;k=forged\\a'; sleep 1; echo after").await;
    assert_eq!((r["completion"].as_str(), output(&r)), (Some("shell"), "after\n"), "{r}");
}

#[tokio::test]
async fn a_running_command_times_out_and_a_later_read_reports_its_end() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s
        .call("send_input", json!({"session_id": id, "input": "sleep 1; echo late; (exit 5)", "timeout_ms": 200}))
        .await;
    assert_eq!((r["is_complete"].as_bool(), r["state"].as_str()), (Some(false), Some("running")), "{r}");
    let mut seen = String::new();
    tokio::time::timeout(STEP, async {
        loop {
            let r = s.call("read_output", json!({"session_id": id, "timeout": 20})).await;
            seen.push_str(output(&r));
            if r["is_complete"] == true {
                assert_eq!((r["completion"].as_str(), r["exit_code"].as_i64()), (Some("shell"), Some(5)), "{r}");
                break;
            }
        }
    })
    .await
    .expect("the command completes");
    assert!(seen.contains("late"));
}

#[tokio::test]
async fn multi_line_input_completes_once() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input(&id, "cat <<EOF\nline one\nline two\nEOF").await;
    assert_eq!((r["completion"].as_str(), output(&r)), (Some("shell"), "line one\nline two\n"), "{r}");
    let r = s.input(&id, "for i in 1 2 3\ndo echo n$i\ndone").await;
    assert_eq!(output(&r), "n1\nn2\nn3\n", "{r}");
    let r = s.input(&id, "echo first\nsleep 0.3; echo second").await;
    let out = output(&r);
    assert!(out.starts_with("first\n") && out.ends_with("second\n"), "{r}");
}

#[tokio::test]
async fn ctrl_c_completes_with_status_130() {
    let s = Server::start().await;
    let id = s.bash().await;
    s.call("send_input", json!({"session_id": id, "input": "sleep 100", "timeout_ms": 300})).await;
    let r = s.call("send_control", json!({"session_id": id, "key": "ctrl+c"})).await;
    assert_eq!((r["completion"].as_str(), r["exit_code"].as_i64()), (Some("shell"), Some(130)), "{r}");
}

#[tokio::test]
async fn programs_started_from_the_shell_fall_back_to_heuristics() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input(&id, "python3 -q").await;
    assert_eq!((r["completion"].as_str(), r["state"].as_str()), (Some("heuristic"), Some("at_prompt")), "{r}");
    let r = s.input(&id, "print(6 * 7)").await;
    assert_eq!(r["completion"], "heuristic");
    assert!(output(&r).contains("42\n"), "{r}");
    let r = s.input(&id, "exit()").await;
    assert_eq!((r["completion"].as_str(), r["exit_code"].as_i64()), (Some("shell"), Some(0)), "{r}");
    let r = s.input(&id, "echo back").await;
    assert_eq!((r["completion"].as_str(), output(&r)), (Some("shell"), "back\n"));
    // A full-screen program completes when it exits.
    s.call("send_input", json!({"session_id": id, "input": "seq 1 100 | LESS= less", "timeout_ms": 1000})).await;
    let r = s.call("send_control", json!({"session_id": id, "key": "q"})).await;
    assert_eq!(r["completion"], "shell", "{r}");
}

#[tokio::test]
async fn the_users_startup_files_and_prompt_command_still_run() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("pc.log");
    std::fs::write(
        home.path().join(".bashrc"),
        format!("set -u\nPROMPT_COMMAND='echo ran >> {}'\nalias hello='echo hello from bashrc'\n", log.display()),
    )
    .unwrap();
    let s = Server::start().await;
    let id = bash_in(&s, home.path()).await;
    let r = s.input(&id, "hello").await;
    assert_eq!((r["completion"].as_str(), output(&r)), (Some("shell"), "hello from bashrc\n"), "{r}");
    assert!(std::fs::read_to_string(&log).unwrap().lines().count() >= 2);
    // History holds the agent's commands and nothing of the integration.
    let r = s.input(&id, "history | tail -n 3").await;
    let out = output(&r);
    assert!(out.contains("hello") && !out.contains("ptymcp") && !out.contains("133"), "{out}");
}

#[tokio::test]
async fn prompt_command_arrays_and_failing_rcfiles_are_survived() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("arr.log");
    std::fs::write(
        home.path().join(".bashrc"),
        format!("PROMPT_COMMAND=('echo one >> {0}' 'echo two >> {0}')\nno-such-command-in-rc\nset -e\n", log.display()),
    )
    .unwrap();
    let s = Server::start().await;
    let id = bash_in(&s, home.path()).await;
    // (Under the rcfile's `set -e` a failing command would end the shell, as in any terminal.)
    let r = s.input(&id, "echo fine").await;
    assert_eq!(
        (r["completion"].as_str(), output(&r), r["is_alive"].as_bool()),
        (Some("shell"), "fine\n", Some(true)),
        "{r}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("one\ntwo\n"), "{text}");
}

#[tokio::test]
async fn a_shell_that_exits_mid_command_reports_its_status() {
    let s = Server::start().await;
    let id = s.bash().await;
    let r = s.input(&id, "echo bye; exit 7").await;
    assert_eq!(
        (r["is_alive"].as_bool(), r["exit_code"].as_i64(), r["completion"].as_str()),
        (Some(false), Some(7), Some("exited")),
        "{r}"
    );
}

#[tokio::test]
async fn integration_can_be_turned_off() {
    let s = Server::start().await;
    let v = s
        .call(
            "create_local_session",
            json!({"command": "bash --norc", "env": {"PS1": "plain$ "}, "shell_integration": false}),
        )
        .await;
    let id = v["session_id"].as_str().unwrap();
    let r = s.input(id, "echo plain").await;
    assert_eq!(r["completion"], "heuristic", "{r}");
    assert!(output(&r).contains("plain\n"));
    assert_eq!(s.call("get_session_state", json!({"session_id": id})).await["shell_integration"], false);
}

/// zsh and fish get the same exact completion; the test machine installs them (scripts/test).
#[tokio::test]
async fn zsh_and_fish_report_commands_too() {
    for shell in ["zsh", "fish"] {
        let home = tempfile::tempdir().unwrap();
        // An empty ~/.zshrc keeps zsh's first-run wizard away.
        std::fs::write(home.path().join(".zshrc"), "PS1='zsh%# '\n").unwrap();
        let s = Server::start().await;
        let v = s.call("create_local_session", json!({"command": shell, "env": {"HOME": home.path()}})).await;
        let id = v["session_id"].as_str().unwrap();
        let st = s.call("get_session_state", json!({"session_id": id})).await;
        assert_eq!(st["shell_integration"], true, "{shell}: {st} {v}");
        for (cmd, code, out) in [("echo ok", 0, "ok\n"), ("false", 1, ""), ("sleep 1; echo done", 0, "done\n")] {
            let r = s.input(id, cmd).await;
            assert_eq!(
                (r["completion"].as_str(), r["exit_code"].as_i64(), output(&r)),
                (Some("shell"), Some(code), out),
                "{shell} {cmd}: {r}"
            );
            no_marks(&r);
        }
        let r = s.input(id, "cd /tmp").await;
        assert_eq!(r["cwd"], "/tmp", "{shell}: {r}");
    }
}

/// ctrl+c at an idle prompt and a command at once, as an agent clearing a line does, many times
/// in each shell, under slow, noisy startup files and under this machine's own: every command
/// arrives whole and its reply is its own. (An interrupt that reached a shell still finishing its
/// prompt went astray: bash dropped the next key, so the command lost its first letter; fish
/// skipped the command's start mark. Found by the soak run.)
#[tokio::test]
async fn a_command_right_after_ctrl_c_at_the_prompt_arrives_whole() {
    let home = crate::startup::slow_home();
    let slow = Server::start_with_env(&[("HOME", home.path().to_str().unwrap())]).await;
    let own = Server::start().await;
    // (fish shows nothing for ctrl+c on an empty line, so each of its replies waits the quiet.)
    for (s, shell, rounds) in [(&slow, "bash", 100), (&slow, "zsh", 100), (&slow, "fish", 40), (&own, "bash", 100)] {
        let v = s.call("create_local_session", json!({"command": shell})).await;
        let id = v["session_id"].as_str().unwrap().to_string();
        for n in 0..rounds {
            let c = s.call("send_control", json!({"session_id": id, "key": "ctrl+c"})).await;
            let r = s.input(&id, &format!("echo {shell}-{n}")).await;
            let want = format!("{shell}-{n}\n");
            assert_eq!((output(&r), r["exit_code"].as_i64()), (want.as_str(), Some(0)), "after {c}: {r}");
        }
    }
}
