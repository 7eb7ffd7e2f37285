//! Shell integration: the shell reports its own prompt/command cycle with OSC 133 marks, so a
//! command's end and exit status are known exactly instead of guessed from quiet and prompts.
//!
//! The marks are FinalTerm's: A prompt start, B prompt end (input starts), C output start,
//! D command end with exit status. Ours carry a random per-session token (`k=…`), so program
//! output cannot forge a completion, and D carries the working directory (`cwd=…`). Being OSC
//! strings, they vanish from clean text and leave the screen untouched.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::transcript::Offset;

/// Which mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A: the prompt begins.
    PromptStart,
    /// B: the prompt ends; what follows is typed input.
    PromptEnd,
    /// C: the command line was accepted; its output follows.
    OutputStart,
    /// D: the command finished (with its exit status).
    CommandEnd,
}

/// A mark found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Which mark.
    pub kind: MarkKind,
    /// D's exit status.
    pub exit: Option<i32>,
    /// D's working directory.
    pub cwd: Option<String>,
    /// Offset of the mark's first byte.
    pub start: Offset,
    /// Offset just after the mark.
    pub end: Offset,
}

/// A finished command, as the shell reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Where its output begins (after the C mark), when the shell ran something.
    pub output_from: Option<Offset>,
    /// Where its output ends (the D mark's start).
    pub output_to: Offset,
    /// Where the D mark ends.
    pub mark_end: Offset,
    /// Exit status.
    pub exit: Option<i32>,
    /// Working directory after it.
    pub cwd: Option<String>,
    /// How long it ran (C to D), when it had a C.
    pub duration: Option<std::time::Duration>,
}

/// A command the shell ran: where its line was typed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpan {
    /// Where the line the shell read begins (its prompt's end).
    pub typed_from: Offset,
    /// Where it ends (the command's C mark).
    pub typed_to: Offset,
    /// None while it runs; then its exit status, when the shell reported one.
    pub ended: Option<Option<i32>>,
}

/// A mark as the session saw it: the mark and when it arrived.
#[derive(Debug, Clone)]
struct Seen {
    mark: Mark,
    at: Instant,
}

/// How many recent marks are kept for attributing commands (a cycle is four marks).
const HISTORY: usize = 256;

/// Input typed at a shell, as [`ShellState::cycle`] needs it to find the command it formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    /// The transcript end just before the input was written.
    pub at: Offset,
    /// The shell was at its prompt when the input was written, with nothing typed since that
    /// prompt was drawn: the next command it runs is this input's.
    pub ready: bool,
    /// The first non-blank line typed, matched against the line editor's echo when the shell
    /// was not ready (the input waited in the terminal while something else ran).
    pub first_line: Option<String>,
    /// The input ended with Enter: the program's answer starts on a new line, so a prompt
    /// counts only after one (a line editor may redraw the old prompt before echoing).
    pub entered: bool,
}

/// The command one input formed, found in the marks after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cycle {
    /// Its C mark was seen: where its output begins.
    pub output_from: Option<Offset>,
    /// Its D mark was seen (for input of several lines, the last D so far).
    pub finished: Option<Finished>,
    /// A command that was still running when the input was typed ended first (with this D):
    /// its output lies between the input and this command's own marks.
    pub earlier: Option<Finished>,
    /// The shell drew its prompt after `earlier` ended: if the input were waiting in the
    /// terminal, the shell would now read it and run it; if it does not, the running command
    /// took the input (a program reading its terminal, like `python3` or `read`).
    pub prompt_after_earlier: bool,
}

impl Cycle {
    /// The command that ends the input's reply, given whether the shell has stayed at its
    /// prompt after `earlier` without running the input: the input's own command, or the
    /// running command that took the input.
    pub fn ended(&self, input_taken: bool) -> Option<&Finished> {
        self.finished.as_ref().or(self.earlier.as_ref().filter(|_| input_taken && self.awaits_taker()))
    }

    /// Whether the only way left to end this input's wait is the running command having taken
    /// the input (see [`Cycle::prompt_after_earlier`]).
    pub fn awaits_taker(&self) -> bool {
        self.output_from.is_none() && self.finished.is_none() && self.prompt_after_earlier
    }
}

