//! `pty-mcp audit serve`: the collector. Each accepted record becomes one JSON line with the
//! server's time, the peer, the authenticated operator (with a tokens file) and `prev_hash`,
//! the SHA-256 of the previous line, so that `audit verify` detects any edit. A line is
//! fsync'ed before the client hears 200; records are de-duplicated by `record_id`.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::tls::{Incoming, Peer};
use crate::tokens::{Tokens, constant_time_eq};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 << 10;
/// The `prev_hash` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How to run the collector.
pub struct ServeOptions {
    /// Address to listen on (127.0.0.1 unless told otherwise).
    pub bind: SocketAddr,
    /// The JSONL file; `None` writes to stdout.
    pub log: Option<PathBuf>,
    /// The shared bearer token (`PTY_MCP_AUDIT_TOKEN`).
    pub token: Option<String>,
    /// token → operator name, one `token name` pair a line.
    pub tokens_file: Option<PathBuf>,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
}

struct Log {
    file: Option<std::fs::File>,
    last_hash: String,
    seen: HashSet<String>,
}

struct Shared {
    log: Mutex<Log>,
    token: Option<String>,
    operators: Tokens,
}

/// Hex SHA-256 of a line (without its newline).
pub fn line_hash(line: &str) -> String {
    Sha256::digest(line.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal, in time that does not depend on where they differ.
/// Reads an existing log to continue its chain and remember delivered record ids.
fn resume(path: &PathBuf) -> std::io::Result<(String, HashSet<String>)> {
    let mut last = GENESIS.to_string();
    let mut seen = HashSet::new();
    let Ok(f) = std::fs::File::open(path) else { return Ok((last, seen)) };
    // A device or pipe (`/dev/stdout`, a log shipper's FIFO) has no earlier lines to read back.
    if !f.metadata()?.is_file() {
        return Ok((last, seen));
    }
    for line in std::io::BufReader::new(f).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(id) =
            serde_json::from_str::<Value>(&line).ok().and_then(|v| v.get("record_id")?.as_str().map(String::from))
        {
            seen.insert(id);
        }
        last = line_hash(&line);
    }
    Ok((last, seen))
}

/// Runs the collector until `shutdown` resolves.
///
/// # Errors
/// When the address cannot be bound or the log cannot be opened.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if opts.token.is_none() && opts.tokens_file.is_none() {
        return Err(std::io::Error::other("no token: set PTY_MCP_AUDIT_TOKEN (or --tokens FILE)"));
    }
    let tls = match &opts.tls {
        Some((cert, key)) => Some(crate::tls::server_config(cert, key)?),
        None => None,
    };
    if !opts.bind.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            "the collector listens on {} over plain HTTP: tokens and records cross the network unencrypted",
            opts.bind
        );
        eprintln!("warning: listening on {} over plain HTTP; use --tls-cert/--tls-key", opts.bind);
    }
    let operators = match &opts.tokens_file {
        Some(p) => Tokens::load(p)?,
        None => Tokens::default(),
    };
    let (file, last_hash, seen) = match &opts.log {
        Some(path) => {
            let (last, seen) = resume(path)?;
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            (Some(file), last, seen)
        }
        None => (None, GENESIS.to_string(), HashSet::new()),
    };
    let shared = Arc::new(Shared { log: Mutex::new(Log { file, last_hash, seen }), token: opts.token, operators });
    let app = Router::new()
        .route("/audit", post(accept))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .with_state(shared);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tcp = tokio::net::TcpListener::bind(opts.bind).await?;
    eprintln!("pty-mcp audit collector listening on {scheme}://{}", tcp.local_addr()?);
    let listener = Incoming::new(tcp, tls)?;
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>()).with_graceful_shutdown(shutdown).await
}

fn reply(status: StatusCode, message: &str) -> (StatusCode, String) {
    (status, json!({ "error": message }).to_string())
}

