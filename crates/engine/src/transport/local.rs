//! Local programs on a pseudo-terminal of their own (`pty-process`, tokio-native).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Connection, Control, Exit, Foreground, Reads};
use crate::error::Error;
use crate::shell;

/// What to run on a local PTY.
#[derive(Debug, Clone)]
pub struct LocalCommand {
    /// The program, found on `PATH` when it has no slash.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory; the server's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (after `TERM=xterm-256color`).
    pub env: Vec<(String, String)>,
    /// Terminal height.
    pub rows: u16,
    /// Terminal width.
    pub cols: u16,
    /// Set up shell integration when the program is a shell we know (bash).
    pub shell_integration: bool,
}

impl LocalCommand {
    /// Parses a command line the way a shell splits words (`"ping -c 3 localhost"`, quotes and
    /// backslashes). A line using shell syntax (pipes, redirections, `;`, `&&`, `$VAR`, globs) is
    /// run by `/bin/sh -c` so that it means what it would mean typed at a shell.
    pub fn parse(line: &str) -> Result<LocalCommand, Error> {
        let line = line.trim();
        if line.is_empty() {
            return Err(Error::InvalidCommand("the command is empty".into()));
        }
        let words = shell_words::split(line)
            .map_err(|e| Error::InvalidCommand(format!("cannot parse the command line: {e}")))?;
        let shell_syntax =
            line.chars().any(|c| matches!(c, '|' | '&' | ';' | '<' | '>' | '$' | '`' | '*' | '?' | '(' | ')'));
        let (program, args) = if shell_syntax {
            ("/bin/sh".to_string(), vec!["-c".to_string(), line.to_string()])
        } else {
            let mut words = words.into_iter();
            let program = words.next().unwrap_or_default();
            (program, words.collect())
        };
        Ok(LocalCommand { program, args, cwd: None, env: Vec::new(), rows: 40, cols: 120, shell_integration: true })
    }
}

/// Starts `cmd` on a new PTY, as the leader of a new session (so its process group can be
/// stopped as a whole).
pub fn spawn(cmd: &LocalCommand) -> Result<Connection, Error> {
    let spawn_err =
        |e: pty_process::Error| Error::Spawn { program: cmd.program.clone(), source: io::Error::other(e.to_string()) };
    let io_err = |source: io::Error| Error::Spawn { program: cmd.program.clone(), source };
    let integration = match shell::detect(&cmd.program, &cmd.args).filter(|_| cmd.shell_integration) {
        Some(kind) => {
            let token = shell::new_token().map_err(io_err)?;
            let setup = shell::prepare_local(kind, &cmd.args, &cmd.env, &token).map_err(io_err)?;
            Some((token, setup))
        }
        None => None,
    };
    let args = integration.as_ref().map_or(&cmd.args, |(_, s)| &s.args);
    let (pty, pts) = pty_process::open().map_err(spawn_err)?;
    pty.resize(pty_process::Size::new(cmd.rows, cmd.cols)).map_err(spawn_err)?;
    let mut command = pty_process::Command::new(&cmd.program)
        .args(args)
        .env("TERM", "xterm-256color")
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    if let Some((_, setup)) = &integration {
        command = command.envs(setup.env.iter().map(|(k, v)| (k, v)));
    }
    if let Some(cwd) = &cmd.cwd {
        command = command.current_dir(cwd);
    }
    // A terminal's program starts with default signal handling and nothing blocked, whatever
    // pty-mcp inherited: started in the background by a non-interactive shell it ignores SIGINT,
    // and ctrl+c would then interrupt nothing in the session.
    // SAFETY: signal() and sigprocmask() are async-signal-safe, as pre_exec requires.
    command = unsafe {
        command.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE, libc::SIGTSTP] {
                libc::signal(sig, libc::SIG_DFL);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        })
    };
    let mut child = command.spawn(pts).map_err(|e| match e {
        pty_process::Error::Io(source) => io_err(source),
        other => spawn_err(other),
    })?;
    let pid = child.id().ok_or_else(|| io_err(io::Error::other("the child exited at once")))?;
    let fd = pty.as_fd().try_clone_to_owned().map_err(io_err)?;
    let (reader, writer) = pty.into_split();
    let exited = Box::pin(async move {
        let status = child.wait().await.ok()?;
        Some(Exit { code: status.code(), signal: status.signal() })
    });
    let (shell_token, files) = match integration {
        Some((token, setup)) => (Some(token), Some(setup.files)),
        None => (None, None),
    };
    Ok(Connection {
        reader: Box::pin(reader),
        writer: Box::pin(writer),
        control: Arc::new(LocalControl { master: fd, session: pid as i32, _files: files }),
        exited,
        shell_token,
        link: None,
    })
}

