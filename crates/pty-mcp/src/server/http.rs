//! The HTTP front door (`pty-mcp serve --http`): MCP's Streamable HTTP transport (rmcp's, on
//! axum) for a pty-mcp shared by a team, reached by several operators' agents at once.
//!
//! Every request carries an operator's bearer token (`--tokens FILE`, the audit collector's
//! `token operator` lines); the operator it names is the [`Caller`] of every tool call the
//! request makes: the owner of the sessions it creates, the only one who sees them (unless
//! `--shared`), and the `user` of its audit records. Nothing is exposed by default: the listener
//! is loopback unless told otherwise, and beyond loopback it needs TLS or `--insecure-http`.
//! rmcp checks `Host` and `Origin` (DNS rebinding) and bounds request bodies (413); this module
//! bounds each operator's requests in flight and MCP sessions (429 with `Retry-After`) and binds
//! each MCP session to the operator who opened it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use audit::tls::{Incoming, Peer};
use audit::tokens::Tokens;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::sync::Semaphore;

use super::PtyMcp;
use crate::manager::Caller;

/// Where MCP is served.
pub const PATH: &str = "/mcp";
/// The address served by default: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8765";
/// SSE comments this often keep a long `wait_for` alive through proxies that cut idle streams.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a client waits before retrying after a 429.
const RETRY_AFTER_SECS: u64 = 2;

/// What `serve --http` was told.
#[derive(Debug)]
pub struct Options {
    pub addr: SocketAddr,
    /// The operators' tokens (`token operator` lines).
    pub tokens: Option<PathBuf>,
    /// OAuth access tokens from this issuer are accepted too.
    pub oauth: Option<super::oauth::Settings>,
    /// PEM certificate chain and key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Serve plain HTTP beyond loopback anyway (warned about at every start).
    pub insecure_http: bool,
    /// Every operator sees every session.
    pub shared: bool,
    /// `Host` values accepted besides loopback names (the names clients reach this server by).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted (`https://app.example.com:443`); none by default.
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// POST requests one operator may have in flight (one whose answer still streams counts).
    pub max_requests: usize,
    /// MCP sessions one operator may hold open.
    pub max_mcp_sessions: usize,
}

/// The operator a request over HTTP was authenticated as; None over stdio.
pub fn caller(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    ctx.extensions.get::<axum::http::request::Parts>()?.extensions.get::<Caller>().cloned()
}

/// What the guard keeps between requests.
struct Guard {
    tokens: Tokens,
    oauth: Option<super::oauth::OAuth>,
    /// What a 401 says (with the resource metadata's URL when OAuth is on).
    challenge: HeaderValue,
    shared: bool,
    max_requests: usize,
    max_mcp_sessions: usize,
    /// Each operator's requests in flight.
    in_flight: Mutex<HashMap<Arc<str>, Arc<Semaphore>>>,
    /// Which operator opened each MCP session (`Mcp-Session-Id`).
    owners: Mutex<HashMap<String, Arc<str>>>,
    sessions: Arc<LocalSessionManager>,
}

/// Serves MCP over HTTP until `shutdown` resolves; each MCP session gets a server from `make`
/// (they share one session table).
///
/// # Errors
/// A tokens file that cannot be used, plain HTTP beyond loopback without `--insecure-http`, TLS
/// files that cannot be read, an address that cannot be bound.
pub async fn serve(
    opts: Options,
    make: impl Fn() -> PtyMcp + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let tokens = match &opts.tokens {
        Some(path) => {
            let tokens = Tokens::load(path).context("--tokens")?;
            anyhow::ensure!(!tokens.is_empty(), "{}: no `token operator` line in it", path.display());
            tokens
        }
        None if opts.oauth.is_some() => Tokens::default(),
        None => anyhow::bail!("--http needs --tokens FILE (`token operator` lines) or --oauth-issuer"),
    };
    let oauth = match opts.oauth.clone() {
        Some(settings) => Some(super::oauth::OAuth::discover(settings).await?),
        None => None,
    };
    let challenge = match &oauth {
        Some(o) => {
            HeaderValue::from_str(&format!("Bearer realm=\"pty-mcp\", resource_metadata=\"{}\"", o.metadata_url()))
                .context("--oauth-audience")?
        }
        None => HeaderValue::from_static("Bearer realm=\"pty-mcp\""),
    };
    let tls = match &opts.tls {
        Some((cert, key)) => Some(audit::tls::server_config(cert, key)?),
        None => None,
    };
    let loopback = opts.addr.ip().is_loopback();
    if !loopback && tls.is_none() && !opts.insecure_http {
        anyhow::bail!(
            "{} is not a loopback address: serve it with --tls-cert and --tls-key, or accept plain HTTP with \
             --insecure-http (tokens and terminals then cross the network unencrypted)",
            opts.addr
        );
    }
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"].map(String::from).into();
    if !opts.addr.ip().is_unspecified() {
        hosts.push(opts.addr.ip().to_string());
    }
    hosts.extend(opts.allowed_hosts.iter().cloned());
    let cancel = tokio_util::sync::CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(KEEP_ALIVE))
        .with_allowed_hosts(hosts)
        .with_allowed_origins(opts.allowed_origins.iter().cloned())
        .enforce_origin_validation()
        .with_max_request_body_bytes(opts.max_body)
        .with_cancellation_token(cancel.clone());
    let sessions = Arc::new(LocalSessionManager::default());
    let service = StreamableHttpService::new(move || Ok(make()), sessions.clone(), config);
    let metadata = oauth.as_ref().map(|o| o.metadata());
    let guard = Arc::new(Guard {
        tokens,
        oauth,
        challenge,
        shared: opts.shared,
        max_requests: opts.max_requests,
        max_mcp_sessions: opts.max_mcp_sessions,
        in_flight: Mutex::default(),
        owners: Mutex::default(),
        sessions,
    });
    tracing::info!("operators: {:?}", guard.tokens);
    let mut app = Router::new().route_service(PATH, service).layer(from_fn_with_state(guard, admit));
    if let Some(metadata) = metadata {
        // Public, as RFC 9728 has it: how to get a token is no secret.
        let document = axum::routing::get(move || std::future::ready(axum::Json(metadata.clone())));
        app = app
            .route("/.well-known/oauth-protected-resource", document.clone())
            .route(&format!("/.well-known/oauth-protected-resource{PATH}"), document);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tcp = tokio::net::TcpListener::bind(opts.addr).await.with_context(|| format!("binding {}", opts.addr))?;
    let local = tcp.local_addr()?;
    if !loopback && tls.is_none() {
        // Said at every start, whatever the log filter.
        eprintln!(
            "warning: serving MCP on {local} over plain HTTP (--insecure-http): tokens and terminals cross the \
             network unencrypted; use --tls-cert/--tls-key"
        );
    }
    eprintln!("pty-mcp serving MCP on {scheme}://{local}{PATH}");
    let listener = Incoming::new(tcp, tls)?;
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await?;
    Ok(())
}

