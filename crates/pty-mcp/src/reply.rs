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
    let total = to.since(from) as usize;
    let whole = session.slice(from, total);
    let lost = whole.lost;
    let from = whole.from;
    let mut text = String::new();
    if lost > 0 {
        text.push_str(&format!(
            "[... {lost} earlier bytes were lost: the session's buffer (PTY_MCP_BUFFER_SIZE) overflowed ...]\n"
        ));
    }
    let bytes = whole.bytes;
    if bytes.len() <= cap {
        text.push_str(&text::clean(&bytes));
        return Rendered { text, from, to: from.plus(bytes.len()), lost, omitted: 0 };
    }
    let head_len = text::safe_cut(&bytes, cap / 2);
    // Start the tail on a line boundary where one is near, so it reads cleanly.
    let mut tail_start = bytes.len() - cap / 2;
    if let Some(nl) = bytes[tail_start..].iter().position(|&b| b == b'\n').filter(|&n| n < cap / 4) {
        tail_start += nl + 1;
    }
    let omitted = (tail_start - head_len) as u64;
    text.push_str(&text::clean(&bytes[..head_len]));
    text.push_str(&format!(
        "\n[... {omitted} bytes omitted (offsets {}..{}); read them with read_output since_cursor={} ...]\n",
        from.plus(head_len),
        from.plus(tail_start),
        from.plus(head_len)
    ));
    text.push_str(&text::clean(&bytes[tail_start..]));
    Rendered { text, from, to: from.plus(bytes.len()), lost, omitted }
}