/// Control of a local PTY through a duplicate of its master descriptor.
struct LocalControl {
    master: OwnedFd,
    /// Session id of the child: its pid, since it called `setsid`.
    session: i32,
    /// The shell's integration rcfile, kept while the session lives.
    _files: Option<shell::IntegrationFiles>,
}

impl LocalControl {
    /// Bytes the program wrote that the session's reader has not read yet.
    fn unread_output(&self) -> libc::c_int {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD stores the count in the int we pass.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::FIONREAD, &mut n) };
        if rc == 0 { n } else { 0 }
    }

    /// The terminal's foreground process group.
    fn foreground_group(&self) -> Option<i32> {
        // SAFETY: tcgetpgrp only reads the terminal's foreground process group.
        let pgrp = unsafe { libc::tcgetpgrp(self.master.as_raw_fd()) };
        (pgrp > 0).then_some(pgrp)
    }

    /// The terminal's local mode flags (`c_lflag`).
    fn local_flags(&self) -> Option<libc::tcflag_t> {
        // SAFETY: tcgetattr fills a termios we own; on Linux the master reports the slave's flags.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(self.master.as_raw_fd(), &mut t) == 0).then_some(t.c_lflag)
        }
    }
}

impl Control for LocalControl {
    fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the descriptor is ours.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    fn echo(&self) -> Option<bool> {
        self.local_flags().map(|f| f & libc::ECHO != 0)
    }

    fn canonical(&self) -> Option<bool> {
        self.local_flags().map(|f| f & libc::ICANON != 0)
    }

    /// From `/proc` (Linux): where the foreground group's processes wait in the kernel. Without
    /// `/proc` (macOS) this is None and the engine falls back on its output heuristics.
    fn foreground(&self) -> Option<Foreground> {
        let pgrp = self.foreground_group()?;
        // A program blocked writing to a terminal whose output we have not read yet waits in
        // the same kernel function as one reading it (`wait_woken`): it is working.
        if self.unread_output() > 0 {
            return Some(Foreground::Busy);
        }
        if let Some(wchan) = speaking_leader(pgrp) {
            return Some(classify_wchan(&wchan));
        }
        let mut seen = None;
        for (pid, state) in members(pgrp) {
            if state == 'R' {
                return Some(Foreground::Busy);
            }
            let this = wchan_of(pid).map_or(Foreground::Busy, |w| classify_wchan(&w));
            seen = Some(match (seen, this) {
                (Some(Foreground::ReadingTerminal), _) | (_, Foreground::ReadingTerminal) => {
                    Foreground::ReadingTerminal
                }
                (Some(Foreground::Polling), _) | (_, Foreground::Polling) => Foreground::Polling,
                _ => Foreground::Busy,
            });
        }
        // A leader waiting for a child that is in no group of ours works.
        seen.or_else(|| state_and_group(pgrp).map(|_| Foreground::Busy))
    }

    /// From `/proc/<pid>/io` (Linux): the read calls of the foreground group's leader, or of
    /// its other members when they speak for it (as in [`Control::foreground`]).
    fn reads(&self) -> Option<Reads> {
        let group = self.foreground_group()?;
        let calls = match speaking_leader(group) {
            Some(_) => read_calls(group)?,
            None => {
                let calls: Vec<u64> = members(group).filter_map(|(pid, _)| read_calls(pid)).collect();
                if calls.is_empty() {
                    return None;
                }
                calls.iter().sum()
            }
        };
        Some(Reads { group, calls })
    }

