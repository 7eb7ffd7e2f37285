//! The MCP face of pty-mcp: tool declarations, and the wrapper every call goes through
//! (cancellation, progress on long waits, result shaping). The work is in `tools/`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::handler::server::{
    tool::{ToolCallContext, ToolRouter},
    wrapper::Parameters,
};
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::Audit;
use crate::error::{Code, ToolError};
use crate::manager::{Caller, SessionManager, Sessions};
use crate::operator::OperatorPrompt;
use crate::params::*;
use crate::policy::gate::{self, Gate, Place};
use crate::policy::line::{Ended, Line};
use crate::tools::persistent;
use crate::tools::secrets;
use crate::tools::serial;
use crate::tools::ssh;
use crate::tools::{self, Settings};

pub mod http;
pub mod oauth;

/// How often a long wait reports progress to a client that asked for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

const INSTRUCTIONS: &str = "pty-mcp gives you real interactive terminals: local shells and REPLs, SSH \
hosts, serial consoles, and persistent sessions that outlive you (ai-tmux). Start one with a create_* tool, \
type with send_input, press keys with send_control, read with read_output, close it when done.
- Completion: in bash, zsh and fish, send_input returns the moment the command ends, with exactly its \
output, exit_code, duration_ms and cwd (completion \"shell\"). Elsewhere it returns when the program is back \
at a recognised prompt (\"heuristic\"; the echo of your line is left out and the prompt is in `prompt`), or \
was seen waiting for input after settle_ms of quiet. is_complete:false means it is still working \
(completion \"timeout\"), or went quiet where nothing shows whether it waits (\"quiet\"): read on with \
read_output.
- Cursors are absolute byte offsets: reads never lose or repeat output; read_output since_cursor re-reads.
- Files: upload_file and download_file move them over the session's own connection (SFTP for SSH), not here-docs or base64 pastes.
- state: at_prompt, password_prompt (use send_secret; you never see secrets), confirmation, pager, \
full_screen (read_output screen:true), running, exited, disconnected.
- Full reference: docs/tools.md in the pty-mcp repository.";

/// The MCP server: a session table and the tools over it.
#[derive(Clone)]
pub struct PtyMcp {
    manager: Arc<SessionManager>,
    audit: Audit,
    operator: Arc<OperatorPrompt>,
    /// The policy: what may be typed where.
    gate: Gate,
    settings: Settings,
    /// Whose calls these are (see [`PtyMcp::for_caller`]).
    caller: Caller,
    tool_router: Arc<ToolRouter<PtyMcp>>,
    /// The tool list as clients get it: every schema made lean once (see `schema.rs`).
    tools: Arc<Vec<Tool>>,
}

impl PtyMcp {
    /// A server over `manager`.
    pub fn new(
        manager: Arc<SessionManager>,
        operator: Arc<OperatorPrompt>,
        audit: Audit,
        gate: Gate,
        settings: Settings,
    ) -> PtyMcp {
        let tool_router = Self::tool_router();
        let tools = Arc::new(lean_tools(&tool_router));
        let tool_router = Arc::new(tool_router);
        PtyMcp { manager, audit, operator, gate, settings, caller: Caller::default(), tool_router, tools }
    }

    /// This server acting for `caller`: the sessions it sees, the user its audit records and
    /// policy decisions name.
    fn for_caller(&self, caller: Caller) -> PtyMcp {
        let audit = self.audit.by(caller.operator.clone());
        let gate = Gate { audit: audit.clone(), ..self.gate.clone() };
        PtyMcp { audit, gate, caller, ..self.clone() }
    }

    /// The sessions this caller may use.
    fn sessions(&self) -> Sessions<'_> {
        Sessions { table: &self.manager, caller: &self.caller }
    }

    /// The policy's check of `bytes` about to be typed into session `id`: the line they end
    /// (with what earlier calls typed of it) must pass; then the line is followed on. Keys for a
    /// full-screen program (the alternate screen: an editor, a pager) are not command lines.
    async fn check_typing(&self, id: &str, bytes: &[u8], ctx: &RequestContext<RoleServer>) -> Result<(), ToolError> {
        let Some(rules) = self.gate.policy.rules() else { return Ok(()) };
        let Ok(entry) = self.sessions().get(id) else { return Ok(()) }; // the tool reports the bad id
        if entry.session.modes().alt_screen {
            return Ok(());
        }
        let (line, ended) = line_ended(&entry, bytes);
        if let Some(ended) = ended {
            let place = self.place(&entry);
            self.gate.pass(&rules, &place, &ended.text, ended.uncertain, Some(&ctx.peer)).await?;
        }
        *entry.line.lock().unwrap_or_else(|e| e.into_inner()) = line;
        Ok(())
    }

    /// Where input to `entry` goes, for the policy.
    fn place<'a>(&self, entry: &'a crate::manager::Entry) -> Place<'a> {
        let at_shell = entry.session.state().0 == engine::State::AtPrompt;
        Place { session_id: &entry.id, kind: entry.kind, target: &entry.target, names: entry.policy_names(), at_shell }
    }

    /// The policy's check of the command a `create_*` call starts, before anything runs.
    async fn check_command(
        &self,
        kind: &str,
        target: &str,
        command: Option<&str>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<(), ToolError> {
        // A bare shell runs nothing by itself: what is typed into it is checked as it is typed.
        let Some(command) = command.filter(|c| !c.trim().is_empty() && !crate::policy::parse::is_interactive_shell(c))
        else {
            return Ok(());
        };
        let names = gate::names(kind, target, Some(target));
        let place = Place { session_id: "", kind, target, names, at_shell: true };
        let Some(rules) = self.gate.policy.rules() else { return Ok(()) };
        self.gate.pass(&rules, &place, command, false, Some(&ctx.peer)).await
    }

    /// Runs a planned file transfer: the policy on its path, the audit record before (strict
    /// mode refuses what cannot be recorded) and after (size and digest, or the error).
    async fn transfer(
        &self,
        plan: tools::files::Plan,
        meter: &tools::files::Meter,
        stop: tokio_util::sync::CancellationToken,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<tools::files::Outcome, ToolError> {
        if let Some(rules) = self.gate.policy.rules() {
            let place = self.place(&plan.entry);
            self.gate.pass_transfer(&rules, &place, plan.direction.as_str(), &plan.path, Some(&ctx.peer)).await?;
        }
        let mut details = tools::files::describe(&plan);
        self.audit.before_event(&self.sessions(), &plan.entry.id, "file_transfer", details.clone()).await?;
        let (entry, what) = (plan.entry.clone(), format!("{} of {}", plan.direction.as_str(), plan.path));
        let outcome = tools::files::run(plan, meter, stop).await;
        match &outcome {
            Ok(done) => {
                let (size, sha256) = done.digest();
                tracing::debug!("{what} on {}: {size} bytes", entry.target);
                (details["size"], details["sha256"], details["outcome"]) = (json!(size), json!(sha256), json!("done"));
            }
            Err(e) => {
                tracing::info!("{what} on {} stopped: {}", entry.target, e.message);
                (details["outcome"], details["error"]) = (json!("failed"), json!(e.message));
            }
        }
        self.audit.after_event(&entry, "file_transferred", details);
        outcome
    }

    /// A session as get_session_state and list_sessions describe it, with its policy.
    fn describe(&self, entry: &crate::manager::Entry, as_list: bool) -> Value {
        let mut info = json!(tools::session_info(entry, as_list));
        if let Some(policy) = self.gate.policy.summary(&entry.policy_names()) {
            info["policy"] = json!(policy);
        }
        info
    }

    /// Records a session this call opened (its id, and later its end).
    fn audit_created(&self, created: &tools::Created) {
        if created.is_new
            && let Ok(entry) = self.sessions().get(&created.session_id)
        {
            self.audit.created(entry);
        }
    }
}

/// The session's line as it would be after typing `bytes`, and the lines they end.
fn line_ended(entry: &crate::manager::Entry, bytes: &[u8]) -> (Line, Option<Ended>) {
    let mut line = entry.line.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let ended = line.feed(bytes);
    (line, ended)
}

/// The router's tools with lean schemas. Parameters shared by several tools are described
/// once: the session log options on create_local_session, the connection parameters on
/// create_ssh_session, the transfer options on upload_file.
fn lean_tools(router: &ToolRouter<PtyMcp>) -> Vec<Tool> {
    let described_elsewhere = |tool: &str, param: &str| match tool {
        "create_ssh_session" | "create_serial_session" => param.starts_with("log_"),
        "list_remote_sessions" => param != "status",
        "download_file" => matches!(param, "encoding" | "mode" | "timeout"),
        _ => false,
    };
    let mut tools = router.list_all();
    for tool in &mut tools {
        let mut schema = crate::schema::lean(&tool.input_schema);
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            for (name, prop) in props.iter_mut() {
                if described_elsewhere(&tool.name, name)
                    && let Value::Object(p) = prop
                {
                    p.remove("description");
                }
            }
        }
        tool.input_schema = Arc::new(schema);
    }
    tools
}

