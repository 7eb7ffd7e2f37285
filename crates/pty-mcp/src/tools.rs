//! What each tool does: validate, call the engine, shape the reply. No MCP types in here; the
//! server (`server.rs`) turns these results and errors into tool results.

use std::time::{Duration, SystemTime};

use engine::record::{LogFormat, LogSpec, Recorder};
use engine::shell::{Finished, Typed};
use engine::transport::local::{self, LocalCommand};
use engine::{Echo, Offset, PatternWait, Session, SessionConfig, Settle, Settled, keys};
use regex::{Regex, RegexBuilder};
use serde::Serialize;
use tokio::time::Instant;

use crate::error::ToolError;
use crate::manager::{Entry, SessionManager};
use crate::params::*;
use crate::persistent;
use crate::reply::{self, DEFAULT_MAX_OUTPUT, Rendered};

/// Quiet that ends a wait when no prompt is recognised (the Go version's value).
const DEFAULT_SETTLE: Duration = Duration::from_millis(300);
/// How long typing may block on a program that does not read its input.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait a call may ask for, in seconds (the Go version's cap).
pub const MAX_WAIT_SECS: i64 = 600;
/// `send_input`'s `wait_for_timeout` when not given, in seconds.
pub const DEFAULT_WAIT_FOR_SECS: i64 = 10;
/// `read_output`'s `timeout` when not given, in seconds.
pub const DEFAULT_READ_SECS: i64 = 5;
/// Input larger than this is refused: it is a mistake, not a command.
const MAX_INPUT: usize = 1 << 20;
/// How long a new session may take to show its first prompt.
const BANNER_WAIT: Duration = Duration::from_secs(2);

/// Server-wide settings the tools read.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Transcript bytes per session.
    pub buffer_size: usize,
}

/// Collects notes about clamped or reinterpreted parameters for the reply.
#[derive(Debug, Default)]
pub struct Warnings(pub Vec<String>);

