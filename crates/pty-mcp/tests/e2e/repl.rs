//! Programs without shell integration (REPLs started directly, remote programs): a reply is
//! complete only when the program is known to wait for input, and holds the answer, not the
//! echo of the line typed.

use serde_json::json;

use crate::harness::{STEP, Server, output};
use crate::ssh::Sshd;

#[tokio::test]
async fn a_busy_python_is_not_called_complete() {
    let s = Server::start().await;
    let id = s.session("python3 -q").await;
    for round in 0..3 {
        let r = s.input(&id, "import time; time.sleep(1.2); print('slept-42')").await;
        // Complete only with the answer in it.
        if r["is_complete"] == true {
            assert_eq!((output(&r), r["prompt"].as_str()), ("slept-42\n", Some(">>>")), "round {round}: {r}");
        } else {
            assert_eq!(r["completion"], "timeout", "round {round}: {r}");
        }
        let r = s.input(&id, "sum(range(10**7))").await;
        assert_eq!((output(&r), r["is_complete"].as_bool()), ("49999995000000\n", Some(true)), "{r}");
    }
}

#[tokio::test]
async fn repl_replies_hold_the_answer_without_the_echo() {
    let s = Server::start().await;
    let py = s.session("python3 -q").await;
    let r = s.input(&py, "print('hello')").await;
    assert_eq!(
        (output(&r), r["prompt"].as_str(), r["completion"].as_str()),
        ("hello\n", Some(">>>"), Some("heuristic"))
    );
    let r = s.input(&py, "for i in range(3):\n    print(i * 7)\n").await;
    assert_eq!((output(&r), r["prompt"].as_str()), ("0\n7\n14\n", Some(">>>")), "{r}");
    // include_prompt shows everything, as before.
    let r = s.call("send_input", json!({"session_id": py, "input": "print(2)", "include_prompt": true})).await;
    assert_eq!(output(&r), "print(2)\n2\n>>> ", "{r}");

    let node = s.session("node").await;
    let r = s.input(&node, "6 * 7").await;
    assert_eq!((output(&r), r["prompt"].as_str()), ("42\n", Some(">")), "{r}");
    let r = s.input(&node, "for (let i = 0; i < 3; i++) {\nconsole.log(i * 7)\n}").await;
    assert!(output(&r).starts_with("0\n7\n14\n"), "{r}");
}

#[tokio::test]
async fn a_program_that_does_not_echo_keeps_its_output() {
    let s = Server::start().await;
    let id = s.session("sh -c 'stty -echo; exec cat -u'").await;
    let r = s.input(&id, "typed-line").await;
    // The program's own copy of the line is its output, not an echo to remove.
    assert_eq!(output(&r), "typed-line\n", "{r}");
}

#[tokio::test]
async fn a_busy_remote_program_is_quiet_not_complete() {
    let sshd = Sshd::start().await;
    let s = sshd.server().await;
    let v = s.call("create_ssh_session", json!({"host": "testbox", "command": "python3 -q"})).await;
    let id = v["session_id"].as_str().unwrap();
    let r = s
        .call("send_input", json!({"session_id": id, "input": "import time; time.sleep(1); print('remote-42')"}))
        .await;
    assert_eq!((r["is_complete"].as_bool(), r["completion"].as_str()), (Some(false), Some("quiet")), "{r}");
    let mut seen = output(&r).to_string();
    tokio::time::timeout(STEP, async {
        while !seen.contains("remote-42") {
            let r = s.call("read_output", json!({"session_id": id, "timeout": 10})).await;
            seen.push_str(output(&r));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the result never came: {seen:?}"));
}
