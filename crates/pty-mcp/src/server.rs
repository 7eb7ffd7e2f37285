//! The MCP face of pty-mcp: tool declarations, and the wrapper every call goes through
//! (cancellation, progress on long waits, result shaping). The work is in `tools.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::handler::server::{
    tool::{ToolCallContext, ToolRouter},
    wrapper::Parameters,
};
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::Audit;
use crate::error::{Code, ToolError};
use crate::manager::SessionManager;
use crate::operator::OperatorPrompt;
use crate::params::*;
use crate::persistent;
use crate::secrets;
use crate::serial;
use crate::ssh;
use crate::tools::{self, Settings};

/// How often a long wait reports progress to a client that asked for it.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

const INSTRUCTIONS: &str = "pty-mcp gives you real interactive terminals. Start one with \
create_local_session, type commands with send_input (it returns when the program is back at a \
prompt, with the output and whether it completed), press keys with send_control, and read more \
with read_output: by default it waits for output to settle; with wait_for it waits for a regex; \
with since_cursor it re-reads from a cursor; with screen:true it shows the screen of full-screen \
programs (top, vim, less). Every result carries a cursor (absolute byte offset): nothing is lost \
or repeated between reads. Close sessions you no longer need.";

/// The MCP server: a session table and the tools over it.
#[derive(Clone)]
pub struct PtyMcp {
    manager: Arc<SessionManager>,
    audit: Audit,
    operator: Arc<OperatorPrompt>,
    settings: Settings,
    tool_router: ToolRouter<PtyMcp>,
}

impl PtyMcp {
    /// A server over `manager`.
    pub fn new(
        manager: Arc<SessionManager>,
        operator: Arc<OperatorPrompt>,
        audit: Audit,
        settings: Settings,
    ) -> PtyMcp {
        PtyMcp { manager, audit, operator, settings, tool_router: Self::tool_router() }
    }

    /// Records a session this call opened (its id, and later its end).
    fn audit_created(&self, created: &tools::Created) {
        if created.is_new
            && let Ok(entry) = self.manager.get(&created.session_id)
        {
            self.audit.created(entry);
        }
    }
}

/// Turns a tool's outcome into a result: the seed's pretty JSON as text, the same value as
/// structured content (wrapped in an object when it is not one).
fn to_result<T: Serialize>(outcome: Result<T, ToolError>) -> CallToolResult {
    let (value, is_error) = match outcome {
        Ok(v) => (serde_json::to_value(v).unwrap_or_else(|e| json!({"error": e.to_string()})), false),
        Err(e) => (json!(e), true),
    };
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let structured = if value.is_object() { value } else { json!({ "result": value }) };
    let mut result =
        if is_error { CallToolResult::structured_error(structured) } else { CallToolResult::structured(structured) };
    result.content = vec![ContentBlock::text(text)];
    result
}

/// Runs a tool body: stops at `notifications/cancelled`, and sends progress every few seconds
/// while it runs when the client gave a progress token.
async fn run<T: Serialize>(
    ctx: RequestContext<RoleServer>,
    total: Option<Duration>,
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
                let elapsed = started.elapsed().as_secs_f64();
                let mut param = ProgressNotificationParam::new(token.clone().expect("checked"), elapsed)
                    .with_message(format!("waiting for output, {elapsed:.0}s so far"));
                if let Some(total) = total {
                    param = param.with_total(total.as_secs_f64());
                }
                let _ = ctx.peer.notify_progress(param).await;
            }
        }
    }
}

/// The length of a wait as the tool will clamp it, for the progress total.
fn secs(s: Option<i64>, default: i64) -> Duration {
    Duration::from_secs(s.unwrap_or(default).clamp(0, tools::MAX_WAIT_SECS) as u64)
}

