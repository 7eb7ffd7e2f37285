//! The key grammar of send_control: any text either parses to keys or is refused, and every key
//! has bytes in both cursor modes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|spec: &str| {
    if let Ok(keys) = engine::keys::parse_sequence(spec) {
        assert!(!keys.is_empty());
        for key in keys {
            let _ = key.bytes(true);
            let _ = key.bytes(false);
        }
    }
});
