//! `pty-mcp watch`: a page in the browser showing every session of every server of this user as
//! live terminals, drawn from the engine's screens (the server renders; the page only paints
//! cells). Served on 127.0.0.1, behind a random token in the URL it prints, as Jupyter does;
//! beyond loopback (`--bind`) only over HTTPS. Nothing is fetched from elsewhere, so it works
//! offline.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::protocol::{Attached, Request, write_line};

const PAGE: &str = include_str!("page.html");

/// Where the page is served.
pub struct Listen {
    pub addr: std::net::SocketAddr,
    /// PEM certificate chain and private key: serve HTTPS. Required beyond loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Serves the page until interrupted; prints its URL (with the token) first, and opens it
/// unless `no_open`.
pub async fn run(listen: Listen, no_open: bool) -> anyhow::Result<()> {
    if !listen.addr.ip().is_loopback() && listen.tls.is_none() {
        anyhow::bail!(
            "watch listens beyond this machine only over HTTPS: give --tls-cert and --tls-key with --bind {}",
            listen.addr.ip()
        );
    }
    let tls = match &listen.tls {
        Some((cert, key)) => Some(audit::tls::server_config(cert, key)?),
        None => None,
    };
    let token = Arc::new(format!("{:032x}", rand::random::<u128>()));
    let tcp = tokio::net::TcpListener::bind(listen.addr).await?;
    let local = tcp.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // An address for every interface is no address to browse to: the machine's name is.
    let host = if local.ip().is_unspecified() { ai_tmux::paths::host_name() } else { local.ip().to_string() };
    let url = format!("{scheme}://{host}:{}/?token={token}", local.port());
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{url}")?;
        out.flush()?;
    }
    if !no_open {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        let _ = std::process::Command::new(opener)
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let app = Router::new()
        .route("/", get(page))
        .route("/sessions", get(sessions))
        .route("/stream", get(stream))
        .route("/input", post(input))
        .with_state(token);
    axum::serve(audit::tls::Incoming::new(tcp, tls)?, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

type Token = axum::extract::State<Arc<String>>;

/// The query's parameter `name` (ours carry only hex and digits: nothing to decode).
fn param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Whether the request carries the token (compared in constant time).
fn allowed(uri: &Uri, token: &str) -> bool {
    let given = param(uri, "token").unwrap_or_default().as_bytes();
    given.len() == token.len() && given.iter().zip(token.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn refused() -> Response {
    (StatusCode::UNAUTHORIZED, "a valid token is needed: use the URL pty-mcp watch printed\n").into_response()
}

async fn page(token: Token, uri: Uri) -> Response {
    if !allowed(&uri, &token) {
        return refused();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], PAGE).into_response()
}

async fn sessions(token: Token, uri: Uri) -> Response {
    if !allowed(&uri, &token) {
        return refused();
    }
    let rows: Vec<serde_json::Value> = super::ls::servers()
        .await
        .into_iter()
        .flat_map(|server| {
            server.sessions.into_iter().map(move |s| {
                let mut v = serde_json::to_value(&s).unwrap_or_default();
                v["server_pid"] = server.pid.into();
                v["client"] = server.client.clone().into();
                v
            })
        })
        .collect();
    axum::Json(rows).into_response()
}

/// The server `pid`'s control socket, with `request` sent and its first answer read.
async fn ask(
    pid: u32,
    request: &Request,
) -> anyhow::Result<(tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>, tokio::net::unix::OwnedWriteHalf)> {
    let stream = ai_tmux::paths::connect_checked(&super::socket_of(pid)).await?;
    let (read, mut write) = stream.into_split();
    write_line(&mut write, request).await?;
    let mut lines = BufReader::new(read).lines();
    let first = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("the server closed the connection"))?;
    let answer: Attached = serde_json::from_str(&first)?;
    match answer.error {
        Some(e) => anyhow::bail!("{e}"),
        None => Ok((lines, write)),
    }
}

fn target(uri: &Uri) -> Option<(u32, String)> {
    Some((param(uri, "pid")?.parse().ok()?, param(uri, "session")?.to_string()))
}

/// A session's screens as server-sent events, one JSON frame each.
async fn stream(token: Token, uri: Uri) -> Response {
    if !allowed(&uri, &token) {
        return refused();
    }
    let Some((pid, session_id)) = target(&uri) else { return StatusCode::BAD_REQUEST.into_response() };
    let (lines, write) = match ask(pid, &Request::Watch { session_id }).await {
        Ok(conn) => conn,
        Err(e) => return (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    };
    // The write half stays open with the stream: closing it tells the server the page left.
    let frames = futures::stream::unfold((lines, write), |(mut lines, write)| async move {
        let line = lines.next_line().await.ok()??;
        Some((Ok::<_, Infallible>(Event::default().data(line)), (lines, write)))
    });
    Sse::new(frames).keep_alive(KeepAlive::default()).into_response()
}

/// Keys typed on the page while taking over: written as the operator's.
async fn input(token: Token, uri: Uri, body: Bytes) -> Response {
    if !allowed(&uri, &token) {
        return refused();
    }
    let Some((pid, session_id)) = target(&uri) else { return StatusCode::BAD_REQUEST.into_response() };
    match ask(pid, &Request::Input { session_id, keys: body.to_vec() }).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}
