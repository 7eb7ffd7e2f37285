//! Audit records into a team's syslog pipeline (`audit-sink=syslog://host:port` or
//! `syslog+tls://host:port`): each record is one RFC 5424 message over TCP with octet-counting
//! framing (RFC 6587; over TLS, RFC 5425), its structured data carrying `record_id`, `user`,
//! `session_id`, `type` and `target`, and the JSON record as the message. rsyslog and syslog-ng
//! take it from there to wherever the team keeps its logs.
//!
//! The spool's sender calls [`Syslog::send`] once per record, in order, and moves past a record
//! only when it was written whole and flushed to an established connection. Syslog over TCP has
//! no acknowledgement: what the kernel accepted is gone from the spool, so a receiver that dies
//! with records in its socket buffers loses them (the send buffer is kept small, 64 KiB, to
//! bound that). A connection the receiver closed is noticed
//! before the next record is written to it (and a new one is made), a receiver that stops
//! reading holds up the sender for at most [`WRITE_TIMEOUT`] per attempt while records stay in
//! the spool, and strict mode is refused with a syslog sink: it needs the built-in collector,
//! which answers after fsync.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::tls::Stream;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one record's write and flush may take before the connection is given up.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The socket's send buffer: records the kernel holds that the receiver has not taken yet, at
/// most (they left the spool, so they are what a receiver dying can lose).
const SEND_BUFFER: u32 = 64 << 10;
/// RFC 5424 PRI: facility 13 (log audit), severity 6 (informational).
const PRI: u8 = 13 * 8 + 6;
/// The SD-ID of our structured data (32473 is the enterprise number RFC 5612 reserves for
/// examples and private use).
const SD_ID: &str = "pty-mcp@32473";

/// Where records go.
pub struct Syslog {
    /// `host:port`.
    addr: String,
    /// The name the receiver's certificate must carry (TLS).
    server_name: Option<rustls::pki_types::ServerName<'static>>,
    tls: Option<tokio_rustls::TlsConnector>,
    hostname: String,
    connection: tokio::sync::Mutex<Option<Box<dyn Stream>>>,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "syslog{}://{}", if self.tls.is_some() { "+tls" } else { "" }, self.addr)
    }
}

impl Syslog {
    /// The sink a `syslog://host:port` or `syslog+tls://host:port` URL names; TLS trusts the
    /// system's roots and `extra_ca`.
    ///
    /// # Errors
    /// A URL of another scheme, without a port, or a CA bundle that cannot be read.
    pub fn new(url: &str, extra_ca: Option<&std::path::Path>) -> std::io::Result<Syslog> {
        let bad = |why: &str| std::io::Error::other(format!("audit-sink {url:?}: {why}"));
        let (tls, rest) = if let Some(rest) = url.strip_prefix("syslog+tls://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("syslog://") {
            (false, rest)
        } else {
            return Err(bad("use syslog://host:port or syslog+tls://host:port"));
        };
        let addr = rest.trim_end_matches('/');
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("a port is needed (host:port)"))?;
        port.parse::<u16>().map_err(|_| bad("the port is not a number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("a host is needed (host:port)"));
        }
        let (tls, server_name) = if tls {
            let config = crate::tls::client_config(true, extra_ca)?;
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| bad(&e.to_string()))?;
            (Some(tokio_rustls::TlsConnector::from(Arc::new(config))), Some(name))
        } else {
            (None, None)
        };
        Ok(Syslog {
            addr: addr.to_string(),
            server_name,
            tls,
            hostname: hostname(),
            connection: tokio::sync::Mutex::new(None),
        })
    }

    /// Writes one record (a JSON line from the spool) and flushes it, connecting first if
    /// needed.
    ///
    /// # Errors
    /// Why the record was not handed over (the sender retries it later).
    pub async fn send(&self, record: &str) -> Result<(), String> {
        let message = frame(record, &self.hostname, std::process::id());
        let mut connection = self.connection.lock().await;
        if connection.as_mut().is_some_and(|c| closed_by_peer(c.as_mut())) {
            *connection = None;
        }
        if connection.is_none() {
            *connection = Some(self.connect().await?);
        }
        let stream = connection.as_mut().expect("connected above");
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            stream.write_all(&message).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                *connection = None;
                Err(format!("{self:?}: {e}"))
            }
            Err(_) => {
                *connection = None;
                Err(format!("{self:?}: the receiver took nothing for {WRITE_TIMEOUT:?}"))
            }
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let attempt = async {
            let addr = tokio::net::lookup_host(&self.addr)
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other("the host has no address"))?;
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.set_send_buffer_size(SEND_BUFFER)?;
            let tcp = socket.connect(addr).await?;
            tcp.set_nodelay(true)?;
            Ok::<_, std::io::Error>(match (&self.tls, &self.server_name) {
                (Some(tls), Some(name)) => Box::new(tls.connect(name.clone(), tcp).await?) as Box<dyn Stream>,
                _ => Box::new(tcp),
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(format!("{self:?}: {e}")),
            Err(_) => Err(format!("{self:?}: no connection within {CONNECT_TIMEOUT:?}")),
        }
    }
}

