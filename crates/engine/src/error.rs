//! The engine's errors. Expected outcomes (timed out, exited) are results, not errors.

use std::io;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program that was asked for.
        program: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The command line could not be understood.
    #[error("{0}")]
    InvalidCommand(String),
    /// The session's program has ended; it takes no more input.
    #[error("the session has ended")]
    Closed,
    /// Input could not be written before the deadline: the program is not reading it.
    #[error("timed out writing input: the program is not reading its terminal")]
    WriteTimedOut,
    /// Writing or resizing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}
