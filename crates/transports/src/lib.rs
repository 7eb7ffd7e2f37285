//! Transports beyond the local PTY. Each module opens one kind of link and hands the engine a
//! [`engine::transport::Connection`]; everything else (transcript, screen, waiting) is the
//! engine's.

pub mod serial;
pub mod ssh;
