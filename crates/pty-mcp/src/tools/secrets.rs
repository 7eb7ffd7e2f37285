//! `send_secret` and `prepare_secret`: a secret from the operator into a terminal, checked so
//! that the terminal will not show it, and never returned, logged or recorded.

use std::sync::Arc;
use std::time::Duration;

use engine::secret::Secret;
use engine::{Session, State};
use serde::Serialize;
use tokio::time::Instant;

use crate::error::{Code, ToolError};
use crate::manager::{Entry, Sessions};
use crate::operator::{OperatorPrompt, PromptError};
use crate::params::{PrepareSecretParams, SendSecretParams};
use crate::tools::WRITE_DEADLINE;

const DEFAULT_PROMPT: &str = "Enter secret: ";
/// Output must pause this long before a prepared secret's prompt is judged.
const PROMPT_QUIET: Duration = Duration::from_millis(50);

/// Reply of the secret tools: nothing derived from the secret.
#[derive(Debug, Serialize)]
pub struct SecretReply {
    /// Always true.
    pub success: bool,
    /// prepare_secret: the secret waits for a password prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffered: Option<bool>,
}

fn line_ending(given: Option<String>) -> Result<Vec<u8>, ToolError> {
    let ending = given.unwrap_or_else(|| "\r".into());
    if ending.len() > 4 {
        return Err(ToolError::invalid("line_ending is at most 4 bytes (\"\\r\", \"\\n\", \"\\r\\n\" or \"\")"));
    }
    Ok(ending.into_bytes())
}

/// Refuses when the terminal would display the secret: echo on, or a shell's command line.
fn check_delivery(session: &Session, force: bool) -> Result<(), ToolError> {
    if !session.is_alive() {
        return Err(ToolError::new(Code::SessionClosed, "the session has ended"));
    }
    if force {
        return Ok(());
    }
    let (state, _) = session.state();
    let refuse = |why: &str| {
        Err(ToolError::new(Code::SecretEchoOn, format!("{why}; not sending the secret (force:true overrides)")))
    };
    match session.echo() {
        Some(true) => refuse("the terminal echoes input, so the secret would be shown"),
        // Line editors turn echo off and draw the input themselves: a shell prompt is no place
        // for a password (it would land in the command line and history).
        Some(false) if state == State::AtPrompt => refuse("the session is at a shell prompt, not a password prompt"),
        Some(false) => Ok(()),
        None if state == State::PasswordPrompt => Ok(()),
        None => refuse("the screen shows no password prompt"),
    }
}

fn prompt_error(e: PromptError) -> ToolError {
    match e {
        PromptError::Cancelled(by) => {
            ToolError::new(Code::SecretCancelled, format!("the operator cancelled the prompt ({by})"))
        }
        PromptError::TimedOut(by) => ToolError {
            code: Code::SecretTimeout,
            message: format!("the operator did not answer in time ({by})"),
            retryable: true,
        },
        PromptError::Unavailable(tried) => ToolError::new(
            Code::SecretUnavailable,
            format!(
                "no way to ask the operator for a secret works here ({tried}); set PTY_MCP_ASKPASS to a program that prints the secret"
            ),
        ),
    }
}

async fn ask(operator: &OperatorPrompt, prompt: Option<String>, allow_empty: bool) -> Result<Secret, ToolError> {
    let prompt = prompt.filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PROMPT.into());
    let secret = operator.ask(&prompt).await.map_err(prompt_error)?;
    if secret.is_empty() && !allow_empty {
        return Err(ToolError::new(Code::SecretEmpty, "the operator's answer was empty (allow_empty:true accepts it)"));
    }
    Ok(secret)
}

/// Asks the operator and types the secret into the session now.
pub async fn send_secret(
    manager: &Sessions<'_>,
    operator: &OperatorPrompt,
    p: SendSecretParams,
) -> Result<SecretReply, ToolError> {
    let entry = manager.get_live(&p.session_id).await?;
    let session = &entry.session;
    let ending = line_ending(p.line_ending)?;
    let force = p.force.unwrap_or(false);
    check_delivery(session, force)?;
    let _typing = session.lock_input().await;
    let secret = ask(operator, p.prompt, p.allow_empty.unwrap_or(false)).await?;
    // The program may have moved on while the operator typed.
    check_delivery(session, force)?;
    session.write_secret(&secret, &ending, Instant::now() + WRITE_DEADLINE).await?;
    Ok(SecretReply { success: true, buffered: None })
}

/// Asks the operator now; the secret is typed when the session's screen next shows a password
/// prompt with echo off (or dropped when `ttl` passes).
pub async fn prepare_secret(
    manager: &Sessions<'_>,
    operator: &OperatorPrompt,
    p: PrepareSecretParams,
) -> Result<SecretReply, ToolError> {
    let entry = manager.get_live(&p.session_id).await?;
    // Only that it lives: the prompt is judged when it shows.
    check_delivery(&entry.session, true)?;
    let ending = line_ending(p.line_ending)?;
    let ttl = Duration::from_secs(p.ttl.unwrap_or(300).clamp(1, 3600) as u64);
    let secret = ask(operator, p.prompt, p.allow_empty.unwrap_or(false)).await?;
    entry.drop_pending_secret();
    let task = tokio::spawn(deliver_at_prompt(entry.clone(), secret, ending, Instant::now() + ttl));
    *entry.pending_secret.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    Ok(SecretReply { success: true, buffered: Some(true) })
}

fn ready(session: &Session) -> bool {
    session.state().0 == State::PasswordPrompt && session.echo() != Some(true)
}

/// Waits (on output events, never polling) for a password prompt on the current screen, then
/// types the secret once. Dropping the secret at the end wipes it.
async fn deliver_at_prompt(entry: Arc<Entry>, secret: Secret, ending: Vec<u8>, until: Instant) {
    let session = &entry.session;
    let mut rx = session.subscribe();
    loop {
        if ready(session) {
            let _typing = session.lock_input().await;
            if ready(session) {
                if let Err(e) = session.write_secret(&secret, &ending, Instant::now() + WRITE_DEADLINE).await {
                    tracing::warn!(session = %entry.id, "a prepared secret could not be sent: {e}");
                }
                return;
            }
        }
        // Wait for output, then for it to pause, before judging the screen again.
        tokio::select! {
            changed = rx.changed() => if changed.is_err() || !session.is_alive() { return },
            _ = tokio::time::sleep_until(until) => return,
        }
        loop {
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(PROMPT_QUIET) => break,
                _ = tokio::time::sleep_until(until) => return,
            }
        }
    }
}
