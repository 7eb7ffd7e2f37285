//! The escape-sequence scanner (modes, terminal queries, shell marks) and the clean-text
//! renderer. The property: a program's output split into reads at any point is understood
//! exactly as the same output read at once (a mark split across reads must not be lost, moved
//! or doubled: the kind of race that mis-attributes replies).
#![no_main]
use engine::Offset;
use engine::scanner::Scanner;
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "f00d";

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (cuts, data) = input;
    let mut whole = Scanner::new(Some(TOKEN.into()));
    let mut at_once = Vec::new();
    whole.scan(&data, Offset(0), &mut at_once);

    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c as usize % (data.len() + 1)).collect();
    cuts.push(data.len());
    cuts.sort_unstable();
    let mut parts = Scanner::new(Some(TOKEN.into()));
    let mut in_parts = Vec::new();
    let mut from = 0;
    for cut in cuts {
        parts.scan(&data[from..cut], Offset(from as u64), &mut in_parts);
        from = cut;
    }
    assert_eq!(at_once, in_parts, "events differ when the output is read in parts");
    assert_eq!(whole.modes(), parts.modes());

    let text = engine::text::clean(&data);
    assert!(!text.contains('\u{1b}'), "escape left in clean text");
    for max in [0, 1, 7, data.len() / 2, data.len()] {
        assert!(engine::text::safe_cut(&data, max) <= max.min(data.len()));
    }
});
