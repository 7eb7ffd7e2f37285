//! known_hosts files: plain, hashed, markers (@revoked, @cert-authority), patterns and ports.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, u16, &[u8])| {
    let (host, port, text) = input;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    std::fs::write(&file, text).unwrap();
    let entries = transports::ssh::known_hosts::HostEntries::load(&[file], host, port);
    let _ = entries.recorded_algorithms();
    let _ = entries.cert_authorities();
    let _ = transports::ssh::known_hosts::entry_name(host, port);
});
