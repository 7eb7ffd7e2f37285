//! Waiting for output, driven by the reader's notifications and bounded by a deadline.
//!
//! A waiter sleeps on the session's `watch` channel and on at most one timer (its deadline or
//! the end of a quiet period). Nothing here polls: with no output, a waiter costs nothing.

use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

use crate::session::Session;
use crate::shell::Typed;
use crate::text;
use crate::transcript::Offset;
use crate::transport::Foreground;

/// When a settle wait may call the program idle.
#[derive(Debug, Clone)]
pub struct Settle {
    /// Output before this offset does not count as an answer.
    pub from: Offset,
    /// Quiet that ends the wait when the cursor line is not a recognised prompt.
    pub quiet: Duration,
    /// Quiet that confirms a recognised prompt.
    pub confirm: Duration,
    /// Whether the prompt path needs some output after `from` first (true after typing a
    /// command: until its echo arrives, the prompt on screen is still the old one).
    pub require_output: bool,
    /// The input had several lines, which an integrated shell may run as several commands:
    /// a finished command then counts only once the shell stays at its prompt for `confirm`.
    pub multiline: bool,
    /// End the wait with [`Settled::Paused`] when output pauses for `quiet` while an integrated
    /// shell's command is still running (for reads that follow progress); otherwise such a
    /// pause keeps waiting for the command to finish.
    pub return_on_pause: bool,
    /// The command line typed at `from`, when the wait is for its answer: an integrated shell's
    /// completion then comes only from that command's own marks (see [`Session::cycle`]), never
    /// from an earlier command's, and the shell's prompt alone does not end the wait.
    pub command: Option<Typed>,
    /// Keys were pressed (not a command line typed): at an integrated shell idle at its prompt,
    /// a prompt is their answer only once the shell drew it after them. The old prompt with a
    /// `^C` echoed after it looks the same, while the shell has not yet dealt with the key and
    /// would drop what is typed next.
    pub keys: bool,
}

impl Settle {
    /// Quiet that confirms a recognised prompt: long enough for a program to print its next
    /// line, short enough not to be felt.
    pub const CONFIRM: Duration = Duration::from_millis(20);

    /// How long an integrated shell may stay at the prompt it drew after a running command
    /// ended, without running the input typed meanwhile, before the input is taken to have gone
    /// to that command: a line waiting in the terminal is read and echoed at once.
    pub const TAKEN: Duration = Duration::from_millis(100);

    /// Waiting for the answer to input typed at `from`: its echo must arrive before a prompt
    /// counts, and a command an integrated shell runs is waited for through pauses.
    pub fn after_input(from: Offset, quiet: Duration) -> Settle {
        Settle {
            from,
            quiet,
            confirm: Settle::CONFIRM,
            require_output: true,
            multiline: false,
            return_on_pause: false,
            command: None,
            keys: false,
        }
    }

    /// Waiting for the answer to keys pressed at `from`, which need not print anything (a
    /// pager's space).
    pub fn after_keys(from: Offset, quiet: Duration) -> Settle {
        Settle { require_output: false, keys: true, ..Settle::after_input(from, quiet) }
    }

    /// Waiting for the answer to the command line `typed`.
    pub fn after_command(typed: Typed, quiet: Duration) -> Settle {
        let at = typed.at;
        Settle { command: Some(typed), ..Settle::after_input(at, quiet) }
    }

    /// Following output from `from` without typing: a pause in output ends the wait.
    pub fn reading(from: Offset, quiet: Duration) -> Settle {
        Settle { require_output: false, return_on_pause: true, ..Settle::after_input(from, quiet) }
    }