impl Warnings {
    /// `value` clamped to `[min, max]`, or `default` when absent; a clamp is reported.
    fn clamp(&mut self, name: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
        let Some(v) = value else { return default };
        let c = v.clamp(min, max);
        if c != v {
            self.0.push(format!("{name} {v} is out of range; {c} was used"));
        }
        c
    }
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

/// Compiles an agent's pattern with bounded size; an invalid one becomes a literal match.
pub fn compile_pattern(pattern: &str, warnings: &mut Warnings) -> Result<Regex, ToolError> {
    let build = |p: &str| RegexBuilder::new(p).size_limit(1 << 20).dfa_size_limit(1 << 20).nest_limit(64).build();
    match build(pattern) {
        Ok(re) => Ok(re),
        Err(e) => {
            let reason = e.to_string().lines().last().unwrap_or_default().trim().to_string();
            warnings.0.push(format!("wait_for is not a valid regex ({reason}); it was matched as literal text"));
            build(&regex::escape(pattern))
                .map_err(|_| ToolError::invalid("wait_for is too large to match, even as literal text"))
        }
    }
}

fn exit_fields(session: &Session) -> (Option<i32>, Option<i32>) {
    session.exit().map(|e| (e.code, e.signal)).unwrap_or_default()
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Output and where it lies in the transcript: the reply of send_input, send_control and the
/// settle mode of read_output.
#[derive(Debug, Default, Serialize)]
pub struct OutputReply {
    /// Clean text (escape sequences removed, redraws resolved).
    pub output: String,
    /// The prompt the program is back at, left out of `output` (programs without shell
    /// integration, e.g. `>>>` after a python3 line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Where the next read continues (absolute byte offset).
    pub cursor: u64,
    /// Offset where this output begins (it ends at `cursor`; the Go version's `cursor_end`,
    /// always equal to `cursor`, is left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor_start: Option<u64>,
    /// Whether the program is still running.
    pub is_alive: bool,
    /// Whether the program finished answering (a prompt came back, output went quiet, or it exited).
    pub is_complete: bool,
    /// How completion was judged: "shell" (the integrated shell reported it: exact),
    /// "heuristic" (a prompt came back, or output went quiet), "exited", "timeout", or
    /// "paused" (read_output: output paused while the shell's command still runs).
    pub completion: &'static str,
    /// How long the command ran, as the integrated shell reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The shell's working directory after the command (with shell integration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// What the program is doing now.
    pub state: &'static str,
    /// Exit status of the command (with shell integration), or of the program once it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended the program, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
    /// Bytes lost before they could be read (ring overflow).
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_bytes: u64,
    /// Bytes left out of the middle of `output` (see the note inside it).
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_bytes: u64,
    /// The full-screen program's screen, when one is active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// Clamped parameters and other notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn completion(s: Settled) -> &'static str {
    match s {
        Settled::Shell => "shell",
        Settled::Prompt | Settled::Quiet => "heuristic",
        Settled::Silent => "quiet",
        Settled::Paused => "paused",
        Settled::Exited => "exited",
        Settled::Disconnected => "disconnected",
        Settled::TimedOut => "timeout",
    }
}

impl OutputReply {
    /// The reply showing `r`; `done` is the command that completed it (shell completion).
    fn new(
        session: &Session,
        r: Rendered,
        settled: Settled,
        done: Option<Finished>,
        warnings: Warnings,
    ) -> OutputReply {
        let (mut exit_code, exit_signal) = exit_fields(session);
        let (mut duration_ms, mut cwd) = (None, None);
        if let Some(done) = done.filter(|_| settled == Settled::Shell) {
            exit_code = exit_code.or(done.exit);
            duration_ms = done.duration.map(|d| d.as_millis() as u64);
            cwd = done.cwd;
        }
        OutputReply {
            output: r.text,
            prompt: None,
            cursor: r.to.0,
            cursor_start: Some(r.from.0),
            is_alive: session.is_alive(),
            is_complete: settled.is_complete(),
            completion: completion(settled),
            duration_ms,
            cwd,
            state: session.state().0.as_str(),
            exit_code,
            exit_signal,
            lost_bytes: r.lost,
            omitted_bytes: r.omitted,
            screen: None,
            warnings: warnings.0,
        }
    }
}

/// How long to let an integrated shell draw its prompt after a command, so the prompt is not
/// left unread for the next call; it normally follows within a millisecond.
const PROMPT_DRAW: Duration = Duration::from_millis(50);

/// What a reply shows of the output after typing.
#[derive(Clone, Copy)]
enum Shown<'a> {
    /// A command line: with an integrated shell, exactly its command's output (`multiline`:
    /// the input had several lines).
    Command { typed: &'a Typed, input: &'a str, multiline: bool },
    /// Keys: everything they caused, prompt included.
    Everything,
}

/// The transcript range to show for input typed at `start`, and the command that finished
/// there (integrated shells). For a command line at an integrated shell, exactly its command's
/// output: from its C mark (or, without one, after the echo of the typed lines) to its D mark,
/// or to the end while it runs. Otherwise what followed the echo; for keys, everything.
fn command_range(
    session: &Session,
    start: Offset,
    settled: Settled,
    shown: Shown<'_>,
    warnings: &mut Warnings,
) -> (Offset, Offset, Option<Finished>) {
    let end = session.end();
    let Shown::Command { typed, input, multiline } = shown else {
        return (start, end, session.with_shell(|s| s.finished_after(start).cloned()));
    };
    if !session.with_shell(|s| s.active) {
        return (after_echo(session, start, end, input), end, None);
    }
    let cycle = session.cycle(typed, multiline);
    // Completion came with the running command's end, and this input's own never started: the
    // running command took the input (see `Settle::TAKEN`).
    let taken = settled == Settled::Shell && cycle.awaits_taker();
    if let Some(earlier) = &cycle.earlier {
        let status = earlier.exit.map_or_else(|| "unknown".to_string(), |c| c.to_string());
        warnings.0.push(if taken {
            format!("the input went to the command that was running, which then ended (exit status {status})")
        } else {
            let whose =
                if cycle.output_from.is_some() { "before this one started" } else { "and this input has not run yet" };
            format!(
                "a command was still running when this input was typed; it ended (exit status {status}) {whose}. \
                 Its output is not part of this reply: read_output since_cursor={} shows it",
                start.0
            )
        });
    }
    let Some(done) = cycle.ended(taken).cloned() else {
        // A program the shell runs (python3, mysql) answers the input: its echo is left out.
        let from = cycle.output_from.unwrap_or_else(|| after_echo(session, start, end, input));
        return (from, end, None);
    };
    if taken {
        return (start, done.output_to, Some(done));
    }
    // No C mark (an empty line, a syntax error): what follows the echo is the shell's answer.
    let from = cycle.output_from.unwrap_or_else(|| after_echo(session, start, done.output_to, input));
    (from, done.output_to, Some(done))
}

/// Where output after `start` begins once the echo of every line of `input` is skipped: each
/// echoed line shows the typed line, possibly after a
/// continuation prompt (`... `, `> `). When the first line is not the echo (the program does not
/// echo, or redraws), nothing is skipped; skipping stops at the first line that is not.
fn after_echo(session: &Session, start: Offset, to: Offset, input: &str) -> Offset {
    const CONTINUATION: usize = 16;
    if session.echoes_typing() == Some(false) {
        // What looks like the echo is the program's own output.
        return start;
    }
    // One line per line ended: by each newline typed, and by the Enter pressed after the input.
    let input = input.replace("\r\n", "\n");
    let typed: Vec<&str> = input.split(['\r', '\n']).map(str::trim).collect();
    let bytes = session.slice(start, to.since(start).min(64 << 10) as usize).bytes;
    let mut pos = 0;
    for want in typed {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else { break };
        let line = engine::text::clean(&bytes[pos..pos + nl]);
        let line = line.trim_end();
        let Some(before) = line.strip_suffix(want) else { break };
        if before.chars().count() > CONTINUATION || before.chars().any(char::is_alphanumeric) {
            break;
        }
        pos += nl + 1;
    }
    start.plus(pos)
}

/// Splits a trailing shell-like prompt (`>>> `, `mysql> `, `Router#`) off `[from, to)`: where the
/// output before it ends, and the prompt's text. Bare copies of the same prompt just before it
/// (the echo of blank lines typed, e.g. the one ending a python block) go too.
fn trailing_prompt(session: &Session, from: Offset, to: Offset) -> (Offset, Option<String>) {
    const LOOK_BACK: u64 = 1024;
    let tail_from = from.max(Offset(to.0.saturating_sub(LOOK_BACK)));
    let tail = session.slice(tail_from, to.since(tail_from) as usize).bytes;
    let line_start = |end: usize| tail[..end].iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
    let mut start = line_start(tail.len());
    if start == 0 && tail_from > from {
        return (to, None);
    }
    let text = engine::text::clean(&tail[start..]);
    if engine::prompt::classify(&text) != Some(engine::prompt::PromptKind::Shell) {
        return (to, None);
    }
    let prompt = text.trim().to_string();
    while start > 0 {
        let previous = line_start(start - 1);
        if engine::text::clean(&tail[previous..start]).trim() != prompt {
            break;
        }
        start = previous;
    }
    (tail_from.plus(start), Some(prompt))
}

/// The reply of a pattern wait (`wait_for`).
#[derive(Debug, Default, Serialize)]
pub struct WaitReply {
    /// Whether the pattern was found.
    pub matched: bool,
    /// True when the time ran out first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    /// The matching line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_line: Option<String>,
    /// The matching line with `context_lines` lines before and after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Where the next read continues: after the matching line, or the end when nothing matched.
    pub cursor: u64,
    /// Where the search began.
    pub cursor_start: u64,
    /// The output from `cursor_start` to `cursor` (send_input only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The last `tail_lines` lines of output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    /// Why the wait failed, e.g. the session ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether output was lost to the ring before it could be searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_truncated: Option<bool>,
    /// Whether the program is still running.
    pub is_alive: bool,
    /// Whether the program is done (matched or exited).
    pub is_complete: bool,
    /// What the program is doing now.
    pub state: &'static str,
    /// Exit status, once the program has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Notes such as a regex matched literally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Reply of every create tool (the Go version's fields: `command` for local sessions,
/// `target` for the others).
#[derive(Debug, Serialize)]
pub struct Created {
    /// Use this id in every other tool.
    pub session_id: String,
    /// `local`, `ssh` or `serial`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The command line that runs (local sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `user@host:port` or `<device>@<baud>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What the program printed while starting (its banner and first prompt).
    pub output: String,
    /// Where the next read continues.
    pub cursor: u64,
    /// What the program is doing after start-up (usually at_prompt).
    pub state: &'static str,
    /// Terminal height.
    pub rows: u16,
    /// Terminal width.
    pub cols: u16,
    /// Notes, e.g. that a host key was not verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Whether this call opened the session here (false for a reattach to one already open):
    /// only a new session is recorded as created.
    #[serde(skip)]
    pub is_new: bool,
}

impl Created {
    /// The reply for a new session showing `banner`; the read cursor moves to the end, past
    /// anything pty-mcp itself typed after the banner (the SSH shell hook).
    pub fn new(entry: &Entry, banner: reply::Rendered) -> Created {
        entry.session.advance_read_cursor(entry.session.end());
        Created { output: banner.text, ..Created::new_unread(entry) }
    }

