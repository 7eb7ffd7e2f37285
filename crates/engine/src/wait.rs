//! Waiting for output, driven by the reader's notifications and bounded by a deadline.
//!
//! A waiter sleeps on the session's `watch` channel and on at most one timer (its deadline or
//! the end of a quiet period). Nothing here polls: with no output, a waiter costs nothing.

use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;

use crate::session::Session;
use crate::text;
use crate::transcript::Offset;

/// When a settle wait may call the program idle.
#[derive(Debug, Clone, Copy)]
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
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// A prompt appeared and stayed quiet for the confirming period.
    Prompt,
    /// No output for the quiet period.
    Quiet,
    /// The session ended.
    Exited,
    /// The deadline passed while output was still arriving.
    TimedOut,
}

impl Settled {
    /// Whether the program is considered done (anything but a timeout).
    pub fn is_complete(self) -> bool {
        self != Settled::TimedOut
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
    /// Waits until the program looks idle: a recognised prompt followed by `confirm` of quiet,
    /// or `quiet` with no output at all, or the end of the session; `TimedOut` at `deadline`.
    pub async fn settle(&self, opts: Settle, deadline: Instant) -> Settled {
        let mut rx = self.subscribe();
        let mut last_output = Instant::now();
        let mut prompt_checked = false;
        loop {
            let signal = *rx.borrow_and_update();
            if !signal.alive {
                return Settled::Exited;
            }
            let now = Instant::now();
            let quiet_for = now - last_output;
            if !prompt_checked && quiet_for >= opts.confirm {
                prompt_checked = true;
                if (signal.end > opts.from || !opts.require_output) && self.prompt().is_some() {
                    return Settled::Prompt;
                }
            }
            if quiet_for >= opts.quiet {
                return Settled::Quiet;
            }
            if now >= deadline {
                return Settled::TimedOut;
            }
            let wake = if prompt_checked { last_output + opts.quiet } else { last_output + opts.confirm };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Settled::Exited;
                    }
                    last_output = Instant::now();
                    prompt_checked = false;
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
        let mut scanner =
            LineScanner { next: from.max(self.oldest()), echo: echo.lines.iter().rev().cloned().collect() };
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

/// Walks output line by line from an offset, remembering where the unfinished line starts.
struct LineScanner {
    /// Start of the first line not yet matched completely.
    next: Offset,
    /// Echo lines still to be skipped, the next one last.
    echo: Vec<String>,
}

impl LineScanner {
    fn scan(&mut self, session: &Session, pattern: &Regex) -> Option<LineMatch> {
        let slice = session.slice(self.next, usize::MAX);
        // Bytes lost off the ring are gone; continue with what is still there.
        self.next = slice.from;
        let mut pos = 0;
        while pos < slice.bytes.len() {
            let rest = &slice.bytes[pos..];
            let (raw, complete) = match rest.iter().position(|&b| b == b'\n') {
                Some(nl) => (&rest[..=nl], true),
                None => (rest, false),
            };
            let line = text::clean(raw);
            let line = line.strip_suffix('\n').unwrap_or(&line).trim_end_matches('\r');
            let line_start = slice.from.plus(pos);
            if let Some(expected) = self.echo.last() {
                if complete {
                    if line.contains(expected.as_str()) {
                        self.echo.pop();
                        pos += raw.len();
                        self.next = slice.from.plus(pos);
                        continue;
                    }
                    // Not the echo (echo is off, or the program printed first): stop skipping.
                    self.echo.clear();
                } else if expected.starts_with(line.trim()) {
                    // Possibly the echo, still being typed out: decide when the line is whole.
                    return None;
                }
            }
            if pattern.is_match(line) {
                return Some(LineMatch { line: line.to_string(), line_start, line_end: line_start.plus(raw.len()) });
            }
            if !complete {
                return None;
            }
            pos += raw.len();
            self.next = slice.from.plus(pos);
        }
        None
    }
}
