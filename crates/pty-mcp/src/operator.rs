//! Asking the operator (the person running the agent) for a secret, so that it goes to the
//! terminal without the agent ever seeing it; or whether the agent may run a command the policy
//! asks about ([`OperatorPrompt::approve`]: `PTY_MCP_APPROVE`, the same dialogs as yes/no
//! questions, `/dev/tty`).
//!
//! One entry point, [`OperatorPrompt::ask`], tries in order: `PTY_MCP_ASKPASS` (a program that
//! prints the secret, like `SSH_ASKPASS`: for headless setups and tests), macOS `osascript`,
//! WSL2 `powershell.exe Get-Credential`, `zenity --password` then `kdialog --password` when a
//! display is present, and `/dev/tty` with echo off. A program that is missing or crashes moves
//! on to the next method; the operator cancelling, or the time running out, ends the chain.
//! Programs get the prompt as an argument or in the environment, never spliced into a script.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use engine::secret::Secret;
use tokio::io::AsyncReadExt;

/// How long the operator has to answer, unless `PTY_MCP_SECRET_TIMEOUT` (seconds) says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why no secret came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptError {
    /// The operator cancelled the dialog.
    Cancelled(&'static str),
    /// Nobody answered in time.
    TimedOut(&'static str),
    /// No method could ask (the methods tried, and why each failed).
    Unavailable(String),
}

/// Asks one question at a time: two dialogs at once would confuse the operator.
pub struct OperatorPrompt {
    timeout: Duration,
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// A way to ask.
struct Method {
    name: &'static str,
    program: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl OperatorPrompt {
    /// A prompt with the given answer timeout.
    pub fn new(timeout: Duration) -> OperatorPrompt {
        OperatorPrompt { timeout, one_at_a_time: tokio::sync::Mutex::new(()) }
    }

    /// Asks the operator for a secret, showing `prompt` verbatim. The answer is taken byte for
    /// byte, except one trailing newline printed by dialog programs.
    pub async fn ask(&self, prompt: &str) -> Result<Secret, PromptError> {
        let _one = self.one_at_a_time.lock().await;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut tried = Vec::new();
        for method in methods(prompt) {
            match run(&method, deadline).await {
                Ok(secret) => return Ok(secret),
                Err(Outcome::Cancelled) => return Err(PromptError::Cancelled(method.name)),
                Err(Outcome::TimedOut) => return Err(PromptError::TimedOut(method.name)),
                Err(Outcome::Failed(why)) => tried.push(format!("{}: {why}", method.name)),
            }
        }
        match ask_tty(prompt, deadline, false).await {
            Ok(secret) => Ok(secret),
            Err(Outcome::Cancelled) => Err(PromptError::Cancelled("/dev/tty")),
            Err(Outcome::TimedOut) => Err(PromptError::TimedOut("/dev/tty")),
            Err(Outcome::Failed(why)) => {
                tried.push(format!("/dev/tty: {why}"));
                Err(PromptError::Unavailable(tried.join("; ")))
            }
        }
    }
}

/// A question the operator approves or refuses.
pub struct Question<'a> {
    /// Where the command would run (the session's target).
    pub target: &'a str,
    /// The exact text that would be typed.
    pub command: &'a str,
    /// Why it is asked.
    pub reason: &'a str,
}

impl Question<'_> {
    fn text(&self) -> String {
        format!(
            "pty-mcp: the agent wants to run this on {}:\n\n{}\n\nWhy it is asked: {}\n\nApprove?",
            self.target, self.command, self.reason
        )
    }
}

impl OperatorPrompt {
    /// Asks the operator to approve `question` within `timeout`; returns how they were asked.
    /// The first method that exists decides: it approving (exit status 0), refusing, crashing,
    /// or the time running out; no method at all is `Unavailable`.
    ///
    /// # Errors
    /// Refused (`Cancelled`), `TimedOut`, or `Unavailable` (the methods tried, and why).
    pub async fn approve(&self, question: &Question<'_>, timeout: Duration) -> Result<&'static str, PromptError> {
        let _one = self.one_at_a_time.lock().await;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tried = Vec::new();
        for method in question_methods(question) {
            match ask_question(&method, deadline).await {
                Ok(()) => return Ok(method.name),
                Err(Outcome::Cancelled) => return Err(PromptError::Cancelled(method.name)),
                Err(Outcome::TimedOut) => return Err(PromptError::TimedOut(method.name)),
                Err(Outcome::Failed(why)) if why == NOT_INSTALLED => tried.push(format!("{}: {why}", method.name)),
                // An approver that crashes approves nothing, and no other is asked instead.
                Err(Outcome::Failed(why)) => return Err(PromptError::Unavailable(format!("{}: {why}", method.name))),
            }
        }
        let answer = async {
            let line = ask_tty(&format!("{} [y/N] ", question.text()), deadline, true).await?;
            let yes = matches!(line.expose().trim_ascii(), b"y" | b"Y" | b"yes" | b"YES" | b"Yes");
            if yes { Ok(()) } else { Err(Outcome::Cancelled) }
        };
        match answer.await {
            Ok(()) => Ok("/dev/tty"),
            Err(Outcome::Cancelled) => Err(PromptError::Cancelled("/dev/tty")),
            Err(Outcome::TimedOut) => Err(PromptError::TimedOut("/dev/tty")),
            Err(Outcome::Failed(why)) => {
                tried.push(format!("/dev/tty: {why}"));
                Err(PromptError::Unavailable(tried.join("; ")))
            }
        }
    }
}

const NOT_INSTALLED: &str = "not installed";

/// The yes/no programs to try on this machine, in order. Each gets the question as data (an
/// argument or the environment), never as script source.
fn question_methods(q: &Question<'_>) -> Vec<Method> {
    let mut out = Vec::new();
    let env = vec![
        ("PTY_MCP_APPROVE_TARGET", q.target.to_string()),
        ("PTY_MCP_APPROVE_COMMAND", q.command.to_string()),
        ("PTY_MCP_APPROVE_REASON", q.reason.to_string()),
    ];
    if let Some(approve) = std::env::var_os("PTY_MCP_APPROVE").filter(|v| !v.is_empty()) {
        out.push(Method {
            name: "PTY_MCP_APPROVE",
            program: approve.to_string_lossy().into_owned(),
            args: vec![q.target.to_string(), q.command.to_string(), q.reason.to_string()],
            env,
        });
    }
    let text = q.text();
    if cfg!(target_os = "macos") {
        let script = "on run argv\ndisplay dialog (item 1 of argv) buttons {\"Refuse\", \"Approve\"} default button \"Refuse\" cancel button \"Refuse\" with title \"pty-mcp\"\nend run";
        out.push(Method {
            name: "osascript",
            program: "osascript".into(),
            args: vec!["-e".into(), script.into(), text.clone()],
            env: vec![],
        });
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if display {
        out.push(Method {
            name: "zenity",
            program: "zenity".into(),
            args: vec!["--question".into(), "--title=pty-mcp".into(), "--no-markup".into(), format!("--text={text}")],
            env: vec![],
        });
        out.push(Method {
            name: "kdialog",
            program: "kdialog".into(),
            args: vec!["--title".into(), "pty-mcp".into(), "--warningyesno".into(), text],
            env: vec![],
        });
    }
    out
}

/// Starts a dialog program (killed if the wait for it is given up).
fn spawn(method: &Method, stdout: Stdio) -> Result<tokio::process::Child, Outcome> {
    tokio::process::Command::new(&method.program)
        .args(&method.args)
        .envs(method.env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Outcome::Failed(if e.kind() == io::ErrorKind::NotFound { NOT_INSTALLED.into() } else { e.to_string() })
        })
}

/// Runs a yes/no program: exit status 0 is yes.
async fn ask_question(method: &Method, deadline: tokio::time::Instant) -> Result<(), Outcome> {
    let mut child = spawn(method, Stdio::null())?;
    match tokio::time::timeout_at(deadline, child.wait()).await {
        Err(_) => Err(Outcome::TimedOut),
        Ok(Err(e)) => Err(Outcome::Failed(e.to_string())),
        Ok(Ok(status)) => match status.code() {
            Some(0) => Ok(()),
            Some(_) => Err(Outcome::Cancelled),
            None => Err(Outcome::Failed("it crashed".into())),
        },
    }
}

enum Outcome {
    Cancelled,
    TimedOut,
    Failed(String),
}

/// The dialog programs to try on this machine, in order.
fn methods(prompt: &str) -> Vec<Method> {
    let mut out = Vec::new();
    if let Some(askpass) = std::env::var_os("PTY_MCP_ASKPASS").filter(|v| !v.is_empty()) {
        out.push(Method {
            name: "PTY_MCP_ASKPASS",
            program: askpass.to_string_lossy().into_owned(),
            args: vec![prompt.to_string()],
            env: vec![],
        });
    }
    if cfg!(target_os = "macos") {
        // The prompt arrives as argv: nothing of it is AppleScript source.
        let script = "on run argv\ntext returned of (display dialog (item 1 of argv) default answer \"\" with hidden answer with title \"pty-mcp\")\nend run";
        out.push(Method {
            name: "osascript",
            program: "osascript".into(),
            args: vec!["-e".into(), script.into(), prompt.to_string()],
            env: vec![],
        });
    }
    let wsl =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").is_ok_and(|r| r.to_lowercase().contains("microsoft"));
    if wsl {
        // The prompt travels in the environment, read by PowerShell as data.
        let script = "$c = Get-Credential -UserName 'pty-mcp' -Message $env:PTY_MCP_PROMPT; if ($c -eq $null) { exit 1 }; [Console]::Out.Write($c.GetNetworkCredential().Password)";
        out.push(Method {
            name: "powershell.exe",
            program: "powershell.exe".into(),
            args: vec!["-NoProfile".into(), "-NonInteractive".into(), "-Command".into(), script.into()],
            // A Windows program sees only the variables WSLENV names.
            env: vec![("PTY_MCP_PROMPT", prompt.to_string()), ("WSLENV", wslenv_with("PTY_MCP_PROMPT"))],
        });
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if display {
        out.push(Method {
            name: "zenity",
            program: "zenity".into(),
            args: vec!["--password".into(), "--title".into(), prompt.to_string()],
            env: vec![],
        });
        out.push(Method {
            name: "kdialog",
            program: "kdialog".into(),
            args: vec!["--title".into(), "pty-mcp".into(), "--password".into(), prompt.to_string()],
            env: vec![],
        });
    }
    out
}

/// `$WSLENV` with `name` added: the list of variables WSL passes on to Windows programs.
fn wslenv_with(name: &str) -> String {
    match std::env::var("WSLENV") {
        Ok(list) if !list.is_empty() => format!("{list}:{name}"),
        _ => name.to_string(),
    }
}
/// Runs a dialog program; its standard output is the secret.
async fn run(method: &Method, deadline: tokio::time::Instant) -> Result<Secret, Outcome> {
    let mut child = spawn(method, Stdio::piped())?;
    let mut stdout = child.stdout.take().ok_or_else(|| Outcome::Failed("no output pipe".into()))?;
    // Room enough that the buffer is not reallocated (leaving copies behind) for any password.
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(8192));
    let work = async {
        stdout.read_to_end(&mut buf).await?;
        child.wait().await
    };
    let status = match tokio::time::timeout_at(deadline, work).await {
        Err(_) => return Err(Outcome::TimedOut),
        Ok(Err(e)) => return Err(Outcome::Failed(e.to_string())),
        Ok(Ok(status)) => status,
    };
    match status.code() {
        Some(0) => Ok(Secret::from_program_output(std::mem::take(&mut *buf))),
        // Dialogs exit 1 (or another status) when the operator presses Cancel.
        Some(_) => Err(Outcome::Cancelled),
        None => Err(Outcome::Failed("it crashed".into())),
    }
}

/// The last resort: the controlling terminal, if the server has one (echo off for a secret).
async fn ask_tty(prompt: &str, deadline: tokio::time::Instant, echo: bool) -> Result<Secret, Outcome> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open("/dev/tty")
        .map_err(|e| Outcome::Failed(format!("no terminal ({e})")))?;
    let fd: OwnedFd = file.into();
    // SAFETY: the AsyncFd owns the descriptor, so it stays open as long as it is registered.
    let tty = unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(|e| Outcome::Failed(e.to_string()))?;
    // Declared after `tty`, so echo comes back on before the descriptor closes.
    let _echo_off =
        if echo { None } else { Some(EchoOff::new(tty.get_ref()).map_err(|e| Outcome::Failed(e.to_string()))?) };
    write_all(tty.get_ref(), prompt.as_bytes()).map_err(|e| Outcome::Failed(e.to_string()))?;
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(1024));
    let read = async {
        loop {
            let mut guard = tty.readable().await?;
            let mut byte = [0u8; 1];
            match guard.try_io(|fd| read_some(fd.get_ref(), &mut byte)) {
                Ok(Ok(0)) => return Ok::<bool, io::Error>(false),
                Ok(Ok(_)) if byte[0] == b'\n' || byte[0] == b'\r' => return Ok(true),
                Ok(Ok(_)) => line.push(byte[0]),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    };
    let outcome = tokio::time::timeout_at(deadline, read).await;
    let _ = write_all(tty.get_ref(), b"\n");
    match outcome {
        Err(_) => Err(Outcome::TimedOut),
        Ok(Err(e)) => Err(Outcome::Failed(e.to_string())),
        Ok(Ok(false)) => Err(Outcome::Cancelled),
        Ok(Ok(true)) => Ok(Secret::new(std::mem::take(&mut *line))),
    }
}

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a live buffer of the given length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: writing from a live buffer of the given length.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Turns the terminal's echo off for its lifetime.
struct EchoOff {
    fd: i32,
    saved: libc::termios,
}

impl EchoOff {
    fn new(fd: &OwnedFd) -> io::Result<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr on a descriptor we hold, with a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd.as_raw_fd(), &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t);
            Ok(EchoOff { fd: fd.as_raw_fd(), saved })
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restoring the flags saved from the same descriptor, which outlives us.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}
