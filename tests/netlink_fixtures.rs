//! The sock_diag reply parser on datagrams captured from real dumps (tests/fixtures/netlink,
//! written by `cargo run --example capture_netlink`; MANIFEST.md there describes the scene and
//! each file). These tests only read files: no root, no namespace.
//!
//! Kernel order and the split of a dump into datagrams depend on per-namespace hash salts, so the
//! tests check sets and per-file message counts, never the order within a dump.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use sockq::collect::diag::{
    attribute_syn_recv, decode_listener, decode_syn_recv, decode_unix_listener, SynRecvEntry,
    SynRecvRuns, SynRecvTally,
};
use sockq::collect::netlink::{parse_datagram, DatagramEnd, NetlinkError};
use sockq::model::{Family, TcpListener, UnixListener};

/// Sequence numbers of the captured requests (MANIFEST.md).
const SEQ_LISTEN_V4: u32 = 1;
const SEQ_LISTEN_V6: u32 = 2;
const SEQ_SYN_RECV_V4: u32 = 3;
const SEQ_SYN_RECV_V6: u32 = 4;
const SEQ_UNIX: u32 = 5;
const SEQ_ERR_FAMILY: u32 = 0x5eed_0001;
const SEQ_ERR_PROTO: u32 = 0x5eed_0002;

/// Every captured reply: (file stem, seq, SOCK_DIAG_BY_FAMILY messages per datagram). Each ends
/// with a datagram holding only NLMSG_DONE (or the error).
const DUMPS: [(&str, u32, &[usize]); 7] = [
    ("tcp-listen-v4", SEQ_LISTEN_V4, &[23, 19, 0]),
    ("tcp-listen-v6", SEQ_LISTEN_V6, &[3, 0]),
    ("tcp-syn-recv-v4", SEQ_SYN_RECV_V4, &[300, 0]),
    ("tcp-syn-recv-v6", SEQ_SYN_RECV_V6, &[0]),
    ("unix-listen", SEQ_UNIX, &[3, 0]),
    ("error-family-99", SEQ_ERR_FAMILY, &[0]),
    ("error-inet-proto-255", SEQ_ERR_PROTO, &[0]),
];

const EINVAL: i32 = 22;
const ENOENT: i32 = 2;

/// The datagrams `<stem>-0.bin`, `<stem>-1.bin`, ... in order.
fn load(stem: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netlink");
    let mut out = Vec::new();
    loop {
        let p = dir.join(format!("{stem}-{}.bin", out.len()));
        match std::fs::read(&p) {
            Ok(d) => out.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => panic!("reading {}: {e}", p.display()),
        }
    }
    assert!(
        !out.is_empty(),
        "no fixture {stem}-0.bin in {}",
        dir.display()
    );
    out
}

/// Parses every datagram of a dump with `seq`, checks that only the last one has NLMSG_DONE, and
/// returns the payloads.
fn payloads(dgrams: &[Vec<u8>], seq: u32) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for (i, d) in dgrams.iter().enumerate() {
        let end = parse_datagram(d, seq, None, |p| {
            out.push(p);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("datagram {i}: {e}"));
        assert_eq!(
            end.done,
            i + 1 == dgrams.len(),
            "NLMSG_DONE in datagram {i}"
        );
        assert!(!end.interrupted, "datagram {i} flagged NLM_F_DUMP_INTR");
    }
    out
}

fn listeners(stem: &str, seq: u32) -> Vec<TcpListener> {
    payloads(&load(stem), seq)
        .into_iter()
        .map(|p| {
            decode_listener(p)
                .expect("decodes")
                .expect("a LISTEN dump holds only listeners")
        })
        .collect()
}

fn syn_recv(stem: &str, seq: u32) -> Vec<SynRecvEntry> {
    payloads(&load(stem), seq)
        .into_iter()
        .map(|p| {
            decode_syn_recv(p)
                .expect("decodes")
                .expect("a SYN_RECV dump holds only requests")
        })
        .collect()
}

