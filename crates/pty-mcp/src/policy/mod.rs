//! Guardrails: a policy of what may be typed where (`policy.toml`), checked before anything is
//! typed. What is checked is what the shell will run ([`parse`]); rules are tried in order,
//! first match wins ([`rules`]); what is typed is followed line by line ([`line`]); `ask` goes
//! to the operator out of band, and every decision is audited ([`gate`]).
//!
//! The file is read at start-up (a bad one stops the server: it never runs without the rules
//! it was given) and again whenever it changes; a bad edit keeps the last good policy, and says
//! so. No file: nothing is checked.

pub mod gate;
pub mod line;
pub mod parse;
pub mod rules;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde::Serialize;

pub use rules::{Action, Approval, Rules};

/// The policy file: `PTY_MCP_POLICY`, else `<config dir>/pty-mcp/policy.toml`.
pub fn default_path() -> PathBuf {
    std::env::var_os("PTY_MCP_POLICY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| audit::config::config_dir().join("policy.toml"))
}

/// The policy in force, reloaded when its file changes.
#[derive(Debug)]
pub struct Policy {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rules: Option<Arc<Rules>>,
    /// The file as last read: modification time, size, inode.
    stamp: Option<(SystemTime, u64, u64)>,
    /// Why the file's current contents are not in force.
    problem: Option<String>,
    /// Approvals remembered: (session, command) → until when.
    remembered: HashMap<(String, String), Instant>,
}

/// What the policy says about some input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// The rule that decided (`rule 2`, `preset destructive`), or None for the default.
    pub rule: Option<String>,
    pub reason: Option<String>,
    /// The command (segment) that decided.
    pub segment: String,
    /// The text could not be split for sure, so it was treated strictly.
    pub unparsed: bool,
}

/// The policy as `get_session_state` and `list_sessions` show it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub file: String,
    pub default: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub presets: Vec<String>,
    /// Rules of the file that name this target (or every target).
    pub rules: usize,
    /// `operator` or `client`.
    pub approval: &'static str,
    /// Why the file's latest contents are not in force (the last good policy is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Policy {
    /// Reads the policy at `path`. No file: a policy that allows everything (checks nothing).
    ///
    /// # Errors
    /// A file that others may write, cannot be read, or does not parse: the server must not
    /// start without the rules it was given.
    pub fn load(path: PathBuf) -> Result<Policy, String> {
        let policy = Policy { path, state: Mutex::new(State::default()) };
        {
            let mut state = policy.lock();
            policy.refresh(&mut state);
            if let Some(problem) = state.problem.take() {
                return Err(problem);
            }
        }
        Ok(policy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the file again if it changed (a `stat` per check: no watcher, no polling).
    fn refresh(&self, state: &mut State) {
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && state.rules.is_none() => return,
            Err(e) => {
                let problem = format!("{}: {e}; the last good policy stays in force", self.path.display());
                self.note_problem(state, problem);
                return;
            }
        };
        let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), meta.ino());
        if state.stamp == Some(stamp) {
            return;
        }
        state.stamp = Some(stamp);
        let loaded = if meta.permissions().mode() & 0o022 != 0 {
            Err(format!(
                "{} is writable by group or others (mode {:o}); run: chmod go-w {}",
                self.path.display(),
                meta.permissions().mode() & 0o777,
                self.path.display()
            ))
        } else {
            std::fs::read_to_string(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))
                .and_then(|text| rules::parse(&text).map_err(|e| format!("{}: {e}", self.path.display())))
        };
        match loaded {
            Ok(rules) => {
                if state.rules.is_some() {
                    tracing::info!("policy {} reloaded", self.path.display());
                }
                state.rules = Some(Arc::new(rules));
                state.problem = None;
                state.remembered.clear();
            }
            Err(problem) => self.note_problem(state, problem),
        }
    }

    fn note_problem(&self, state: &mut State, problem: String) {
        if state.problem.as_ref() != Some(&problem) {
            tracing::warn!("{problem}");
        }
        state.problem = Some(problem);
    }

    /// The rules in force, if there is a policy.
    pub fn rules(&self) -> Option<Arc<Rules>> {
        let mut state = self.lock();
        self.refresh(&mut state);
        state.rules.clone()
    }

    /// The policy in force for a session known as `targets`, for display.
    pub fn summary(&self, targets: &[String]) -> Option<Summary> {
        let rules = self.rules()?;
        let problem = self.lock().problem.clone();
        Some(Summary {
            file: self.path.display().to_string(),
            default: rules.default.as_str(),
            presets: rules.presets.clone(),
            rules: rules.rules.iter().filter(|r| !r.name.starts_with("preset") && r.names_any(targets)).count(),
            approval: match rules.approval {
                Approval::Operator => "operator",
                Approval::Client => "client",
            },
            problem,
        })
    }

    /// Whether the operator approved `command` in session `session` recently enough.
    pub fn remembered(&self, session: &str, command: &str) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        state.remembered.retain(|_, until| *until > now);
        state.remembered.contains_key(&(session.to_string(), command.to_string()))
    }

    /// Remembers an approval for the time the policy says (nothing when it says 0).
    pub fn remember(&self, session: &str, command: &str, rules: &Rules) {
        if rules.remember_approval.is_zero() {
            return;
        }
        let until = Instant::now() + rules.remember_approval;
        self.lock().remembered.insert((session.to_string(), command.to_string()), until);
    }
}

