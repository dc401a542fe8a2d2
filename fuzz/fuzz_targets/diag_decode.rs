//! One SOCK_DIAG_BY_FAMILY payload (what `parse_datagram` hands its callback) through every
//! decoder of `sockq::collect::diag`: an inet_diag_msg with its attributes, or a
//! unix_diag_msg with its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockq::collect::diag::{
    self, decode_listener, decode_listener_depth, decode_syn_recv, decode_unix_listener,
};

fuzz_target!(|payload: &[u8]| {
    let listener = decode_listener(payload);
    let depth = decode_listener_depth(payload);
    // The full and the fast decoder agree on the identity and depth of a listener.
    if let (Ok(Some(l)), Ok(Some((key, d)))) = (&listener, &depth) {
        assert_eq!(
            (l.inode, l.cookie, l.accept_queue),
            (key.inode, key.cookie, *d)
        );
    }
    let syn = decode_syn_recv(payload);
    if let Ok(Some(e)) = syn {
        // The tally of runs gives what the per-request tally gives.
        let mut runs = diag::SynRecvRuns::default();
        runs.add(e);
        runs.add(e);
        let mut one = diag::SynRecvTally::default();
        one.add(e);
        one.add(e);
        let tally = runs.finish();
        assert_eq!((tally.total, tally.by_local), (one.total, one.by_local));
    }
    let _ = decode_unix_listener(payload);
});