    fn terminate(&self) {
        // Interactive shells put each job in a process group of its own, so signalling the
        // leader's group is not enough: stop every process of the terminal's session.
        // Looked up again for the KILL: a process may have forked on the hang-up.
        kill_session(self.session, &[libc::SIGHUP, libc::SIGCONT]);
        kill_session(self.session, &[libc::SIGKILL]);
    }
}

/// Where the leader of group `pgrp` waits, when it speaks for the group. The leader is the
/// program the shell started (or the shell itself); one that has ended (the first program of a
/// pipeline, `seq 1 200 | less`) or waits for a child (`sh -c`, a wrapper script) says nothing
/// itself: then the group's other members do.
fn speaking_leader(pgrp: i32) -> Option<String> {
    let (state, _) = state_and_group(pgrp)?;
    if state == 'Z' {
        return None;
    }
    wchan_of(pgrp).filter(|w| w.trim() != "do_wait")
}

/// The other members of process group `pgrp`, with their state letters.
fn members(pgrp: i32) -> impl Iterator<Item = (i32, char)> {
    processes().filter(move |&pid| pid != pgrp).filter_map(move |pid| {
        let (state, group) = state_and_group(pid)?;
        (group == pgrp && state != 'Z').then_some((pid, state))
    })
}

/// What a process blocked in kernel function `wchan` is doing.
fn classify_wchan(wchan: &str) -> Foreground {
    match wchan.trim() {
        "wait_woken" | "n_tty_read" => Foreground::ReadingTerminal,
        w if w.starts_with("poll_") || w.contains("select") || w.contains("epoll") || w.starts_with("do_sys_poll") => {
            Foreground::Polling
        }
        _ => Foreground::Busy,
    }
}

fn wchan_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()
}

/// The read calls `pid` has made (`syscr` in `/proc/<pid>/io`).
fn read_calls(pid: i32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|l| l.strip_prefix("syscr:")).and_then(|n| n.trim().parse().ok())
}

/// Every process id in `/proc`.
fn processes() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
}

/// The state letter and process group of `pid`, from `/proc/<pid>/stat`.
fn state_and_group(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let group = fields.nth(1)?.parse().ok()?;
    Some((state, group))
}

/// Sends `signals` in turn to every process whose session id is `sid`. Without `/proc` (macOS)
/// only the session leader's process group is signalled; the shell passes the hang-up on to its
/// jobs.
fn kill_session(sid: i32, signals: &[i32]) {
    let members: Vec<i32> = processes().filter(|&pid| process_session(pid) == Some(sid)).collect();
    for &signal in signals {
        // SAFETY: kill has no memory effects; a stale pid at worst yields ESRCH.
        unsafe { libc::kill(-sid, signal) };
        for &pid in &members {
            // SAFETY: as above.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// The session id of `pid`, from `/proc/<pid>/stat` (field 6, after the parenthesised name).
fn process_session(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_lines_like_a_shell() {
        let c = LocalCommand::parse("ping -c 3 'local host'").unwrap();
        assert_eq!(c.program, "ping");
        assert_eq!(c.args, ["-c", "3", "local host"]);
        let c = LocalCommand::parse("seq 1 10 | tail -1").unwrap();
        assert_eq!((c.program.as_str(), c.args[0].as_str()), ("/bin/sh", "-c"));
        assert!(LocalCommand::parse("  ").is_err());
        assert!(LocalCommand::parse("echo 'unterminated").is_err());
    }

    #[test]
    fn reads_its_own_session_id() {
        // SAFETY: getsid(0) only reads.
        let sid = unsafe { libc::getsid(0) };
        assert_eq!(process_session(std::process::id() as i32), Some(sid));
    }
}
