//! Who is watching a session, and whether the operator is in the middle of typing a line.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// An operator's unfinished line holds agent input back this long after their last key at
/// most: someone who typed half a line and walked away does not stop the agent for good.
pub const OPERATOR_PAUSE: Duration = Duration::from_secs(5);

/// The viewers of one session.
#[derive(Debug)]
pub struct Viewers {
    attached: AtomicUsize,
    /// The operator typed since the agent last asked (get_session_state).
    typed: AtomicBool,
    /// When the operator's unfinished line got its last key (None: no line in progress).
    mid_line: watch::Sender<Option<Instant>>,
}

impl Default for Viewers {
    fn default() -> Self {
        Viewers { attached: AtomicUsize::new(0), typed: AtomicBool::new(false), mid_line: watch::channel(None).0 }
    }
}

impl Viewers {
    /// Viewers attached now.
    pub fn attached(&self) -> usize {
        self.attached.load(Ordering::Relaxed)
    }

    pub(super) fn join(&self) {
        self.attached.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn leave(&self) {
        self.attached.fetch_sub(1, Ordering::Relaxed);
        // A viewer that left mid-line no longer holds the agent back.
        if self.attached() == 0 {
            self.mid_line.send_replace(None);
        }
    }

    /// Whether the operator typed since this was last asked; asking resets it.
    pub fn take_typed(&self) -> bool {
        self.typed.swap(false, Ordering::Relaxed)
    }

    /// Notes keys the operator typed: a line is in progress until Enter, ctrl+c or ctrl+u
    /// (what ends or discards a line at a shell prompt).
    pub(super) fn typed(&self, keys: &[u8]) {
        self.typed.store(true, Ordering::Relaxed);
        let ends = keys.iter().rposition(|b| matches!(b, b'\r' | b'\n' | 0x03 | 0x15));
        let open = match ends {
            Some(i) => i + 1 < keys.len(),
            None => true,
        };
        self.mid_line.send_replace(open.then(Instant::now));
    }

    /// Waits while the operator is in the middle of a line (until they end it, leave, pause
    /// for [`OPERATOR_PAUSE`], or `deadline`), so that agent input is not typed into it.
    /// Returns whether it waited.
    pub async fn wait_line_done(&self, deadline: Instant) -> bool {
        let mut rx = self.mid_line.subscribe();
        let mut waited = false;
        loop {
            let Some(last_key) = *rx.borrow_and_update() else { return waited };
            let until = (last_key + OPERATOR_PAUSE).min(deadline);
            if Instant::now() >= until {
                return waited;
            }
            waited = true;
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return waited },
                () = tokio::time::sleep_until(until) => return waited,
            }
        }
    }
}
