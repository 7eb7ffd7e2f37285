//! A session: one terminal, whatever carries its bytes.
//!
//! One reader task owns the transport's read side. Each chunk is appended to the transcript,
//! scanned for modes and queries, and then every waiter is woken through a `watch` channel.
//! The screen is derived lazily from the transcript (see `screen.rs`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::Error;
use crate::prompt::{self, PromptKind};
use crate::record::Recorder;
use crate::scanner::{Event, Modes, Query, Scanner};
use crate::screen::{Frame, Screen, ScreenView, StyledScreen};
use crate::secret::{self, Secret};
use crate::shell::{Cycle, ShellState, Typed};
use crate::transcript::{Offset, Slice, Transcript};
use crate::transport::{Connection, Control, Exit, Exited, Foreground, Reader, Reads, Writer};

/// How long output may keep arriving after the program exited (from its children still holding
/// the terminal) before the session is declared ended.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);
/// How long to wait for an exit status once the output stream has ended.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(2);

/// Sizes for a new session.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Terminal height.
    pub rows: u16,
    /// Terminal width.
    pub cols: u16,
    /// Bytes of transcript kept.
    pub buffer_size: usize,
    /// Offset of the first byte: 0, or where a mirrored transcript resumes.
    pub start: Offset,
    /// The far end is another engine (an ai-tmux daemon) that answers the program's terminal
    /// queries itself: answering them here too would type the answers twice.
    pub mirror: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { rows: 40, cols: 120, buffer_size: 1 << 20, start: Offset(0), mirror: false }
    }
}

/// What waiters watch: how much output exists and whether more can come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// The transcript's end offset.
    pub end: Offset,
    /// False once the transport has ended and all its output is in the transcript.
    pub alive: bool,
}

/// What the program is doing, judged on the current screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A shell or REPL prompt is waiting for a command.
    AtPrompt,
    /// A password or passphrase prompt.
    PasswordPrompt,
    /// A yes/no question.
    Confirmation,
    /// A pager waits for a key.
    Pager,
    /// A full-screen program holds the alternate screen.
    FullScreen,
    /// The program is working (or waiting in a way that is not recognised).
    Running,
    /// The program has ended.
    Exited,
    /// The link to the far end is down (see [`Session::link_problem`]).
    Disconnected,
}

impl State {
    /// The name agents see.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AtPrompt => "at_prompt",
            State::PasswordPrompt => "password_prompt",
            State::Confirmation => "confirmation",
            State::Pager => "pager",
            State::FullScreen => "full_screen",
            State::Running => "running",
            State::Exited => "exited",
            State::Disconnected => "disconnected",
        }
    }
}