/// Turns a tool's outcome into a result: compact JSON as text, the same value as structured
/// content (wrapped in an object when it is not one).
fn to_result<T: Serialize>(outcome: Result<T, ToolError>) -> CallToolResult {
    let (value, is_error) = match outcome {
        Ok(v) => (serde_json::to_value(v).unwrap_or_else(|e| json!({"error": e.to_string()})), false),
        Err(e) => (json!(e), true),
    };
    let text = serde_json::to_string(&value).unwrap_or_default();
    let structured = if value.is_object() { value } else { json!({ "result": value }) };
    let mut result =
        if is_error { CallToolResult::structured_error(structured) } else { CallToolResult::structured(structured) };
    result.content = vec![ContentBlock::text(text)];
    result
}

/// Adds `warning` to a successful result's `warnings` (its text copy too).
fn add_warning(result: &mut CallToolResult, warning: String) {
    let Some(Value::Object(fields)) = result.structured_content.as_mut() else { return };
    if fields.contains_key("result") {
        return;
    }
    match fields.entry("warnings").or_insert_with(|| json!([])) {
        Value::Array(list) => list.push(Value::String(warning)),
        _ => return,
    }
    result.content = vec![ContentBlock::text(Value::Object(fields.clone()).to_string())];
}

/// What a long call reports as progress.
enum Progress {
    /// A wait: seconds so far, out of the wait's length when known.
    Wait(Option<Duration>),
    /// A transfer: bytes so far, out of its size.
    Bytes(Arc<tools::files::Meter>),
}

