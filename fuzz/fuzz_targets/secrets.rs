//! Secrets on the way in (what an askpass program prints) and masked on the way out: a secret
//! of 4 bytes or more never survives masking.
#![no_main]
use engine::secret::{MASK, Secret, mask};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (printed, output) = input;
    let secret = Secret::from_program_output(printed);
    let s = secret.expose();
    if let Some(masked) = mask(&output, s) {
        assert!(s.len() >= 4);
        // Every occurrence is gone (a secret with a `*` in it could be spelled again by the
        // mask and the bytes beside it: not a leak).
        if !s.contains(&MASK[0]) {
            assert!(!masked.windows(s.len()).any(|w| w == s), "the secret survived masking");
        }
    }
});