    /// The reply for a session whose output is left unread (a reattached one): the cursor says
    /// where the next read starts.
    pub fn new_unread(entry: &Entry) -> Created {
        let s = &entry.session;
        let view = s.screen(0);
        let local = entry.kind == "local";
        Created {
            session_id: entry.id.clone(),
            kind: entry.kind,
            command: local.then(|| entry.target.clone()),
            target: (!local).then(|| entry.target.clone()),
            output: String::new(),
            cursor: s.read_cursor().0,
            state: s.state().0.as_str(),
            rows: view.rows,
            cols: view.cols,
            warnings: Vec::new(),
            is_new: true,
        }
    }
}

/// Starts a local program on a PTY.
pub async fn create_local_session(
    manager: &SessionManager,
    settings: Settings,
    p: CreateLocalParams,
) -> Result<Created, ToolError> {
    let line = p.command.as_deref().filter(|c| !c.trim().is_empty()).unwrap_or("/bin/bash");
    if p.persistent == Some(true) || p.session_id.is_some() {
        if p.args.is_some() || p.env.is_some() || p.cwd.is_some() {
            return Err(ToolError::invalid(
                "args, env and cwd are not available with persistent: put them in the command line",
            ));
        }
        let (rows, cols) = terminal_size(p.rows, p.cols)?;
        let what = match p.session_id.filter(|id| !id.trim().is_empty()) {
            Some(id) => persistent::Target::Reattach(id.trim().to_string()),
            None => persistent::Target::Create {
                command: Some(line.to_string()),
                rows,
                cols,
                shell_integration: p.shell_integration.unwrap_or(true),
            },
        };
        let recorder = open_log(p.log, rows, cols)?;
        return persistent::open(
            manager,
            settings,
            persistent::local_dial()?,
            "local",
            line.to_string(),
            what,
            recorder,
        )
        .await;
    }
    let mut cmd = LocalCommand::parse(line)?;
    cmd.args.extend(p.args.unwrap_or_default());
    (cmd.rows, cmd.cols) = terminal_size(p.rows, p.cols)?;
    cmd.env = p.env.unwrap_or_default().into_iter().collect();
    cmd.shell_integration = p.shell_integration.unwrap_or(true);
    if let Some(cwd) = p.cwd.filter(|c| !c.is_empty()) {
        if !std::path::Path::new(&cwd).is_dir() {
            return Err(ToolError::invalid(format!("cwd {cwd:?} is not a directory")));
        }
        cmd.cwd = Some(cwd.into());
    }
    let config =
        SessionConfig { rows: cmd.rows, cols: cmd.cols, buffer_size: settings.buffer_size, ..SessionConfig::default() };
    let recorder = open_log(p.log, cmd.rows, cmd.cols)?;
    let target = line.to_string();
    let entry =
        manager.create("local", target.clone(), b"\r", || Ok(Session::start(local::spawn(&cmd)?, config, recorder)))?;
    let mut warnings = Vec::new();
    if entry.session.has_integration() {
        first_prompt(&entry.session, &mut warnings).await;
    } else {
        // Let the program draw its first prompt: a recognised prompt ends this within
        // milliseconds, else 300 ms of quiet.
        entry.session.settle(Settle::after_input(Offset(0), DEFAULT_SETTLE), Instant::now() + BANNER_WAIT).await;
    }
    Ok(Created { warnings, ..Created::new(&entry, reply::render_all(&entry.session)) })
}

/// How long an integrated shell's startup files may take before the session is handed over.
const FIRST_PROMPT_WAIT: Duration = Duration::from_secs(15);
/// A recognised prompt that stays this quiet without the integration's mark is taken as a
/// shell whose startup files replaced our hooks (e.g. `exec zsh` in `.bashrc`).
const UNMARKED_PROMPT: Duration = Duration::from_secs(2);

/// Waits for an integrated shell's first prompt, so that the session is handed over at it and
/// the first command is not typed into a shell still reading its startup files.
pub async fn first_prompt(session: &Session, warnings: &mut Vec<String>) {
    let deadline = Instant::now() + FIRST_PROMPT_WAIT;
    if session.wait_first_prompt(UNMARKED_PROMPT, deadline).await || !session.is_alive() {
        return;
    }
    warnings.push(if Instant::now() >= deadline {
        format!(
            "the shell has not shown its prompt after {} s: its startup files are still running. Input is \
             typed ahead and runs when they finish; read_output shows what they print",
            FIRST_PROMPT_WAIT.as_secs()
        )
    } else {
        "the shell shows a prompt but not pty-mcp's integration marks (its startup files may start another \
         shell): completion is judged from prompts and quiet"
            .to_string()
    });
}

/// Opens the session log asked for, if any.
pub fn open_log(p: LogOptions, rows: u16, cols: u16) -> Result<Option<Recorder>, ToolError> {
    let Some(file) = p.log_file.filter(|f| !f.trim().is_empty()) else { return Ok(None) };
    let format = match p.log_format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("raw") => LogFormat::Raw,
        Some("asciicast") | Some("cast") => LogFormat::Asciicast,
        Some(other) => return Err(ToolError::invalid(format!("log_format {other:?}: use \"raw\" or \"asciicast\""))),
    };
    let max_size = match p.log_max_size {
        Some(mb) if !(0..=1_000_000).contains(&mb) => {
            return Err(ToolError::invalid(format!("log_max_size {mb} MB is out of range (0-1000000)")));
        }
        mb => mb.unwrap_or(0) as u64 * 1_000_000,
    };
    let max_files = match p.log_max_files {
        Some(n) if !(0..=100).contains(&n) => {
            return Err(ToolError::invalid(format!("log_max_files {n} is out of range (0-100)")));
        }
        n => n.unwrap_or(3) as usize,
    };
    let spec = LogSpec { path: file.into(), format, max_size, max_files };
    Recorder::open(spec, rows, cols).map(Some).map_err(|e| ToolError::invalid(format!("log_file: {e}")))
}

/// The terminal size asked for: the engine's default where not given, 1–500 rows, 1–1000 columns.
pub fn terminal_size(rows: Option<i64>, cols: Option<i64>) -> Result<(u16, u16), ToolError> {
    let defaults = SessionConfig::default();
    let one = |name: &str, value: Option<i64>, default: u16, max: u16| match value {
        None => Ok(default),
        Some(v) if v <= 0 => Err(ToolError::invalid("rows and cols must be positive integers")),
        Some(v) if v > max as i64 => Err(ToolError::invalid(format!("{name} {v} is too large (at most {max})"))),
        Some(v) => Ok(v as u16),
    };
    Ok((one("rows", rows, defaults.rows, 500)?, one("cols", cols, defaults.cols, 1000)?))
}

/// Either reply of send_input.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SendReply {
    /// Without wait_for.
    Output(OutputReply),
    /// With wait_for.
    Wait(WaitReply),
}

