//! The session table: ids, limits and lifecycle. Tools find sessions here and nowhere else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use engine::Session;

use crate::error::{Code, ToolError};

/// Sessions one server may hold at once (as the Go pty-mcp).
pub const MAX_SESSIONS: usize = 50;
/// An ended session nobody has looked at for this long is forgotten.
const ENDED_RETENTION: Duration = Duration::from_secs(30 * 60);

/// A session and what the agent knows it by.
pub struct Entry {
    /// 16 hex characters.
    pub id: String,
    /// `local` or `serial` (later `ssh`, `remote`).
    pub kind: &'static str,
    /// What runs there: the command line of a local session, `<device>@<baud>` of a serial one.
    pub target: String,
    /// What Enter sends (`\r`; a serial line may want `\n` or `\r\n`).
    pub enter: &'static [u8],
    /// The terminal.
    pub session: Session,
    /// When it was created.
    pub created_at: SystemTime,
    last_used: Mutex<SystemTime>,
    /// The task holding a prepared secret until a password prompt shows.
    pub pending_secret: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Operators watching it (`pty-mcp attach`).
    pub viewers: crate::control::Viewers,
    /// The last command line the agent typed, and when.
    last_command: Mutex<Option<(String, SystemTime)>>,
    /// The line being typed, for the policy (input without Enter is checked when the line ends).
    pub line: Mutex<crate::policy::line::Line>,
    /// The name the agent gave the host (an ssh_config alias), for the policy's `targets`.
    alias: Mutex<Option<String>>,
}

