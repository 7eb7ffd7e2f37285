//! Shaping output for an agent's context: clean text between two offsets, capped head + tail,
//! with what was left out said in so many words.

use engine::{Offset, Session, text};

/// Default cap on text returned by one call.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 10;

/// Clean text of a transcript range and what it could not include.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The text.
    pub text: String,
    /// Where the rendered range really starts (later than asked when bytes were lost).
    pub from: Offset,
    /// Where it ends.
    pub to: Offset,
    /// Bytes that had fallen off the ring before they could be read.
    pub lost: u64,
    /// Bytes left out of the middle to respect the cap.
    pub omitted: u64,
}

/// Renders `[from, to)` as clean text, keeping at most about `cap` raw bytes: the head and the
/// tail, with a note in the middle giving the offsets of what was left out.
pub fn render(session: &Session, from: Offset, to: Offset, cap: usize) -> Rendered {
    // Only what is shown is copied out of the ring: the head, and the tail when capped.
    let head = session.slice(from, cap + 1);
    let lost = head.lost;
    let from = head.from;
    let mut text = String::new();
    if lost > 0 {
        text.push_str(&format!(
            "[... {lost} earlier bytes were lost: the session's buffer (PTY_MCP_BUFFER_SIZE) overflowed ...]\n"
        ));
    }
    let total = to.since(from) as usize;
    if total <= cap {
        let shown = &head.bytes[..total.min(head.bytes.len())];
        text.push_str(&text::clean(shown));
        return Rendered { text, from, to: from.plus(shown.len()), lost, omitted: 0 };
    }
    let head_len = text::safe_cut(&head.bytes, cap / 2);
    let tail = session.slice(Offset(to.0 - (cap / 2) as u64), cap / 2);
    // Start the tail on a line boundary where one is near, so it reads cleanly.
    let skip = tail.bytes.iter().position(|&b| b == b'\n').filter(|&n| n < cap / 4).map_or(0, |n| n + 1);
    let tail_from = tail.from.plus(skip);
    let omitted = tail_from.since(from.plus(head_len));
    text.push_str(&text::clean(&head.bytes[..head_len]));
    text.push_str(&format!(
        "\n[... {omitted} bytes omitted (offsets {}..{}); read them with read_output since_cursor={} ...]\n",
        from.plus(head_len),
        tail_from,
        from.plus(head_len)
    ));
    text.push_str(&text::clean(&tail.bytes[skip..]));
    Rendered { text, from, to: tail.to(), lost, omitted }
}

/// Everything the session printed so far (a new session's banner), capped as usual.
pub fn render_all(session: &Session) -> Rendered {
    render(session, Offset(0), session.end(), DEFAULT_MAX_OUTPUT)
}
