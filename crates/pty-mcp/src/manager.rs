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
    /// The operator who created it over HTTP (see [`Caller`]); None over stdio.
    pub owner: Option<Arc<str>>,
    /// Where its files are, for an SSH session (set once it is open); see [`Entry::files`].
    pub remote_files: std::sync::OnceLock<Arc<transports::files::Access>>,
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

    /// Where its files are, for upload_file and download_file: an SSH host's, or this machine's
    /// for a local session; a serial line has none.
    pub fn files(&self) -> Option<Arc<transports::files::Access>> {
        match (self.remote_files.get(), self.kind) {
            (Some(access), _) => Some(access.clone()),
            (None, "local") => Some(Arc::new(transports::files::Access::Local)),
            _ => None,
        }
    }

    /// Lets it go: a persistent session is detached (its program goes on in ai-tmux), any other
    /// closed; a prepared secret is forgotten.
    fn let_go(&self) {
        self.drop_pending_secret();
        if !self.session.detach() {
            self.session.close();
        }
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
    }
}

/// Who a call comes from: over stdio the local user, who sees every session; over HTTP an
/// authenticated operator, who sees only the sessions they created, unless the server is
/// `--shared`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The operator a token named; None over stdio.
    pub operator: Option<Arc<str>>,
    /// Every operator sees every session (`serve --http --shared`).
    pub shared: bool,
}

impl Caller {
    /// Whether `entry` is this caller's to see and use.
    pub fn sees(&self, entry: &Entry) -> bool {
        self.sees_owned_by(entry.owner.as_deref())
    }

    /// Whether something `owner` created (None: the local user) is this caller's to use.
    pub fn sees_owned_by(&self, owner: Option<&str>) -> bool {
        self.shared || self.operator.is_none() || owner == self.operator.as_deref()
    }
}

/// The sessions one caller may use: every tool goes through this view, so another operator's
/// session is missing (`SESSION_NOT_FOUND`), never "forbidden".
pub struct Sessions<'a> {
    pub table: &'a SessionManager,
    pub caller: &'a Caller,
}

impl Sessions<'_> {
    /// See [`SessionManager::create`]: the session belongs to the caller.
    ///
    /// # Errors
    /// As [`SessionManager::create_with_id`].
    pub fn create(
        &self,
        kind: &'static str,
        target: String,
        enter: &'static [u8],
        open: impl FnOnce() -> Result<Session, ToolError>,
    ) -> Result<Arc<Entry>, ToolError> {
        self.create_with_id(kind, target, enter, None, open)
    }

    /// See [`SessionManager::create_with_id`]: the session belongs to the caller.
    ///
    /// # Errors
    /// As [`SessionManager::create_with_id`].
    pub fn create_with_id(
        &self,
        kind: &'static str,
        target: String,
        enter: &'static [u8],
        id: Option<String>,
        open: impl FnOnce() -> Result<Session, ToolError>,
    ) -> Result<Arc<Entry>, ToolError> {
        self.table.create_with_id(kind, target, enter, id, self.caller, open)
    }

    /// See [`SessionManager::check_room`].
    ///
    /// # Errors
    /// `SESSION_LIMIT_REACHED`.
    pub fn check_room(&self) -> Result<(), ToolError> {
        self.table.check_room(self.caller)
    }

    /// Finds one of the caller's sessions and marks it used.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id or another operator's session.
    pub fn get(&self, id: &str) -> Result<Arc<Entry>, ToolError> {
        let entry = self.table.peek(id).filter(|e| self.caller.sees(e)).ok_or_else(|| not_found(id))?;
        entry.touch();
        Ok(entry)
    }

    /// [`Sessions::get`], first reattaching a persistent session whose link dropped, so that
    /// the agent's next call simply works.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id or another operator's session.
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

    /// Removes one of the caller's sessions from the table; the caller closes it.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id or another operator's session.
    pub fn remove(&self, id: &str) -> Result<Arc<Entry>, ToolError> {
        self.table.remove_if(id, |e| self.caller.sees(e))
    }

    /// The caller's sessions, oldest first.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        let mut all = self.table.list();
        all.retain(|e| self.caller.sees(e));
        all
    }
}

/// All sessions of one server.
#[derive(Default)]
pub struct SessionManager {
    sessions: Mutex<HashMap<String, Arc<Entry>>>,
    /// The most sessions one operator may hold over HTTP (`--max-sessions-per-operator`).
    per_operator: Option<usize>,
}

impl SessionManager {
    /// A table where each operator over HTTP may hold at most `per_operator` sessions.
    pub fn with_operator_limit(per_operator: Option<usize>) -> SessionManager {
        SessionManager { per_operator, ..SessionManager::default() }
    }

