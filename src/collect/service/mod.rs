//! After accept(): the service dump — every listener's children from one sock_diag dump per
//! family of the non-LISTEN states, filtered by the kernel on the listeners' ports.
//!
//! Pure parts, tested without a kernel: the port filter's bytecode ([`port_ranges`],
//! [`port_filter_bytecode`]; the semantics of `inet_diag_bc_run`/`inet_diag_bc_audit` in
//! net/ipv4/inet_diag.c), the request with the bytecode attribute ([`ChildrenRequest`]), the
//! decoder ([`decode_child`], tcp_info offsets of include/uapi/linux/tcp.h), the tracker that
//! remembers children between dumps by socket cookie ([`ChildTracker`]) and the attribution to
//! listeners ([`attribute_service`], with the SYN-RECV matching rules).
//!
//! The dump walks the kernel's whole established hash whatever the filter (the filter cuts the
//! messages, not the walk), so the collector spaces it out under the CPU budget like the
//! SYN-RECV dump.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use netlink_packet_core::{NlasIterator, Parseable};
use netlink_packet_sock_diag::{
    constants::{
        INET_DIAG_INFO, INET_DIAG_SKMEMINFO, TCP_CLOSE_WAIT, TCP_ESTABLISHED, TCP_FIN_WAIT1,
        TCP_FIN_WAIT2, TCP_TIME_WAIT,
    },
    inet::InetResponseHeader,
};

mod request;

pub use request::{
    child_states, children_request, port_filter_bytecode, port_ranges, ChildrenRequest,
    INET_DIAG_REQ_BYTECODE, MAX_PORT_RANGES,
};

use super::diag::{cookie_u64, decode_err, family_of, ListenerIndex, LocalKey};
use super::netlink::NetlinkError;
use crate::model::{Family, ServiceStats, TcpListener};

/// What sockq reads of a child's tcp_info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildInfo {
    /// `tcpi_last_data_recv`: ms since data last arrived (since the child's creation when none
    /// has).
    pub last_data_recv_ms: u32,
    /// `tcpi_last_ack_recv`: ms since an ACK last arrived (since the child's creation when
    /// none has).
    pub last_ack_recv_ms: u32,
    /// `tcpi_bytes_received` (Linux 4.1+): bytes for which rcv_nxt advanced; absent in a
    /// shorter tcp_info.
    pub bytes_received: Option<u64>,
}

/// Offsets in `struct tcp_info` (include/uapi/linux/tcp.h).
const TCPI_LAST_DATA_RECV: usize = 52;
const TCPI_LAST_ACK_RECV: usize = 56;
const TCPI_BYTES_RECEIVED: usize = 128;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parses the fields sockq reads from an INET_DIAG_INFO attribute; `None` when too short.
pub fn parse_tcp_info(value: &[u8]) -> Option<ChildInfo> {
    Some(ChildInfo {
        last_data_recv_ms: u32_at(value, TCPI_LAST_DATA_RECV)?,
        last_ack_recv_ms: u32_at(value, TCPI_LAST_ACK_RECV)?,
        bytes_received: u64_at(value, TCPI_BYTES_RECEIVED),
    })
}

/// The memory a socket is charged for, from INET_DIAG_SKMEMINFO (`SK_MEMINFO_*` u32s):
/// `RMEM_ALLOC` + `WMEM_QUEUED` + `FWD_ALLOC`. `None` when too short.
pub fn parse_skmem_charged(value: &[u8]) -> Option<u64> {
    let rmem_alloc = u32_at(value, 0)?;
    let fwd_alloc = u32_at(value, 16)?;
    let wmem_queued = u32_at(value, 20)?;
    Some(u64::from(rmem_alloc) + u64::from(fwd_alloc) + u64::from(wmem_queued))
}

/// One child as the dump shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildEntry {
    /// Family of the socket (a dual-stack listener's IPv4 children are IPv6, v4-mapped).
    pub family: Family,
    /// Local address.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// TCP state (`TCP_*`; for a timewait socket its substate).
    pub state: u8,
    /// Inode: 0 before accept() (and for orphans and timewait sockets).
    pub inode: u64,
    /// Socket cookie (a timewait socket keeps its full socket's).
    pub cookie: u64,
    /// `idiag_rqueue`: rcv_nxt − copied_seq (a received FIN counts 1: see [`data_unread`]).
    pub rqueue: u32,
    /// `idiag_wqueue`: write_seq − snd_una (an unacknowledged own FIN counts 1: see
    /// [`data_unsent`]).
    pub wqueue: u32,
    /// Charged memory, when SK_MEMINFO came (not for timewait sockets).
    pub mem: Option<u64>,
    /// tcp_info, when asked for and sent.
    pub info: Option<ChildInfo>,
}

