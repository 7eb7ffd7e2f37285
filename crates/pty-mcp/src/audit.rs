//! The audit hooks of the MCP server: which record each action produces, and strict mode's
//! refusal (`AUDIT_UNAVAILABLE`) before an action whose record the collector did not accept.

use std::sync::Arc;

use audit::client::Auditor;
use audit::record::{self, Subject};
use serde_json::{Value, json};

use crate::error::{Code, ToolError};
use crate::manager::{Entry, Sessions};

/// The server's auditor, or nothing when audit is off; and the user its records name, when not
/// the configured `audit-user` (an operator authenticated over HTTP).
#[derive(Clone, Default)]
pub struct Audit(pub Option<Arc<Auditor>>, pub Option<Arc<str>>);

fn unavailable(e: audit::client::Unavailable) -> ToolError {
    ToolError {
        code: Code::AuditUnavailable,
        message: format!("{e}; audit-mode is strict, so the action was not performed"),
        retryable: true,
    }
}

impl Audit {
    /// Why records are being lost right now, if they are (best-effort mode goes on regardless).
    pub fn problem(&self) -> Option<String> {
        self.0.as_ref()?.problem()
    }

    /// An auditor recording `user` (when given) as the user of its records.
    pub fn by(&self, user: Option<Arc<str>>) -> Audit {
        Audit(self.0.clone(), user.or_else(|| self.1.clone()))
    }

    /// The user records name.
    fn user(&self, auditor: &Auditor) -> String {
        self.1.as_deref().unwrap_or(auditor.user()).to_string()
    }

    fn subject(&self, auditor: &Auditor, entry: &Entry) -> Subject {
        Subject {
            user: self.user(auditor),
            session_id: entry.id.clone(),
            kind: entry.kind.to_string(),
            target: entry.target.clone(),
        }
    }

    /// Before typing into a session: the Go version's first record. Returns its `cmd_id`.
    pub async fn before_input(
        &self,
        sessions: &Sessions<'_>,
        id: &str,
        input: &str,
        raw: bool,
    ) -> Result<Option<String>, ToolError> {
        let Some(a) = &self.0 else { return Ok(None) };
        let Ok(entry) = sessions.get(id) else { return Ok(None) }; // the tool reports the bad id
        let cmd_id = record::random_id(8);
        a.before(record::command(&self.subject(a, &entry), &cmd_id, input, raw)).await.map_err(unavailable)?;
        Ok(Some(cmd_id))
    }

    /// After it: the output snippet (already masked for secrets; redacted here).
    pub fn after_input(&self, cmd_id: Option<String>, output: &str) {
        if let (Some(a), Some(cmd_id)) = (&self.0, cmd_id) {
            a.after(record::command_output(&cmd_id, output));
        }
    }

    /// Before another action on an existing session.
    pub async fn before_event(
        &self,
        sessions: &Sessions<'_>,
        id: &str,
        event: &str,
        details: Value,
    ) -> Result<(), ToolError> {
        let Some(a) = &self.0 else { return Ok(()) };
        let Ok(entry) = sessions.get(id) else { return Ok(()) };
        a.before(record::event(&self.subject(a, &entry), event, details)).await.map_err(unavailable)
    }

    /// After an action on a session, when its outcome is known (never refused).
    pub fn after_event(&self, entry: &Entry, event: &str, details: Value) {
        if let Some(a) = &self.0 {
            a.after(record::event(&self.subject(a, entry), event, details));
        }
    }

    /// Before a session is created (it has no id yet).
    pub async fn before_create(&self, kind: &str, target: &str) -> Result<(), ToolError> {
        let Some(a) = &self.0 else { return Ok(()) };
        let subject =
            Subject { user: self.user(a), session_id: String::new(), kind: kind.into(), target: target.into() };
        a.before(record::event(&subject, "create_session", json!({}))).await.map_err(unavailable)
    }

    /// A policy decision, before it is acted on (`session_id` empty before a session exists).
    pub async fn policy_decision(
        &self,
        session_id: &str,
        kind: &str,
        target: &str,
        details: Value,
    ) -> Result<(), ToolError> {
        let Some(a) = &self.0 else { return Ok(()) };
        let subject =
            Subject { user: self.user(a), session_id: session_id.into(), kind: kind.into(), target: target.into() };
        a.before(record::event(&subject, "policy_decision", details)).await.map_err(unavailable)
    }

    /// After a session was created: its id, and a watcher that records its end.
    pub fn created(&self, entry: Arc<Entry>) {
        let Some(a) = self.0.clone() else { return };
        let subject = self.subject(&a, &entry);
        a.after(record::event(&subject, "session_created", json!({})));
        tokio::spawn(async move {
            let forever = tokio::time::Instant::now() + std::time::Duration::from_secs(100 * 365 * 86400);
            entry.session.wait_exit(forever).await;
            let exit = entry.session.exit();
            a.after(record::event(
                &subject,
                "session_ended",
                json!({"exit_code": exit.and_then(|e| e.code), "exit_signal": exit.and_then(|e| e.signal)}),
            ));
        });
    }
}

/// What an operator does through `pty-mcp attach`, recorded under the operator's name (not the
/// agent's audit user). Recorded after the fact and never refused: the operator is the person
/// the guardrails serve, and is not held up by an unreachable collector.
pub struct OperatorAudit {
    audit: Audit,
    subject: Option<Subject>,
    /// Keys typed since the last line end, recorded as one line.
    line: Vec<u8>,
}

impl OperatorAudit {
    /// For `operator` (a login name) watching `entry`.
    pub fn new(audit: &Audit, entry: &Entry, operator: &str) -> OperatorAudit {
        let subject = audit.0.as_ref().map(|_| Subject {
            user: format!("operator:{operator}"),
            session_id: entry.id.clone(),
            kind: entry.kind.to_string(),
            target: entry.target.clone(),
        });
        OperatorAudit { audit: audit.clone(), subject, line: Vec::new() }
    }

    /// An operator event (`operator_attached`, `operator_detached`).
    pub fn event(&mut self, event: &str, details: Value) {
        if event == "operator_detached" {
            self.flush();
        }
        if let (Some(a), Some(subject)) = (&self.audit.0, &self.subject) {
            a.after(record::event(subject, event, details));
        }
    }

    /// Keys the operator typed: each line they end is one record (redacted like agent input).
    pub fn typed(&mut self, keys: &[u8]) {
        if self.subject.is_none() {
            return;
        }
        for &b in keys {
            if matches!(b, b'\r' | b'\n') {
                self.flush();
            } else {
                self.line.push(b);
            }
        }
    }

    /// Records what was typed since the last line end, if anything.
    pub fn flush(&mut self) {
        if let (Some(a), Some(subject)) = (&self.audit.0, &self.subject)
            && !self.line.is_empty()
        {
            let line = String::from_utf8_lossy(&self.line).into_owned();
            a.after(record::command(subject, &record::random_id(8), &line, true));
            self.line.clear();
        }
    }
}