fn unix_listeners() -> Vec<UnixListener> {
    payloads(&load("unix-listen"), SEQ_UNIX)
        .into_iter()
        .map(|p| {
            decode_unix_listener(p)
                .expect("decodes")
                .expect("a LISTEN dump holds only listeners")
        })
        .collect()
}

/// (port, recv-q, send-q, drops) of the IPv4 scene: 40 listeners on 127.0.0.1:20001+k with
/// backlog 5+3k and k%3 unaccepted connections; 127.0.0.1:20100 listen(2) with 3 unaccepted and
/// 2 dropped SYNs; 10.88.0.1:80 backlog 1024 (the SYN-RECV target).
fn expected_v4() -> BTreeMap<(IpAddr, u16), (u32, u32, Option<u64>)> {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut m: BTreeMap<_, _> = (0..40u16)
        .map(|k| {
            (
                (lo, 20001 + k),
                (u32::from(k % 3), 5 + 3 * u32::from(k), Some(0)),
            )
        })
        .collect();
    m.insert((lo, 20100), (3, 2, Some(2)));
    m.insert(
        (IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1)), 80),
        (0, 1024, Some(0)),
    );
    m
}

/// The port in the netlink header of a datagram's first message.
fn port_of(d: &[u8]) -> u32 {
    u32::from_ne_bytes(d[12..16].try_into().expect("4 bytes"))
}

/// Byte offsets where a message of the datagram starts, plus its length.
fn boundaries(d: &[u8]) -> Vec<usize> {
    let mut out = vec![0];
    let mut off = 0;
    while off + 4 <= d.len() {
        let len = u32::from_ne_bytes(d[off..off + 4].try_into().expect("4 bytes")) as usize;
        off += (len + 3) & !3;
        out.push(off);
    }
    assert_eq!(off, d.len(), "fixture does not end on a message boundary");
    out
}

fn all_fixtures() -> Vec<(String, u32, Vec<u8>)> {
    DUMPS
        .iter()
        .flat_map(|(stem, seq, _)| {
            load(stem)
                .into_iter()
                .enumerate()
                .map(move |(i, d)| (format!("{stem}-{i}.bin"), *seq, d))
        })
        .collect()
}

#[test]
fn every_reply_has_the_recorded_datagrams_and_message_counts() {
    for (stem, seq, counts) in DUMPS {
        let dgrams = load(stem);
        assert_eq!(dgrams.len(), counts.len(), "{stem}: datagrams");
        for (i, (d, &want)) in dgrams.iter().zip(counts).enumerate() {
            let mut n = 0;
            let r = parse_datagram(d, seq, None, |_| {
                n += 1;
                Ok(())
            });
            assert_eq!(n, want, "{stem}-{i}: messages delivered");
            if let Ok(end) = r {
                assert_eq!(end.messages, want, "{stem}-{i}");
            }
        }
    }
}

#[test]
fn many_messages_per_datagram() {
    // The multi-message datagrams are the point of these fixtures: a parser that only reads the
    // first message of each datagram would see 3 of 45 listeners.
    let v4 = load("tcp-listen-v4");
    assert_eq!(v4[0].len(), 23 * 164);
    assert_eq!(v4[1].len(), 19 * 164);
    assert_eq!(load("tcp-syn-recv-v4")[0].len(), 300 * 96);
}

#[test]
fn every_dump_ends_with_nlmsg_done_alone_in_its_last_datagram() {
    for (stem, seq, _) in &DUMPS[..5] {
        let dgrams = load(stem);
        let last = dgrams.last().expect("one datagram");
        assert_eq!(last.len(), 20, "{stem}: NLMSG_DONE alone (header + int 0)");
        let end = parse_datagram(last, *seq, None, |_| panic!("no payload expected"))
            .expect("a clean NLMSG_DONE");
        assert_eq!(
            end,
            DatagramEnd {
                done: true,
                interrupted: false,
                messages: 0
            },
            "{stem}"
        );
        for (i, d) in dgrams[..dgrams.len() - 1].iter().enumerate() {
            let end = parse_datagram(d, *seq, None, |_| Ok(())).expect("parses");
            assert!(
                !end.done,
                "{stem}-{i}: the dump goes on after this datagram"
            );
        }
    }
}

