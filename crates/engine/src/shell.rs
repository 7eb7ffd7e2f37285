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

/// What the marks say about the shell, kept by the session as they arrive.
#[derive(Debug, Clone, Default)]
pub struct ShellState {
    /// At least one valid mark was seen: the shell is integrated.
    pub active: bool,
    /// A command was accepted (C) and has not finished (D) yet.
    pub running: bool,
    /// The last command that finished.
    pub last: Option<Finished>,
    /// Offsets just after recent C marks and when they arrived, oldest first (several lines of
    /// input run several commands; the output of all of them starts at the first).
    recent_starts: std::collections::VecDeque<(Offset, Instant)>,
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
            MarkKind::PromptStart => self.running = false,
            MarkKind::PromptEnd => {
                self.running = false;
                self.prompt_end = Some(mark.end);
            }
            MarkKind::OutputStart => {
                self.running = true;
                if self.recent_starts.len() == 64 {
                    self.recent_starts.pop_front();
                }
                self.recent_starts.push_back((mark.end, now));
            }
            MarkKind::CommandEnd => {
                // A C belongs to this D only if it came after the previous D.
                let after_previous = |o: &Offset| self.last.as_ref().is_none_or(|l| *o >= l.mark_end);
                let started = self.recent_starts.back().copied().filter(|(o, _)| after_previous(o));
                if mark.cwd.is_some() {
                    self.cwd = mark.cwd.clone();
                }
                self.last = Some(Finished {
                    output_from: started.map(|(o, _)| o),
                    output_to: mark.start,
                    mark_end: mark.end,
                    exit: mark.exit,
                    cwd: mark.cwd,
                    duration: started.map(|(_, t)| now.saturating_duration_since(t)),
                });
                self.running = false;
            }
        }
    }

    /// The shell waits at its prompt: integrated, no command running.
    pub fn at_prompt(&self) -> bool {
        self.active && !self.running && self.prompt_end.is_some()
    }

    /// Where the output of the first command accepted after `from` starts.
    pub fn first_output_start_after(&self, from: Offset) -> Option<Offset> {
        self.recent_starts.iter().map(|(o, _)| *o).find(|o| *o >= from)
    }

    /// The last finished command if it finished after `from`.
    pub fn finished_after(&self, from: Offset) -> Option<&Finished> {
        self.last.as_ref().filter(|l| l.output_to >= from)
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
