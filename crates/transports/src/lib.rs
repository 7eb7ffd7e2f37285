//! Transports beyond the local PTY. Each module opens one kind of link and hands the engine a
//! [`engine::transport::Connection`]; everything else (transcript, screen, waiting) is the
//! engine's.
//!
//! ```
//! use std::path::Path;
//! // A serial device must be a character device, whatever path leads to it.
//! assert!(transports::serial::validate(Path::new("/dev/null")).is_ok());
//! assert!(transports::serial::validate(Path::new("/dev/../etc/hostname")).is_err());
//! ```

pub mod files;
pub mod serial;
pub mod ssh;
