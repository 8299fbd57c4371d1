//! OpenClaw's JSON5 config and the policy diff between two versions: the
//! input is two texts split at the first 0xff byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use occcd::openclaw::{diff, document, policy};

fuzz_target!(|data: &[u8]| {
    let (before, after) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(before), Ok(after)) = (std::str::from_utf8(before), std::str::from_utf8(after)) else {
        return;
    };
    let _ = diff::line_counts(before, after);
    let _ = diff::unified(before, after, "before", "after");
    if let (Ok(old), Ok(new)) = (document::parse(before), document::parse(after)) {
        let changes = policy::policy_diff(&old.value, &new.value);
        let _ = policy::loosens(&changes);
    }
});