/// Size of `struct inet_diag_msg`, after which the attributes start.
const INET_DIAG_MSG_LEN: usize = 72;

/// Decodes one reply of a children dump; a state sockq did not ask for gives `Ok(None)`.
pub fn decode_child(payload: &[u8]) -> Result<Option<ChildEntry>, NetlinkError> {
    let h = InetResponseHeader::parse(payload).map_err(decode_err)?;
    if !matches!(
        h.state,
        TCP_ESTABLISHED | TCP_CLOSE_WAIT | TCP_FIN_WAIT1 | TCP_FIN_WAIT2 | TCP_TIME_WAIT
    ) {
        return Ok(None);
    }
    let mut mem = None;
    let mut info = None;
    if let Some(attrs) = payload.get(INET_DIAG_MSG_LEN..) {
        for nla in NlasIterator::new(attrs) {
            let nla = nla.map_err(decode_err)?;
            match nla.kind() {
                INET_DIAG_SKMEMINFO => mem = parse_skmem_charged(nla.value()),
                INET_DIAG_INFO => info = parse_tcp_info(nla.value()),
                _ => {}
            }
        }
    }
    Ok(Some(ChildEntry {
        family: family_of(h.family)?,
        address: h.socket_id.source_address,
        port: h.socket_id.source_port,
        state: h.state,
        inode: u64::from(h.inode),
        cookie: cookie_u64(&h.socket_id.cookie),
        rqueue: h.recv_queue,
        wqueue: h.send_queue,
        mem,
        info,
    }))
}

/// A cheap hasher for socket cookies (kernel-made, not attacker-chosen; a dump may hold
/// 100,000 of them).
#[derive(Debug, Default, Clone, Copy)]
pub struct CookieHasher(u64);

impl Hasher for CookieHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type CookieMap<V> = HashMap<u64, V, BuildHasherDefault<CookieHasher>>;

/// What sockq remembers of a child between dumps.
#[derive(Debug, Clone, Copy)]
struct Memo {
    /// When it was first seen, moved earlier when tcp_info proves it older (ns).
    born_ns: u64,
    /// Since when its unread bytes have waited without the process reading (ns).
    unread_since_ns: Option<u64>,
    /// copied_seq progress (`tcpi_bytes_received` − rqueue) at the last tcp_info.
    copied: Option<u64>,
    /// Since when its Send-Q has been non-empty without shrinking (ns).
    unsent_since_ns: Option<u64>,
    last_wqueue: u32,
    /// Generation of the pass that saw it last.
    gen: bool,
}

/// The children of one local (family, address, port), from one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTally {
    waiting: u64,
    waiting_oldest_ms: Option<u64>,
    in_service: u64,
    unread_conns: u64,
    unread_bytes: u64,
    unread_oldest_ms: Option<u64>,
    unsent_conns: u64,
    unsent_bytes: u64,
    unsent_oldest_ms: Option<u64>,
    mem_bytes: u64,
    mem_known: bool,
    close_wait: u64,
    close_wait_unaccepted: u64,
    fin_wait1: u64,
    fin_wait2: u64,
    time_wait: u64,
    /// Children first seen in this pass.
    new: u64,
    /// All sockets of the key.
    sockets: u64,
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl KeyTally {
    fn merge(&mut self, o: &KeyTally) {
        self.waiting += o.waiting;
        self.waiting_oldest_ms = max_opt(self.waiting_oldest_ms, o.waiting_oldest_ms);
        self.in_service += o.in_service;
        self.unread_conns += o.unread_conns;
        self.unread_bytes += o.unread_bytes;
        self.unread_oldest_ms = max_opt(self.unread_oldest_ms, o.unread_oldest_ms);
        self.unsent_conns += o.unsent_conns;
        self.unsent_bytes += o.unsent_bytes;
        self.unsent_oldest_ms = max_opt(self.unsent_oldest_ms, o.unsent_oldest_ms);
        self.mem_bytes += o.mem_bytes;
        self.mem_known |= o.mem_known;
        self.close_wait += o.close_wait;
        self.close_wait_unaccepted += o.close_wait_unaccepted;
        self.fin_wait1 += o.fin_wait1;
        self.fin_wait2 += o.fin_wait2;
        self.time_wait += o.time_wait;
        self.new += o.new;
        self.sockets += o.sockets;
    }

    fn stats(&self, group: u32) -> ServiceStats {
        ServiceStats {
            group,
            waiting: self.waiting,
            waiting_oldest_ms: self.waiting_oldest_ms,
            in_service: self.in_service,
            unread_conns: self.unread_conns,
            unread_bytes: self.unread_bytes,
            unread_oldest_ms: self.unread_oldest_ms,
            unsent_conns: self.unsent_conns,
            unsent_bytes: self.unsent_bytes,
            unsent_oldest_ms: self.unsent_oldest_ms,
            mem_bytes: self.mem_known.then_some(self.mem_bytes),
            close_wait: self.close_wait,
            close_wait_unaccepted: self.close_wait_unaccepted,
            fin_wait1: self.fin_wait1,
            fin_wait2: self.fin_wait2,
            time_wait: self.time_wait,
            connections_seen_total: 0,
        }
    }
}