impl Entry {
    /// When a tool last used it.
    pub fn last_used(&self) -> SystemTime {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a prepared secret waits for a password prompt.
    pub fn awaiting_secret(&self) -> bool {
        self.pending_secret.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Forgets a prepared secret (closing the session, or a new one replacing it).
    pub fn drop_pending_secret(&self) {
        if let Some(task) = self.pending_secret.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }

    /// The last command line the agent typed, and when.
    pub fn last_command(&self) -> Option<(String, SystemTime)> {
        self.last_command.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notes a command line the agent typed.
    pub fn set_last_command(&self, line: &str) {
        if let Some(first) = line.lines().map(str::trim).find(|l| !l.is_empty()) {
            *self.last_command.lock().unwrap_or_else(|e| e.into_inner()) = Some((first.to_string(), SystemTime::now()));
        }
    }

    /// Notes the name the agent gave the host.
    pub fn set_alias(&self, alias: &str) {
        *self.alias.lock().unwrap_or_else(|e| e.into_inner()) = Some(alias.to_string());
    }

    /// The names its target goes by, for the policy.
    pub fn policy_names(&self) -> Vec<String> {
        let alias = self.alias.lock().unwrap_or_else(|e| e.into_inner()).clone();
        crate::policy::gate::names(self.kind, &self.target, alias.as_deref())
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
    }
}

/// All sessions of one server.
pub struct SessionManager {
    sessions: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Default for SessionManager {
    fn default() -> Self {
        SessionManager { sessions: Mutex::new(HashMap::new()) }
    }
}

impl SessionManager {
    /// Registers a session made by `open`, which runs only when there is room.
    ///
    /// # Errors
    /// `SESSION_LIMIT_REACHED` when [`MAX_SESSIONS`] are open; whatever `open` returns.
    pub fn create(
        &self,
        kind: &'static str,
        target: String,
        enter: &'static [u8],
        open: impl FnOnce() -> Result<Session, ToolError>,
    ) -> Result<Arc<Entry>, ToolError> {
        self.create_with_id(kind, target, enter, None, open)
    }

    /// [`SessionManager::create`], under a given id (a persistent session keeps its daemon's).
    ///
    /// # Errors
    /// As `create`; `INVALID_PARAMS` when the id is taken.
    pub fn create_with_id(
        &self,
        kind: &'static str,
        target: String,
        enter: &'static [u8],
        id: Option<String>,
        open: impl FnOnce() -> Result<Session, ToolError>,
    ) -> Result<Arc<Entry>, ToolError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        ensure_room(&mut sessions)?;
        if let Some(id) = &id
            && sessions.contains_key(id)
        {
            return Err(ToolError::invalid(format!("session {id} is already open here")));
        }
        let session = open()?;
        let id = id.unwrap_or_else(|| {
            loop {
                let id = format!("{:016x}", rand::random::<u64>());
                if !sessions.contains_key(&id) {
                    break id;
                }
            }
        });
        let now = SystemTime::now();
        let entry = Arc::new(Entry {
            id: id.clone(),
            kind,
            target,
            enter,
            session,
            created_at: now,
            last_used: Mutex::new(now),
            pending_secret: Mutex::new(None),
            viewers: crate::control::Viewers::default(),
            last_command: Mutex::new(None),
            line: Mutex::default(),
            alias: Mutex::new(None),
        });
        sessions.insert(id, entry.clone());
        Ok(entry)
    }

    /// Refuses early when the table is full, before a slow connection is made for nothing.
    ///
    /// # Errors
    /// `SESSION_LIMIT_REACHED`.
    pub fn check_room(&self) -> Result<(), ToolError> {
        ensure_room(&mut self.sessions.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Finds a session and marks it used.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id.
    pub fn get(&self, id: &str) -> Result<Arc<Entry>, ToolError> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let entry = sessions.get(id.trim()).cloned().ok_or_else(|| not_found(id))?;
        entry.touch();
        Ok(entry)
    }

    /// Finds a session without marking it used (an operator looking is not the agent's use).
    pub fn peek(&self, id: &str) -> Option<Arc<Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(id.trim()).cloned()
    }

    /// Removes a session from the table; the caller closes it.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id.
    pub fn remove(&self, id: &str) -> Result<Arc<Entry>, ToolError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(id.trim()).ok_or_else(|| not_found(id))
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        forget_old_ended(&mut sessions);
        let mut all: Vec<_> = sessions.values().cloned().collect();
        all.sort_by_key(|e| e.created_at);
        all
    }

    /// Finds a session, first reattaching it if it is a persistent one whose link dropped, so
    /// that the agent's next call simply works.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id.
    pub async fn get_live(&self, id: &str) -> Result<Arc<Entry>, ToolError> {
        let entry = self.get(id)?;
        if entry.session.link_problem().is_some()
            && let Err(e) = entry.session.reattach().await
        {
            // Not a persistent session (a serial line waits for its device), or the daemon is
            // out of reach for now: the call goes on and reports the session's state.
            tracing::debug!("session {id} not reattached: {e}");
        }
        Ok(entry)
    }

    /// Lets every session go at shutdown: persistent ones are detached (their programs keep
    /// running in ai-tmux), the others closed.
    pub fn close_all(&self) {
        let drained: Vec<_> = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        for (_, entry) in drained {
            entry.drop_pending_secret();
            if !entry.session.detach() {
                entry.session.close();
            }
        }
    }
}

/// Forgets ended sessions nobody looked at lately, then refuses when the table is still full.
fn ensure_room(sessions: &mut HashMap<String, Arc<Entry>>) -> Result<(), ToolError> {
    forget_old_ended(sessions);
    if sessions.len() < MAX_SESSIONS {
        return Ok(());
    }
    let ended = sessions.values().filter(|e| !e.session.is_alive()).count();
    Err(ToolError {
        code: Code::SessionLimitReached,
        message: format!("{MAX_SESSIONS} sessions are open ({ended} of them ended); close sessions you no longer need"),
        retryable: true,
    })
}

fn not_found(id: &str) -> ToolError {
    ToolError::new(
        Code::SessionNotFound,
        format!("no session with id {:?}; list_sessions shows the open ones", id.chars().take(64).collect::<String>()),
    )
}

/// Live sessions are never reaped for idleness (a long job must not be killed because the agent
/// was quiet); ended ones are forgotten once nobody has looked at them for a while. A forgotten
/// persistent session is detached, not closed: its daemon keeps it for other readers.
fn forget_old_ended(sessions: &mut HashMap<String, Arc<Entry>>) {
    let now = SystemTime::now();
    sessions.retain(|_, e| {
        let keep = e.session.is_alive() || now.duration_since(e.last_used()).unwrap_or_default() < ENDED_RETENTION;
        if !keep {
            e.session.detach();
        }
        keep
    });
}