    /// The input had several lines (see [`Settle::multiline`]).
    pub fn multiline(mut self, multiline: bool) -> Settle {
        self.multiline = multiline;
        self
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The integrated shell reported the command finished (see [`Session::shell`]).
    Shell,
    /// A prompt appeared and stayed quiet for the confirming period.
    Prompt,
    /// No output for the quiet period, and the program was seen waiting for input (a local
    /// terminal's foreground process reading or polling it).
    Quiet,
    /// No output for the quiet period, where nothing shows whether the program waits for input
    /// or works (SSH, serial, a daemon's terminal): not called complete.
    Silent,
    /// No output for the quiet period, but the integrated shell says the command still runs.
    Paused,
    /// The session ended.
    Exited,
    /// The link is down (see [`Session::link_problem`]): nothing more can arrive for now.
    Disconnected,
    /// The deadline passed while output was still arriving.
    TimedOut,
}

impl Settled {
    /// Whether the program is considered done (not after a timeout, a pause or a lost link).
    pub fn is_complete(self) -> bool {
        !matches!(self, Settled::TimedOut | Settled::Paused | Settled::Disconnected | Settled::Silent)
    }
}

/// A line that matched a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMatch {
    /// The matched line as clean text.
    pub line: String,
    /// Offset where the line starts.
    pub line_start: Offset,
    /// Offset just after the line (after its newline when it has one).
    pub line_end: Offset,
}

/// Outcome of [`Session::wait_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternWait {
    /// The pattern matched.
    Matched(LineMatch),
    /// The deadline passed first.
    TimedOut,
    /// The session ended without a match.
    Exited,
}

/// Lines of the echo of typed input, to be skipped before matching.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    lines: Vec<String>,
}

impl Echo {
    /// The echo a terminal shows for `input` (one line per line typed; blank lines dropped).
    pub fn of(input: &str) -> Echo {
        Echo { lines: input.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect() }
    }
}

