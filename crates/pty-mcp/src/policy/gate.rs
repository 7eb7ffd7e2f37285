//! What happens once the policy has decided: `allow` goes on, `deny` is refused, `ask` goes to
//! the operator out of band (or, only where the policy says `approval = "client"`, to the MCP
//! client's own prompt, which the agent's host may answer itself). Each decision a rule made (or
//! a default other than allow) is audited before it is acted on: in strict audit mode, a
//! decision that cannot be recorded is a refusal.

use std::sync::Arc;

use rmcp::schemars::{self, JsonSchema};
use rmcp::{Peer, RoleServer};
use serde::Deserialize;
use serde_json::json;

use super::{Action, Approval, Decision, Policy, Rules};
use crate::audit::Audit;
use crate::error::{Code, ToolError};
use crate::operator::{OperatorPrompt, PromptError, Question};

/// The policy with what it needs to act: the operator to ask, the audit log.
#[derive(Clone)]
pub struct Gate {
    pub policy: Arc<Policy>,
    pub operator: Arc<OperatorPrompt>,
    pub audit: Audit,
}

/// Where input is about to be typed.
pub struct Place<'a> {
    /// The session (none yet for a `create_*` command).
    pub session_id: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    /// The names the session's target goes by (see [`names`]).
    pub names: Vec<String>,
    /// A shell waits at its prompt.
    pub at_shell: bool,
}

/// The names a target goes by, for the rules' `targets` globs: `local`; an SSH session's
/// `user@host:port`, `user@host`, `host` and the name the agent gave (an ssh_config alias); a
/// serial device.
pub fn names(kind: &str, target: &str, alias: Option<&str>) -> Vec<String> {
    let mut names = match kind {
        "local" => vec!["local".to_string()],
        "serial" => {
            let device = target.rsplit_once('@').map_or(target, |(d, _)| d);
            vec![target.to_string(), device.to_string()]
        }
        _ => {
            let no_port = target.rsplit_once(':').map_or(target, |(t, _)| t);
            let host = no_port.split_once('@').map_or(no_port, |(_, h)| h);
            vec![target.to_string(), no_port.to_string(), host.to_string()]
        }
    };
    names.extend(alias.map(String::from));
    names.dedup();
    names
}

/// The client's answer to an approval (MCP elicitation).
#[derive(Deserialize, JsonSchema)]
struct ClientApproval {
    /// Run this command?
    approve: bool,
}
rmcp::elicit_safe!(ClientApproval);

impl Gate {
    /// What `rules` say about `text` at `place` (also for `check_policy`).
    pub fn decide(rules: &Rules, place: &Place<'_>, text: &str, uncertain: bool) -> Decision {
        let mut decision = rules.check(&place.names, place.at_shell, text);
        if uncertain && decision.action < Action::Ask {
            decision = Decision {
                action: Action::Ask,
                rule: None,
                reason: Some(
                    "keys the line editor acts on (arrows, tab, history) were typed: the line it runs cannot be seen"
                        .into(),
                ),
                segment: text.to_string(),
                unparsed: true,
            };
        }
        decision
    }

    /// Lets `text` be typed at `place` under `rules` (the policy in force, read once by the
    /// caller), or says why not (nothing is typed then).
    ///
    /// # Errors
    /// `POLICY_DENIED`, `APPROVAL_DENIED`, `APPROVAL_TIMEOUT`, `AUDIT_UNAVAILABLE`.
    pub async fn pass(
        &self,
        rules: &Rules,
        place: &Place<'_>,
        text: &str,
        uncertain: bool,
        client: Option<&Peer<RoleServer>>,
    ) -> Result<(), ToolError> {
        let decision = Gate::decide(rules, place, text, uncertain);
        self.act(rules, place, decision, text, "nothing was typed", client).await
    }

    /// Lets a file transfer of `path` go `direction` (`upload`, `download`) at `place`, or says
    /// why not (nothing is transferred then).
    ///
    /// # Errors
    /// As [`Gate::pass`].
    pub async fn pass_transfer(
        &self,
        rules: &Rules,
        place: &Place<'_>,
        direction: &str,
        path: &str,
        client: Option<&Peer<RoleServer>>,
    ) -> Result<(), ToolError> {
        let decision = rules.check_path(&place.names, direction, path);
        let what = decision.segment.clone();
        self.act(rules, place, decision, &what, "nothing was transferred", client).await
    }