impl SendReply {
    /// The output text the reply carries.
    pub fn output(&self) -> &str {
        match self {
            SendReply::Output(o) => &o.output,
            SendReply::Wait(w) => w.output.as_deref().unwrap_or(""),
        }
    }
}

/// Types input (and Enter), then waits for the answer or for a pattern.
pub async fn send_input(manager: &SessionManager, p: SendInputParams) -> Result<SendReply, ToolError> {
    let entry = manager.get_live(&p.session_id).await?;
    let session = &entry.session;
    if p.input.len() > MAX_INPUT {
        return Err(ToolError::invalid(format!(
            "input is {} bytes; at most {MAX_INPUT} can be typed in one call",
            p.input.len()
        )));
    }
    let mut warnings = Warnings::default();
    let pattern =
        p.wait_for.as_deref().filter(|w| !w.is_empty()).map(|w| compile_pattern(w, &mut warnings)).transpose()?;
    let timeout = warnings.clamp("timeout_ms", p.timeout_ms, 5000, 0, 30_000);
    let wait_timeout = warnings.clamp("wait_for_timeout", p.wait_for_timeout, DEFAULT_WAIT_FOR_SECS, 0, MAX_WAIT_SECS);
    let settle_ms = warnings.clamp("settle_ms", p.settle_ms, 300, 10, 60_000);
    let cap = warnings.clamp("max_output_bytes", p.max_output_bytes, DEFAULT_MAX_OUTPUT as i64, 256, 16 << 20) as usize;

    let _typing = session.lock_input().await;
    // Not into a line an operator is typing (see `Viewers::wait_line_done`).
    if entry.viewers.wait_line_done(Instant::now() + ms(timeout.max(1000))).await {
        warnings.0.push("waited for the operator to finish the line they were typing".into());
    }
    entry.set_last_command(&p.input);
    let mut bytes = Vec::with_capacity(p.input.len() + 13);
    if p.paste.unwrap_or(false) {
        if session.modes().bracketed_paste {
            bytes.extend_from_slice(b"\x1b[200~");
            bytes.extend_from_slice(p.input.as_bytes());
            bytes.extend_from_slice(b"\x1b[201~");
        } else {
            warnings.0.push("the program has not enabled bracketed paste; the input was typed as it is".into());
            bytes.extend_from_slice(p.input.as_bytes());
        }
    } else {
        bytes.extend_from_slice(p.input.as_bytes());
    }
    if !p.raw.unwrap_or(false) {
        bytes.extend_from_slice(entry.enter);
    }
    let unread = session.read_cursor();
    let typed = session.write_command(&bytes, &p.input, Instant::now() + WRITE_DEADLINE).await?;
    let start = typed.at;
    if unread < start {
        warnings.0.push(format!(
            "{} bytes of earlier output were never read; read them with read_output since_cursor={}",
            start.since(unread),
            unread
        ));
    }

    if let Some(pattern) = pattern {
        let deadline = Instant::now() + Duration::from_secs(wait_timeout as u64);
        let outcome = session.wait_for(&pattern, start, &Echo::of(&p.input), deadline).await;
        let mut reply = wait_reply(session, start, outcome, 0, 0, warnings);
        let r = reply::render(session, start, Offset(reply.cursor), cap);
        reply.output = Some(r.text);
        consume(session, Offset(reply.cursor)).await;
        return Ok(SendReply::Wait(reply));
    }

    let multiline = p.input.trim_end_matches(['\r', '\n']).contains(['\r', '\n']);
    let opts = Settle::after_command(typed.clone(), ms(settle_ms)).multiline(multiline);
    let settled = session.settle(opts, Instant::now() + ms(timeout)).await;
    let shown = match p.include_prompt {
        Some(true) => Shown::Everything,
        _ => Shown::Command { typed: &typed, input: &p.input, multiline },
    };
    Ok(SendReply::Output(finish_reply(session, start, settled, shown, cap, warnings).await))
}