/// Whether the receiver closed (or reset) the connection: it sends nothing otherwise, so a
/// read that is ready now sees the end of the stream or an error.
fn closed_by_peer(stream: &mut dyn Stream) -> bool {
    use std::task::{Context, Poll};
    let mut byte = [0u8; 1];
    let mut buf = tokio::io::ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match AsyncRead::poll_read(std::pin::Pin::new(&mut *stream), &mut cx, &mut buf) {
        Poll::Pending => false,
        Poll::Ready(Ok(())) => true, // end of stream (or a byte nobody should send: start afresh)
        Poll::Ready(Err(_)) => true,
    }
}

/// One record as an octet-counted RFC 5424 message: `LEN SP <PRI>1 TS HOST APP PROCID MSGID
/// [SD] MSG`, the MSGID being the record's `event` (or `command` for a command's records).
pub fn frame(record: &str, hostname: &str, pid: u32) -> Vec<u8> {
    let fields: Value = serde_json::from_str(record).unwrap_or(Value::Null);
    let field = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
    let timestamp = Some(field("ts")).filter(|t| !t.is_empty()).unwrap_or("-");
    let msgid = match field("event") {
        "" if !field("cmd_id").is_empty() => "command",
        "" => "-",
        event => event,
    };
    let mut sd = format!("[{SD_ID}");
    for key in ["record_id", "user", "session_id", "type", "target"] {
        sd.push_str(&format!(" {key}=\"{}\"", sd_escape(field(key))));
    }
    sd.push(']');
    let message = format!(
        "<{PRI}>1 {timestamp} {} pty-mcp {pid} {} {sd} {record}",
        header_field(hostname, 255),
        header_field(msgid, 32)
    );
    let mut framed = format!("{} ", message.len()).into_bytes();
    framed.extend_from_slice(message.as_bytes());
    framed
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped (RFC 5424 6.3.3).
fn sd_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII without spaces, at most `max` characters (RFC 5424:
/// HOSTNAME 255, MSGID 32); `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let clean: String = value.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if clean.is_empty() { "-".to_string() } else { clean }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "-".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_one_octet_counted_rfc5424_message() {
        let record = r#"{"record_id":"r1","ts":"2026-11-29T10:00:00.000Z","user":"ali\"ce","session_id":"s1","type":"ssh","target":"db]1","event":"session_created"}"#;
        let framed = String::from_utf8(frame(record, "bastion", 42)).unwrap();
        let (len, message) = framed.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        assert_eq!(
            message,
            format!(
                "<110>1 2026-11-29T10:00:00.000Z bastion pty-mcp 42 session_created [pty-mcp@32473 record_id=\"r1\" \
                 user=\"ali\\\"ce\" session_id=\"s1\" type=\"ssh\" target=\"db\\]1\"] {record}"
            )
        );
        let command = r#"{"record_id":"r2","ts":"2026-11-29T10:00:01.000Z","cmd_id":"c","cmd":"ls"}"#;
        let framed = String::from_utf8(frame(command, "", 1)).unwrap();
        assert!(framed.contains("<110>1 2026-11-29T10:00:01.000Z - pty-mcp 1 command [pty-mcp@32473"), "{framed}");
        // Header fields keep within RFC 5424's lengths: HOSTNAME 255, MSGID 32.
        let long = format!(r#"{{"ts":"t","event":"{}"}}"#, "e".repeat(40));
        let framed = String::from_utf8(frame(&long, &"h".repeat(300), 1)).unwrap();
        assert!(framed.contains(&format!(" t {} pty-mcp 1 {} [", "h".repeat(255), "e".repeat(32))), "{framed}");
    }

    #[test]
    fn only_syslog_urls_with_a_port_are_sinks() {
        assert!(Syslog::new("syslog://127.0.0.1:514", None).is_ok());
        assert!(Syslog::new("syslog+tls://logs.example.com:6514", None).is_ok());
        for bad in ["http://x:1", "syslog://x", "syslog://:514", "syslog://x:port"] {
            assert!(Syslog::new(bad, None).is_err(), "{bad}");
        }
    }
}