/// The children of one pass (both families), by local key.
#[derive(Debug, Clone, Default)]
pub struct ServiceTally {
    /// Tallies by (family, local address, port).
    pub by_local: HashMap<LocalKey, KeyTally>,
    /// Every socket the kernel sent.
    pub sockets: u64,
    /// Some child was waiting or had unread bytes: the next pass wants tcp_info.
    pub aging: bool,
}

/// Remembers children between dumps by socket cookie: when each was first seen (so a
/// waiting child has an age and a new one is counted once), since when its unread bytes and
/// Send-Q have waited.
#[derive(Debug, Default)]
pub struct ChildTracker {
    memo: CookieMap<Memo>,
    gen: bool,
    /// A complete pass was made: children first seen from now on are new arrivals.
    started: bool,
    /// The last pass found children aging (or none was made yet): ask for tcp_info.
    wants_info: Option<bool>,
}

/// Unread data bytes of a child: `idiag_rqueue` = rcv_nxt − copied_seq, less the peer's FIN
/// in CLOSE-WAIT (a FIN takes a sequence number: rcv_nxt counts it until the process reads the
/// end of the stream, so `ss` shows Recv-Q 1 for an idle CLOSE-WAIT socket).
pub fn data_unread(state: u8, rqueue: u32) -> u32 {
    if state == TCP_CLOSE_WAIT {
        rqueue.saturating_sub(1)
    } else {
        rqueue
    }
}

/// Unsent data bytes of a child: `idiag_wqueue` = write_seq − snd_una, less its own FIN in
/// FIN-WAIT-1 (`tcp_send_fin` advances write_seq for it; acknowledged, the state is FIN-WAIT-2).
pub fn data_unsent(state: u8, wqueue: u32) -> u32 {
    if state == TCP_FIN_WAIT1 {
        wqueue.saturating_sub(1)
    } else {
        wqueue
    }
}

/// Milliseconds from `since` to `now` (both ns).
fn ms_since(now_ns: u64, since_ns: u64) -> u64 {
    now_ns.saturating_sub(since_ns) / 1_000_000
}

impl ChildTracker {
    /// Whether the next pass should ask for tcp_info: on the first pass, and after a pass
    /// that found children waiting in the accept queue or unread bytes (their ages need it).
    pub fn wants_tcp_info(&self) -> bool {
        self.wants_info.unwrap_or(true)
    }

    /// Children remembered.
    pub fn remembered(&self) -> usize {
        self.memo.len()
    }

    /// Starts a pass at CLOCK_MONOTONIC `now_ns`.
    pub fn begin(&mut self, now_ns: u64) -> Pass<'_> {
        self.gen = !self.gen;
        Pass {
            tracker: self,
            now_ns,
            tally: ServiceTally::default(),
        }
    }
}

/// One pass over the children (every family's dump).
#[derive(Debug)]
pub struct Pass<'a> {
    tracker: &'a mut ChildTracker,
    now_ns: u64,
    tally: ServiceTally,
}