/// State shared between the session handle and its reader task.
pub(crate) struct Shared {
    pub(crate) transcript: Mutex<Transcript>,
    screen: Mutex<Screen>,
    scanner: Mutex<Scanner>,
    /// What the integrated shell's marks said.
    shell: Mutex<ShellState>,
    pub(crate) signal: watch::Sender<Signal>,
    exit: Mutex<Option<Exit>>,
    /// The newest prompt seen at the cursor, for `last_prompt`.
    last_prompt: Mutex<Option<String>>,
    /// Where the next consuming read starts.
    read_cursor: Mutex<Offset>,
    /// See [`SessionConfig::mirror`].
    mirror: bool,
    /// The session log, when one was asked for.
    recorder: Mutex<Option<Recorder>>,
    /// Secrets sent lately, masked if the program prints them back, until their time is up.
    masks: Mutex<Vec<(Secret, Instant)>>,
    /// The transcript end when input was last written (see [`ShellState::ready_at`]).
    last_input: Mutex<Option<Offset>>,
    /// When output last arrived.
    pub(crate) last_output: Mutex<Option<Instant>>,
    /// The transcript end when input the program must read was last written, and how much the
    /// foreground program had read just before (see [`Session::unread_input`]).
    reads_before_input: Mutex<Option<(Offset, Reads)>>,
    /// The transport set the shell up for integration marks.
    integration: bool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take every later call down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One terminal session.
pub struct Session {
    pub(crate) shared: Arc<Shared>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    control: Arc<dyn Control>,
    /// Serialises operations that type into the terminal, so two calls never interleave keys.
    input_lock: tokio::sync::Mutex<()>,
    reader: JoinHandle<()>,
    /// [`Session::close`] has run.
    closed: std::sync::atomic::AtomicBool,
}

impl Session {
    /// Starts a session over an open transport, logging to `recorder` if given. Must be called
    /// within a tokio runtime.
    pub fn start(conn: Connection, config: SessionConfig, recorder: Option<Recorder>) -> Session {
        let (signal, _) = watch::channel(Signal { end: config.start, alive: true });
        let shared = Arc::new(Shared {
            transcript: Mutex::new(Transcript::starting_at(config.buffer_size, config.start)),
            mirror: config.mirror,
            screen: Mutex::new(Screen::new(config.rows, config.cols)),
            scanner: Mutex::new(Scanner::new(conn.shell_token.clone())),
            shell: Mutex::new(ShellState::default()),
            signal,
            exit: Mutex::new(None),
            last_prompt: Mutex::new(None),
            read_cursor: Mutex::new(config.start),
            recorder: Mutex::new(recorder),
            masks: Mutex::new(Vec::new()),
            last_input: Mutex::new(None),
            last_output: Mutex::new(None),
            reads_before_input: Mutex::new(None),
            integration: conn.shell_token.is_some(),
        });
        let writer = Arc::new(tokio::sync::Mutex::new(conn.writer));
        let reader = tokio::spawn(read_loop(shared.clone(), conn.reader, conn.exited, conn.link, writer.clone()));
        let input_lock = tokio::sync::Mutex::new(());
        Session { shared, writer, control: conn.control, input_lock, reader, closed: Default::default() }
    }

    /// Takes the per-session input lock; hold it across "type, then wait for the answer".
    pub async fn lock_input(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.input_lock.lock().await
    }

    /// Writes `bytes` to the terminal, returning the transcript end as it was just before, so
    /// that everything the program answers lies after it.
    ///
    /// # Errors
    /// [`Error::Closed`] when the session has ended, [`Error::WriteTimedOut`] when the program
    /// does not read its input before `deadline`, [`Error::Io`] when the write fails.
    pub async fn write(&self, bytes: &[u8], deadline: Instant) -> Result<Offset, Error> {
        let start = self.write_parts(&[bytes], deadline).await?;
        if let Some(r) = lock(&self.shared.recorder).as_mut() {
            r.input(bytes);
        }
        Ok(start)
    }

    /// Writes a command line, like [`Session::write`], and notes what is needed to find the
    /// command it forms among the shell's marks ([`Session::cycle`]): whether the shell was at
    /// its prompt, and the line to recognise in its echo otherwise.
    ///
    /// # Errors
    /// As [`Session::write`].
    pub async fn write_command(&self, bytes: &[u8], line: &str, deadline: Instant) -> Result<Typed, Error> {
        let previous = *lock(&self.shared.last_input);
        let at = self.write(bytes, deadline).await?;
        let ready = self.with_shell(|s| s.ready_at(at, previous));
        let first_line = line.lines().map(str::trim).find(|l| !l.is_empty()).map(String::from);
        let entered = bytes.last().is_some_and(|b| matches!(b, b'\r' | b'\n'));
        Ok(Typed { at, ready, first_line, entered })
    }

    /// The marks of the command `typed` formed (see [`ShellState::cycle`]).
    pub fn cycle(&self, typed: &Typed, multiline: bool) -> Cycle {
        // The shell lock is held while the transcript is read; nothing takes them the other way.
        let line = typed.first_line.as_deref().unwrap_or("");
        self.with_shell(|s| s.cycle(typed, multiline, |from, to| self.echoes(from, to, line)))
    }

