//! `create_local_session`: a program on a local PTY (or in this machine's ai-tmux).

use engine::transport::local::{LocalCommand, spawn};

use super::*;

/// Starts a local program on a PTY.
pub async fn create_local_session(
    manager: &Sessions<'_>,
    settings: Settings,
    p: CreateLocalParams,
) -> Result<Created, ToolError> {
    let line = p.command.as_deref().filter(|c| !c.trim().is_empty()).unwrap_or("/bin/bash");
    if p.persistent == Some(true) || p.session_id.is_some() {
        if p.args.is_some() || p.env.is_some() || p.cwd.is_some() {
            return Err(ToolError::invalid(
                "args, env and cwd are not available with persistent: put them in the command line",
            ));
        }
        let (rows, cols) = terminal_size(p.rows, p.cols)?;
        let what = match p.session_id.filter(|id| !id.trim().is_empty()) {
            Some(id) => persistent::Target::Reattach(id.trim().to_string()),
            None => persistent::Target::Create {
                command: Some(line.to_string()),
                rows,
                cols,
                shell_integration: p.shell_integration.unwrap_or(true),
            },
        };
        let recorder = open_log(p.log, rows, cols)?;
        return persistent::open(
            manager,
            settings,
            persistent::local_dial()?,
            "local",
            line.to_string(),
            what,
            recorder,
        )
        .await;
    }
    let mut cmd = LocalCommand::parse(line)?;
    cmd.args.extend(p.args.unwrap_or_default());
    (cmd.rows, cmd.cols) = terminal_size(p.rows, p.cols)?;
    cmd.env = p.env.unwrap_or_default().into_iter().collect();
    cmd.shell_integration = p.shell_integration.unwrap_or(true);
    if let Some(cwd) = p.cwd.filter(|c| !c.is_empty()) {
        if !std::path::Path::new(&cwd).is_dir() {
            return Err(ToolError::invalid(format!("cwd {cwd:?} is not a directory")));
        }
        cmd.cwd = Some(cwd.into());
    }
    let config =
        SessionConfig { rows: cmd.rows, cols: cmd.cols, buffer_size: settings.buffer_size, ..SessionConfig::default() };
    let recorder = open_log(p.log, cmd.rows, cmd.cols)?;
    let target = line.to_string();
    let entry =
        manager.create("local", target.clone(), b"\r", || Ok(Session::start(spawn(&cmd)?, config, recorder)))?;
    let mut warnings = Vec::new();
    if entry.session.has_integration() {
        first_prompt(&entry.session, &mut warnings).await;
    } else {
        // Let the program draw its first prompt: a recognised prompt ends this within
        // milliseconds, else 300 ms of quiet.
        entry.session.settle(Settle::after_input(Offset(0), DEFAULT_SETTLE), Instant::now() + BANNER_WAIT).await;
    }
    Ok(Created { warnings, ..Created::new(&entry, reply::render_all(&entry.session)) })
}