impl Pass<'_> {
    /// Takes one child in.
    pub fn add(&mut self, e: &ChildEntry) {
        let now = self.now_ns;
        let gen = self.tracker.gen;
        let started = self.tracker.started;
        self.tally.sockets += 1;
        let t = self
            .tally
            .by_local
            .entry((e.family, e.address, e.port))
            .or_default();
        t.sockets += 1;
        let mut fresh = false;
        let m = self.tracker.memo.entry(e.cookie).or_insert_with(|| {
            fresh = true;
            Memo {
                born_ns: now,
                unread_since_ns: None,
                copied: None,
                unsent_since_ns: None,
                last_wqueue: 0,
                gen,
            }
        });
        m.gen = gen;
        if fresh && started {
            t.new += 1;
        }
        let accepted = e.inode != 0;
        match e.state {
            TCP_ESTABLISHED if !accepted => {
                // Both times count from the child's creation until something arrives: each
                // is a lower bound of its age, as is sockq's first sight.
                if let Some(i) = e.info {
                    let proven = u64::from(i.last_data_recv_ms.max(i.last_ack_recv_ms));
                    m.born_ns = m.born_ns.min(now.saturating_sub(proven * 1_000_000));
                }
                t.waiting += 1;
                t.waiting_oldest_ms = max_opt(t.waiting_oldest_ms, Some(ms_since(now, m.born_ns)));
                self.tally.aging = true;
            }
            TCP_ESTABLISHED => t.in_service += 1,
            TCP_CLOSE_WAIT => {
                t.close_wait += 1;
                if !accepted {
                    t.close_wait_unaccepted += 1;
                }
            }
            TCP_FIN_WAIT1 => t.fin_wait1 += 1,
            TCP_FIN_WAIT2 => t.fin_wait2 += 1,
            TCP_TIME_WAIT => t.time_wait += 1,
            _ => {}
        }
        // Unread bytes of accepted children: the process's to read.
        let copied = e
            .info
            .and_then(|i| i.bytes_received)
            .map(|b| b.saturating_sub(u64::from(e.rqueue)));
        let unread = data_unread(e.state, e.rqueue);
        if accepted && matches!(e.state, TCP_ESTABLISHED | TCP_CLOSE_WAIT) && unread > 0 {
            // The process read something since the last look: the wait starts over.
            if let (Some(now_copied), Some(before)) = (copied, m.copied) {
                if now_copied > before {
                    m.unread_since_ns = None;
                }
            }
            let mut since = *m.unread_since_ns.get_or_insert(now);
            if let Some(i) = e.info {
                // Unread now and nothing arrived for this long: unread at least that long.
                since = since.min(now.saturating_sub(u64::from(i.last_data_recv_ms) * 1_000_000));
                m.unread_since_ns = Some(since);
            }
            t.unread_conns += 1;
            t.unread_bytes += u64::from(unread);
            t.unread_oldest_ms = max_opt(t.unread_oldest_ms, Some(ms_since(now, since)));
            self.tally.aging = true;
        } else {
            m.unread_since_ns = None;
        }
        if copied.is_some() {
            m.copied = copied;
        }
        let unsent = data_unsent(e.state, e.wqueue);
        if unsent > 0 {
            if m.unsent_since_ns.is_none() || unsent < m.last_wqueue {
                m.unsent_since_ns = Some(now);
            }
            m.last_wqueue = unsent;
            t.unsent_conns += 1;
            t.unsent_bytes += u64::from(unsent);
            let since = m.unsent_since_ns.unwrap_or(now);
            t.unsent_oldest_ms = max_opt(t.unsent_oldest_ms, Some(ms_since(now, since)));
        } else {
            m.unsent_since_ns = None;
            m.last_wqueue = 0;
        }
        if let Some(mem) = e.mem {
            t.mem_bytes += mem;
            t.mem_known = true;
        }
    }

    /// Ends the pass. `complete`: every dump of it finished without interruption; only then
    /// are children not seen forgotten (an interrupted dump may have missed some, which would
    /// come back as new arrivals), and is the next pass's first sighting a new arrival.
    pub fn finish(self, complete: bool) -> ServiceTally {
        let gen = self.tracker.gen;
        if complete {
            self.tracker.memo.retain(|_, m| m.gen == gen);
            self.tracker.started = true;
        }
        self.tracker.wants_info = Some(self.tally.aging);
        self.tally
    }
}

