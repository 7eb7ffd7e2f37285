//! The audit log: what every agent did, delivered exactly once, tamper-evident.
//!
//! - [`config`]: the Go pty-mcp's `key=value` file (`audit-url`, `audit-user`, `audit-mode`,
//!   `audit-token`), refused when others can read it.
//! - [`record`]: the records (the seed's two per `send_input`, plus one per other action),
//!   each with a unique `record_id`, and redaction of credentials before a record leaves.
//! - [`client`]: best-effort delivery through a durable on-disk spool and a background sender;
//!   strict delivery before the action.
//! - [`collector`]: `pty-mcp audit serve`, appending accepted records to a hash-chained JSONL.
//! - [`syslog`]: records into a team's syslog pipeline (RFC 5424 over TCP or TLS) instead of a
//!   collector.
//! - [`tokens`]: operators' bearer tokens (`token operator` lines), shared with the MCP server's
//!   HTTP front door.

pub mod client;
pub mod collector;
pub mod config;
pub mod record;
pub mod syslog;
pub mod tls;
pub mod tokens;