    /// Whether the output in `[from, to)` shows `line` (a line editor's echo of it): compared
    /// without white space, so that wrapping and redraws do not matter.
    fn echoes(&self, from: Offset, to: Offset, line: &str) -> bool {
        const LOOK_BACK: u64 = 16 << 10;
        let from = from.max(Offset(to.0.saturating_sub(LOOK_BACK)));
        let shown = crate::text::clean(&self.slice(from, to.since(from) as usize).bytes);
        let squeeze = |t: &str| t.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        let want = squeeze(line);
        !want.is_empty() && squeeze(&shown).contains(&want)
    }

    /// Whether the shell was set up for integration marks (it may not have shown one yet).
    pub fn has_integration(&self) -> bool {
        self.shared.integration
    }

    /// Writes a secret and then `line_ending`, like [`Session::write`] but without recording
    /// the input in the session log, and masking the secret in output that echoes it for the
    /// next [`MASK_WINDOW`].
    ///
    /// # Errors
    /// As [`Session::write`].
    pub async fn write_secret(&self, secret: &Secret, line_ending: &[u8], deadline: Instant) -> Result<Offset, Error> {
        if self.is_alive() {
            lock(&self.shared.masks).push((secret.duplicate(), Instant::now() + MASK_WINDOW));
        }
        self.write_parts(&[secret.expose(), line_ending], deadline).await
    }

    /// Writes `parts` in order under the writer lock, all within `deadline`; returns the
    /// transcript end from just before.
    async fn write_parts(&self, parts: &[&[u8]], deadline: Instant) -> Result<Offset, Error> {
        if !self.is_alive() {
            return Err(Error::Closed);
        }
        let start = self.end();
        let mut writer =
            tokio::time::timeout_at(deadline, self.writer.lock()).await.map_err(|_| Error::WriteTimedOut)?;
        let write = async {
            for part in parts {
                writer.write_all(part).await?;
            }
            writer.flush().await
        };
        *lock(&self.shared.reads_before_input) = self.reads_before(parts).map(|reads| (start, reads));
        let written = tokio::time::timeout_at(deadline, write).await;
        // Even a failed write may have typed part of the input.
        *lock(&self.shared.last_input) = Some(start);
        match written {
            Ok(Ok(())) => Ok(start),
            Ok(Err(_)) if !self.is_alive() => Err(Error::Closed),
            Ok(Err(e)) => Err(Error::Io(e)),
            Err(_) => Err(Error::WriteTimedOut),
        }
    }

    /// How much the foreground program has read, taken just before writing `parts` when the
    /// program must read them to act on them: not when they hold a key the terminal itself acts
    /// on (ctrl+c, ctrl+z, ctrl+\, ctrl+s, ctrl+q), nor an unfinished line the kernel holds
    /// back in line mode.
    fn reads_before(&self, parts: &[&[u8]]) -> Option<Reads> {
        const TERMINAL_KEYS: [u8; 5] = [0x03, 0x1a, 0x1c, 0x13, 0x11];
        let bytes = || parts.iter().flat_map(|p| p.iter());
        if bytes().any(|b| TERMINAL_KEYS.contains(b)) {
            return None;
        }
        let reads = self.control.reads()?;
        let held = self.control.canonical() == Some(true) && !bytes().any(|b| matches!(b, b'\r' | b'\n' | 0x04));
        (!held).then_some(reads)
    }

    /// Whether the input written when the transcript ended at `from` is still unread: the
    /// foreground program has made no read since (where the transport can tell; see
    /// [`Control::reads`]). Whatever quiet follows such input is not its answer.
    pub fn unread_input(&self, from: Offset) -> bool {
        let before = *lock(&self.shared.reads_before_input);
        before.is_some_and(|(at, reads)| at == from && self.control.reads() == Some(reads))
    }