/// What the marks say about the shell, kept by the session as they arrive.
#[derive(Debug, Clone, Default)]
pub struct ShellState {
    /// At least one valid mark was seen: the shell is integrated.
    pub active: bool,
    /// A command was accepted (C) and has not finished (D) yet.
    pub running: bool,
    /// The last command that finished.
    pub last: Option<Finished>,
    /// Recent marks, oldest first, for attributing commands to the input that formed them.
    history: std::collections::VecDeque<Seen>,
    /// Offset just after the last B mark: the shell is waiting for input from there.
    pub prompt_end: Option<Offset>,
    /// The working directory reported last.
    pub cwd: Option<String>,
}

impl ShellState {
    /// Applies a mark that arrived at `now`.
    pub fn apply(&mut self, mark: Mark, now: Instant) {
        self.active = true;
        match mark.kind {
            MarkKind::PromptStart | MarkKind::CommandEnd => self.running = false,
            MarkKind::PromptEnd => {
                self.running = false;
                self.prompt_end = Some(mark.end);
            }
            MarkKind::OutputStart => self.running = true,
        }
        if mark.cwd.is_some() {
            self.cwd = mark.cwd.clone();
        }
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Seen { mark, at: now });
        let n = self.history.len();
        if self.history[n - 1].mark.kind == MarkKind::CommandEnd {
            // A C belongs to this D only if it came after the previous D.
            let started = self
                .history
                .range(..n - 1)
                .rev()
                .take_while(|s| s.mark.kind != MarkKind::CommandEnd)
                .find(|s| s.mark.kind == MarkKind::OutputStart);
            self.last = Some(finished(started, &self.history[n - 1]));
        }
    }

    /// The shell waits at its prompt: integrated, no command running.
    pub fn at_prompt(&self) -> bool {
        self.active && !self.running && self.prompt_end.is_some()
    }

    /// Whether input written when the transcript ended at `at` is read by the shell at a prompt
    /// as its next command: the last mark before `at` is a prompt's end (B), drawn after the
    /// previous input (written at `previous_input`) was typed.
    pub fn ready_at(&self, at: Offset, previous_input: Option<Offset>) -> bool {
        let last = self.history.iter().rev().find(|s| s.mark.end <= at);
        last.is_some_and(|s| s.mark.kind == MarkKind::PromptEnd && previous_input.is_none_or(|p| s.mark.start >= p))
    }

    /// The marks of the command formed by `typed`, and only its own.
    ///
    /// When the shell was ready, the first C after the input is its command's, and the first D
    /// after that C (or a D with no C: an empty line) ends it. Otherwise the input waited in the
    /// terminal while something else ran: marks are skipped until a C whose line editor echo
    /// (the text between the previous mark and the C, checked by `echoed(from, to)`) shows the
    /// typed line; a D before that belongs to the earlier command. Input of several lines
    /// (`multiline`) runs several commands: `finished` is then the last D so far.
    pub fn cycle(&self, typed: &Typed, multiline: bool, mut echoed: impl FnMut(Offset, Offset) -> bool) -> Cycle {
        let mut cycle = Cycle::default();
        let mut started: Option<&Seen> = None;
        let mut segment = typed.at;
        for seen in self.history.iter().filter(|s| s.mark.start >= typed.at) {
            let m = &seen.mark;
            match (started, m.kind) {
                (None, MarkKind::OutputStart) => {
                    let ours = typed.ready && cycle.earlier.is_none()
                        || typed.first_line.is_some() && echoed(segment, m.start);
                    if ours {
                        started = Some(seen);
                        cycle.output_from = Some(m.end);
                    }
                }
                (None, MarkKind::CommandEnd) if typed.ready && cycle.earlier.is_none() => {
                    cycle.finished = Some(finished(None, seen));
                    if !multiline {
                        break;
                    }
                }
                (None, MarkKind::CommandEnd) => {
                    cycle.earlier = Some(finished(None, seen));
                    cycle.prompt_after_earlier = false;
                }
                (None, MarkKind::PromptEnd) if cycle.earlier.is_some() => cycle.prompt_after_earlier = true,
                (Some(c), MarkKind::CommandEnd) => {
                    cycle.finished = Some(finished(Some(c), seen));
                    if !multiline {
                        break;
                    }
                }
                _ => {}
            }
            segment = m.end;
        }
        cycle
    }

    /// The commands among the recent marks, oldest first: where each one's line was typed
    /// (from its prompt's end to its C mark) and how it ended, if it has.
    pub fn commands(&self) -> Vec<CommandSpan> {
        let mut commands: Vec<CommandSpan> = Vec::new();
        let mut prompt_end = None;
        for seen in &self.history {
            let m = &seen.mark;
            match m.kind {
                MarkKind::PromptEnd => prompt_end = Some(m.end),
                MarkKind::OutputStart => {
                    if let Some(typed_from) = prompt_end.take() {
                        commands.push(CommandSpan { typed_from, typed_to: m.start, ended: None });
                    }
                }
                MarkKind::CommandEnd => {
                    if let Some(last) = commands.last_mut().filter(|c| c.ended.is_none()) {
                        last.ended = Some(m.exit);
                    }
                }
                MarkKind::PromptStart => {}
            }
        }
        commands
    }

    /// The last finished command if it finished after `from`.
    pub fn finished_after(&self, from: Offset) -> Option<&Finished> {
        self.last.as_ref().filter(|l| l.output_to >= from)
    }
}

