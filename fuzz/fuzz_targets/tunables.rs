//! The content of a /proc/sys file through `parse_tunable`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockq::collect::tunables::parse_tunable;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(n) = parse_tunable(&text) {
        // Only an integer, whitespace around it, is a value.
        assert_eq!(text.trim().parse::<i64>().ok(), Some(n));
    }
});