/// How long a reply waits for a persistent session's daemon to record how far it was read.
const READ_RECORD_WAIT: Duration = Duration::from_secs(2);

/// Moves the read cursor to `to`, and waits until a persistent session's daemon has recorded it
/// (see `Session::reads_recorded`).
async fn consume(session: &Session, to: Offset) {
    session.advance_read_cursor(to);
    session.reads_recorded(Instant::now() + READ_RECORD_WAIT).await;
}

/// The reply after typing at `start` and waiting: the command's output, its status, and the
/// read cursor moved past everything shown (and past the prompt an integrated shell drew).
async fn finish_reply(
    session: &Session,
    start: Offset,
    settled: Settled,
    shown: Shown<'_>,
    cap: usize,
    mut warnings: Warnings,
) -> OutputReply {
    if settled == Settled::Shell {
        // The end mark that completed the wait is the newest one (this command's, or that of
        // the command that took the input): the prompt is drawn after it.
        let ended = session.with_shell(|s| s.last.as_ref().map(|l| l.mark_end));
        if let Some(mark_end) = ended {
            session.wait_prompt_drawn(mark_end, Instant::now() + PROMPT_DRAW).await;
        }
    }
    let (from, mut to, done) = command_range(session, start, settled, shown, &mut warnings);
    let mut prompt = None;
    if done.is_none() && matches!(shown, Shown::Command { .. }) {
        (to, prompt) = trailing_prompt(session, from, to);
    }
    let rendered = reply::render(session, from, to, cap);
    consume(session, session.end()).await;
    OutputReply { prompt, ..OutputReply::new(session, rendered, settled, done, warnings) }
}