/// Writes `service` on every listener from a pass's tally: the children of the local keys
/// [`ListenerIndex::group`] gives to it (an SO_REUSEPORT group shares its numbers, `group` =
/// its size). `connections_seen_total` is left 0; the children first seen in this pass are
/// returned per listener (same order). Also returns the sockets on a listener's port that
/// matched no listener.
pub fn attribute_service(listeners: &mut [TcpListener], tally: &ServiceTally) -> (Vec<u64>, u64) {
    let index = ListenerIndex::new(listeners);
    let mut merged: Vec<KeyTally> = vec![KeyTally::default(); listeners.len()];
    let mut group_size: Vec<u32> = vec![1; listeners.len()];
    let mut unmatched = 0;
    let mut group: Vec<usize> = Vec::new();
    for (&key, t) in &tally.by_local {
        if !index.has_port(key.2) {
            continue; // another port inside a merged filter range
        }
        index.group(listeners, key, &mut group);
        if group.is_empty() {
            unmatched += t.sockets;
            continue;
        }
        let size = u32::try_from(group.len()).unwrap_or(u32::MAX);
        for &i in &group {
            merged[i].merge(t);
            group_size[i] = group_size[i].max(size);
        }
    }
    let mut new = Vec::with_capacity(listeners.len());
    for ((l, t), size) in listeners.iter_mut().zip(&merged).zip(group_size) {
        l.service = Some(t.stats(size));
        new.push(t.new);
    }
    (new, unmatched)
}

#[cfg(test)]
mod tests {
    use super::request::{BC_JMP, BC_S_EQ, BC_S_GE, BC_S_LE};
    use super::*;
    use crate::model::testing::tcp_listener;
    use netlink_packet_core::NetlinkSerializable;
    use netlink_packet_sock_diag::constants::{AF_INET, IPPROTO_TCP};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// `inet_diag_bc_run` (net/ipv4/inet_diag.c) for the operations sockq emits.
    fn run(bc: &[u8], sport: u16) -> bool {
        let mut off = 0usize;
        let mut len = bc.len() as i64;
        while len > 0 {
            let code = bc[off];
            let yes = i64::from(bc[off + 1]);
            let no = i64::from(u16::from_ne_bytes([bc[off + 2], bc[off + 3]]));
            let port = || u16::from_ne_bytes([bc[off + 6], bc[off + 7]]);
            let matched = match code {
                0 => true,
                BC_JMP => false,
                BC_S_GE => sport >= port(),
                BC_S_LE => sport <= port(),
                BC_S_EQ => sport == port(),
                other => panic!("unexpected op {other}"),
            };
            let step = if matched { yes } else { no };
            len -= step;
            off = (off as i64 + step) as usize;
        }
        len == 0
    }

    /// `valid_cc`: a jump target is on the walk of `yes` steps.
    fn valid_cc(bc: &[u8], mut len: i64, cc: i64) -> bool {
        let mut off = 0usize;
        while len >= 0 {
            if cc > len {
                return false;
            }
            if cc == len {
                return true;
            }
            let yes = i64::from(bc[off + 1]);
            if yes < 4 || yes % 4 != 0 {
                return false;
            }
            len -= yes;
            off += yes as usize;
        }
        false
    }

    /// `inet_diag_bc_audit` for the operations sockq emits.
    fn audit(bc: &[u8]) -> bool {
        if bc.len() < 4 {
            return false;
        }
        let total = bc.len() as i64;
        let mut len = total;
        let mut off = 0usize;
        while len > 0 {
            let code = bc[off];
            let yes = i64::from(bc[off + 1]);
            let no = i64::from(u16::from_ne_bytes([bc[off + 2], bc[off + 3]]));
            let min_len = match code {
                BC_S_EQ | BC_S_GE | BC_S_LE => {
                    if len < 8 {
                        return false;
                    }
                    8
                }
                BC_JMP | 0 => 4,
                _ => return false,
            };
            if code != 0 {
                if no < min_len || no > len + 4 || no % 4 != 0 {
                    return false;
                }
                if no < len && !valid_cc(bc, total, len - no) {
                    return false;
                }
            }
            if yes < min_len || yes > len + 4 || yes % 4 != 0 {
                return false;
            }
            off += yes as usize;
            len -= yes;
        }
        len == 0
    }

    fn check(ranges: &[(u16, u16)]) {
        let bc = port_filter_bytecode(ranges);
        assert!(audit(&bc), "{ranges:?} fails the kernel's audit");
        for p in 0..=u16::MAX {
            let want = ranges.iter().any(|&(lo, hi)| lo <= p && p <= hi);
            assert_eq!(run(&bc, p), want, "port {p} with {ranges:?}");
        }
    }

    #[test]
    fn bytecode_accepts_exactly_the_ranges_and_passes_the_audit() {
        check(&[(80, 80)]);
        check(&[(80, 80), (443, 443)]);
        check(&[(0, 0), (65535, 65535)]);
        check(&[(8000, 8100)]);
        check(&[(22, 22), (8000, 8100), (9000, 9000), (10000, 20000)]);
        check(&[(0, 65535)]);
        let many: Vec<(u16, u16)> = (0..MAX_PORT_RANGES as u16)
            .map(|i| (1000 + 7 * i, 1000 + 7 * i + (i % 3)))
            .collect();
        check(&many);
    }