/// The command that the D mark `end` closed, started by the C mark `start` when it had one.
fn finished(start: Option<&Seen>, end: &Seen) -> Finished {
    Finished {
        output_from: start.map(|s| s.mark.end),
        output_to: end.mark.start,
        mark_end: end.mark.end,
        exit: end.mark.exit,
        cwd: end.mark.cwd.clone(),
        duration: start.map(|s| end.at.saturating_duration_since(s.at)),
    }
}

/// Shells pty-mcp can integrate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    /// GNU bash (4.4 or newer, for PS0).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Recognises an interactive shell from its program and arguments: a known shell started
/// without a command (`-c`) or script to run, and without options that skip the startup files
/// our hooks ride on (bash's login mode ignores `--rcfile`; zsh's `-f` reads no files).
pub fn detect(program: &str, args: &[String]) -> Option<ShellKind> {
    let name = Path::new(program).file_name()?.to_str()?;
    let kind = match name.trim_start_matches('-') {
        "bash" => ShellKind::Bash,
        "zsh" => ShellKind::Zsh,
        "fish" => ShellKind::Fish,
        _ => return None,
    };
    let excluded: &[&str] = match kind {
        ShellKind::Bash => &["-c", "-l", "--login", "--posix"],
        ShellKind::Zsh => &["-c", "-f", "--no-rcs"],
        ShellKind::Fish => &["-c", "--command", "-N", "--no-config"],
    };
    let runs_something = args.iter().any(|a| excluded.contains(&a.as_str()) || !a.starts_with('-'));
    (!runs_something).then_some(kind)
}

/// A fresh random token for one session's marks.
pub fn new_token() -> io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Files an integrated shell reads at start-up; removed when dropped (with the session).
#[derive(Debug)]
pub struct IntegrationFiles {
    /// Held only so that dropping it removes the directory.
    _dir: tempfile::TempDir,
}

/// How a local shell must be started to integrate: extra arguments and environment.
#[derive(Debug)]
pub struct LocalIntegration {
    /// Arguments to use instead of the original ones.
    pub args: Vec<String>,
    /// Environment variables to add.
    pub env: Vec<(String, String)>,
    /// The files the arguments point at.
    pub files: IntegrationFiles,
}