    /// Whether output past `end` is in the transcript: it may still be on its way to the
    /// shell's state and the waiters (the transcript takes it first).
    pub fn output_after(&self, end: Offset) -> bool {
        lock(&self.shared.transcript).end() > end
    }

    /// The transcript's end: the offset the next output byte will have.
    pub fn end(&self) -> Offset {
        self.shared.signal.borrow().end
    }

    /// Whether more output can come.
    pub fn is_alive(&self) -> bool {
        self.shared.signal.borrow().alive
    }

    /// How the program ended, once it has and the status is known.
    pub fn exit(&self) -> Option<Exit> {
        *lock(&self.shared.exit)
    }

    /// A receiver that changes whenever output arrives or the session ends.
    pub fn subscribe(&self) -> watch::Receiver<Signal> {
        self.shared.signal.subscribe()
    }

    /// Copies at most `max` bytes of output from `from`.
    pub fn slice(&self, from: Offset, max: usize) -> Slice {
        lock(&self.shared.transcript).slice(from, max)
    }

    /// Offset of the oldest byte still held.
    pub fn oldest(&self) -> Offset {
        lock(&self.shared.transcript).start()
    }

    /// Where the next consuming read begins.
    pub fn read_cursor(&self) -> Offset {
        *lock(&self.shared.read_cursor)
    }

    /// Moves the read cursor forward to `to` (never backward).
    pub fn advance_read_cursor(&self, to: Offset) {
        let mut c = lock(&self.shared.read_cursor);
        if to > *c {
            *c = to;
            self.control.read_to(to);
        }
    }

    /// Waits until the far end has recorded how far this session was read (a persistent
    /// session's daemon), at most until `deadline`: a reply must not reach the agent before
    /// the daemon knows it was read, or a pty-mcp killed right after would read it again.
    pub async fn reads_recorded(&self, deadline: Instant) {
        if let Some(recorded) = self.control.reads_recorded() {
            let _ = tokio::time::timeout_at(deadline, recorded).await;
        }
    }

    /// What the shell's integration marks said (inactive when the shell is not integrated).
    pub fn shell(&self) -> ShellState {
        lock(&self.shared.shell).clone()
    }

    /// Runs `f` on the shell state without copying it.
    pub fn with_shell<T>(&self, f: impl FnOnce(&ShellState) -> T) -> T {
        f(&lock(&self.shared.shell))
    }

    /// The integrated shell's recent commands, oldest first: each command line as typed, and
    /// how it ended (None while it runs; then its status, when reported).
    pub fn commands(&self) -> Vec<(String, Option<Option<i32>>)> {
        let spans = self.with_shell(ShellState::commands);
        let oldest = self.oldest();
        spans
            .into_iter()
            .filter(|c| c.typed_from >= oldest)
            .map(|c| {
                let typed =
                    crate::text::clean(&self.slice(c.typed_from, c.typed_to.since(c.typed_from) as usize).bytes);
                let line = typed.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").to_string();
                (line, c.ended)
            })
            .collect()
    }

    /// What the foreground program is blocked on, where the transport can tell.
    pub fn foreground(&self) -> Option<Foreground> {
        self.control.foreground()
    }

    /// The modes the program has set (alternate screen, cursor keys, bracketed paste).
    pub fn modes(&self) -> Modes {
        lock(&self.shared.scanner).modes()
    }

    fn caught_up_screen(&self) -> MutexGuard<'_, Screen> {
        let modes = self.modes();
        let mut screen = lock(&self.shared.screen);
        screen.catch_up(&self.shared.transcript, modes);
        screen
    }

    /// The terminal's size (rows, columns), without bringing the screen up to date.
    pub fn size(&self) -> (u16, u16) {
        lock(&self.shared.screen).size()
    }

    /// What a person sees now, with up to `scrollback_lines` lines from above the screen.
    pub fn screen(&self, scrollback_lines: usize) -> ScreenView {
        self.caught_up_screen().view(scrollback_lines)
    }