#[tool_router]
impl PtyMcp {
    #[tool(
        description = "Start a local program on its own terminal (default /bin/bash; also python3, node, \
        mysql, ssh, any command line). Returns session_id once the program shows its first prompt.",
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
        run(ctx, None, async {
            self.audit.before_create("local", &target).await?;
            let created = tools::create_local_session(&self.manager, self.settings, p).await?;
            self.audit_created(&created);
            Ok(created)
        })
        .await
    }

    #[tool(
        description = "Type input into a session and press Enter (unless raw:true), then wait until the program \
        is back at a prompt (is_complete:true), goes quiet, exits, or timeout_ms passes. With wait_for, wait \
        for a regex in the output instead. Returns the output as clean text and cursors.",
        annotations(title = "Send input", read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn send_input(
        &self,
        Parameters(p): Parameters<SendInputParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let total = p.wait_for.as_ref().map(|_| secs(p.wait_for_timeout, tools::DEFAULT_WAIT_FOR_SECS));
        run(ctx, total, async {
            let cmd = self.audit.before_input(&self.manager, &p.session_id, &p.input, p.raw.unwrap_or(false)).await?;
            let reply = tools::send_input(&self.manager, p).await?;
            self.audit.after_input(cmd, reply.output());
            Ok(reply)
        })
        .await
    }

    #[tool(
        description = "Read a session's output. Default: wait (up to timeout seconds) for output to settle and \
        return what was not read yet. since_cursor: re-read raw output from a cursor without waiting or \
        consuming. wait_for: wait for a regex in unread output, with context_lines and tail_lines. \
        screen:true: the screen as a person sees it (for top, vim, less, menus).",
        annotations(title = "Read output", read_only_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn read_output(
        &self,
        Parameters(p): Parameters<ReadOutputParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let total = Some(secs(p.timeout, tools::DEFAULT_READ_SECS));
        run(ctx, total, tools::read_output(&self.manager, p)).await
    }

    #[tool(
        description = "Press keys in a session: ctrl+c, ctrl+d, ctrl+z, enter, tab, escape, arrows, f1-f12, \
        pageup, any character, alt+x, or a space-separated sequence such as \"escape : w q enter\". Returns \
        new output, and the screen when a full-screen program is active.",
        annotations(title = "Send keys", read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn send_control(
        &self,
        Parameters(p): Parameters<SendControlParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, None, async {
            let keys = serde_json::to_value(&p.key).unwrap_or_default();
            self.audit.before_event(&self.manager, &p.session_id, "send_control", json!({"keys": keys})).await?;
            tools::send_control(&self.manager, p).await
        })
        .await
    }

    #[tool(
        description = "Open an SSH session on a real server: host (name, address or ssh_config alias), user, \
        port, key_path; ssh_config (HostName, Port, User, IdentityFile, known hosts, keepalives) applies. Host \
        keys are verified against known_hosts (host_key_policy strict by default). Passwords and passphrases \
        are asked from the operator, not the agent. Then use send_input etc. as with any session.",
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
        run(ctx, None, async {
            self.audit.before_create("ssh", &target).await?;
            let created = ssh::create_ssh_session(&self.manager, &self.operator, self.settings, p).await?;
            self.audit_created(&created);
            Ok(created)
        })
        .await
    }

    #[tool(
        description = "Open a serial console (router, switch, embedded board) as a session: device \
        (/dev/ttyUSB0, /dev/serial/by-id/...), baud_rate (9600), data_bits, parity, stop_bits, flow_control, \
        line_ending (cr, lf, crlf). Then use send_input, read_output, send_control as with any session.",
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
        run(ctx, None, async {
            self.audit.before_create("serial", &target).await?;
            let created = serial::create_serial_session(&self.manager, self.settings, p).await?;
            self.audit_created(&created);
            Ok(created)
        })
        .await
    }

    #[tool(
        description = "Send a serial BREAK (hold the line low for duration_ms, default 250): password recovery \
        on Cisco gear, the Linux magic SysRq.",
        annotations(title = "Send BREAK", read_only_hint = false, destructive_hint = true, open_world_hint = true)
    )]
    async fn send_break(
        &self,
        Parameters(p): Parameters<SendBreakParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, None, async {
            self.audit
                .before_event(&self.manager, &p.session_id, "send_break", json!({"duration_ms": p.duration_ms}))
                .await?;
            serial::send_break(&self.manager, p).await
        })
        .await
    }

    #[tool(
        description = "List the serial ports present, with USB vendor/product/serial where known and their stable \
        /dev/serial/by-id names.",
        annotations(title = "List serial ports", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_serial_ports(&self) -> CallToolResult {
        to_result(Ok::<_, ToolError>(serial::list_serial_ports()))
    }

    #[tool(
        description = "Ask the operator (the person running the agent) for a secret such as a password, in a \
        dialog, and type it into the session followed by Enter. You never see it. Refused (SECRET_ECHO_ON) \
        unless the program is at a password prompt with echo off. Use when the screen shows e.g. \
        '[sudo] password for ...:' or 'Password:'.",
        annotations(title = "Send secret", read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn send_secret(
        &self,
        Parameters(p): Parameters<SendSecretParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, None, async {
            // That a secret is sent, and nothing of it.
            self.audit.before_event(&self.manager, &p.session_id, "send_secret", json!({})).await?;
            secrets::send_secret(&self.manager, &self.operator, p).await
        })
        .await
    }

    #[tool(
        description = "Ask the operator for a secret now and keep it (ttl seconds, default 300); it is typed \
        automatically, once, when the session next shows a password prompt. Use before a command that will \
        ask for a password (sudo, ssh, su).",
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
        run(ctx, None, async {
            self.audit.before_event(&self.manager, &p.session_id, "prepare_secret", json!({})).await?;
            secrets::prepare_secret(&self.manager, &self.operator, p).await
        })
        .await
    }

    #[tool(
        description = "Change a session's terminal size (rows 1-500, cols 1-1000); the program is told (SIGWINCH).",
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
        if let Err(e) = self.audit.before_event(&self.manager, &p.session_id, "resize_session", details).await {
            return to_result::<Value>(Err(e));
        }
        to_result(tools::resize_session(&self.manager, p))
    }

    #[tool(
        description = "What a session is doing now: state (at_prompt, password_prompt, confirmation, pager, \
        full_screen, running, exited), last_prompt, is_alive, exit_code, cursor and unread bytes.",
        annotations(title = "Session state", read_only_hint = true, open_world_hint = false)
    )]
    async fn get_session_state(&self, Parameters(p): Parameters<SessionParams>) -> CallToolResult {
        to_result(self.manager.get(&p.session_id).map(|e| tools::session_info(&e, false)))
    }

    #[tool(
        description = "List the server's sessions with their type, target, state and whether they are alive.",
        annotations(title = "List sessions", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_sessions(&self) -> CallToolResult {
        let list: Vec<_> = self.manager.list().iter().map(|e| tools::session_info(e, true)).collect();
        to_result(Ok::<_, ToolError>(list))
    }

    #[tool(
        description = "Close a session: its program and every process it started are stopped.",
        annotations(
            title = "Close session",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn close_session(&self, Parameters(p): Parameters<SessionParams>) -> CallToolResult {
        if let Err(e) = self.audit.before_event(&self.manager, &p.session_id, "close_session", json!({})).await {
            return to_result::<Value>(Err(e));
        }
        to_result(tools::close_session(&self.manager, &p.session_id, false).await)
    }

    #[tool(
        description = "List the sessions kept by an ai-tmux daemon: on an SSH host (host, user, port, \
        key_path… as create_ssh_session), or on this machine without host. status: running, exited or all. \
        Each has id (reattach with create_ssh_session/create_local_session session_id), command, is_alive, \
        exit_code, created_at, last_used, last_attached, attached.",
        annotations(title = "List persistent sessions", read_only_hint = true, open_world_hint = true)
    )]
    async fn list_remote_sessions(
        &self,
        Parameters(p): Parameters<ListRemoteParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        run(ctx, None, async {
            let dial = match p.ssh.host.as_deref().filter(|h| !h.trim().is_empty()) {
                None => persistent::local_dial()?,
                Some(_) => persistent::ssh_dial(Arc::new(ssh::options(&self.operator, p.ssh).await?)),
            };
            persistent::list(&dial, p.status.as_deref()).await
        })
        .await
    }

    #[tool(
        description = "Detach from a session, leaving its program running where the transport allows it \
        (persistent sessions, in ai-tmux). A plain local session cannot outlive the server and is closed.",
        annotations(
            title = "Detach session",
            read_only_hint = false,
            destructive_hint = true,
            open_world_hint = false
        )
    )]
    async fn detach_session(&self, Parameters(p): Parameters<SessionParams>) -> CallToolResult {
        if let Err(e) = self.audit.before_event(&self.manager, &p.session_id, "detach_session", json!({})).await {
            return to_result::<Value>(Err(e));
        }
        to_result(tools::close_session(&self.manager, &p.session_id, true).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PtyMcp {
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        let response = self.tool_router.call(call).await?;
        // rmcp reports arguments that do not deserialize as plain text; agents get our shape.
        if let CallToolResponse::Complete(result) = &response
            && result.is_error == Some(true)
            && result.structured_content.is_none()
        {
            let text = result.content.first().and_then(|c| c.as_text()).map(|t| t.text.clone()).unwrap_or_default();
            let message = text.replace("failed to deserialize parameters:", "invalid arguments:");
            return Ok(to_result::<Value>(Err(ToolError::invalid(message))).into());
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