impl Session {
    /// Waits until the program is done answering, or `TimedOut` at `deadline`:
    /// - with an integrated shell, the moment it reports a command finished after `from` (the
    ///   typed command's own, when [`Settle::command`] says which);
    /// - otherwise (or inside a program the shell started) when a recognised prompt is followed
    ///   by `confirm` of quiet, or after `quiet` with no output at all. While an integrated
    ///   shell runs a command, silence alone proves nothing (`sleep 2; echo done`), so the quiet
    ///   rule applies only when the program is seen reading the terminal, and a prompt-like
    ///   line only when the program is not busy;
    /// - or when the session ends.
    pub async fn settle(&self, opts: Settle, deadline: Instant) -> Settled {
        let mut rx = self.subscribe();
        let mut last_output = Instant::now();
        let mut prompt_checked = false;
        // When quiet came but the program was seen busy: look again one quiet period later
        // (a program may return to reading its input without printing anything).
        let mut recheck: Option<Instant> = None;
        // For a line entered: whether a new line has begun after it (see `Typed::entered`).
        let mut new_line = !opts.command.as_ref().is_some_and(|t| t.entered);
        let mut scanned = opts.from;
        loop {
            let signal = *rx.borrow_and_update();
            if !signal.alive {
                return Settled::Exited;
            }
            if self.link_problem().is_some() {
                return Settled::Disconnected;
            }
            let now = Instant::now();
            let quiet_for = now - last_output;
            let (at_prompt, running, integrated) =
                self.with_shell(|s| (s.at_prompt(), s.active && s.running, s.active));
            let (finished, awaits_taker) = match &opts.command {
                Some(typed) => {
                    let cycle = self.cycle(typed, opts.multiline);
                    (cycle.ended(quiet_for >= Settle::TAKEN).is_some(), cycle.awaits_taker())
                }
                None => (self.with_shell(|s| s.finished_after(opts.from).is_some()), false),
            };
            // An integrated shell's own prompt is not the answer to a command typed at it: the
            // command's marks are (the prompt may be the one the command waits behind). Nor to
            // keys pressed at it, unless drawn after them.
            let mut heuristic = None;
            let shell_prompt_only = integrated
                && !running
                && (opts.command.is_some()
                    || opts.keys && !self.with_shell(|s| s.prompt_end.is_some_and(|p| p > opts.from)));
            if finished && (!opts.multiline || (at_prompt && quiet_for >= opts.confirm)) {
                return Settled::Shell;
            }
            if !new_line && signal.end > scanned {
                // Each byte is looked at once, however long a line without a newline grows.
                new_line = self.slice(scanned, signal.end.since(scanned) as usize).bytes.contains(&b'\n');
                scanned = signal.end;
            }
            if !prompt_checked && quiet_for >= opts.confirm {
                prompt_checked = true;
                let fresh = (signal.end > opts.from || !opts.require_output) && new_line;
                if fresh
                    && !finished
                    && !shell_prompt_only
                    && self.prompt().is_some()
                    && !(running && self.foreground() == Some(Foreground::Busy))
                    && (opts.return_on_pause || !self.unread_input(opts.from))
                {
                    heuristic = Some(Settled::Prompt);
                }
            }
            if heuristic.is_none() && quiet_for >= opts.quiet && !finished {
                // Quiet is an answer only from a program seen waiting for input; a running
                // command of an integrated shell must be seen reading the terminal itself. A line
                // typed at an integrated shell that has neither echoed nor started it is not
                // taken yet, and no silence answers it: it is a slow link's round trip, or a
                // shell not yet scheduled on a loaded machine (which still shows as reading the
                // terminal). Only output (its echo, its marks) moves this on.
                //
                // Nor does silence answer input the program has not read at all (keys on a
                // machine so loaded that they wait in the kernel's buffers while the program
                // still shows as waiting for input): it is looked at again each quiet period.
                let untaken = integrated && !running && !new_line && opts.command.is_some();
                let unread = !untaken && !opts.return_on_pause && self.unread_input(opts.from);
                let foreground = if untaken { None } else { self.foreground() };
                heuristic = match foreground {
                    _ if untaken || unread => None,
                    Some(Foreground::ReadingTerminal) => Some(Settled::Quiet),
                    Some(Foreground::Polling) if !running => Some(Settled::Quiet),
                    None if !running => Some(Settled::Silent),
                    _ => None,
                };
                if heuristic.is_none() && opts.return_on_pause && !untaken {
                    heuristic = Some(Settled::Paused);
                }
                recheck = ((!running && foreground.is_some()) || unread).then(|| now + opts.quiet);
            }
            if let Some(settled) = heuristic {
                // Everything above judged the output up to `signal.end`; the screen and the
                // program's state were read later. Output that came meanwhile (the shell's end
                // mark and prompt, drawn while this looked) may not have its marks applied
                // yet: the moment is judged again with it.
                if !self.output_after(signal.end) {
                    return settled;
                }
                last_output = Instant::now();
                prompt_checked = false;
                recheck = None;
            }
            if now >= deadline {
                return Settled::TimedOut;
            }
            let wake = if !prompt_checked || (finished && opts.multiline) {
                last_output + opts.confirm
            } else if awaits_taker && quiet_for < Settle::TAKEN {
                last_output + Settle::TAKEN
            } else if quiet_for < opts.quiet {
                last_output + opts.quiet
            } else {
                recheck.unwrap_or(deadline)
            };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Settled::Exited;
                    }
                    last_output = Instant::now();
                    prompt_checked = false;
                    recheck = None;
                }
                _ = tokio::time::sleep_until(wake.min(deadline)) => {}
            }
        }
    }

    /// Waits until a line of output after `from` matches `pattern`, skipping the `echo` of
    /// input just typed. Lines are matched as clean text, each as soon as it is complete; the
    /// unfinished last line is tried too (prompts like `Password:` end without a newline).
    pub async fn wait_for(&self, pattern: &Regex, from: Offset, echo: &Echo, deadline: Instant) -> PatternWait {
        let mut rx = self.subscribe();
        let mut scanner = LineScanner::new(from.max(self.oldest()), echo);
        loop {
            let signal = *rx.borrow_and_update();
            if let Some(m) = scanner.scan(self, pattern) {
                return PatternWait::Matched(m);
            }
            if !signal.alive {
                return PatternWait::Exited;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() {
                    return PatternWait::Exited;
                },
                _ = tokio::time::sleep_until(deadline) => return PatternWait::TimedOut,
            }
        }
    }

    /// Waits until the integrated shell has drawn its prompt after offset `after` (its B mark),
    /// or `deadline`; returns whether it did.
    pub async fn wait_prompt_drawn(&self, after: Offset, deadline: Instant) -> bool {
        let mut rx = self.subscribe();
        let drawn = |s: &Session| s.with_shell(|sh| sh.prompt_end.is_some_and(|p| p > after));
        loop {
            if drawn(self) {
                return true;
            }
            if !rx.borrow_and_update().alive {
                return false;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return drawn(self) },
                _ = tokio::time::sleep_until(deadline) => return drawn(self),
            }
        }
    }

    /// Waits until no output has come for `quiet` (at once if none came that long), or until
    /// `deadline`.
    pub async fn wait_quiet(&self, quiet: Duration, deadline: Instant) {
        let mut rx = self.subscribe();
        loop {
            rx.borrow_and_update();
            let Some(last) = *crate::session::lock(&self.shared.last_output) else { return };
            let until = (last + quiet).min(deadline);
            if Instant::now() >= until {
                return;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Waits until output has been quiet for `quiet` and the program is seen waiting for input
    /// (where that can be seen: a local terminal), looking again every `quiet` while it is seen
    /// busy, until `deadline`.
    pub async fn wait_reading(&self, quiet: Duration, deadline: Instant) {
        loop {
            self.wait_quiet(quiet, deadline).await;
            if Instant::now() >= deadline || self.foreground() != Some(Foreground::Busy) {
                return;
            }
            tokio::time::sleep_until((Instant::now() + quiet).min(deadline)).await;
        }
    }

    /// Waits for an integrated shell's first prompt (its first B mark), however long its startup
    /// files take, until `deadline`; returns whether it came. A recognised prompt that stays
    /// quiet for `unmarked` without a mark ends the wait early (the startup files replaced the
    /// shell or its hooks), as does the end of the session.
    pub async fn wait_first_prompt(&self, unmarked: Duration, deadline: Instant) -> bool {
        let mut rx = self.subscribe();
        let drawn = |s: &Session| s.with_shell(|sh| sh.prompt_end.is_some());
        let mut last_output = Instant::now();
        loop {
            if drawn(self) {
                return true;
            }
            if !rx.borrow_and_update().alive || Instant::now() >= deadline {
                return false;
            }
            let quiet = last_output.elapsed() >= unmarked;
            if quiet && self.prompt().is_some() {
                return false;
            }
            // Once quiet without a prompt, only new output or the deadline can change anything.
            let wake = if quiet { deadline } else { last_output + unmarked };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return drawn(self);
                    }
                    last_output = Instant::now();
                }
                _ = tokio::time::sleep_until(wake.min(deadline)) => {}
            }
        }
    }

    /// Waits until the session ends or `deadline` passes; returns whether it ended.
    pub async fn wait_exit(&self, deadline: Instant) -> bool {
        let mut rx = self.subscribe();
        tokio::time::timeout_at(deadline, rx.wait_for(|s| !s.alive)).await.is_ok()
    }

    /// Up to `n` clean lines ending just before `at` (not crossing a line start after it).
    pub fn lines_before(&self, at: Offset, n: usize) -> Vec<String> {
        if n == 0 {
            return Vec::new();
        }
        const LOOK_BACK: u64 = 64 << 10;
        let from = Offset(at.0.saturating_sub(LOOK_BACK));
        let slice = self.slice(from, at.since(from) as usize);
        let mut lines: Vec<String> = slice.bytes.split(|&b| b == b'\n').map(text::clean).collect();
        // The piece after the last newline is empty when `at` is a line start.
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let keep = lines.len().min(n);
        lines.split_off(lines.len() - keep)
    }

    /// Up to `n` clean lines from `at` on, as far as output exists.
    pub fn lines_after(&self, at: Offset, n: usize) -> Vec<String> {
        if n == 0 {
            return Vec::new();
        }
        let slice = self.slice(at, 64 << 10);
        let mut lines: Vec<String> = slice.bytes.split(|&b| b == b'\n').take(n).map(text::clean).collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        lines
    }
}

