//! The pty-mcp terminal engine: one implementation of "a byte stream in, a byte stream out, and
//! a terminal between them", shared by every transport, the MCP server and the `ai-tmux` daemon.
//!
//! A [`Session`] owns a transport ([`transport::Connection`]); its reader task appends output to
//! a bounded [`Transcript`] addressed by absolute [`Offset`]s and wakes waiters
//! ([`Session::settle`], [`Session::wait_for`]). The [`Screen`] (a VT emulator) is derived from
//! the transcript on demand, and [`text::clean`] renders byte ranges as plain text.
//!
//! The engine knows nothing of MCP, SSH or serial lines.
//!
//! ```no_run
//! # async fn demo() -> Result<(), engine::Error> {
//! use engine::{Session, SessionConfig, transport::local::{self, LocalCommand}};
//! let conn = local::spawn(&LocalCommand::parse("python3 -q")?)?;
//! let session = Session::start(conn, SessionConfig::default(), None);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
pub mod keys;
pub mod prompt;
pub mod record;
// The fuzz targets (fuzz/, built by cargo fuzz with --cfg fuzzing) drive the scanner directly.
#[cfg(fuzzing)]
pub mod scanner;
#[cfg(not(fuzzing))]
mod scanner;
mod screen;
pub mod secret;
mod session;
pub mod shell;
#[cfg(test)]
mod testutil;
pub mod text;
mod transcript;
pub mod transport;
pub mod view;
mod wait;

pub use error::Error;
pub use scanner::Modes;
pub use screen::{Color, Frame, Run, SCROLLBACK, Screen, ScreenView, StyledScreen};
pub use session::{Session, SessionConfig, Signal, State};
pub use transcript::{Offset, Slice, Transcript};
pub use wait::{Echo, LineMatch, PatternWait, Settle, Settled};
