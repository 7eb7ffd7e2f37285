//! End-to-end tests: the built `pty-mcp` binary over stdio, driven by the `rmcp` client the way
//! an agent drives it, running real bash and python3 on real PTYs.

mod attach;
mod audit;
mod bad_input;
#[cfg(target_os = "linux")]
mod faults;
mod files;
mod fullscreen;
mod harness;
mod http;
mod install;
mod links;
mod local;
mod persistent;
mod plugin;
mod policy;
mod protocol;
mod repl;
mod secrets;
mod serial;
mod shell;
mod soak;
mod ssh;
mod startup;
mod syslog;
mod watch;