/// A complete line longer than this is matched on its last this-many bytes.
const MAX_LINE: usize = 64 << 10;
/// The unfinished last line is matched on its last this-many bytes: enough for any prompt, and
/// cheap enough to redo on every chunk of a flood that has no newlines.
const MAX_PARTIAL: usize = 1 << 10;

/// Walks output line by line from an offset. Each byte is searched for a newline once; a line is
/// rendered when it completes (and its unfinished tail on each wake).
struct LineScanner {
    /// Start of the first line not yet matched completely.
    next: Offset,
    /// Bytes in `[next, searched)` hold no newline.
    searched: Offset,
    /// Echo lines still to be skipped, the next one last.
    echo: Vec<String>,
}

impl LineScanner {
    fn new(from: Offset, echo: &Echo) -> LineScanner {
        LineScanner { next: from, searched: from, echo: echo.lines.iter().rev().cloned().collect() }
    }

    fn scan(&mut self, session: &Session, pattern: &Regex) -> Option<LineMatch> {
        let fresh = session.slice(self.searched, usize::MAX);
        if fresh.lost > 0 {
            // Bytes fell off the ring unsearched; carry on with what is still there.
            self.next = fresh.from;
        }
        let mut pos = 0;
        while let Some(nl) = fresh.bytes[pos..].iter().position(|&b| b == b'\n') {
            let end = fresh.from.plus(pos + nl + 1);
            let line = line_text(session, &fresh, self.next.max(Offset(end.0.saturating_sub(MAX_LINE as u64))), end);
            let start = self.next;
            pos += nl + 1;
            self.next = end;
            self.searched = end;
            if self.is_echo(&line, true) {
                continue;
            }
            if pattern.is_match(&line) {
                return Some(LineMatch { line, line_start: start, line_end: end });
            }
        }
        self.searched = fresh.to();
        if self.next < fresh.to() {
            let from = self.next.max(Offset(fresh.to().0.saturating_sub(MAX_PARTIAL as u64)));
            let line = line_text(session, &fresh, from, fresh.to());
            if !self.is_echo(&line, false) && pattern.is_match(&line) {
                return Some(LineMatch { line, line_start: self.next, line_end: fresh.to() });
            }
        }
        None
    }

