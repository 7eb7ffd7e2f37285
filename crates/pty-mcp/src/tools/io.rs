//! Typing and reading: `send_input`, `read_output`, `send_control`, `resize_session`.

use super::*;

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
pub async fn send_input(manager: &Sessions<'_>, p: SendInputParams) -> Result<SendReply, ToolError> {
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
pub async fn read_output(manager: &Sessions<'_>, p: ReadOutputParams) -> Result<ReadReply, ToolError> {
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
pub async fn send_control(manager: &Sessions<'_>, p: SendControlParams) -> Result<OutputReply, ToolError> {
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
pub fn resize_session(manager: &Sessions<'_>, p: ResizeParams) -> Result<Resized, ToolError> {
    let entry = manager.get(&p.session_id)?;
    let (Some(rows), Some(cols)) = (p.rows, p.cols) else {
        return Err(ToolError::invalid("rows and cols are both required"));
    };
    let (rows, cols) = terminal_size(Some(rows), Some(cols))?;
    entry.session.resize(rows, cols)?;
    Ok(Resized { success: true, rows, cols })
}