    #[test]
    fn one_port_is_s_eq_then_the_port() {
        let bc = port_filter_bytecode(&[(80, 80)]);
        let mut want = vec![BC_S_EQ, 8];
        want.extend(12u16.to_ne_bytes()); // reject: 4 past the end
        want.extend([0, 0]);
        want.extend(80u16.to_ne_bytes());
        assert_eq!(bc, want);
        assert!(port_filter_bytecode(&[]).is_empty());
    }

    #[test]
    fn port_ranges_join_neighbours_and_merge_the_closest_beyond_the_cap() {
        assert_eq!(
            port_ranges(&[80, 81, 82, 443, 80], 8),
            vec![(80, 82), (443, 443)]
        );
        assert_eq!(
            port_ranges(&[10, 20, 1000, 1005, 60000], 3),
            vec![(10, 20), (1000, 1005), (60000, 60000)]
        );
        assert_eq!(port_ranges(&[10, 20, 30], 1), vec![(10, 30)]);
        assert_eq!(port_ranges(&[65535, 0], 0), vec![(0, 65535)]);
        assert!(port_ranges(&[], 4).is_empty());
        // Every port stays covered, whatever the cap.
        let ports: Vec<u16> = (0..500u32).map(|i| ((i * 7919) % 65536) as u16).collect();
        for cap in [1, 2, 5, 32] {
            let r = port_ranges(&ports, cap);
            assert!(r.len() <= cap);
            assert!(ports
                .iter()
                .all(|&p| r.iter().any(|&(lo, hi)| lo <= p && p <= hi)));
            check(&r);
        }
    }

    #[test]
    fn request_carries_the_bytecode_attribute() {
        let req = children_request(Family::Ipv4, &[(80, 80), (443, 443)], true);
        let mut buf = vec![0xAA; req.buffer_len()];
        req.serialize(&mut buf);
        assert_eq!(buf.len(), 56 + 4 + 20);
        assert_eq!(buf[0], AF_INET);
        assert_eq!(buf[1], IPPROTO_TCP);
        assert_eq!(
            buf[2],
            (1 << (INET_DIAG_SKMEMINFO - 1)) | (1 << (INET_DIAG_INFO - 1))
        );
        let states = u32::from_ne_bytes(buf[4..8].try_into().unwrap());
        assert_eq!(states, child_states().bits());
        assert_eq!(u16::from_ne_bytes([buf[56], buf[57]]), 24);
        assert_eq!(
            u16::from_ne_bytes([buf[58], buf[59]]),
            INET_DIAG_REQ_BYTECODE
        );
        assert_eq!(&buf[60..], req.bytecode());
        let plain = children_request(Family::Ipv6, &[], false);
        assert_eq!(plain.buffer_len(), 56);
    }