impl Rules {
    /// What the rules say about moving `path` (absolute) `direction` (`upload`, `download`) on a
    /// session known as `targets`: the first `[[path]]` rule that matches, else the default.
    pub fn check_path(&self, targets: &[String], direction: &str, path: &str) -> Decision {
        let rule = self.paths.iter().find(|r| r.matches(direction, path, targets));
        Decision {
            action: rule.map_or(self.default, |r| r.action),
            rule: rule.map(|r| r.name.clone()),
            reason: rule.and_then(|r| r.reason.clone()),
            segment: format!("{direction} {path}"),
            unparsed: false,
        }
    }

    /// What the rules say about typing `text` into a session known as `targets`, at a shell's
    /// prompt or not. The strictest command decides.
    pub fn check(&self, targets: &[String], at_shell: bool, text: &str) -> Decision {
        let mut worst: Option<Decision> = None;
        for segment in parse::segments(text) {
            let rule = self.rules.iter().find(|r| r.matches(&segment.text, targets, at_shell));
            let mut action = rule.map_or(self.default, |r| r.action);
            if segment.unparsed {
                action = action.max(Action::Ask);
            }
            if worst.as_ref().is_none_or(|w| action > w.action) {
                worst = Some(Decision {
                    action,
                    rule: rule.map(|r| r.name.clone()),
                    reason: match (rule, segment.unparsed) {
                        (_, true) => Some("the text could not be split into commands for sure".into()),
                        (Some(r), false) => r.reason.clone(),
                        (None, false) => None,
                    },
                    segment: segment.text,
                    unparsed: segment.unparsed,
                });
            }
        }
        worst.unwrap_or(Decision {
            action: Action::Allow,
            rule: None,
            reason: None,
            segment: String::new(),
            unparsed: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let policy = Policy::load(path).unwrap();
        (dir, policy)
    }

    const LOCAL: &[String] = &[];

    fn check(p: &Policy, text: &str) -> Decision {
        p.rules().unwrap().check(LOCAL, true, text)
    }

    #[test]
    fn the_strictest_command_decides() {
        let (_dir, p) = policy(
            "include = [\"destructive\"]\n[[rule]]\naction = \"deny\"\nmatch = '^rm\\s+-rf\\s+/$'\nreason = \"no\"",
        );
        let d = check(&p, "echo hi; sudo reboot && rm -rf /");
        assert_eq!((d.action, d.rule.as_deref(), d.segment.as_str()), (Action::Deny, Some("rule 1"), "rm -rf /"));
        let d = check(&p, "echo hi\nsh -c 'reboot'");
        assert_eq!((d.action, d.segment.as_str()), (Action::Ask, "reboot"));
        assert_eq!(check(&p, "ls -l").action, Action::Allow);
        // Text that cannot be split is asked about at least.
        let d = check(&p, "echo 'unclosed");
        assert!(d.unparsed && d.action == Action::Ask, "{d:?}");
    }

    #[test]
    fn no_file_checks_nothing_and_a_bad_one_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = Policy::load(dir.path().join("none.toml")).unwrap();
        assert!(p.rules().is_none(), "no file, no rules");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "default = ").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Policy::load(bad.clone()).unwrap_err().contains("bad.toml"));
        std::fs::write(&bad, "default = \"deny\"").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(Policy::load(bad).unwrap_err().contains("writable"));
    }

    #[test]
    fn a_bad_edit_keeps_the_last_good_policy_and_says_so() {
        let (dir, p) = policy("default = \"deny\"");
        assert_eq!(check(&p, "ls").action, Action::Deny);
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "default = \"allow\"\n[[rule]]\naction = \"deny\"\nmatch = '('").unwrap();
        assert_eq!(check(&p, "ls").action, Action::Deny);
        assert!(p.summary(LOCAL).unwrap().problem.unwrap().contains("rule 1"));
        std::fs::write(&path, "default = \"allow\"\n# fixed").unwrap();
        assert_eq!(check(&p, "ls").action, Action::Allow);
        assert_eq!(p.summary(LOCAL).unwrap().problem, None);
    }
}
