//! The service dump's request: the non-LISTEN states of a listener's children, and the kernel
//! filter on the listeners' ports as inet_diag bytecode ([`port_ranges`],
//! [`port_filter_bytecode`]; the semantics of `inet_diag_bc_run`/`inet_diag_bc_audit` in
//! net/ipv4/inet_diag.c), carried in the request's attribute ([`ChildrenRequest`]).

use netlink_packet_core::{Emitable, NetlinkSerializable};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SOCK_DIAG_BY_FAMILY,
};

use crate::model::Family;

/// The states of a listener's children sockq asks for: ESTABLISHED (waiting and in service),
/// CLOSE-WAIT, FIN-WAIT-1/2 and TIME-WAIT (with this bit the kernel also dumps
/// `inet_timewait_sock`s).
pub fn child_states() -> StateFlags {
    StateFlags::ESTABLISHED
        | StateFlags::CLOSE_WAIT
        | StateFlags::FIN_WAIT1
        | StateFlags::FIN_WAIT2
        | StateFlags::TIME_WAIT
}

/// Most port ranges in the kernel-side filter: the kernel runs the filter on every socket of
/// the walk, two comparisons per range; more listener ports are merged into wider ranges (the
/// matching to listeners drops the extra sockets).
pub const MAX_PORT_RANGES: usize = 32;

/// `INET_DIAG_REQ_BYTECODE`, the request attribute holding the filter.
pub const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// Bytecode operations (`enum` in include/uapi/linux/inet_diag.h).
pub(super) const BC_JMP: u8 = 1;
pub(super) const BC_S_GE: u8 = 2;
pub(super) const BC_S_LE: u8 = 3;
pub(super) const BC_S_EQ: u8 = 11;

/// The listener ports as at most `max` ranges (inclusive), sorted: adjacent ports form one
/// range, and beyond `max` ranges the closest ones are merged (the widest gaps stay gaps).
pub fn port_ranges(ports: &[u16], max: usize) -> Vec<(u16, u16)> {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for p in sorted {
        match ranges.last_mut() {
            Some((_, hi)) if u32::from(*hi) + 1 == u32::from(p) => *hi = p,
            _ => ranges.push((p, p)),
        }
    }
    let max = max.max(1);
    if ranges.len() <= max {
        return ranges;
    }
    // Keep the max-1 widest gaps as boundaries; merge across the others.
    let mut gaps: Vec<(u16, usize)> = ranges
        .windows(2)
        .enumerate()
        .map(|(i, w)| (w[1].0 - w[0].1, i))
        .collect();
    gaps.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut cuts: Vec<usize> = gaps.iter().take(max - 1).map(|g| g.1).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(max);
    let mut start = 0;
    for i in cuts {
        out.push((ranges[start].0, ranges[i].1));
        start = i + 1;
    }
    out.push((ranges[start].0, ranges[ranges.len() - 1].1));
    out
}

fn op(out: &mut Vec<u8>, code: u8, yes: u8, no: usize) {
    out.push(code);
    out.push(yes);
    out.extend(u16::try_from(no).unwrap_or(u16::MAX).to_ne_bytes());
}

/// The inet_diag bytecode that accepts a socket whose local port is in one of `ranges`.
///
/// Each range is an alternative: `S_EQ port` for one port, `S_GE lo` then `S_LE hi` for more;
/// a comparison is an operation `{code, yes, no}` followed by one whose `no` holds the port
/// (host order). A failed comparison jumps to the next alternative (after the last one, 4
/// bytes past the end: the kernel rejects a socket whose program does not end exactly at its
/// length); a matched alternative is followed by `JMP` to the end (accept). Every `yes` is the
/// operation's own length, so `inet_diag_bc_audit`'s walk meets every operation and every
/// jump target. Empty for no ranges (no filter).
pub fn port_filter_bytecode(ranges: &[(u16, u16)]) -> Vec<u8> {
    let cond_len = |&(lo, hi): &(u16, u16)| if lo == hi { 8 } else { 16 };
    let n = ranges.len();
    let alt_len: Vec<usize> = ranges
        .iter()
        .enumerate()
        .map(|(i, r)| cond_len(r) + if i + 1 < n { 4 } else { 0 })
        .collect();
    let total: usize = alt_len.iter().sum();
    let mut out = Vec::with_capacity(total);
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        let next = out.len() + alt_len[i];
        let fail = if i + 1 < n { next } else { total + 4 };
        let conds: &[(u8, u16)] = if lo == hi {
            &[(BC_S_EQ, lo)]
        } else {
            &[(BC_S_GE, lo), (BC_S_LE, hi)]
        };
        for &(code, port) in conds {
            let here = out.len();
            op(&mut out, code, 8, fail - here);
            op(&mut out, 0, 0, usize::from(port));
        }
        if i + 1 < n {
            let here = out.len();
            op(&mut out, BC_JMP, 4, total - here);
        }
    }
    out
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// An inet_diag dump request with a bytecode filter attribute (netlink-packet-sock-diag has
/// no builder for it: the attribute is written as raw bytes after `inet_diag_req_v2`).
#[derive(Debug, Clone)]
pub struct ChildrenRequest {
    request: InetRequest,
    bytecode: Vec<u8>,
}

impl NetlinkSerializable for ChildrenRequest {
    fn message_type(&self) -> u16 {
        SOCK_DIAG_BY_FAMILY
    }

    fn buffer_len(&self) -> usize {
        let attr = if self.bytecode.is_empty() {
            0
        } else {
            align4(4 + self.bytecode.len())
        };
        self.request.buffer_len() + attr
    }

    fn serialize(&self, buffer: &mut [u8]) {
        let n = self.request.buffer_len();
        self.request.emit(&mut buffer[..n]);
        if self.bytecode.is_empty() {
            return;
        }
        let len = u16::try_from(4 + self.bytecode.len()).unwrap_or(u16::MAX);
        buffer[n..n + 2].copy_from_slice(&len.to_ne_bytes());
        buffer[n + 2..n + 4].copy_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        let end = n + 4 + self.bytecode.len();
        buffer[n + 4..end].copy_from_slice(&self.bytecode);
        buffer[end..].fill(0);
    }
}

impl ChildrenRequest {
    /// The filter's bytecode (empty: none).
    pub fn bytecode(&self) -> &[u8] {
        &self.bytecode
    }
}

/// The dump request for the children of one family: the states of [`child_states`], local
/// ports in `ranges`, with SK_MEMINFO, and tcp_info when `tcp_info`.
pub fn children_request(family: Family, ranges: &[(u16, u16)], tcp_info: bool) -> ChildrenRequest {
    let (af, socket_id) = match family {
        Family::Ipv4 => (AF_INET, SocketId::new_v4()),
        Family::Ipv6 => (AF_INET6, SocketId::new_v6()),
    };
    let mut extensions = ExtensionFlags::SKMEMINFO;
    if tcp_info {
        extensions |= ExtensionFlags::INFO;
    }
    ChildrenRequest {
        request: InetRequest {
            family: af,
            protocol: IPPROTO_TCP,
            extensions,
            states: child_states(),
            socket_id,
        },
        bytecode: port_filter_bytecode(ranges),
    }
}