    /// Acts on `decision` about `what`: goes on, refuses (saying `nothing` happened), or asks.
    async fn act(
        &self,
        rules: &Rules,
        place: &Place<'_>,
        decision: Decision,
        what: &str,
        nothing: &str,
        client: Option<&Peer<RoleServer>>,
    ) -> Result<(), ToolError> {
        let why = decision.reason.clone().unwrap_or_else(|| "the policy's default".into());
        match decision.action {
            Action::Allow => {
                if decision.rule.is_some() {
                    self.record(place, &decision, "allowed", None).await?;
                }
                Ok(())
            }
            Action::Deny => {
                self.record(place, &decision, "denied", None).await?;
                Err(ToolError::new(
                    Code::PolicyDenied,
                    format!("the policy denies {:?} ({}: {why}); {nothing}", decision.segment, rule_name(&decision)),
                ))
            }
            Action::Ask => {
                if self.policy.remembered(place.session_id, what) {
                    return self.record(place, &decision, "approved", Some("remembered")).await;
                }
                // Shown by the name rules use: `local`, or `user@host:port`.
                let target = place.names.first().map_or(place.target, String::as_str);
                let question = Question { target, command: what, reason: &why };
                let answer = match rules.approval {
                    Approval::Operator => self.operator.approve(&question, rules.approval_timeout).await,
                    Approval::Client => ask_client(client, &question, rules.approval_timeout).await,
                };
                match answer {
                    Ok(by) => {
                        self.record(place, &decision, "approved", Some(by)).await?;
                        self.policy.remember(place.session_id, what, rules);
                        Ok(())
                    }
                    Err(PromptError::Cancelled(by)) => {
                        self.record(place, &decision, "refused", Some(by)).await?;
                        Err(ToolError::new(
                            Code::ApprovalDenied,
                            format!("the operator refused {:?} ({why}); {nothing}", decision.segment),
                        ))
                    }
                    Err(PromptError::TimedOut(by)) => {
                        self.record(place, &decision, "timed_out", Some(by)).await?;
                        Err(ToolError::new(
                            Code::ApprovalTimeout,
                            format!(
                                "nobody approved {:?} ({why}) within {} s; {nothing}",
                                decision.segment,
                                rules.approval_timeout.as_secs()
                            ),
                        ))
                    }
                    Err(PromptError::Unavailable(how)) => {
                        self.record(place, &decision, "unasked", None).await?;
                        Err(ToolError::new(
                            Code::ApprovalDenied,
                            format!(
                                "{:?} needs the operator's approval ({why}), and there is no way to ask here ({how}); \
                                 set PTY_MCP_APPROVE; {nothing}",
                                decision.segment
                            ),
                        ))
                    }
                }
            }
        }
    }

    async fn record(
        &self,
        place: &Place<'_>,
        decision: &Decision,
        outcome: &str,
        approver: Option<&str>,
    ) -> Result<(), ToolError> {
        let details = json!({
            "decision": outcome,
            "action": decision.action.as_str(),
            "rule": rule_name(decision),
            "reason": decision.reason,
            "command": audit::record::redact(&decision.segment),
            "approver": approver,
        });
        self.audit.policy_decision(place.session_id, place.kind, place.target, details).await
    }
}

fn rule_name(decision: &Decision) -> &str {
    decision.rule.as_deref().unwrap_or(if decision.unparsed { "unparsed text" } else { "default" })
}

/// Asks the MCP client (elicitation), when the policy says so.
async fn ask_client(
    client: Option<&Peer<RoleServer>>,
    question: &Question<'_>,
    timeout: std::time::Duration,
) -> Result<&'static str, PromptError> {
    use rmcp::service::ElicitationError as E;
    let Some(peer) = client else { return Err(PromptError::Unavailable("no MCP client to ask".into())) };
    let message =
        format!("Run this on {}?\n\n{}\n\nWhy it is asked: {}", question.target, question.command, question.reason);
    match peer.elicit_with_timeout::<ClientApproval>(message, Some(timeout)).await {
        Ok(Some(ClientApproval { approve: true })) => Ok("client"),
        Ok(_) | Err(E::UserDeclined | E::UserCancelled | E::NoContent) => Err(PromptError::Cancelled("client")),
        Err(E::Service(rmcp::ServiceError::Timeout { .. })) => Err(PromptError::TimedOut("client")),
        Err(e) => Err(PromptError::Unavailable(format!("the client: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_goes_by_all_its_names() {
        assert_eq!(names("local", "bash", None), ["local"]);
        assert_eq!(
            names("ssh", "deploy@10.0.0.5:22", Some("prod-web1")),
            ["deploy@10.0.0.5:22", "deploy@10.0.0.5", "10.0.0.5", "prod-web1"]
        );
        assert_eq!(names("serial", "/dev/ttyUSB0@9600", None), ["/dev/ttyUSB0@9600", "/dev/ttyUSB0"]);
    }
}
