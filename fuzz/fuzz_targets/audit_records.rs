//! The audit collector's record check, the hash-chain verifier over any log file, and the
//! redaction applied to what records carry.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = audit::collector::validate(data);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::fs::write(&log, data).unwrap();
    let _ = audit::collector::verify(&log);
    if let Ok(text) = std::str::from_utf8(data) {
        let redacted = audit::record::redact(text);
        let snippet = audit::record::snippet(&redacted);
        assert!(snippet.len() <= redacted.len());
    }
});
