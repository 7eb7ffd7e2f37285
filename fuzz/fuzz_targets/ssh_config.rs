//! ssh_config as pty-mcp reads it without an `ssh` binary (Host patterns, Include, tokens), and
//! ProxyJump specs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &[u8])| {
    let (host, text) = input;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config");
    std::fs::write(&file, text).unwrap();
    let host = if host.is_empty() { "example" } else { host };
    let _ = transports::ssh::config::parse_files(host, &[file]);
    if let Ok(spec) = std::str::from_utf8(text) {
        let _ = transports::ssh::config::parse_jumps(spec);
    }
});