    /// The screen with its colours and attributes (see [`StyledScreen`]).
    pub fn styled(&self) -> StyledScreen {
        self.caught_up_screen().styled()
    }

    /// The screen as another terminal `width` columns wide redraws it (see [`Frame`]).
    pub fn frame(&self, width: u16) -> Frame {
        self.caught_up_screen().frame(width)
    }

    /// What the line at the cursor asks for, if it is a recognised prompt.
    pub fn prompt(&self) -> Option<(PromptKind, String)> {
        let screen = self.caught_up_screen();
        if screen.is_alternate() {
            // In a full-screen program only pagers have a recognisable bottom line.
            let bottom = screen.bottom_line();
            return (prompt::classify(&bottom) == Some(PromptKind::Pager)).then_some((PromptKind::Pager, bottom));
        }
        let line = screen.cursor_line();
        drop(screen);
        let kind = prompt::classify(&line)?;
        let text = line.trim().to_string();
        *lock(&self.shared.last_prompt) = Some(text.clone());
        Some((kind, text))
    }

    /// The program's state, judged on the current screen (and the shell's marks when it is
    /// integrated), and the newest prompt seen.
    pub fn state(&self) -> (State, Option<String>) {
        let (integrated, running) = self.with_shell(|s| (s.active, s.running));
        let state = if self.control.link_problem().is_some() {
            State::Disconnected
        } else if !self.is_alive() {
            State::Exited
        } else {
            match self.prompt() {
                // The shell said it waits for a command, whatever its prompt looks like.
                _ if integrated && !running => State::AtPrompt,
                // A prompt-like line while the shell runs a busy command is only output.
                Some((PromptKind::Shell, _)) if running && self.foreground() == Some(Foreground::Busy) => {
                    State::Running
                }
                Some((PromptKind::Shell | PromptKind::Login, _)) => State::AtPrompt,
                Some((PromptKind::Password, _)) => State::PasswordPrompt,
                Some((PromptKind::Confirmation, _)) => State::Confirmation,
                Some((PromptKind::Pager, _)) => State::Pager,
                None if self.modes().alt_screen => State::FullScreen,
                None => State::Running,
            }
        };
        (state, lock(&self.shared.last_prompt).clone())
    }

    /// Why the link is down, while it is.
    pub fn link_problem(&self) -> Option<String> {
        self.control.link_problem()
    }

    /// Why the session's log stopped (a full disk), once it has; the session goes on.
    pub fn log_problem(&self) -> Option<String> {
        lock(&self.shared.recorder).as_ref().and_then(|r| r.stopped().map(String::from))
    }

    /// Why the session's log stopped, the first time it is asked after it did (for one warning).
    pub fn log_news(&self) -> Option<String> {
        lock(&self.shared.recorder).as_mut().and_then(Recorder::news)
    }

    /// Holds the line in BREAK for `duration` (serial lines).
    ///
    /// # Errors
    /// When the transport has no BREAK, or the device refuses.
    pub async fn send_break(&self, duration: Duration) -> Result<(), Error> {
        if !self.is_alive() {
            return Err(Error::Closed);
        }
        let _typing = self.lock_input().await;
        self.control.set_break(true)?;
        tokio::time::sleep(duration).await;
        self.control.set_break(false)?;
        Ok(())
    }

    /// Whether what is typed is shown back, by the terminal or by the program's line editor:
    /// false only for a terminal in line mode with echo off (`None` when the transport cannot
    /// tell).
    pub fn echoes_typing(&self) -> Option<bool> {
        match (self.control.echo()?, self.control.canonical()?) {
            (false, true) => Some(false),
            _ => Some(true),
        }
    }

    /// Whether the terminal echoes input (`None` when the transport cannot tell).
    pub fn echo(&self) -> Option<bool> {
        self.control.echo()
    }

