//! The ai-tmux wire protocol: any line a peer sends decodes or is refused; the base64 framing
//! of terminal bytes round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ai_tmux::protocol::Request>(data);
    let _ = serde_json::from_slice::<ai_tmux::protocol::Incoming>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ai_tmux::protocol::decode(text);
    }
    let encoded = ai_tmux::protocol::encode(data);
    assert_eq!(ai_tmux::protocol::decode(&encoded).as_deref(), Ok(data));
});