/// Prepares a local shell to load our hooks after the user's own startup files.
///
/// - bash: `--rcfile` pointing at ours, which sources `~/.bashrc` first. `--norc` is honoured by
///   skipping `~/.bashrc` (bash ignores `--rcfile` when given `--norc`); a `PS1` in `env` is
///   restored after `/etc/bash.bashrc`, which bash reads whatever rcfile it is given.
/// - zsh: `ZDOTDIR` pointing at ours, whose `.zshenv` puts the user's `ZDOTDIR` back, sources
///   the user's `.zshenv` and adds `precmd`/`preexec` hooks; zsh then reads the user's other
///   files from their own place.
/// - fish: `--init-command`, which runs after the user's configuration.
///
/// # Errors
/// When the private directory for the files cannot be written.
pub fn prepare_local(
    kind: ShellKind,
    args: &[String],
    env: &[(String, String)],
    token: &str,
) -> io::Result<LocalIntegration> {
    let dir = tempfile::Builder::new().prefix("pty-mcp-shell-").tempdir()?;
    let mut new_args: Vec<String> = args.to_vec();
    let mut extra = Vec::new();
    match kind {
        ShellKind::Bash => {
            let rcfile: PathBuf = dir.path().join("bashrc");
            std::fs::write(&rcfile, bash_rcfile(token))?;
            if args.iter().any(|a| a == "--norc") {
                new_args.retain(|a| a != "--norc");
                extra.push(("__PTY_MCP_NORC".to_string(), "1".to_string()));
            }
            new_args.splice(0..0, ["--rcfile".to_string(), rcfile.display().to_string()]);
            if let Some((_, ps1)) = env.iter().find(|(k, _)| k == "PS1") {
                extra.push(("__PTY_MCP_PS1".to_string(), ps1.clone()));
            }
        }
        ShellKind::Zsh => {
            std::fs::write(dir.path().join(".zshenv"), zsh_env(token))?;
            let user_zdotdir = env
                .iter()
                .find(|(k, _)| k == "ZDOTDIR")
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var("ZDOTDIR").ok());
            if let Some(z) = user_zdotdir {
                extra.push(("__PTY_MCP_ZDOTDIR".to_string(), z));
            }
            extra.push(("ZDOTDIR".to_string(), dir.path().display().to_string()));
        }
        ShellKind::Fish => {
            let script = dir.path().join("integration.fish");
            std::fs::write(&script, fish_init(token))?;
            new_args.splice(0..0, ["--init-command".to_string(), format!("source '{}'", script.display())]);
        }
    }
    Ok(LocalIntegration { args: new_args, env: extra, files: IntegrationFiles { _dir: dir } })
}

/// zsh: our `.zshenv`. Hooks are added with `add-zsh-hook`, so the user's own precmd and
/// preexec functions keep running; the prompt is wrapped again whenever a theme rewrites it.
fn zsh_env(token: &str) -> String {
    format!(
        r#"# pty-mcp shell integration (generated for one session, removed when it ends)
if [[ -n "${{__PTY_MCP_ZDOTDIR-}}" ]]; then ZDOTDIR=$__PTY_MCP_ZDOTDIR; else unset ZDOTDIR; fi
unset __PTY_MCP_ZDOTDIR
[[ -r "${{ZDOTDIR:-$HOME}}/.zshenv" ]] && builtin source "${{ZDOTDIR:-$HOME}}/.zshenv"
typeset -g __ptymcp_k='{token}'
__ptymcp_precmd() {{
  local s=$?
  builtin printf '\e]133;D;%s;k=%s;cwd=%s\a' "$s" "$__ptymcp_k" "$PWD"
  if [[ "$PS1" != *"133;B;k=$__ptymcp_k"* ]]; then
    PS1=$'%{{\e]133;A;k='"$__ptymcp_k"$'\a%}}'"$PS1"$'%{{\e]133;B;k='"$__ptymcp_k"$'\a%}}'
  fi
  return $s
}}
__ptymcp_preexec() {{ builtin printf '\e]133;C;k=%s\a' "$__ptymcp_k"; }}
autoload -Uz add-zsh-hook
add-zsh-hook precmd __ptymcp_precmd
add-zsh-hook preexec __ptymcp_preexec
"#
    )
}

/// fish: event handlers, and the user's `fish_prompt` wrapped to end with the B mark.
fn fish_init(token: &str) -> String {
    format!(
        r#"# pty-mcp shell integration (generated for one session, removed when it ends)
set -g __ptymcp_k '{token}'
function __ptymcp_prompt_event --on-event fish_prompt
    set -l s $status
    printf '\e]133;D;%s;k=%s;cwd=%s\a' $s $__ptymcp_k $PWD
    printf '\e]133;A;k=%s\a' $__ptymcp_k
end
function __ptymcp_preexec --on-event fish_preexec
    printf '\e]133;C;k=%s\a' $__ptymcp_k
end
functions -c fish_prompt __ptymcp_user_prompt
function fish_prompt
    __ptymcp_user_prompt
    printf '\e]133;B;k=%s\a' $__ptymcp_k
end
"#
    )
}