impl Progress {
    fn param(&self, token: rmcp::model::ProgressToken, elapsed: f64) -> ProgressNotificationParam {
        match self {
            Progress::Wait(total) => {
                let param = ProgressNotificationParam::new(token, elapsed)
                    .with_message(format!("waiting for output, {elapsed:.0}s so far"));
                match total {
                    Some(total) => param.with_total(total.as_secs_f64()),
                    None => param,
                }
            }
            Progress::Bytes(meter) => {
                use std::sync::atomic::Ordering::Relaxed;
                let (done, total) = (meter.done.load(Relaxed), meter.total.load(Relaxed));
                ProgressNotificationParam::new(token, done as f64)
                    .with_total(total as f64)
                    .with_message(format!("{done} of {total} bytes, {elapsed:.0}s so far"))
            }
        }
    }
}

/// Runs a tool body: stops at `notifications/cancelled`, and sends progress every few seconds
/// while it runs when the client gave a progress token.
async fn run<T: Serialize>(
    ctx: RequestContext<RoleServer>,
    progress: Progress,
    body: impl Future<Output = Result<T, ToolError>>,
) -> CallToolResult {
    let token = ctx.meta.get_progress_token();
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
    let mut body = std::pin::pin!(body);
    loop {
        tokio::select! {
            outcome = &mut body => return to_result(outcome),
            _ = ctx.ct.cancelled() => {
                // The response is dropped by rmcp; what matters is that the wait stops here.
                return to_result::<Value>(Err(ToolError::new(Code::InternalError, "cancelled by the client")));
            }
            _ = ticker.tick(), if token.is_some() => {
                let param = progress.param(token.clone().expect("checked"), started.elapsed().as_secs_f64());
                let _ = ctx.peer.notify_progress(param).await;
            }
        }
    }
}

/// A transfer stops itself when cancelled, so that it removes its temporary file before the
/// call ends: the body gets the client's cancellation, the wrapper one that never fires.
fn own_cancellation(
    ctx: &RequestContext<RoleServer>,
) -> (RequestContext<RoleServer>, tokio_util::sync::CancellationToken) {
    let mut outer = ctx.clone();
    outer.ct = tokio_util::sync::CancellationToken::new();
    (outer, ctx.ct.clone())
}

