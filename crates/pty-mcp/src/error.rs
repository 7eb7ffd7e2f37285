//! Tool errors as agents see them: `{code, message, retryable}` with the Go pty-mcp's codes.

use serde::Serialize;

/// The error codes of the Go pty-mcp, which agents and scripts already match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// No session has that id.
    SessionNotFound,
    /// The session has ended.
    SessionClosed,
    /// The server's session limit is reached (retryable once a session is closed).
    SessionLimitReached,
    /// A parameter is missing, malformed or out of range.
    InvalidParams,
    /// The program could not be started on a PTY.
    PtyOpenFailed,
    /// SSH authentication failed (the message lists the methods tried, never a secret).
    SshAuthFailed,
    /// The SSH server could not be reached (refused, unreachable, timed out): retryable.
    SshConnectFailed,
    /// The host's key is not in known_hosts (the message gives its fingerprint).
    SshHostKeyUnknown,
    /// The host's key differs from the recorded one.
    SshHostKeyChanged,
    /// The serial device could not be opened (the message says why and what to do).
    SerialOpenFailed,
    /// Writing to the terminal failed.
    WriteFailed,
    /// The operator cancelled the secret prompt.
    SecretCancelled,
    /// The operator did not answer in time.
    SecretTimeout,
    /// No way to ask the operator works here (no askpass, no display, no terminal).
    SecretUnavailable,
    /// The operator's answer was empty (refused unless `allow_empty`).
    SecretEmpty,
    /// The terminal would show the secret (echo on, or a shell prompt rather than a password prompt).
    SecretEchoOn,
    /// The ai-tmux daemon of a persistent session cannot be reached, is missing or too old
    /// (the message says which, and how to install it).
    DaemonUnavailable,
    /// Strict audit: the collector did not accept the action's record, so it was not performed.
    AuditUnavailable,
    /// The policy denies the input (the message names the rule, its reason and the command).
    PolicyDenied,
    /// The operator refused the input the policy asks about, or could not be asked.
    ApprovalDenied,
    /// Nobody answered the approval in time.
    ApprovalTimeout,
    /// The session cannot do this (a serial line has no files; a host without SFTP).
    NotSupported,
    /// The file (or its directory) does not exist.
    FileNotFound,
    /// The file exists and `overwrite` was not given.
    FileExists,
    /// The file system refused (permissions), or `local_path` is not allowed here.
    PermissionDenied,
    /// A disk is full (retryable once there is room).
    NoSpace,
    /// Larger than a limit: the content a call carries, a reply, or `--max-transfer`.
    TooLarge,
    /// A transfer failed on the way (a lost link, a timeout, cancellation); the target is untouched.
    TransferFailed,
    /// Anything else.
    InternalError,
}

/// A failed tool call.
#[derive(Debug, Clone, Serialize)]
pub struct ToolError {
    /// What kind of failure, for programs.
    pub code: Code,
    /// What happened and what to do, for people and agents.
    pub message: String,
    /// Whether the same call may succeed later.
    pub retryable: bool,
}

impl ToolError {
    /// An error with `retryable` false.
    pub fn new(code: Code, message: impl Into<String>) -> ToolError {
        ToolError { code, message: message.into(), retryable: false }
    }

    /// A parameter problem.
    pub fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::new(Code::InvalidParams, message)
    }
}

impl From<engine::Error> for ToolError {
    fn from(e: engine::Error) -> ToolError {
        use engine::Error as E;
        let code = match &e {
            E::Spawn { .. } => Code::PtyOpenFailed,
            E::InvalidCommand(_) => Code::InvalidParams,
            E::Closed => Code::SessionClosed,
            E::WriteTimedOut | E::Io(_) => Code::WriteFailed,
            _ => Code::InternalError,
        };
        let retryable = matches!(e, E::WriteTimedOut);
        ToolError { code, message: e.to_string(), retryable }
    }
}