/// A one-line bash bootstrap for shells reached over a byte stream (SSH, serial, a daemon),
/// where no rcfile can be placed: the same hooks as [`bash_rcfile`]'s, typed after the first
/// prompt with a leading space; it deletes itself from history and erases its own echo.
pub fn bash_bootstrap(token: &str) -> String {
    let hooks: String = bash_hooks(token)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    format!(" {hooks} builtin history -d -1 2>/dev/null; builtin printf '\\033[1A\\033[2K'")
}

/// The hooks themselves, shared by the rcfile and the bootstrap (every line ends with `;` or
/// opens/closes a block, so the lines can be joined into one).
fn bash_hooks(token: &str) -> String {
    format!(
        r#"__ptymcp_k='{token}';
__ptymcp_precmd() {{ local s=$?; builtin printf '\033]133;D;%s;k=%s;cwd=%s\007' "$s" "$__ptymcp_k" "$PWD"; return $s; }};
__ptymcp_ps1() {{ local s=$?; case "${{PS1:-}}" in *"133;B;k=$__ptymcp_k"*) ;; *) PS1='\[\033]133;A;k='"$__ptymcp_k"'\007\]'"${{PS1:-}}"'\[\033]133;B;k='"$__ptymcp_k"'\007\]' ;; esac; return $s; }};
PS0='\033]133;C;k='"$__ptymcp_k"'\007'"${{PS0:-}}";
if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then PROMPT_COMMAND=(__ptymcp_precmd "${{PROMPT_COMMAND[@]}}" __ptymcp_ps1); else PROMPT_COMMAND=$'__ptymcp_precmd\n'"${{PROMPT_COMMAND:-}}"$'\n__ptymcp_ps1'; fi;
"#
    )
}

