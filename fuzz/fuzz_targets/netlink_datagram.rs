//! One sock_diag reply datagram, as recv(2) could return it: `parse_datagram` frames it, and
//! every SOCK_DIAG_BY_FAMILY payload it delivers goes through each decoder a dump uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockq::collect::diag;
use sockq::collect::netlink::parse_datagram;

fuzz_target!(|dgram: &[u8]| {
    // The sequence number and port of the first message select "our" messages, so the
    // fuzzer does not have to guess them; the low bit of the flags' high byte says whether
    // the port is checked too.
    let word = |at: usize| {
        dgram
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    let seq = word(8);
    let port = (dgram.get(7).is_some_and(|b| b & 1 == 1)).then(|| word(12));
    let mut payloads = 0usize;
    let end = parse_datagram(dgram, seq, port, |payload| {
        payloads += 1;
        let _ = diag::decode_listener(payload);
        let _ = diag::decode_listener_depth(payload);
        let _ = diag::decode_syn_recv(payload);
        let _ = diag::decode_unix_listener(payload);
        Ok(())
    });
    if let Ok(end) = end {
        assert_eq!(end.messages, payloads);
    }
});