#[test]
fn ipv4_listeners_with_accept_queue_backlog_and_drops() {
    let ls = listeners("tcp-listen-v4", SEQ_LISTEN_V4);
    assert_eq!(ls.len(), 42);
    let got: BTreeMap<_, _> = ls
        .iter()
        .map(|l| ((l.address, l.port), (l.accept_queue, l.backlog, l.drops)))
        .collect();
    assert_eq!(got.len(), 42, "a listener is reported twice");
    assert_eq!(got, expected_v4());
    for l in &ls {
        assert_eq!(l.family, Family::Ipv4);
        assert_eq!(l.v6only, None, "IPv4 sockets have no IPV6_V6ONLY");
        assert_eq!(l.uid, 0);
        assert_ne!(l.inode, 0);
        assert_ne!(l.cookie, 0);
        assert_eq!((l.syn_recv, l.syn_recv_group), (0, 1));
    }
    let full = ls.iter().find(|l| l.port == 20100).expect("the full one");
    assert!(
        full.accept_queue > full.backlog,
        "a full accept queue holds backlog+1"
    );
    let inodes: BTreeSet<u64> = ls.iter().map(|l| l.inode).collect();
    let cookies: BTreeSet<u64> = ls.iter().map(|l| l.cookie).collect();
    assert_eq!((inodes.len(), cookies.len()), (42, 42));
}

#[test]
fn ipv6_listeners_report_v6only_and_the_dual_stack_one() {
    let ls = listeners("tcp-listen-v6", SEQ_LISTEN_V6);
    let got: BTreeMap<_, _> = ls
        .iter()
        .map(|l| {
            assert_eq!(l.family, Family::Ipv6);
            assert_eq!(l.uid, 0);
            assert_ne!(l.inode, 0);
            (
                (l.address, l.port),
                (l.accept_queue, l.backlog, l.drops, l.v6only),
            )
        })
        .collect();
    let any = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let want = BTreeMap::from([
        (
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 20201),
            (2, 77, Some(0), Some(true)),
        ),
        // Dual stack: its one queued connection came from 127.0.0.1.
        ((any, 20202), (1, 88, Some(0), Some(false))),
        ((any, 20203), (0, 99, Some(0), Some(true))),
    ]);
    assert_eq!(got, want);
}

#[test]
fn syn_recv_dump_has_300_requests_on_10_88_0_1_port_80() {
    let reqs = syn_recv("tcp-syn-recv-v4", SEQ_SYN_RECV_V4);
    assert_eq!(reqs.len(), 300);
    let target = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1));
    for r in &reqs {
        assert_eq!(
            *r,
            SynRecvEntry {
                family: Family::Ipv4,
                address: target,
                port: 80,
                // Captured within a second of the SYNs: no SYN-ACK retransmitted yet.
                retrans: 0,
            }
        );
    }
    assert!(syn_recv("tcp-syn-recv-v6", SEQ_SYN_RECV_V6).is_empty());

    let mut tally = SynRecvTally::default();
    let mut runs = SynRecvRuns::default();
    for r in reqs {
        tally.add(r);
        runs.add(r);
    }
    assert_eq!(tally.total, 300);
    let runs = runs.finish();
    assert_eq!((runs.total, &runs.by_local), (300, &tally.by_local));
    let mut all = listeners("tcp-listen-v4", SEQ_LISTEN_V4);
    all.extend(listeners("tcp-listen-v6", SEQ_LISTEN_V6));
    assert_eq!(attribute_syn_recv(&mut all, &tally), 0, "unmatched");
    for l in &all {
        if (l.address, l.port) == (target, 80) {
            assert_eq!(
                (l.syn_recv, l.syn_recv_group, l.syn_recv_max_retrans),
                (300, 1, Some(0))
            );
            assert_eq!(l.accept_queue, 0, "half-open requests are not queued");
        } else {
            assert_eq!(
                (l.syn_recv, l.syn_recv_max_retrans),
                (0, None),
                "{}:{}",
                l.address,
                l.port
            );
        }
    }
}