async fn accept(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let presented = crate::tokens::bearer(&headers);
    let shared_ok = shared.token.as_deref().is_some_and(|t| constant_time_eq(t.as_bytes(), presented.as_bytes()));
    let operator = shared.operators.operator(presented).map(String::from);
    if !shared_ok && operator.is_none() {
        return reply(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let record = match validate(&body) {
        Ok(record) => record,
        Err(why) => return reply(StatusCode::BAD_REQUEST, why),
    };
    // Stored in a task of its own: a client that goes away mid-request drops this handler, and
    // a store cut short between writing a line and noting its hash would fork the chain (the
    // next record would name the line before as its predecessor).
    tokio::spawn(store(shared, record, peer, operator)).await.unwrap_or_else(|e| {
        tracing::error!("storing an audit record failed: {e}");
        reply(StatusCode::INTERNAL_SERVER_ERROR, "the record could not be stored")
    })
}

/// A posted body as a record: a JSON object with `ts` and `cmd_id` or `event` (strings), and a
/// short `record_id` if any.
///
/// # Errors
/// Why the body is not a record, for a 400.
pub fn validate(body: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body must be a JSON object");
    };
    let has = |k: &str| record.get(k).is_some_and(Value::is_string);
    if !has("ts") || !(has("cmd_id") || has("event")) {
        return Err("a record needs ts and cmd_id or event");
    }
    if record.get("record_id").is_some_and(|r| !r.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 128)) {
        return Err("record_id must be a short string");
    }
    Ok(record)
}

/// Appends `record` to the log, chained to the line before, unless its `record_id` was stored.
async fn store(
    shared: Arc<Shared>,
    mut record: Map<String, Value>,
    peer: SocketAddr,
    operator: Option<String>,
) -> (StatusCode, String) {
    let record_id = record.get("record_id").and_then(Value::as_str).map(String::from);
    let mut log = shared.log.lock().await;
    if let Some(id) = &record_id
        && log.seen.contains(id)
    {
        return (StatusCode::OK, json!({"duplicate": true}).to_string());
    }
    record.insert("received_at".into(), json!(crate::record::now()));
    record.insert("peer".into(), json!(peer.to_string()));
    if let Some(name) = operator {
        // The operator the collector authenticated, not the one the client claims.
        if let Some(claimed) = record.insert("user".into(), json!(name)) {
            record.insert("claimed_user".into(), claimed);
        }
    }
    record.insert("prev_hash".into(), json!(log.last_hash));
    let line = Value::Object(record).to_string();
    // The write and its fsync block: on a thread of their own, so the runtime (other requests,
    // TLS handshakes) goes on meanwhile. The log's lock is held across it, keeping the order.
    let file = log.file.as_ref().map(std::fs::File::try_clone).transpose();
    let text = format!("{line}\n");
    let written = tokio::task::spawn_blocking(move || match file? {
        Some(mut f) => crate::client::write_whole(&mut f, text.as_bytes()).and_then(|()| sync(&f)),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    if let Err(e) = written {
        tracing::error!("audit log write failed: {e}");
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "the record could not be stored");
    }
    log.last_hash = line_hash(&line);
    if let Some(id) = record_id {
        log.seen.insert(id);
    }
    (StatusCode::OK, json!({"ok": true}).to_string())
}

/// Makes what was written durable. A pipe or a device (a log shipper's FIFO, `/dev/stdout`)
/// cannot be synced (`EINVAL`): there the write is all there is.
fn sync(f: &std::fs::File) -> std::io::Result<()> {
    match f.sync_data() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// Checks a log's hash chain: `Ok(lines)` when intact, else the first broken line and why.
pub fn verify(path: &PathBuf) -> Result<usize, (usize, String)> {
    let f = std::fs::File::open(path).map_err(|e| (0, format!("cannot read {}: {e}", path.display())))?;
    let mut expected = GENESIS.to_string();
    let mut count = 0;
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| (i + 1, e.to_string()))?;
        let v: Value = serde_json::from_str(&line).map_err(|e| (i + 1, format!("not JSON: {e}")))?;
        let prev = v.get("prev_hash").and_then(Value::as_str).unwrap_or("");
        if prev != expected {
            return Err((i + 1, "prev_hash does not match the line before: the log was altered".into()));
        }
        expected = line_hash(&line);
        count += 1;
    }
    Ok(count)
}
