//! The service-dump decoder on datagrams captured from a real kernel
//! (tests/fixtures/netlink/service, written by `cargo run --example capture_service`;
//! MANIFEST.md there describes the scene). Only reads files: no root, no namespace. Kernel
//! order and the split into datagrams may change between captures: the tests check counts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use netlink_packet_sock_diag::constants::{
    TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT2, TCP_TIME_WAIT,
};
use sockq::collect::netlink::parse_datagram;
use sockq::collect::service::{attribute_service, decode_child, ChildEntry, ChildTracker};
use sockq::model::testing::tcp_listener;
use sockq::model::Family;

const V4_PORT: u16 = 20301;
const V6_PORT: u16 = 20302;

fn load(stem: &str, seq: u32) -> Vec<ChildEntry> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netlink/service");
    let mut out = Vec::new();
    let mut done = false;
    for i in 0.. {
        let Ok(d) = std::fs::read(dir.join(format!("{stem}-{i}.bin"))) else {
            break;
        };
        let end = parse_datagram(&d, seq, None, |p| {
            if let Some(c) = decode_child(p)? {
                out.push(c);
            }
            Ok(())
        })
        .unwrap();
        done |= end.done;
    }
    assert!(done, "{stem}: no NLMSG_DONE");
    out
}

#[test]
fn every_child_state_decodes_as_the_manifest_says() {
    let v4 = load("children-v4", 1);
    assert_eq!(v4.len(), 8);
    assert!(v4
        .iter()
        .all(|c| c.port == V4_PORT && c.family == Family::Ipv4));
    let n = |f: &dyn Fn(&ChildEntry) -> bool| v4.iter().filter(|c| f(c)).count();
    assert_eq!(n(&|c| c.state == TCP_ESTABLISHED && c.inode == 0), 2);
    assert_eq!(n(&|c| c.state == TCP_ESTABLISHED && c.inode != 0), 3);
    assert_eq!(n(&|c| c.state == TCP_ESTABLISHED && c.rqueue == 100), 2);
    assert_eq!(n(&|c| c.wqueue > 0), 1);
    assert_eq!(
        n(&|c| c.state == TCP_CLOSE_WAIT && c.rqueue == 1 && c.inode != 0),
        1
    );
    assert_eq!(n(&|c| c.state == TCP_FIN_WAIT2 && c.inode == 0), 1);
    assert_eq!(n(&|c| c.state == TCP_TIME_WAIT && c.inode == 0), 1);
    // Full sockets carry SK_MEMINFO and tcp_info; timewait sockets neither.
    for c in &v4 {
        let full = matches!(c.state, TCP_ESTABLISHED | TCP_CLOSE_WAIT);
        if full {
            assert!(c.mem.is_some() && c.info.is_some(), "{c:?}");
            assert!(c.info.unwrap().bytes_received.is_some());
        }
        if c.state == TCP_TIME_WAIT {
            assert!(c.mem.is_none() && c.info.is_none(), "{c:?}");
        }
    }
    // Cookies are distinct.
    let mut cookies: Vec<u64> = v4.iter().map(|c| c.cookie).collect();
    cookies.sort_unstable();
    cookies.dedup();
    assert_eq!(cookies.len(), 8);

    let v6 = load("children-v6", 2);
    assert_eq!(v6.len(), 1);
    assert_eq!(v6[0].family, Family::Ipv6);
    assert_eq!(
        v6[0].address,
        IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())
    );
    assert_eq!((v6[0].port, v6[0].state), (V6_PORT, TCP_ESTABLISHED));
    assert_ne!(v6[0].inode, 0);
}

#[test]
fn the_captured_children_go_to_their_listeners() {
    let mut ls = vec![
        tcp_listener(V4_PORT).build(),
        tcp_listener(V6_PORT)
            .addr(Ipv6Addr::UNSPECIFIED.into())
            .v6only(Some(false))
            .build(),
    ];
    let mut tracker = ChildTracker::default();
    let mut pass = tracker.begin(1_000_000_000_000);
    for c in load("children-v4", 1).iter().chain(&load("children-v6", 2)) {
        pass.add(c);
    }
    let tally = pass.finish(true);
    assert_eq!(tally.sockets, 9);
    let (new, unmatched) = attribute_service(&mut ls, &tally);
    assert_eq!((new, unmatched), (vec![0, 0], 0));
    let a = ls[0].service.clone().unwrap();
    assert_eq!((a.waiting, a.in_service), (2, 3));
    assert_eq!(
        (a.unread_conns, a.unread_bytes),
        (2, 200),
        "the CLOSE-WAIT FIN is no data"
    );
    assert_eq!(a.unsent_conns, 1);
    assert!(a.unsent_bytes > 0);
    assert_eq!(
        (a.close_wait, a.fin_wait1, a.fin_wait2, a.time_wait),
        (1, 0, 1, 1)
    );
    assert!(a.mem_bytes.is_some_and(|m| m >= a.unsent_bytes));
    // Captured 300 ms after the connections: tcp_info dates the waiting children.
    assert!(a.waiting_oldest_ms.is_some_and(|ms| ms >= 200), "{a:?}");
    let b = ls[1].service.clone().unwrap();
    assert_eq!((b.in_service, b.waiting, b.group), (1, 0, 1));
    assert!(tracker.wants_tcp_info(), "children wait");
}