    /// Resizes the terminal and the screen.
    ///
    /// # Errors
    /// [`Error::Closed`] on an ended session, [`Error::Io`] when the transport refuses.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        if !self.is_alive() {
            return Err(Error::Closed);
        }
        // Bytes written before the resize were laid out at the old size.
        let mut screen = self.caught_up_screen();
        self.control.resize(rows, cols)?;
        screen.resize(rows, cols);
        if let Some(r) = lock(&self.shared.recorder).as_mut() {
            r.resize(rows, cols);
        }
        Ok(())
    }

    /// Leaves the program running where it runs (a persistent session's daemon keeps it) and
    /// lets go of it here. Returns false, doing nothing, when the transport cannot detach.
    pub fn detach(&self) -> bool {
        if !self.control.detach() {
            return false;
        }
        self.reader.abort();
        self.shared.signal.send_modify(|s| s.alive = false);
        true
    }

    /// Restores a link that is down (a persistent session whose connection dropped).
    ///
    /// # Errors
    /// When the transport cannot reattach, or the attempt fails.
    pub async fn reattach(&self) -> Result<(), Error> {
        match self.control.reattach() {
            Some(attempt) => attempt.await.map_err(Error::Io),
            None => {
                Err(Error::Io(std::io::Error::new(std::io::ErrorKind::Unsupported, "this session cannot reattach")))
            }
        }
    }

    /// [`Session::close`], after the far end confirmed the program is gone where that takes a
    /// round trip (a persistent session's daemon), waiting at most `timeout` for it.
    pub async fn close_and_wait(&self, timeout: Duration) {
        if let Some(ending) = self.control.end() {
            let _ = tokio::time::timeout(timeout, ending).await;
        }
        self.close();
    }

    /// Ends the session: stops the program and its children and wakes every waiter. Once: a
    /// session closed by a tool is closed again by nothing when it is dropped.
    pub fn close(&self) {
        if self.closed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        self.control.terminate();
        self.reader.abort();
        self.shared.signal.send_modify(|s| s.alive = false);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

/// The reader task: drains the transport until it ends, then records the exit status.
async fn read_loop(
    shared: Arc<Shared>,
    mut reader: Reader,
    mut exited: Exited,
    mut link: Option<watch::Receiver<bool>>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut exit: Option<Option<Exit>> = None;
    let mut drain_deadline = Instant::now();
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                // Linux reports a PTY whose other side closed as EIO: that is the end too.
                Ok(0) | Err(_) => break,
                Ok(n) => ingest(&shared, &buf[..n], &writer),
            },
            status = &mut exited, if exit.is_none() => {
                exit = Some(status);
                drain_deadline = Instant::now() + DRAIN_AFTER_EXIT;
            }
            _ = tokio::time::sleep_until(drain_deadline), if exit.is_some() => break,
            changed = link_changed(&mut link) => {
                if changed {
                    // Waiters look at the link's state again.
                    shared.signal.send_modify(|_| {});
                } else {
                    link = None;
                }
            }
        }
    }
    let status = match exit {
        Some(status) => status,
        None => tokio::time::timeout(EXIT_STATUS_WAIT, exited).await.ok().flatten(),
    };
    *lock(&shared.exit) = status;
    shared.signal.send_modify(|s| s.alive = false);
}