    /// Whether `line` is (or, unfinished, may still become) the echo of typed input.
    fn is_echo(&mut self, line: &str, complete: bool) -> bool {
        let Some(expected) = self.echo.last() else { return false };
        if !complete {
            return expected.starts_with(line.trim());
        }
        if line.contains(expected.as_str()) {
            self.echo.pop();
            return true;
        }
        // Not the echo (echo is off, or the program printed first): stop skipping.
        self.echo.clear();
        false
    }
}

/// Clean text of `[from, to)`, taken from `fresh` when it holds the range.
fn line_text(session: &Session, fresh: &crate::transcript::Slice, from: Offset, to: Offset) -> String {
    if from >= fresh.from {
        let a = from.since(fresh.from) as usize;
        line_of(&fresh.bytes[a..a + to.since(from) as usize])
    } else {
        line_of(&session.slice(from, to.since(from) as usize).bytes)
    }
}

/// A raw line as clean text without its line ending. Plain printable lines, the bulk of any
/// flood, skip the escape-sequence renderer: for them raw bytes and clean text are the same.
fn line_of(raw: &[u8]) -> String {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if !body.iter().any(|&b| b < 0x20 || b == 0x7f)
        && let Ok(plain) = std::str::from_utf8(body)
    {
        return plain.to_string();
    }
    let clean = text::clean(raw);
    clean.trim_end_matches(['\n', '\r']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fake_session;
    use crate::transport::Exit;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LONG: Duration = Duration::from_secs(30);

    fn settle_from(from: Offset) -> Settle {
        Settle {
            from,
            quiet: Duration::from_millis(300),
            confirm: Duration::from_millis(20),
            require_output: true,
            multiline: false,
            return_on_pause: false,
            command: None,
            keys: false,
        }
    }

    /// An integrated shell at its prompt, blocked reading the terminal, that has not yet taken a
    /// line typed at it (starved of CPU on a loaded machine: the kernel has not handed it the
    /// line, so it still shows as reading): its silence is no answer, however long. Once it
    /// takes the line, the command's own marks are.
    #[tokio::test]
    async fn a_line_the_shell_has_not_taken_yet_is_not_answered_by_quiet() {
        use crate::testutil::TOKEN;
        let (s, mut p) = crate::testutil::fake_session_seen(1 << 16, Some(Foreground::ReadingTerminal));
        let prompt = format!("\x1b]133;A;k={TOKEN}\x07$ \x1b]133;B;k={TOKEN}\x07");
        p.io.write_all(prompt.as_bytes()).await.unwrap();
        assert!(s.wait_first_prompt(LONG, Instant::now() + LONG).await);
        let typed = s.write_command(b"echo hi\r", "echo hi", Instant::now() + LONG).await.unwrap();
        let settle = s.settle(Settle::after_command(typed, Duration::from_millis(100)), Instant::now() + LONG);
        tokio::pin!(settle);
        tokio::select! {
            settled = &mut settle => panic!("answered {settled:?} before the shell took the line"),
            // The fault: the shell is not scheduled for five quiet periods.
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let mut line = [0u8; 8];
        p.io.read_exact(&mut line).await.unwrap();
        let answer = format!("echo hi\r\n\x1b]133;C;k={TOKEN}\x07hi\r\n\x1b]133;D;0;k={TOKEN}\x07{prompt}");
        p.io.write_all(answer.as_bytes()).await.unwrap();
        assert_eq!(settle.await, Settled::Shell);
    }

    #[tokio::test]
    async fn a_prompt_the_reader_is_still_taking_in_is_judged_with_its_marks() {
        // `exit()` typed at python3 run from the integrated shell. The shell's end mark and
        // prompt arrive while the wait looks: the transcript (and the screen drawn from it) has
        // them before the shell's state has their marks. That prompt is not python's answer
        // (a "heuristic" reply that would call `exit()` not run yet): the moment is judged
        // again with the marks, which say the running command took the input and ended.
        use crate::testutil::TOKEN;
        let (s, mut p) = crate::testutil::fake_session_seen(1 << 16, Some(Foreground::Polling));
        let prompt = format!("\x1b]133;A;k={TOKEN}\x07test$ \x1b]133;B;k={TOKEN}\x07");
        p.io.write_all(prompt.as_bytes()).await.unwrap();
        assert!(s.wait_first_prompt(LONG, Instant::now() + LONG).await);
        let typed = s.write_command(b"python3\r", "python3", Instant::now() + LONG).await.unwrap();
        p.io.read_exact(&mut [0u8; 8]).await.unwrap();
        p.io.write_all(format!("python3\r\n\x1b]133;C;k={TOKEN}\x07>>> ").as_bytes()).await.unwrap();
        let quiet = Duration::from_millis(100);
        assert_eq!(s.settle(Settle::after_command(typed, quiet), Instant::now() + LONG).await, Settled::Prompt);
        let typed = s.write_command(b"exit()\r", "exit()", Instant::now() + LONG).await.unwrap();
        p.io.read_exact(&mut [0u8; 7]).await.unwrap();
        p.io.write_all(b"exit()\r\n").await.unwrap();
        let echoed = typed.at.plus(8);
        s.subscribe().wait_for(|signal| signal.end >= echoed).await.unwrap();
        let rest = s.take_in_halfway(format!("\x1b]133;D;0;k={TOKEN}\x07{prompt}").as_bytes());
        let settle = s.settle(Settle::after_command(typed, quiet), Instant::now() + LONG);
        tokio::pin!(settle);
        tokio::select! {
            settled = &mut settle => panic!("answered {settled:?} by a prompt whose marks were not in yet"),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        rest();
        assert_eq!(settle.await, Settled::Shell);
    }

    #[tokio::test]
    async fn keys_the_program_has_not_read_are_not_answered_by_quiet() {
        // A pager seen polling the terminal while a loaded machine keeps its key in the
        // kernel's buffers: silence is no answer until the program has read.
        let (s, mut p) = crate::testutil::fake_session_counting(1 << 16, Some(Foreground::Polling));
        let start = s.write(b"q", Instant::now() + LONG).await.unwrap();
        let settle = s.settle(Settle::after_keys(start, Duration::from_millis(100)), Instant::now() + LONG);
        tokio::pin!(settle);
        tokio::select! {
            settled = &mut settle => panic!("answered {settled:?} before the program read the key"),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let mut key = [0u8; 1];
        p.io.read_exact(&mut key).await.unwrap();
        p.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(settle.await, Settled::Quiet);
        // Keys the terminal acts on itself (an interrupt) are never read by the program.
        let start = s.write(b"\x03", Instant::now() + LONG).await.unwrap();
        let settled = s.settle(Settle::after_keys(start, Duration::from_millis(100)), Instant::now() + LONG).await;
        assert_eq!(settled, Settled::Quiet);
    }

    #[tokio::test]
    async fn wait_for_skips_the_echo_and_matches_an_unfinished_line() {
        let (s, mut p) = fake_session(1 << 16);
        let re = Regex::new("READY").unwrap();
        let start = s.write(b"echo READY\r", Instant::now() + LONG).await.unwrap();
        let mut typed = [0u8; 11];
        p.io.read_exact(&mut typed).await.unwrap();
        let echo = Echo::of("echo READY");
        let wait = s.wait_for(&re, start, &echo, Instant::now() + LONG);
        let program = async {
            p.io.write_all(b"echo REA").await.unwrap();
            p.io.write_all(b"DY\r\nREADY now$ ").await.unwrap();
        };
        let (outcome, ()) = tokio::join!(wait, program);
        let PatternWait::Matched(m) = outcome else { panic!("{outcome:?}") };
        assert_eq!(m.line, "READY now$ ");
        assert_eq!(m.line_start, Offset(12));
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_settles_fast_and_silence_settles_slowly() {
        let (s, mut p) = fake_session(1 << 16);
        p.io.write_all(b"out\r\nuser@h:~$ ").await.unwrap();
        let t = Instant::now();
        assert_eq!(s.settle(settle_from(Offset(0)), t + LONG).await, Settled::Prompt);
        assert!(t.elapsed() < Duration::from_millis(100));
        let end = s.end();
        p.io.write_all(b"compiling...").await.unwrap();
        let t = Instant::now();
        assert_eq!(s.settle(settle_from(end), t + LONG).await, Settled::Silent);
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert_eq!(s.settle(settle_from(s.end()), Instant::now()).await, Settled::TimedOut);
    }

    #[tokio::test]
    async fn an_exit_wakes_every_waiter_at_once() {
        let (s, p) = fake_session(1 << 16);
        let re = Regex::new("never").unwrap();
        let no_echo = Echo::default();
        let wait = s.wait_for(&re, Offset(0), &no_echo, Instant::now() + LONG);
        let settle = s.settle(settle_from(Offset(0)), Instant::now() + LONG);
        p.exit.send(Exit { code: Some(7), signal: None }).unwrap();
        drop(p.io);
        let (w, st) = tokio::join!(wait, settle);
        assert_eq!(w, PatternWait::Exited);
        assert_eq!(st, Settled::Exited);
        assert_eq!(s.exit().and_then(|e| e.code), Some(7));
    }

    #[tokio::test]
    async fn context_lines_come_from_around_the_match() {
        let (s, mut p) = fake_session(1 << 16);
        p.io.write_all(b"a\r\nb\r\nHIT\r\nc\r\nd\r\n").await.unwrap();
        let re = Regex::new("HIT").unwrap();
        let PatternWait::Matched(m) = s.wait_for(&re, Offset(0), &Echo::default(), Instant::now() + LONG).await else {
            panic!()
        };
        assert_eq!(s.lines_before(m.line_start, 5), ["a", "b"]);
        assert_eq!(s.lines_after(m.line_end, 1), ["c"]);
    }
}