/// A refusal: `status`, a short JSON body, and `Retry-After` with a 429.
fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

/// Lets a request through to MCP as its operator, or refuses it: no valid token (401, nothing
/// else said), another operator's MCP session (404, as a session that does not exist), too much
/// at once (429).
async fn admit(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let Some(operator) = guard.operator(audit::tokens::bearer(request.headers())).await else {
        let mut response = refuse(StatusCode::UNAUTHORIZED, "unauthorized");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, guard.challenge.clone());
        return response;
    };
    let mcp_session = request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(String::from);
    match &mcp_session {
        Some(id) => {
            let owner = guard.owners.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
            if owner.is_some_and(|o| o != operator) {
                return refuse(StatusCode::NOT_FOUND, "session not found");
            }
        }
        None if guard.mcp_sessions_of(&operator).await >= guard.max_mcp_sessions => {
            return refuse(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("{} MCP sessions are open for this operator; close one (DELETE)", guard.max_mcp_sessions),
            );
        }
        None => {}
    }
    // POSTs carry the calls; the one event stream (GET) of each MCP session is bounded with
    // the sessions.
    let permit = if request.method() == axum::http::Method::POST {
        let Ok(permit) = guard.semaphore(&operator).try_acquire_owned() else {
            return refuse(StatusCode::TOO_MANY_REQUESTS, "too many requests in flight for this operator");
        };
        tracing::debug!("{operator}: request admitted");
        Some(InFlight { _permit: permit, operator: operator.clone() })
    } else {
        None
    };
    request.extensions_mut().insert(Caller { operator: Some(operator.clone()), shared: guard.shared });
    let deleting = request.method() == axum::http::Method::DELETE;
    let mut response = next.run(request).await;
    if deleting && response.status() == StatusCode::ACCEPTED {
        // A closed MCP session: 204, which every SDK takes as success (the Python SDK warns on
        // rmcp's 202).
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    match (&mcp_session, response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok())) {
        (None, Some(new)) => {
            guard.owners.lock().unwrap_or_else(|e| e.into_inner()).insert(new.to_string(), operator);
        }
        (Some(id), _) if deleting && response.status().is_success() => {
            guard.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        }
        _ => {}
    }
    // The permit is held until the response's body ends: an SSE stream is a request in flight.
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _counted = &permit;
            frame
        }))
    })
}

/// A request counted against its operator's limit until its response's body ends.
struct InFlight {
    _permit: tokio::sync::OwnedSemaphorePermit,
    operator: Arc<str>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        tracing::debug!("{}: request ended", self.operator);
    }
}

impl Guard {
    /// The operator a bearer token names: a line of the tokens file, or a valid OAuth access
    /// token (a JWT: three dot-separated parts).
    async fn operator(&self, presented: &str) -> Option<Arc<str>> {
        if let Some(name) = self.tokens.operator(presented) {
            return Some(Arc::from(name));
        }
        let oauth = self.oauth.as_ref().filter(|_| presented.split('.').count() == 3)?;
        oauth.operator(presented).await.map(Arc::from)
    }

    fn semaphore(&self, operator: &Arc<str>) -> Arc<Semaphore> {
        let mut all = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(operator.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.max_requests))).clone()
    }

    /// How many MCP sessions `operator` holds, forgetting those that ended (closed, or expired
    /// after rmcp's keep-alive without a client).
    async fn mcp_sessions_of(&self, operator: &Arc<str>) -> usize {
        let theirs: Vec<String> = {
            let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
            owners.iter().filter(|(_, o)| *o == operator).map(|(id, _)| id.clone()).collect()
        };
        if theirs.len() < self.max_mcp_sessions {
            return theirs.len();
        }
        let mut live = 0;
        for id in theirs {
            if self.sessions.has_session(&Arc::from(id.as_str())).await.unwrap_or(true) {
                live += 1;
            } else {
                self.owners.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            }
        }
        live
    }
}