/// Resolves when the link's state changes (true), or never when there is no link to watch;
/// false when its sender is gone.
async fn link_changed(link: &mut Option<watch::Receiver<bool>>) -> bool {
    match link {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// A secret is masked in output for this long after it was sent.
pub const MASK_WINDOW: Duration = Duration::from_secs(60);

/// The chunk with recently sent secrets masked, if it contains any. (A secret split across two
/// reads is not caught; the terminal's echo check before sending is the first line of defence.)
fn masked(shared: &Shared, chunk: &[u8]) -> Option<Vec<u8>> {
    let mut masks = lock(&shared.masks);
    if masks.is_empty() {
        return None;
    }
    let now = Instant::now();
    masks.retain(|(_, until)| *until > now);
    let mut out: Option<Vec<u8>> = None;
    for (secret, _) in masks.iter() {
        let current = out.as_deref().unwrap_or(chunk);
        if let Some(m) = secret::mask(current, secret.expose()) {
            out = Some(m);
        }
    }
    out
}

/// Appends a chunk, answers the queries in it, and wakes the waiters.
fn ingest(shared: &Shared, chunk: &[u8], writer: &Arc<tokio::sync::Mutex<Writer>>) {
    let masked = masked(shared, chunk);
    let chunk = masked.as_deref().unwrap_or(chunk);
    let end = append(shared, chunk);
    announce(shared, chunk, end, writer);
}

/// The first half of [`ingest`]: the chunk joins the transcript (and the screen, which catches
/// up from it) before its marks reach the shell's state.
fn append(shared: &Shared, chunk: &[u8]) -> Offset {
    let end = {
        let mut t = lock(&shared.transcript);
        t.append(chunk);
        t.end()
    };
    *lock(&shared.last_output) = Some(Instant::now());
    if let Some(r) = lock(&shared.recorder).as_mut() {
        r.output(chunk);
    }
    end
}

/// The second half of [`ingest`]: the chunk's marks and queries, then the waiters, told the
/// transcript now ends at `end`.
fn announce(shared: &Shared, chunk: &[u8], end: Offset, writer: &Arc<tokio::sync::Mutex<Writer>>) {
    let mut events = Vec::new();
    let modes = {
        let mut scanner = lock(&shared.scanner);
        scanner.scan(chunk, Offset(end.0 - chunk.len() as u64), &mut events);
        scanner.modes()
    };
    let mut queries = Vec::new();
    if !events.is_empty() {
        let now = Instant::now();
        let mut shell = lock(&shared.shell);
        for event in events {
            match event {
                Event::Query(q) => queries.push(q),
                Event::Mark(m) => shell.apply(m, now.into_std()),
            }
        }
    }
    if !queries.is_empty() && !shared.mirror {
        let answer = {
            let mut screen = lock(&shared.screen);
            screen.catch_up(&shared.transcript, modes);
            answer_queries(&queries, screen.cursor())
        };
        let writer = writer.clone();
        // Answer without holding up the reader; the program is blocked reading the reply.
        tokio::spawn(async move {
            let mut w = writer.lock().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                w.write_all(&answer).await?;
                w.flush().await
            })
            .await;
        });
    }
    shared.signal.send_modify(|s| s.end = end);
}

#[cfg(test)]
impl Session {
    /// Plays the reader halfway through taking in `chunk` (see [`append`]); the returned
    /// function plays the rest.
    pub(crate) fn take_in_halfway(&self, chunk: &[u8]) -> impl FnOnce() + use<> {
        let (shared, writer, chunk) = (self.shared.clone(), self.writer.clone(), chunk.to_vec());
        let end = append(&shared, &chunk);
        move || announce(&shared, &chunk, end, &writer)
    }
}

/// The bytes a terminal sends back for `queries`, given the cursor (row, column).
fn answer_queries(queries: &[Query], (row, col): (u16, u16)) -> Vec<u8> {
    let mut out = Vec::new();
    for q in queries {
        match q {
            Query::CursorPosition => out.extend_from_slice(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes()),
            Query::Status => out.extend_from_slice(b"\x1b[0n"),
            // A VT220-class terminal with no options, as xterm answers with a minimal config.
            Query::PrimaryAttributes => out.extend_from_slice(b"\x1b[?62;22c"),
            Query::SecondaryAttributes => out.extend_from_slice(b"\x1b[>1;10;0c"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_cursor_position_one_based() {
        assert_eq!(answer_queries(&[Query::CursorPosition], (4, 9)), b"\x1b[5;10R");
    }
}