/// The length of a wait as the tool will clamp it, for the progress total.
fn secs(s: Option<i64>, default: i64) -> Duration {
    Duration::from_secs(s.unwrap_or(default).clamp(0, tools::MAX_WAIT_SECS) as u64)
}

#[tool_router]
impl PtyMcp {
    #[tool(
        description = "Start a program on a local terminal (default bash; any command line).",
        annotations(
            title = "Create local session",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_local_session(
        &self,
        Parameters(p): Parameters<CreateLocalParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let target = p.command.clone().unwrap_or_else(|| "/bin/bash".into());
        run(ctx.clone(), Progress::Wait(None), async {
            let line = std::iter::once(target.clone()).chain(p.args.iter().flatten().cloned()).collect::<Vec<_>>();
            self.check_command("local", "local", Some(&line.join(" ")), &ctx).await?;
            self.audit.before_create("local", &target).await?;
            let created = tools::create_local_session(&self.sessions(), self.settings, p).await?;
            self.audit_created(&created);
            Ok(created)
        })
        .await
    }

    #[tool(
        description = "Type input and Enter; wait until it completes (or for wait_for). Returns output, exit_code, state.",
        annotations(title = "Send input", read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn send_input(
        &self,
        Parameters(p): Parameters<SendInputParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let total = p.wait_for.as_ref().map(|_| secs(p.wait_for_timeout, tools::DEFAULT_WAIT_FOR_SECS));
        run(ctx.clone(), Progress::Wait(total), async {
            let enter = if p.raw.unwrap_or(false) { "" } else { "\r" };
            self.check_typing(&p.session_id, format!("{}{enter}", p.input).as_bytes(), &ctx).await?;
            let cmd =
                self.audit.before_input(&self.sessions(), &p.session_id, &p.input, p.raw.unwrap_or(false)).await?;
            let reply = tools::send_input(&self.sessions(), p).await?;
            self.audit.after_input(cmd, reply.output());
            Ok(reply)
        })
        .await
    }

    #[tool(
        description = "Read output: settle (default), re-read since_cursor, wait_for a regex, or screen:true (top, vim).",
        annotations(title = "Read output", read_only_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn read_output(
        &self,
        Parameters(p): Parameters<ReadOutputParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let total = Some(secs(p.timeout, tools::DEFAULT_READ_SECS));
        run(ctx, Progress::Wait(total), tools::read_output(&self.sessions(), p)).await
    }

    #[tool(
        description = "Press keys. Returns the output, and the screen of a full-screen program.",
        annotations(title = "Send keys", read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn send_control(
        &self,
        Parameters(p): Parameters<SendControlParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx.clone(), Progress::Wait(None), async {
            if let Ok(entry) = self.sessions().get(&p.session_id) {
                let app_cursor = entry.session.modes().app_cursor;
                let bytes: Vec<u8> = tools::parse_keys(&p.key)?.iter().flat_map(|k| k.bytes(app_cursor)).collect();
                self.check_typing(&p.session_id, &bytes, &ctx).await?;
            }
            let keys = serde_json::to_value(&p.key).unwrap_or_default();
            self.audit.before_event(&self.sessions(), &p.session_id, "send_control", json!({"keys": keys})).await?;
            tools::send_control(&self.sessions(), p).await
        })
        .await
    }

    #[tool(
        description = "Open a terminal on an SSH host (ssh_config applies; passwords come from the operator, never you).",
        annotations(
            title = "Create SSH session",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_ssh_session(
        &self,
        Parameters(p): Parameters<CreateSshParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let target = p.ssh.host.clone().unwrap_or_default();
        run(ctx.clone(), Progress::Wait(None), async {
            self.check_command("ssh", &target, p.command.as_deref(), &ctx).await?;
            self.audit.before_create("ssh", &target).await?;
            let created = ssh::create_ssh_session(&self.sessions(), &self.operator, self.settings, p).await?;
            if let Ok(entry) = self.sessions().get(&created.session_id) {
                entry.set_alias(&target);
            }
            self.audit_created(&created);
            Ok(created)
        })
        .await
    }

    #[tool(
        description = "Open a serial console (router, switch, board).",
        annotations(
            title = "Create serial session",
            read_only_hint = false,
            destructive_hint = false,
            open_world_hint = true
        )
    )]
    async fn create_serial_session(
        &self,
        Parameters(p): Parameters<CreateSerialParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let target = p.device.clone().unwrap_or_default();
        run(ctx, Progress::Wait(None), async {
            self.audit.before_create("serial", &target).await?;
            let created = serial::create_serial_session(&self.sessions(), self.settings, p).await?;
            self.audit_created(&created);
            Ok(created)
        })
        .await
    }

    #[tool(
        description = "Send a serial BREAK.",
        annotations(title = "Send BREAK", read_only_hint = false, destructive_hint = true, open_world_hint = true)
    )]
    async fn send_break(
        &self,
        Parameters(p): Parameters<SendBreakParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, Progress::Wait(None), async {
            self.audit
                .before_event(&self.sessions(), &p.session_id, "send_break", json!({"duration_ms": p.duration_ms}))
                .await?;
            serial::send_break(&self.sessions(), p).await
        })
        .await
    }

    #[tool(
        description = "List serial ports, with USB ids and by-id names.",
        annotations(title = "List serial ports", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_serial_ports(&self) -> CallToolResult {
        to_result(Ok::<_, ToolError>(serial::list_serial_ports()))
    }

    #[tool(
        description = "Have the operator enter a secret at the session's password prompt; you never see it.",
        annotations(title = "Send secret", read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn send_secret(
        &self,
        Parameters(p): Parameters<SendSecretParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, Progress::Wait(None), async {
            // That a secret is sent, and nothing of it.
            self.audit.before_event(&self.sessions(), &p.session_id, "send_secret", json!({})).await?;
            secrets::send_secret(&self.sessions(), &self.operator, p).await
        })
        .await
    }

    #[tool(
        description = "Ask the operator for a secret now; it is typed at the next password prompt.",
        annotations(
            title = "Prepare secret",
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = false
        )
    )]
    async fn prepare_secret(
        &self,
        Parameters(p): Parameters<PrepareSecretParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, Progress::Wait(None), async {
            self.audit.before_event(&self.sessions(), &p.session_id, "prepare_secret", json!({})).await?;
            secrets::prepare_secret(&self.sessions(), &self.operator, p).await
        })
        .await
    }

    #[tool(
        description = "Resize a session's terminal.",
        annotations(
            title = "Resize terminal",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn resize_session(&self, Parameters(p): Parameters<ResizeParams>) -> CallToolResult {
        let details = json!({"rows": p.rows, "cols": p.cols});
        if let Err(e) = self.audit.before_event(&self.sessions(), &p.session_id, "resize_session", details).await {
            return to_result::<Value>(Err(e));
        }
        to_result(tools::resize_session(&self.sessions(), p))
    }

    #[tool(
        description = "A session's state, exit codes, cwd, unread bytes.",
        annotations(title = "Session state", read_only_hint = true, open_world_hint = false)
    )]
    async fn get_session_state(&self, Parameters(p): Parameters<SessionParams>) -> CallToolResult {
        to_result(self.sessions().get(&p.session_id).map(|e| self.describe(&e, false)))
    }

    #[tool(
        description = "List open sessions.",
        annotations(title = "List sessions", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_sessions(&self) -> CallToolResult {
        let list: Vec<_> = self.sessions().list().iter().map(|e| self.describe(e, true)).collect();
        to_result(Ok::<_, ToolError>(list))
    }

    #[tool(
        description = "Would the policy allow, ask or deny this input, and why? Types nothing.",
        annotations(title = "Check policy", read_only_hint = true, open_world_hint = false)
    )]
    async fn check_policy(&self, Parameters(p): Parameters<CheckPolicyParams>) -> CallToolResult {
        to_result(self.sessions().get(&p.session_id).map(|entry| {
            let Some(rules) = self.gate.policy.rules() else { return json!({"action": "allow", "policy": null}) };
            // The input with Enter always ends a line (begun, perhaps, by earlier raw input).
            let (_, ended) = line_ended(&entry, format!("{}\r", p.input).as_bytes());
            let (text, uncertain) = ended.map_or((String::new(), false), |e| (e.text, e.uncertain));
            let d = Gate::decide(&rules, &self.place(&entry), &text, uncertain);
            json!({
                "action": d.action.as_str(),
                "rule": d.rule,
                "reason": d.reason,
                "command": d.segment,
                "policy": self.gate.policy.summary(&entry.policy_names()),
            })
        }))
    }

    #[tool(
        description = "End a session and everything it started.",
        annotations(
            title = "Close session",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn close_session(&self, Parameters(p): Parameters<SessionParams>) -> CallToolResult {
        if let Err(e) = self.audit.before_event(&self.sessions(), &p.session_id, "close_session", json!({})).await {
            return to_result::<Value>(Err(e));
        }
        to_result(tools::close_session(&self.sessions(), &p.session_id, false).await)
    }

    #[tool(
        description = "Sessions an ai-tmux keeps (on host, or on this machine).",
        annotations(title = "List persistent sessions", read_only_hint = true, open_world_hint = true)
    )]
    async fn list_remote_sessions(
        &self,
        Parameters(p): Parameters<ListRemoteParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, Progress::Wait(None), async {
            let dial = match p.ssh.host.as_deref().filter(|h| !h.trim().is_empty()) {
                None => persistent::local_dial()?,
                Some(_) => persistent::ssh_dial(Arc::new(ssh::options(&self.operator, p.ssh).await?), None),
            };
            persistent::list(&dial, p.status.as_deref(), &self.caller).await
        })
        .await
    }

    #[tool(
        description = "Write a file on the session's host (SFTP on its SSH connection; local: here), safely.",
        annotations(title = "Upload file", read_only_hint = false, destructive_hint = true, open_world_hint = true)
    )]
    async fn upload_file(
        &self,
        Parameters(p): Parameters<UploadParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let meter = Arc::new(tools::files::Meter::default());
        let (outer, stop) = own_cancellation(&ctx);
        run(outer, Progress::Bytes(meter.clone()), async {
            let plan = tools::files::plan_upload(&self.sessions(), &self.settings.files, p).await?;
            self.transfer(plan, &meter, stop, &ctx).await
        })
        .await
    }

    #[tool(
        description = "Read a file from the session's host into the reply, or to local_path.",
        annotations(title = "Download file", read_only_hint = false, destructive_hint = false, open_world_hint = true)
    )]
    async fn download_file(
        &self,
        Parameters(p): Parameters<DownloadParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let meter = Arc::new(tools::files::Meter::default());
        let (outer, stop) = own_cancellation(&ctx);
        run(outer, Progress::Bytes(meter.clone()), async {
            let plan = tools::files::plan_download(&self.sessions(), &self.settings.files, p).await?;
            self.transfer(plan, &meter, stop, &ctx).await
        })
        .await
    }

    #[tool(
        description = "Leave a persistent session running in ai-tmux.",
        annotations(
            title = "Detach session",
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = false
        )
    )]
    async fn detach_session(&self, Parameters(p): Parameters<SessionParams>) -> CallToolResult {
        if let Err(e) = self.audit.before_event(&self.sessions(), &p.session_id, "detach_session", json!({})).await {
            return to_result::<Value>(Err(e));
        }
        to_result(tools::close_session(&self.sessions(), &p.session_id, true).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PtyMcp {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Over HTTP, the operator the request's token named (see `server::http`).
        let caller = crate::server::http::caller(&context);
        let scoped;
        let this = match caller {
            Some(caller) if caller != self.caller => {
                scoped = self.for_caller(caller);
                &scoped
            }
            _ => self,
        };
        let session = request.arguments.as_ref().and_then(|a| a.get("session_id")).and_then(Value::as_str);
        let entry = session.and_then(|id| this.sessions().get(id).ok());
        let call = ToolCallContext::new(this, request, context);
        let mut response = this.tool_router.call(call).await?;
        // rmcp reports arguments that do not deserialize as plain text; agents get our shape.
        if let CallToolResponse::Complete(result) = &response
            && result.is_error == Some(true)
            && result.structured_content.is_none()
        {
            let text = result.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
            let message = text.replace("failed to deserialize parameters:", "invalid arguments:");
            return Ok(to_result::<Value>(Err(ToolError::invalid(message))).into());
        }
        // Best-effort audit that cannot keep its records says so in every reply; a session log
        // that stopped (a full disk) in the session's next reply.
        if let CallToolResponse::Complete(result) = &mut response
            && result.is_error != Some(true)
        {
            let notes = this.audit.problem().into_iter().chain(entry.and_then(|e| e.session.log_news()));
            for note in notes {
                add_warning(result, note);
            }
        }
        Ok(response)
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                    .with_title("pty-mcp: interactive terminals for agents"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}