    fn child(port: u16, state: u8, inode: u64, cookie: u64) -> ChildEntry {
        ChildEntry {
            family: Family::Ipv4,
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port,
            state,
            inode,
            cookie,
            rqueue: 0,
            wqueue: 0,
            mem: Some(1000),
            info: None,
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn waiting_age_is_first_sight_or_what_tcp_info_proves() {
        let mut t = ChildTracker::default();
        assert!(t.wants_tcp_info());
        let mut p = t.begin(10_000 * MS);
        let mut a = child(80, TCP_ESTABLISHED, 0, 1);
        a.info = Some(ChildInfo {
            last_data_recv_ms: 2300,
            last_ack_recv_ms: 2300,
            bytes_received: Some(0),
        });
        p.add(&a);
        let tally = p.finish(true);
        let k = tally.by_local.values().next().unwrap();
        assert_eq!((k.waiting, k.waiting_oldest_ms), (1, Some(2300)));
        assert!(t.wants_tcp_info(), "children wait: ages need tcp_info");
        // Without tcp_info, the remembered birth keeps counting.
        let mut p = t.begin(11_000 * MS);
        p.add(&child(80, TCP_ESTABLISHED, 0, 1));
        p.add(&child(80, TCP_ESTABLISHED, 0, 2));
        let tally = p.finish(true);
        let k = tally.by_local.values().next().unwrap();
        assert_eq!((k.waiting, k.waiting_oldest_ms, k.new), (2, Some(3300), 1));
        // Accepted: in service, no longer waiting; nothing ages: no tcp_info next time.
        let mut p = t.begin(12_000 * MS);
        p.add(&child(80, TCP_ESTABLISHED, 77, 1));
        p.add(&child(80, TCP_ESTABLISHED, 78, 2));
        let tally = p.finish(true);
        let k = tally.by_local.values().next().unwrap();
        assert_eq!((k.waiting, k.in_service, k.new), (0, 2, 0));
        assert!(!t.wants_tcp_info());
    }

    #[test]
    fn unread_age_restarts_when_the_process_reads() {
        let mut t = ChildTracker::default();
        let info = |data_ms: u32, received: u64| {
            Some(ChildInfo {
                last_data_recv_ms: data_ms,
                last_ack_recv_ms: data_ms,
                bytes_received: Some(received),
            })
        };
        let mut c = child(80, TCP_ESTABLISHED, 5, 9);
        c.rqueue = 100;
        c.info = info(500, 100);
        let mut p = t.begin(1_000 * MS);
        p.add(&c);
        let k = *p.finish(true).by_local.values().next().unwrap();
        assert_eq!(
            (k.unread_conns, k.unread_bytes, k.unread_oldest_ms),
            (1, 100, Some(500))
        );
        // More data kept arriving, nothing read: the wait goes on from the first sight.
        c.rqueue = 300;
        c.info = info(10, 300);
        let mut p = t.begin(3_000 * MS);
        p.add(&c);
        let k = *p.finish(true).by_local.values().next().unwrap();
        assert_eq!(k.unread_oldest_ms, Some(2500));
        // The process read 250 bytes (copied advanced): the wait restarts at the last data.
        c.rqueue = 50;
        c.info = info(1000, 300);
        let mut p = t.begin(4_000 * MS);
        p.add(&c);
        let k = *p.finish(true).by_local.values().next().unwrap();
        assert_eq!(k.unread_oldest_ms, Some(1000));
        // Waiting children's bytes are not the process's to read yet.
        let mut w = child(81, TCP_ESTABLISHED, 0, 10);
        w.rqueue = 10;
        let mut p = t.begin(5_000 * MS);
        p.add(&w);
        let k = *p.finish(true).by_local.values().next().unwrap();
        assert_eq!((k.unread_conns, k.waiting), (0, 1));
    }

    #[test]
    fn fins_are_not_data() {
        assert_eq!(data_unread(TCP_CLOSE_WAIT, 1), 0);
        assert_eq!(data_unread(TCP_CLOSE_WAIT, 101), 100);
        assert_eq!(data_unread(TCP_CLOSE_WAIT, 0), 0);
        assert_eq!(data_unread(TCP_ESTABLISHED, 1), 1);
        assert_eq!(data_unsent(TCP_FIN_WAIT1, 1), 0);
        assert_eq!(data_unsent(TCP_ESTABLISHED, 1), 1);
        let mut t = ChildTracker::default();
        let mut cw = child(80, TCP_CLOSE_WAIT, 5, 1);
        cw.rqueue = 1;
        let mut fw = child(80, TCP_FIN_WAIT1, 0, 2);
        fw.wqueue = 1;
        let mut p = t.begin(0);
        p.add(&cw);
        p.add(&fw);
        let k = *p.finish(true).by_local.values().next().unwrap();
        assert_eq!(
            (k.unread_conns, k.unsent_conns, k.close_wait, k.fin_wait1),
            (0, 0, 1, 1)
        );
    }

    #[test]
    fn unsent_age_counts_while_the_send_queue_does_not_shrink() {
        let mut t = ChildTracker::default();
        let mut c = child(80, TCP_ESTABLISHED, 5, 9);
        c.wqueue = 1000;
        for (at, wq, want) in [
            (0, 1000, 0),
            (1000, 2000, 1000),
            (2000, 2000, 2000),
            (3000, 10, 0),
        ] {
            c.wqueue = wq;
            let mut p = t.begin((10_000 + at) * MS);
            p.add(&c);
            let k = *p.finish(true).by_local.values().next().unwrap();
            assert_eq!(k.unsent_oldest_ms, Some(want), "at {at}");
            assert_eq!(k.unsent_bytes, u64::from(wq));
        }
    }

    #[test]
    fn new_arrivals_count_once_and_not_at_the_first_pass_or_after_an_interrupted_one() {
        let mut t = ChildTracker::default();
        let mut p = t.begin(0);
        p.add(&child(80, TCP_ESTABLISHED, 1, 1));
        assert_eq!(p.finish(false).by_local.values().next().unwrap().new, 0);
        let mut p = t.begin(MS);
        p.add(&child(80, TCP_ESTABLISHED, 1, 1));
        p.add(&child(80, TCP_ESTABLISHED, 2, 2));
        assert_eq!(
            p.finish(true).by_local.values().next().unwrap().new,
            0,
            "baseline"
        );
        let mut p = t.begin(2 * MS);
        p.add(&child(80, TCP_TIME_WAIT, 0, 2)); // the same connection, now TIME-WAIT
        p.add(&child(80, TCP_TIME_WAIT, 0, 3)); // a short one seen only in TIME-WAIT
        let k = *p.finish(true).by_local.values().next().unwrap();
        assert_eq!((k.new, k.time_wait, k.in_service), (1, 2, 0));
        assert_eq!(t.remembered(), 2, "cookie 1 is gone and forgotten");
    }

    #[test]
    fn children_go_to_their_listener_by_the_syn_recv_rules() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let mut ls = vec![
            tcp_listener(80).addr(v4).identity(1, 1).build(),
            tcp_listener(80)
                .addr(Ipv4Addr::UNSPECIFIED.into())
                .identity(2, 2)
                .build(),
            tcp_listener(443)
                .addr(Ipv6Addr::UNSPECIFIED.into())
                .v6only(Some(false))
                .identity(3, 3)
                .build(),
            tcp_listener(443)
                .addr(Ipv6Addr::UNSPECIFIED.into())
                .v6only(Some(false))
                .identity(4, 4)
                .build(),
        ];
        let mut t = ChildTracker::default();
        let mut p = t.begin(0);
        p.add(&child(80, TCP_ESTABLISHED, 1, 1)); // exact 10.0.0.1:80
        let mut lo = child(80, TCP_CLOSE_WAIT, 2, 2);
        lo.address = IpAddr::V4(Ipv4Addr::LOCALHOST); // wildcard 0.0.0.0:80
        p.add(&lo);
        let mut mapped = child(443, TCP_ESTABLISHED, 3, 3);
        mapped.family = Family::Ipv6;
        mapped.address = "::ffff:10.0.0.1".parse().unwrap(); // dual stack, a group of 2
        p.add(&mapped);
        p.add(&child(8080, TCP_ESTABLISHED, 4, 4)); // another port in a merged filter range
        let mut stray = child(80, TCP_ESTABLISHED, 5, 5);
        stray.family = Family::Ipv6;
        stray.address = "2001:db8::1".parse().unwrap(); // port 80, no IPv6 listener
        p.add(&stray);
        let tally = p.finish(true);
        let (new, unmatched) = attribute_service(&mut ls, &tally);
        assert_eq!(new, vec![0, 0, 0, 0]);
        assert_eq!(unmatched, 1);
        let s: Vec<&ServiceStats> = ls.iter().map(|l| l.service.as_ref().unwrap()).collect();
        assert_eq!((s[0].in_service, s[0].close_wait, s[0].group), (1, 0, 1));
        assert_eq!((s[1].in_service, s[1].close_wait), (0, 1));
        assert_eq!((s[2].in_service, s[2].group), (1, 2));
        assert_eq!((s[3].in_service, s[3].group), (1, 2));
        assert_eq!(s[0].mem_bytes, Some(1000));
    }

    #[test]
    fn tcp_info_and_skmeminfo_fields_at_their_offsets() {
        let mut info = vec![0u8; 232];
        info[52..56].copy_from_slice(&1234u32.to_ne_bytes());
        info[56..60].copy_from_slice(&99u32.to_ne_bytes());
        info[128..136].copy_from_slice(&777u64.to_ne_bytes());
        let i = parse_tcp_info(&info).unwrap();
        assert_eq!(
            (i.last_data_recv_ms, i.last_ack_recv_ms, i.bytes_received),
            (1234, 99, Some(777))
        );
        assert_eq!(parse_tcp_info(&info[..104]).unwrap().bytes_received, None);
        assert!(parse_tcp_info(&info[..59]).is_none());
        let mut mem = vec![0u8; 36];
        mem[0..4].copy_from_slice(&100u32.to_ne_bytes()); // rmem_alloc
        mem[4..8].copy_from_slice(&9999u32.to_ne_bytes()); // rcvbuf: a limit, not use
        mem[16..20].copy_from_slice(&20u32.to_ne_bytes()); // fwd_alloc
        mem[20..24].copy_from_slice(&3u32.to_ne_bytes()); // wmem_queued
        assert_eq!(parse_skmem_charged(&mem), Some(123));
        assert_eq!(parse_skmem_charged(&mem[..20]), None);
    }
}