/// The rcfile: the user's bashrc first, then hooks that keep the user's `PROMPT_COMMAND`, `PS0`
/// and `PS1` (string or array form) and never fail, even under `set -eu`.
fn bash_rcfile(token: &str) -> String {
    format!(
        r#"# pty-mcp shell integration (generated for one session, removed when it ends)
if [ -z "${{__PTY_MCP_NORC:-}}" ] && [ -r ~/.bashrc ]; then . ~/.bashrc; fi
if [ -n "${{__PTY_MCP_PS1:-}}" ]; then PS1=$__PTY_MCP_PS1; fi
unset __PTY_MCP_NORC __PTY_MCP_PS1
{}"#,
        bash_hooks(token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(kind: MarkKind, at: u64, exit: Option<i32>) -> Mark {
        Mark { kind, exit, cwd: None, start: Offset(at), end: Offset(at + 5) }
    }

    #[test]
    fn a_command_cycle_yields_its_output_range_and_status() {
        let mut s = ShellState::default();
        let t = Instant::now();
        s.apply(mark(MarkKind::PromptStart, 0, None), t);
        s.apply(mark(MarkKind::PromptEnd, 10, None), t);
        assert!(s.at_prompt());
        s.apply(mark(MarkKind::OutputStart, 30, None), t);
        assert!(s.running && !s.at_prompt());
        s.apply(mark(MarkKind::CommandEnd, 50, Some(1)), t);
        let f = s.finished_after(Offset(20)).unwrap();
        assert_eq!((f.output_from, f.output_to, f.exit), (Some(Offset(35)), Offset(50), Some(1)));
        // An empty line: D without a new C.
        s.apply(mark(MarkKind::CommandEnd, 80, Some(1)), t);
        assert_eq!(s.last.as_ref().unwrap().output_from, None);
    }

    /// Applies marks given as (kind letter, offset).
    fn marks(s: &mut ShellState, list: &[(char, u64, Option<i32>)]) {
        let t = Instant::now();
        for &(k, at, exit) in list {
            let kind = match k {
                'A' => MarkKind::PromptStart,
                'B' => MarkKind::PromptEnd,
                'C' => MarkKind::OutputStart,
                _ => MarkKind::CommandEnd,
            };
            s.apply(mark(kind, at, exit), t);
        }
    }

    fn typed(at: u64, ready: bool) -> Typed {
        Typed { at: Offset(at), ready, first_line: Some("cmd".into()), entered: true }
    }

    #[test]
    fn a_startup_prompts_end_mark_is_never_a_commands() {
        let mut s = ShellState::default();
        // Input typed at 5, while startup files ran: the startup prompt's D (exit 0) comes after.
        assert!(!s.ready_at(Offset(5), None));
        marks(&mut s, &[('D', 10, Some(0)), ('A', 20, None), ('B', 30, None)]);
        let c = s.cycle(&typed(5, false), false, |_, _| false);
        assert_eq!((c.finished.as_ref(), c.earlier.as_ref().map(|e| e.exit)), (None, Some(Some(0))));
        // The line editor echoes the line, then runs it.
        marks(&mut s, &[('C', 50, None), ('D', 70, Some(3))]);
        let c = s.cycle(&typed(5, false), false, |from, to| (from, to) == (Offset(35), Offset(50)));
        let done = c.finished.unwrap();
        assert_eq!((c.output_from, done.output_to, done.exit), (Some(Offset(55)), Offset(70), Some(3)));
    }

    #[test]
    fn readiness_needs_a_prompt_drawn_after_the_last_input() {
        let mut s = ShellState::default();
        marks(&mut s, &[('D', 0, Some(0)), ('A', 10, None), ('B', 20, None)]);
        assert!(s.ready_at(Offset(30), None));
        assert!(s.ready_at(Offset(30), Some(Offset(15))));
        // Input typed at 28 has not been answered by a prompt yet.
        assert!(!s.ready_at(Offset(30), Some(Offset(28))));
        // A running command.
        marks(&mut s, &[('C', 40, None)]);
        assert!(!s.ready_at(Offset(50), None));
        // When ready, the next C and D are the command's, and an empty line's D is too.
        marks(&mut s, &[('D', 60, Some(1)), ('A', 70, None), ('B', 80, None)]);
        let c = s.cycle(&typed(90, true), false, |_, _| false);
        assert_eq!(c, Cycle::default());
        marks(&mut s, &[('D', 95, Some(0))]);
        let c = s.cycle(&typed(90, true), false, |_, _| false);
        assert_eq!((c.output_from, c.finished.map(|f| f.exit)), (None, Some(Some(0))));
    }

    #[test]
    fn input_taken_by_the_running_command_ends_with_it_only_after_the_prompt() {
        let mut s = ShellState::default();
        marks(&mut s, &[('B', 0, None), ('C', 10, None)]);
        marks(&mut s, &[('D', 30, Some(0))]);
        let c = s.cycle(&typed(20, false), false, |_, _| false);
        assert!(!c.awaits_taker() && c.ended(true).is_none());
        marks(&mut s, &[('A', 40, None), ('B', 50, None)]);
        let c = s.cycle(&typed(20, false), false, |_, _| false);
        assert!(c.awaits_taker());
        assert_eq!(c.ended(false), None);
        assert_eq!(c.ended(true).map(|f| f.exit), Some(Some(0)));
    }

    #[test]
    fn only_interactive_shells_are_integrated() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(detect("/bin/bash", &[]), Some(ShellKind::Bash));
        assert_eq!(detect("bash", &args(&["--norc", "--noprofile"])), Some(ShellKind::Bash));
        assert_eq!(detect("bash", &args(&["-c", "exit 3"])), None);
        assert_eq!(detect("bash", &args(&["script.sh"])), None);
        assert_eq!(detect("python3", &[]), None);
        assert_eq!(detect("/usr/bin/zsh", &[]), Some(ShellKind::Zsh));
        assert_eq!(detect("zsh", &args(&["-f"])), None);
        assert_eq!(detect("fish", &args(&["--private"])), Some(ShellKind::Fish));
        assert_eq!(detect("bash", &args(&["-l"])), None);
    }
}
