//! The texts of /proc/net/netstat and /proc/net/snmp: the input is split at its first NUL
//! byte into the two (an input without one is both), each goes through `parse_blocks`, and
//! the pair through `parse_counters`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockq::collect::procnet::{parse_blocks, parse_counters};

fuzz_target!(|data: &[u8]| {
    let (a, b) = match data.iter().position(|&c| c == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    // The collector reads the files as UTF-8 text (an invalid file is an error before any
    // parsing); lossy conversion lets any bytes reach the parser.
    let netstat = String::from_utf8_lossy(a);
    let snmp = String::from_utf8_lossy(b);
    let netstat_blocks = parse_blocks(&netstat);
    let snmp_blocks = parse_blocks(&snmp);
    let (counters, problems) = parse_counters(&netstat, &snmp);
    // A counter that was kept came from the TcpExt / Tcp block of a text that parsed.
    if !counters.tcp_ext.is_empty() {
        assert!(netstat_blocks.is_ok_and(|b| b.contains_key("TcpExt")));
    }
    if !counters.tcp.is_empty() {
        assert!(snmp_blocks.is_ok_and(|b| b.contains_key("Tcp")));
    }
    drop(problems);
});