fn wait_reply(
    session: &Session,
    from: Offset,
    outcome: PatternWait,
    context_lines: usize,
    tail_lines: usize,
    mut warnings: Warnings,
) -> WaitReply {
    let (exit_code, _) = exit_fields(session);
    let mut reply = WaitReply {
        cursor_start: from.0,
        is_truncated: (session.oldest() > from).then_some(true),
        exit_code,
        ..WaitReply::default()
    };
    match outcome {
        PatternWait::Matched(m) => {
            reply.matched = true;
            reply.is_complete = true;
            reply.cursor = m.line_end.0;
            if context_lines > 0 {
                let mut lines = session.lines_before(m.line_start, context_lines);
                lines.push(m.line.clone());
                lines.extend(session.lines_after(m.line_end, context_lines));
                reply.context = Some(lines.join("\n"));
            }
            reply.match_line = Some(m.line);
        }
        PatternWait::TimedOut => {
            reply.timed_out = Some(true);
            reply.cursor = session.end().0;
        }
        PatternWait::Exited => {
            reply.is_complete = true;
            reply.cursor = session.end().0;
            reply.error = Some("the session ended before the pattern appeared".into());
        }
    }
    if tail_lines > 0 {
        reply.tail = Some(session.lines_before(session.end(), tail_lines).join("\n"));
    }
    reply.is_alive = session.is_alive();
    reply.state = session.state().0.as_str();
    reply.warning = (!warnings.0.is_empty()).then(|| std::mem::take(&mut warnings.0).join("; "));
    reply
}

/// The screen as a person sees it.
#[derive(Debug, Serialize)]
pub struct ScreenReply {
    /// The screen's rows joined by newlines (trailing blanks and blank bottom rows trimmed).
    pub screen: String,
    /// The rows as a list (untrimmed at the bottom), when asked for with `screen_lines`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_lines: Option<Vec<String>>,
    /// Lines that scrolled off the top, oldest first, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrollback: Option<String>,
    /// Cursor row, 0-based.
    pub cursor_row: u16,
    /// Cursor column, 0-based.
    pub cursor_col: u16,
    /// Screen height.
    pub rows: u16,
    /// Screen width.
    pub cols: u16,
    /// Whether a full-screen program holds the alternate screen.
    pub alt_screen: bool,
    /// Transcript offset the screen reflects (nothing is consumed).
    pub cursor: u64,
    /// Whether the program is still running.
    pub is_alive: bool,
    /// What the program is doing now.
    pub state: &'static str,
}

fn screen_text(lines: &[String]) -> String {
    let used = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |i| i + 1);
    lines[..used].join("\n")
}

/// Either reply of read_output.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ReadReply {
    /// Settle mode.
    Output(OutputReply),
    /// Cursor mode.
    Cursor(CursorReply),
    /// Wait mode.
    Wait(WaitReply),
    /// Screen mode.
    Screen(ScreenReply),
}

