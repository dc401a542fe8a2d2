//! Inputs the fuzz targets (fuzz/, docs/fuzzing.md) found to crash sockq, each run through the
//! same function, the same way, as the target that found it. The inputs are in
//! tests/fixtures/fuzz/, named after their target.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::path::Path;

use sockq::collect::diag;
use sockq::collect::netlink::{parse_datagram, NetlinkError};

fn input(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// fuzz/fuzz_targets/netlink_datagram.rs on one input.
fn netlink_datagram(dgram: &[u8]) -> Result<usize, NetlinkError> {
    let word = |at: usize| {
        dgram
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    let seq = word(8);
    let port = (dgram.get(7).is_some_and(|b| b & 1 == 1)).then(|| word(12));
    parse_datagram(dgram, seq, port, |payload| {
        let _ = diag::decode_listener(payload);
        let _ = diag::decode_listener_depth(payload);
        let _ = diag::decode_syn_recv(payload);
        let _ = diag::decode_unix_listener(payload);
        Ok(())
    })
    .map(|end| end.messages)
}

/// NLMSG_DONE whose error code is i32::MIN: negating it overflowed (a panic where overflow
/// checks are on). It is no errno: a malformed message.
#[test]
fn nlmsg_done_with_error_code_i32_min_is_malformed() {
    let d = input("netlink_datagram-done-errno-i32-min");
    let r = netlink_datagram(&d);
    assert!(
        matches!(&r, Err(NetlinkError::Malformed { offset: 0, what }) if what.contains("-2147483648")),
        "{r:?}"
    );
}

/// The same in NLMSG_ERROR, and the errno of a real error code is still the kernel's.
#[test]
fn nlmsg_error_with_error_code_i32_min_is_malformed() {
    let mut d = input("netlink_datagram-done-errno-i32-min");
    d[4..6].copy_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
    let r = netlink_datagram(&d);
    assert!(matches!(r, Err(NetlinkError::Malformed { .. })), "{r:?}");
    d[16..20].copy_from_slice(&(-22i32).to_ne_bytes());
    let r = netlink_datagram(&d);
    assert!(
        matches!(r, Err(NetlinkError::Kernel { errno: 22 })),
        "{r:?}"
    );
}
