//! What each tool does: validate, call the engine, shape the reply. No MCP types in here; the
//! server (`server/`) turns these results and errors into tool results.
//!
//! One file per tool family: [`local`] (local sessions), [`ssh`], [`serial`], [`persistent`]
//! (sessions in ai-tmux), [`io`] (typing, reading, keys, resizing), [`secrets`], [`files`]
//! (upload and download), [`state`]
//! (a session's state, closing). This file holds what they share: settings, clamping and
//! patterns, and the shapes of replies.

pub mod files;
mod io;
mod local;
pub mod persistent;
pub mod secrets;
pub mod serial;
pub mod ssh;
mod state;

pub use io::*;
pub use local::*;
pub use state::*;

use std::time::{Duration, SystemTime};

use engine::record::{LogFormat, LogSpec, Recorder};
use engine::shell::{Finished, Typed};

use engine::{Echo, Offset, PatternWait, Session, SessionConfig, Settle, Settled, keys};
use regex::{Regex, RegexBuilder};
use serde::Serialize;
use tokio::time::Instant;

use crate::error::ToolError;
use crate::manager::{Entry, Sessions};
use crate::params::*;
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
    /// File transfers.
    pub files: files::FileSettings,
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