    /// Registers a session made by `open` for `caller`, which runs only when there is room,
    /// under a given id (a persistent session keeps its daemon's) or a new one.
    ///
    /// # Errors
    /// `SESSION_LIMIT_REACHED` when [`MAX_SESSIONS`] are open, or the caller's share of them;
    /// `INVALID_PARAMS` when the id is taken; whatever `open` returns.
    fn create_with_id(
        &self,
        kind: &'static str,
        target: String,
        enter: &'static [u8],
        id: Option<String>,
        caller: &Caller,
        open: impl FnOnce() -> Result<Session, ToolError>,
    ) -> Result<Arc<Entry>, ToolError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        self.ensure_room(&mut sessions, caller)?;
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
            owner: caller.operator.clone(),
            remote_files: std::sync::OnceLock::new(),
        });
        sessions.insert(id, entry.clone());
        Ok(entry)
    }

    /// Refuses early when the table is full, before a slow connection is made for nothing.
    ///
    /// # Errors
    /// `SESSION_LIMIT_REACHED`.
    fn check_room(&self, caller: &Caller) -> Result<(), ToolError> {
        self.ensure_room(&mut self.sessions.lock().unwrap_or_else(|e| e.into_inner()), caller)
    }

    /// Finds a session without marking it used (an operator looking is not the agent's use).
    pub fn peek(&self, id: &str) -> Option<Arc<Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(id.trim()).cloned()
    }

    /// Removes a session from the table if `mine` says so; the caller closes it.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND` for an unknown id, or one that is not `mine`.
    fn remove_if(&self, id: &str, mine: impl FnOnce(&Entry) -> bool) -> Result<Arc<Entry>, ToolError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get(id.trim()) {
            Some(entry) if mine(entry) => Ok(sessions.remove(id.trim()).expect("present")),
            _ => Err(not_found(id)),
        }
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        forget_old_ended(&mut sessions);
        let mut all: Vec<_> = sessions.values().cloned().collect();
        all.sort_by_key(|e| e.created_at);
        all
    }

    /// Lets every session go at shutdown: persistent ones are detached (their programs keep
    /// running in ai-tmux), the others closed.
    pub fn close_all(&self) {
        let drained: Vec<_> = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        for (_, entry) in drained {
            entry.let_go();
        }
    }

    /// Forgets ended sessions nobody looked at lately, then refuses when the table is still
    /// full, or the caller (an operator over HTTP) holds their share of it.
    fn ensure_room(&self, sessions: &mut HashMap<String, Arc<Entry>>, caller: &Caller) -> Result<(), ToolError> {
        forget_old_ended(sessions);
        let full = |held: Vec<&Arc<Entry>>, limit: usize, whose: String| {
            if held.len() < limit {
                return Ok(());
            }
            let ended = held.iter().filter(|e| !e.session.is_alive()).count();
            Err(ToolError {
                code: Code::SessionLimitReached,
                message: format!(
                    "{limit} sessions are open{whose} ({ended} of them ended); close sessions you no longer need"
                ),
                retryable: true,
            })
        };
        full(sessions.values().collect(), MAX_SESSIONS, String::new())?;
        match (&caller.operator, self.per_operator) {
            (Some(operator), Some(limit)) => {
                let held = sessions.values().filter(|e| e.owner.as_ref() == Some(operator)).collect();
                full(held, limit, format!(" for operator {operator}"))
            }
            _ => Ok(()),
        }
    }
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

/// `serve --http --idle-close`: an operator's session that no call used and no viewer watched
/// for `limit` ends (a persistent one is detached: its program goes on in ai-tmux). Sleeps until
/// the soonest session could reach the limit, then looks again. Sessions of stdio servers have
/// no owner and are never closed this way.
pub async fn close_idle(manager: Arc<SessionManager>, limit: Duration) {
    loop {
        let now = SystemTime::now();
        let mut next = limit;
        let mut idle = Vec::new();
        for entry in manager.list().into_iter().filter(|e| e.owner.is_some()) {
            if entry.viewers.attached() > 0 {
                entry.touch();
                continue;
            }
            let quiet = now.duration_since(entry.last_used()).unwrap_or_default();
            match limit.checked_sub(quiet) {
                Some(left) if !left.is_zero() => next = next.min(left),
                _ => idle.push(entry),
            }
        }
        for entry in idle {
            let owner = entry.owner.clone();
            let Ok(entry) = manager.remove_if(&entry.id, |e| std::ptr::eq(e, &*entry)) else { continue };
            tracing::info!("session {} of {owner:?} unused for {limit:?}: ended", entry.id);
            entry.let_go();
        }
        tokio::time::sleep(next).await;
    }
}
