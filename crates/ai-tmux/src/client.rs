//! A client's end of the protocol over any byte stream (a Unix socket, or `ai-tmux client` run
//! on an SSH exec channel): requests with ids matched to their responses, events handed on.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::lock;
use crate::protocol::{Event, Hello, Incoming, MAX_LINE, Request, Response};

/// The read side of a link.
pub type LinkReader = Pin<Box<dyn AsyncRead + Send>>;
/// The write side of a link.
pub type LinkWriter = Pin<Box<dyn AsyncWrite + Send>>;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The connection to the daemon is gone.
    #[error("the connection to ai-tmux was lost")]
    Gone,
    /// No answer in time.
    #[error("ai-tmux did not answer {0} within {1:?}")]
    Timeout(String, Duration),
    /// The daemon answered with an error.
    #[error("{0}")]
    Remote(String),
}

/// How long a request may wait to be written (the link's buffers full).
const POST_TIMEOUT: Duration = Duration::from_secs(15);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

/// Set once the connection has ended, before the waiting callers are told.
type Closed = Arc<std::sync::atomic::AtomicBool>;

/// One conversation with a daemon.
pub struct Link {
    writer: tokio::sync::Mutex<LinkWriter>,
    pending: Pending,
    closed: Closed,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Link {
    /// Starts talking over `reader`/`writer`; events arrive on the returned channel, which
    /// closes when the connection does.
    pub fn open(reader: LinkReader, writer: LinkWriter) -> (Link, mpsc::Receiver<Event>) {
        let pending: Pending = Arc::default();
        let closed: Closed = Arc::default();
        let (events, rx) = mpsc::channel(256);
        let reader = tokio::spawn(read_loop(reader, pending.clone(), closed.clone(), events));
        let writer = tokio::sync::Mutex::new(writer);
        (Link { writer, pending, closed, next_id: AtomicU64::new(1), reader }, rx)
    }

    /// Calls `method` and waits up to `timeout` for its answer.
    ///
    /// # Errors
    /// [`LinkError`]: the daemon's own error, no answer in time, or the connection lost.
    pub async fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, LinkError> {
        let started = tokio::time::Instant::now();
        let (tx, rx) = oneshot::channel();
        let id = self.send(method, params, tx, timeout).await?;
        let answer = tokio::time::timeout_at(started + timeout, rx).await;
        lock(&self.pending).remove(&id);
        match answer {
            Err(_) => Err(LinkError::Timeout(method.into(), timeout)),
            Ok(Err(_)) => Err(LinkError::Gone),
            Ok(Ok(Response { error: Some(e), .. })) => Err(LinkError::Remote(e)),
            Ok(Ok(Response { result, .. })) => Ok(result.unwrap_or(Value::Null)),
        }
    }

    /// Sends a request without waiting for its answer (keystrokes, acknowledgements): order is
    /// kept, and a lost connection is still reported.
    ///
    /// # Errors
    /// [`LinkError::Gone`] when the connection is lost, `Timeout` when it stays blocked.
    pub async fn post(&self, method: &str, params: Value) -> Result<(), LinkError> {
        // A waiter nobody listens to: the answer is expected, and dropped.
        self.send(method, params, oneshot::channel().0, POST_TIMEOUT).await.map(|_| ())
    }

    /// Writes a request under a fresh id whose answer goes to `waiter`, within `limit`.
    async fn send(
        &self,
        method: &str,
        params: Value,
        waiter: oneshot::Sender<Response>,
        limit: Duration,
    ) -> Result<u64, LinkError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.pending).insert(id, waiter);
        let outcome = self.write_request(id, method, params, limit).await;
        if outcome.is_err() {
            lock(&self.pending).remove(&id);
        }
        outcome.map(|()| id)
    }

    async fn write_request(&self, id: u64, method: &str, params: Value, limit: Duration) -> Result<(), LinkError> {
        // Checked after the waiter is registered: the reader clears the waiters once it has set it.
        if self.is_closed() {
            return Err(LinkError::Gone);
        }
        let mut line = serde_json::to_vec(&Request { id: json!(id), method: method.into(), params })
            .map_err(|e| LinkError::Remote(e.to_string()))?;
        line.push(b'\n');
        let write = async {
            let mut w = self.writer.lock().await;
            w.write_all(&line).await?;
            w.flush().await
        };
        match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(LinkError::Gone),
            Err(_) => Err(LinkError::Timeout(method.into(), limit)),
        }
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Asks for our extensions: `None` from a daemon without them (the Go ai-tmux).
    ///
    /// # Errors
    /// When the connection is lost or the daemon does not answer.
    pub async fn hello(&self, timeout: Duration) -> Result<Option<Hello>, LinkError> {
        match self.call("hello", json!({"client": "pty-mcp", "version": env!("CARGO_PKG_VERSION")}), timeout).await {
            Ok(v) => Ok(serde_json::from_value(v).ok()),
            Err(LinkError::Remote(e)) if e.contains("unknown method") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Reads lines until the connection ends: responses go to their callers (an id nobody waits for
/// is dropped with a warning), events to the channel.
async fn read_loop(reader: LinkReader, pending: Pending, closed: Closed, events: mpsc::Sender<Event>) {
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE as u64 * 2).read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<Incoming>(line.trim()) {
            Ok(Incoming::Event(event)) => {
                // With nobody listening for events, responses still matter: keep reading.
                let _ = events.send(event).await;
            }
            Ok(Incoming::Response(response)) => {
                let waiter = response.id.as_u64().and_then(|id| lock(&pending).remove(&id));
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(response);
                    }
                    None => tracing::warn!("ai-tmux answered an id nobody asked: {}", response.id),
                }
            }
            Err(e) => tracing::warn!("ai-tmux sent a line that is not the protocol: {e}"),
        }
    }
    // Every caller still waiting learns the link is gone.
    closed.store(true, Ordering::SeqCst);
    lock(&pending).clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    /// A far end that answers each request with `reply(request)`, line by line.
    fn far_end(reply: fn(&Value) -> Vec<String>) -> (Link, mpsc::Receiver<Event>) {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(ours);
        tokio::spawn(async move {
            let (tr, mut tw) = tokio::io::split(theirs);
            let mut lines = BufReader::new(tr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let req: Value = serde_json::from_str(&line).unwrap();
                for out in reply(&req) {
                    tw.write_all(format!("{out}\n").as_bytes()).await.unwrap();
                }
            }
        });
        Link::open(Box::pin(r), Box::pin(w))
    }

    #[tokio::test]
    async fn answers_are_matched_by_id_and_strays_ignored() {
        // A stray answer with an id nobody sent, an event, then the real answer.
        let (link, mut events) = far_end(|req| {
            vec![
                json!({"id": 999, "result": "stray"}).to_string(),
                json!({"event": "exit", "session_id": "s", "exit_code": 0, "signal": null}).to_string(),
                json!({"id": req["id"], "result": "mine"}).to_string(),
            ]
        });
        let got = link.call("x", json!({}), Duration::from_secs(10)).await;
        assert_eq!(got, Ok(json!("mine")));
        assert_eq!(events.recv().await, Some(Event::Exit { session_id: "s".into(), exit_code: Some(0), signal: None }));
    }

    #[tokio::test]
    async fn a_far_end_without_hello_means_basic_protocol_and_a_lost_link_fails_calls() {
        let (link, _events) = far_end(|req| {
            vec![
                json!({"id": req["id"], "error": format!("unknown method: {}", req["method"].as_str().unwrap())})
                    .to_string(),
            ]
        });
        assert_eq!(link.hello(Duration::from_secs(10)).await, Ok(None));
        let (ours, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let (r, w) = tokio::io::split(ours);
        let (gone, _events) = Link::open(Box::pin(r), Box::pin(w));
        assert_eq!(gone.call("x", json!({}), Duration::from_secs(10)).await, Err(LinkError::Gone));
    }
}