#[test]
fn unix_listeners_with_names_and_pending_connections() {
    let got: BTreeMap<String, (u32, u32)> = unix_listeners()
        .into_iter()
        .map(|l| {
            assert_ne!(l.inode, 0);
            (l.name, (l.accept_queue, l.backlog))
        })
        .collect();
    let want = BTreeMap::from([
        ("/tmp/sockq-fixture/idle.sock".to_string(), (0, 5)),
        ("/tmp/sockq-fixture/busy.sock".to_string(), (2, 10)),
        ("@sockq-fixture-abstract".to_string(), (0, 3)),
    ]);
    assert_eq!(got, want);
}

#[test]
fn nlmsg_error_is_the_kernel_errno() {
    // sdiag_family 99 >= AF_MAX: the kernel refuses the request itself with NLMSG_ERROR -EINVAL
    // (the 92-byte reply carries our 72-byte request back).
    let d = load("error-family-99");
    assert_eq!((d.len(), d[0].len()), (1, 92));
    let mut n = 0;
    let r = parse_datagram(&d[0], SEQ_ERR_FAMILY, None, |_| {
        n += 1;
        Ok(())
    });
    assert!(
        matches!(r, Err(NetlinkError::Kernel { errno: EINVAL })),
        "{r:?}"
    );
    assert_eq!(n, 0);
    // With the socket's own port too.
    let r = parse_datagram(&d[0], SEQ_ERR_FAMILY, Some(port_of(&d[0])), |_| Ok(()));
    assert!(matches!(r, Err(NetlinkError::Kernel { errno: EINVAL })));
}

#[test]
fn error_in_nlmsg_done_is_the_kernel_errno() {
    // AF_INET with protocol 255: the dump starts, finds no inet_diag handler, and ends with
    // NLMSG_DONE carrying -ENOENT (not NLMSG_ERROR).
    let d = load("error-inet-proto-255");
    assert_eq!((d.len(), d[0].len()), (1, 20));
    let r = parse_datagram(&d[0], SEQ_ERR_PROTO, None, |_| Ok(()));
    assert!(
        matches!(r, Err(NetlinkError::Kernel { errno: ENOENT })),
        "{r:?}"
    );
}

#[test]
fn another_sequence_number_or_port_yields_no_messages() {
    for (name, seq, d) in all_fixtures() {
        for other in [seq.wrapping_add(1), seq.wrapping_sub(1), 0] {
            let end = parse_datagram(&d, other, None, |_| panic!("{name}: a stale message"))
                .unwrap_or_else(|e| panic!("{name} with seq {other}: {e}"));
            assert_eq!(end, DatagramEnd::default(), "{name} with seq {other}");
        }
        let port = port_of(&d);
        let end = parse_datagram(&d, seq, Some(port ^ 1), |_| panic!("{name}: foreign port"))
            .unwrap_or_else(|e| panic!("{name} with another port: {e}"));
        assert_eq!(end, DatagramEnd::default(), "{name} with another port");
        // The recorded port selects the same as no port check.
        let mut a = 0;
        let mut b = 0;
        let ra = parse_datagram(&d, seq, Some(port), |_| {
            a += 1;
            Ok(())
        });
        let rb = parse_datagram(&d, seq, None, |_| {
            b += 1;
            Ok(())
        });
        assert_eq!(format!("{ra:?}"), format!("{rb:?}"), "{name}");
        assert_eq!(a, b, "{name}");
    }
    // The five dumps came from one DiagSocket: one port.
    let ports: BTreeSet<u32> = DUMPS[..5]
        .iter()
        .flat_map(|(stem, _, _)| load(stem))
        .map(|d| port_of(&d))
        .collect();
    assert_eq!(ports.len(), 1, "{ports:?}");
}