/// Reply of read_output's cursor mode.
#[derive(Debug, Serialize)]
pub struct CursorReply {
    /// Clean text of the bytes read.
    pub output: String,
    /// Offset just after them: pass it as since_cursor to continue.
    pub cursor: u64,
    /// Whether more output exists after `cursor`.
    pub has_more: bool,
    /// Whether bytes after since_cursor had already fallen off the ring.
    pub is_truncated: bool,
    /// How many such bytes were lost.
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_bytes: u64,
    /// Whether the program is still running.
    pub is_alive: bool,
    /// Notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Reads output in one of four modes: screen, cursor, wait_for, or settle (the default).
pub async fn read_output(manager: &SessionManager, p: ReadOutputParams) -> Result<ReadReply, ToolError> {
    let entry = manager.get_live(&p.session_id).await?;
    let session = &entry.session;
    let mut warnings = Warnings::default();
    let cap = warnings.clamp("max_output_bytes", p.max_output_bytes, DEFAULT_MAX_OUTPUT as i64, 256, 16 << 20) as usize;

    if p.screen.unwrap_or(false) {
        let scrollback =
            warnings.clamp("scrollback_lines", p.scrollback_lines, 0, 0, engine::SCROLLBACK as i64) as usize;
        let view = session.screen(scrollback);
        return Ok(ReadReply::Screen(ScreenReply {
            screen: screen_text(&view.lines),
            screen_lines: p.screen_lines.unwrap_or(false).then(|| view.lines.clone()),
            scrollback: (scrollback > 0).then(|| view.scrollback.join("\n")),
            cursor_row: view.cursor_row,
            cursor_col: view.cursor_col,
            rows: view.rows,
            cols: view.cols,
            alt_screen: view.alt_screen,
            cursor: session.end().0,
            is_alive: session.is_alive(),
            state: session.state().0.as_str(),
        }));
    }

    if let Some(since) = p.since_cursor {
        if since < 0 {
            return Err(ToolError::invalid("since_cursor must be a cursor returned by an earlier call (>= 0)"));
        }
        let max = warnings.clamp("max_bytes", p.max_bytes, DEFAULT_MAX_OUTPUT as i64, 1, 16 << 20) as usize;
        let slice = session.slice(Offset(since as u64), max + 4);
        let keep = engine::text::safe_cut(&slice.bytes, max);
        let cursor = slice.from.plus(keep);
        return Ok(ReadReply::Cursor(CursorReply {
            output: engine::text::clean(&slice.bytes[..keep]),
            cursor: cursor.0,
            has_more: cursor < session.end(),
            is_truncated: slice.lost > 0,
            lost_bytes: slice.lost,
            is_alive: session.is_alive(),
            warnings: warnings.0,
        }));
    }

    let timeout = warnings.clamp("timeout", p.timeout, DEFAULT_READ_SECS, 0, MAX_WAIT_SECS);
    let deadline = Instant::now() + Duration::from_secs(timeout as u64);
    let from = session.read_cursor();

    if let Some(w) = p.wait_for.as_deref().filter(|w| !w.is_empty()) {
        let pattern = compile_pattern(w, &mut warnings)?;
        let context = warnings.clamp("context_lines", p.context_lines, 0, 0, 50) as usize;
        let tail = warnings.clamp("tail_lines", p.tail_lines, 0, 0, 100) as usize;
        let outcome = session.wait_for(&pattern, from, &Echo::default(), deadline).await;
        if let PatternWait::Matched(m) = &outcome
            && context > 0
        {
            // Give the lines after the match a moment to arrive; they usually come with it.
            let opts = Settle::reading(m.line_end, Duration::from_millis(50));
            session.settle(opts, deadline.min(Instant::now() + Duration::from_millis(500))).await;
        }
        let reply = wait_reply(session, from, outcome, context, tail, warnings);
        if reply.matched {
            consume(session, Offset(reply.cursor)).await;
        }
        return Ok(ReadReply::Wait(reply));
    }

    let settle_ms = warnings.clamp("settle_ms", p.settle_ms, 300, 10, 60_000);
    let opts = Settle::reading(from, ms(settle_ms));
    let settled = session.settle(opts, deadline).await;
    let rendered = reply::render(session, from, session.end(), cap);
    consume(session, rendered.to).await;
    let done = session.with_shell(|s| s.finished_after(from).cloned());
    let mut reply = OutputReply::new(session, rendered, settled, done, warnings);
    // The seed's settle-mode result has only the one cursor.
    reply.cursor_start = None;
    Ok(ReadReply::Output(reply))
}

/// The keys a `send_control` names.
///
/// # Errors
/// `INVALID_PARAMS` for an unknown key or an empty list.
pub fn parse_keys(key: &Keys) -> Result<Vec<keys::Key>, ToolError> {
    match key {
        Keys::Sequence(spec) => keys::parse_sequence(spec),
        Keys::List(list) if list.is_empty() => Err(keys::KeyError { key: String::new() }),
        Keys::List(list) => list.iter().map(|k| keys::parse_key(k.trim())).collect(),
    }
    .map_err(|e| ToolError::invalid(e.to_string()))
}

/// Presses keys, then waits for the program to settle.
pub async fn send_control(manager: &SessionManager, p: SendControlParams) -> Result<OutputReply, ToolError> {
    let entry = manager.get_live(&p.session_id).await?;
    let session = &entry.session;
    let keys = parse_keys(&p.key)?;
    let mut warnings = Warnings::default();
    let timeout = warnings.clamp("timeout_ms", p.timeout_ms, 5000, 0, 30_000);
    let cap = warnings.clamp("max_output_bytes", p.max_output_bytes, DEFAULT_MAX_OUTPUT as i64, 256, 16 << 20) as usize;
    let _typing = session.lock_input().await;
    let app_cursor = session.modes().app_cursor;
    let bytes: Vec<u8> = keys.iter().flat_map(|k| k.bytes(app_cursor)).collect();
    let idle_shell = session.with_shell(|s| s.at_prompt());
    let deadline = Instant::now() + ms(timeout);
    if entry.viewers.wait_line_done(deadline).await {
        warnings.0.push("waited for the operator to finish the line they were typing".into());
    }
    if idle_shell && bytes.contains(&keys::INTERRUPT) {
        // An interrupt that reaches a shell still finishing its prompt, before its line editor
        // reads, goes astray: bash shows `^C` but acts on it only at the next key, which it
        // drops (the agent's next command lost its first letter); fish skips its next command's
        // start mark. Let the shell settle into its editor first (a shell still busy, on a
        // loaded machine, is given up to a second).
        session.wait_reading(Settle::CONFIRM, deadline.min(Instant::now() + Duration::from_secs(1))).await;
    }
    let start = session.write(&bytes, Instant::now() + WRITE_DEADLINE).await?;
    let settled = session.settle(Settle::after_keys(start, DEFAULT_SETTLE), deadline).await;
    // Keys are not a command line: show everything they caused, prompt included.
    let mut reply = finish_reply(session, start, settled, Shown::Everything, cap, warnings).await;
    if session.modes().alt_screen {
        reply.screen = Some(screen_text(&session.screen(0).lines));
    }
    Ok(reply)
}

/// Reply of resize_session.
#[derive(Debug, Serialize)]
pub struct Resized {
    /// Always true.
    pub success: bool,
    /// New height.
    pub rows: u16,
    /// New width.
    pub cols: u16,
}

/// Resizes the terminal (the program gets SIGWINCH).
pub fn resize_session(manager: &SessionManager, p: ResizeParams) -> Result<Resized, ToolError> {
    let entry = manager.get(&p.session_id)?;
    let (Some(rows), Some(cols)) = (p.rows, p.cols) else {
        return Err(ToolError::invalid("rows and cols are both required"));
    };
    let (rows, cols) = terminal_size(Some(rows), Some(cols))?;
    entry.session.resize(rows, cols)?;
    Ok(Resized { success: true, rows, cols })
}

/// One session as get_session_state and list_sessions describe it.
#[derive(Debug, Serialize)]
pub struct SessionInfo {
    /// The id (list_sessions calls it `id`, get_session_state `session_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `local`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What runs there.
    pub target: String,
    /// Whether the program is still running.
    pub is_alive: bool,
    /// The transcript's end offset.
    pub cursor: u64,
    /// Bytes not yet returned by a consuming read.
    pub unread_bytes: u64,
    /// at_prompt, password_prompt, confirmation, pager, full_screen, running or exited.
    pub state: &'static str,
    /// Whether the shell reports its commands through shell integration.
    pub shell_integration: bool,
    /// Exit status of the last command the integrated shell finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit_code: Option<i32>,
    /// The integrated shell's working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Whether a prepared secret waits for a password prompt.
    pub awaiting_secret: bool,
    /// The newest prompt seen.
    pub last_prompt: Option<String>,
    /// Exit status, once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
    /// Why the link is down (state "disconnected").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<String>,
    /// Why the session log stopped (a full disk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
    /// Operators watching it now (`pty-mcp attach`).
    #[serde(skip_serializing_if = "is_zero")]
    pub operator_attached: u64,
    /// An operator typed into it since the agent last asked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub operator_typed: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub last_used: String,
}

/// Describes a session.
pub fn session_info(entry: &Entry, as_list: bool) -> SessionInfo {
    let s = &entry.session;
    let (state, last_prompt) = s.state();
    let (exit_code, exit_signal) = exit_fields(s);
    let shell = s.shell();
    SessionInfo {
        id: as_list.then(|| entry.id.clone()),
        session_id: (!as_list).then(|| entry.id.clone()),
        kind: entry.kind,
        target: entry.target.clone(),
        is_alive: s.is_alive(),
        cursor: s.end().0,
        unread_bytes: s.end().since(s.read_cursor()),
        state: state.as_str(),
        shell_integration: shell.active,
        last_exit_code: shell.last.as_ref().and_then(|l| l.exit),
        cwd: shell.cwd.clone(),
        awaiting_secret: entry.awaiting_secret(),
        last_prompt,
        exit_code,
        exit_signal,
        disconnect_reason: s.link_problem(),
        log_error: s.log_problem(),
        operator_attached: entry.viewers.attached() as u64,
        operator_typed: !as_list && entry.viewers.take_typed(),
        created_at: rfc3339(entry.created_at),
        last_used: rfc3339(entry.last_used()),
    }
}

/// How long closing a persistent session waits for its daemon to confirm.
const CLOSE_WAIT: Duration = Duration::from_secs(15);

/// Reply of close_session and detach_session.
#[derive(Debug, Serialize)]
pub struct Closed {
    /// Always true.
    pub success: bool,
    /// Exit status of the program if it had ended by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A note, e.g. that a local session cannot be detached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Ends a session and forgets it.
pub async fn close_session(manager: &SessionManager, id: &str, detach: bool) -> Result<Closed, ToolError> {
    let entry = manager.remove(id)?;
    entry.drop_pending_secret();
    let (exit_code, _) = exit_fields(&entry.session);
    if detach && entry.session.detach() {
        let note = format!(
            "detached: the program keeps running in ai-tmux; reattach with session_id {:?} (list_remote_sessions lists it)",
            entry.id
        );
        return Ok(Closed { success: true, exit_code, note: Some(note) });
    }
    entry.session.close_and_wait(CLOSE_WAIT).await;
    let note = detach.then(|| format!("{} sessions cannot outlive the server: the session was closed", entry.kind));
    Ok(Closed { success: true, exit_code, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_regexes_fall_back_to_literal_text() {
        let mut w = Warnings::default();
        let re = compile_pattern("a(b", &mut w).unwrap();
        assert!(re.is_match("xa(by"));
        assert_eq!(w.0.len(), 1);
        let mut w = Warnings::default();
        // A catastrophic repetition exceeds the size limit; as literal text it is harmless.
        let re = compile_pattern(r"\w{5000}{5000}", &mut w).unwrap();
        assert!(re.is_match(r"\w{5000}{5000}"));
    }

    #[test]
    fn clamps_are_reported() {
        let mut w = Warnings::default();
        assert_eq!(w.clamp("timeout_ms", Some(-5), 5000, 0, 30_000), 0);
        assert_eq!(w.clamp("timeout_ms", Some(99_999), 5000, 0, 30_000), 30_000);
        assert_eq!(w.clamp("timeout_ms", None, 5000, 0, 30_000), 5000);
        assert_eq!(w.0.len(), 2);
    }
}
