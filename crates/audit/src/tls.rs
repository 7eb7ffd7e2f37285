//! TLS for both ends of the audit link, on rustls with the `ring` provider.
//!
//! The collector serves HTTPS with `--tls-cert/--tls-key`. The client trusts the system's roots
//! plus, optionally, the CA bundle named by `audit-ca` (a private CA is what most teams run their
//! collector under). The client's rustls configuration is built here rather than by reqwest, so a
//! machine without a system certificate store can still post to a plain-HTTP collector.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A TLS handshake that takes longer than this is dropped: a stalled peer holds no task.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> std::io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(std::io::Error::other(format!("{}: no PEM certificate in it", path.display())));
    }
    Ok(certs)
}

/// The collector's TLS settings from a PEM certificate chain and its PEM private key.
///
/// # Errors
/// When a file cannot be read or parsed, or the key does not suit the certificate.
pub fn server_config(cert: &Path, key: &Path) -> std::io::Result<Arc<rustls::ServerConfig>> {
    let chain = read_certs(cert)?;
    // The message names the file, never its contents.
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| std::io::Error::other(format!("{}: no usable PEM private key ({e})", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| std::io::Error::other(format!("TLS certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

/// The client's TLS settings: the system's roots (when `system_roots`: a plain-HTTP collector
/// needs none, and reading them costs start-up time) plus the certificates in `extra_ca`.
///
/// # Errors
/// When `extra_ca` cannot be read or holds no certificate.
pub fn client_config(system_roots: bool, extra_ca: Option<&Path>) -> std::io::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if system_roots {
        // A missing or partly unreadable store is not fatal: the extra CA may be all we need.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    if let Some(path) = extra_ca {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// A connection the collector serves: plain TCP or TLS over it.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The collector's listener: connections arrive ready to serve, TLS already negotiated.
///
/// Handshakes run in their own tasks, so one slow or silent client never delays the others.
pub struct Incoming {
    ready: mpsc::Receiver<(Box<dyn Stream>, SocketAddr)>,
    local: SocketAddr,
}

impl Incoming {
    /// Accepts on `listener`, terminating TLS with `tls` when given.
    pub fn new(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<Incoming> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, tls.map(tokio_rustls::TlsAcceptor::from), tx));
        Ok(Incoming { ready, local })
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ready: mpsc::Sender<(Box<dyn Stream>, SocketAddr)>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: say so, and let the next accept try again.
                tracing::warn!("accept failed: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        // Replies are small and awaited: Nagle's algorithm with the peer's delayed ACK would hold
        // each back by 40 ms.
        let _ = tcp.set_nodelay(true);
        let ready = ready.clone();
        match &tls {
            None => {
                if ready.send((Box::new(tcp), peer)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(tcp);
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            let _ = ready.send((Box::new(stream), peer)).await;
                        }
                        // Once per connection that fails: a client with the wrong CA, or
                        // one speaking plain HTTP, is seen at the default log level.
                        Ok(Err(e)) => tracing::warn!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::warn!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        }
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Box<dyn Stream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is gone, so this never resolves.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The peer's address, as the collector records it.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Incoming>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Incoming>) -> Peer {
        Peer(*stream.remote_addr())
    }
}