#[test]
fn stale_messages_of_an_abandoned_dump_are_skipped() {
    // A datagram left over from an earlier dump (seq 3, SYN-RECV) in front of ours (seq 1).
    let mut d = load("tcp-syn-recv-v4").swap_remove(0);
    d.extend(load("tcp-listen-v4").swap_remove(1));
    let mut got = Vec::new();
    let end = parse_datagram(&d, SEQ_LISTEN_V4, None, |p| {
        got.push(decode_listener(p)?.expect("a listener"));
        Ok(())
    })
    .expect("parses");
    assert_eq!((end.messages, got.len(), end.done), (19, 19, false));
}

#[test]
fn truncated_datagrams_are_errors_never_panics() {
    let v4 = load("tcp-listen-v4").swap_remove(0);
    // Inside the first header, inside a payload, one byte short of the end, in the middle.
    for cut in [
        1,
        15,
        16,
        17,
        100,
        163,
        165,
        1000,
        v4.len() / 2 + 1,
        v4.len() - 1,
    ] {
        let r = parse_datagram(&v4[..cut], SEQ_LISTEN_V4, None, |p| {
            decode_listener(p).map(drop)
        });
        assert!(
            matches!(r, Err(NetlinkError::Malformed { .. })),
            "cut at {cut}: {r:?}"
        );
    }
    // Every cut of every fixture: an error unless it falls exactly between two messages (a
    // datagram cut there is indistinguishable from a shorter one; DiagSocket catches that case
    // with MSG_TRUNC). Whole messages before the cut are delivered, decoded, and never more.
    for (name, seq, d) in all_fixtures() {
        let bounds = boundaries(&d);
        for cut in 0..d.len() {
            let mut n = 0;
            let r = parse_datagram(&d[..cut], seq, None, |p| {
                n += 1;
                match &name[..5] {
                    "tcp-l" => decode_listener(p).map(drop),
                    "tcp-s" => decode_syn_recv(p).map(drop),
                    "unix-" => decode_unix_listener(p).map(drop),
                    _ => Ok(()),
                }
            });
            match bounds.iter().position(|&b| b == cut) {
                Some(k) => {
                    let end = r.unwrap_or_else(|e| panic!("{name} cut at boundary {cut}: {e}"));
                    assert_eq!((end.messages, end.done), (k, false), "{name} cut at {cut}");
                }
                None => {
                    let last = bounds.iter().rev().find(|&&b| b < cut).copied();
                    match r {
                        Err(NetlinkError::Malformed { offset, .. }) => {
                            assert_eq!(Some(offset), last, "{name} cut at {cut}")
                        }
                        other => panic!("{name} cut at {cut}: {other:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn decoders_never_panic_on_cut_payloads() {
    // A message whose length field was right but whose payload is short (as a bad kernel or a
    // corrupted buffer would give): every prefix of every real payload decodes or fails cleanly.
    let tcp: Vec<Vec<u8>> = ["tcp-listen-v4", "tcp-listen-v6"]
        .iter()
        .zip([SEQ_LISTEN_V4, SEQ_LISTEN_V6])
        .flat_map(|(stem, seq)| {
            payloads(&load(stem), seq)
                .into_iter()
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    for p in &tcp {
        for cut in 0..p.len() {
            let r = decode_listener(&p[..cut]);
            if cut < 72 {
                assert!(
                    matches!(r, Err(NetlinkError::Decode(_))),
                    "cut {cut}: {r:?}"
                );
            }
            let r = decode_syn_recv(&p[..cut]);
            if cut < 72 {
                assert!(matches!(r, Err(NetlinkError::Decode(_))));
            }
        }
    }
    for p in payloads(&load("unix-listen"), SEQ_UNIX) {
        for cut in 0..p.len() {
            let r = decode_unix_listener(&p[..cut]);
            if cut < 16 {
                assert!(matches!(r, Err(NetlinkError::Decode(_))), "cut {cut}");
            }
        }
    }
}
