//! sock_diag requests and the decoding of their replies into sockq's types.
//!
//! Decoding is pure (bytes → values) and tested on datagrams captured from real dumps
//! (tests/fixtures/netlink). Each dump asks the kernel for exactly the states it needs: LISTEN
//! alone for listeners, SYN_RECV alone for requests (asking for more makes the kernel walk the
//! established hash, labs.md §5).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use netlink_packet_core::{NlasIterator, Parseable};
use netlink_packet_sock_diag::{
    constants::{
        AF_INET, AF_INET6, INET_DIAG_SKMEMINFO, INET_DIAG_SKV6ONLY, IPPROTO_TCP, TCP_LISTEN,
        TCP_SYN_RECV,
    },
    inet::{
        nlas::MemInfo, ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags, Timer,
    },
    unix::{self, nlas::UnixDiagName, ShowFlags, UnixRequest, UnixResponse},
    SockDiagMessage,
};

use super::netlink::NetlinkError;
use crate::model::{Family, ListenerKey, Owners, TcpListener, UnixListener};

/// The dump request for TCP listeners of one family, with SK_MEMINFO (for the drop counter).
pub fn listen_request(family: Family) -> SockDiagMessage {
    inet_request(family, StateFlags::LISTEN, ExtensionFlags::SKMEMINFO)
}

/// The dump request for TCP SYN-RECV requests of one family, with no extensions.
pub fn syn_recv_request(family: Family) -> SockDiagMessage {
    inet_request(family, StateFlags::SYN_RECV, ExtensionFlags::empty())
}

fn inet_request(family: Family, states: StateFlags, extensions: ExtensionFlags) -> SockDiagMessage {
    let (af, socket_id) = match family {
        Family::Ipv4 => (AF_INET, SocketId::new_v4()),
        Family::Ipv6 => (AF_INET6, SocketId::new_v6()),
    };
    SockDiagMessage::InetRequest(InetRequest {
        family: af,
        protocol: IPPROTO_TCP,
        extensions,
        states,
        socket_id,
    })
}

/// The dump request for UNIX listeners with their queue lengths and names.
pub fn unix_listen_request() -> SockDiagMessage {
    SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: unix::StateFlags::LISTEN,
        inode: 0,
        show_flags: ShowFlags::NAME | ShowFlags::RQLEN,
        cookie: [0xff; 8],
    })
}

pub(super) fn decode_err(e: impl std::fmt::Display) -> NetlinkError {
    NetlinkError::Decode(e.to_string())
}

pub(super) fn family_of(af: u8) -> Result<Family, NetlinkError> {
    match af {
        AF_INET => Ok(Family::Ipv4),
        AF_INET6 => Ok(Family::Ipv6),
        other => Err(NetlinkError::Decode(format!(
            "unexpected address family {other}"
        ))),
    }
}

/// The kernel's socket cookie: two u32 in host order, low word first (as `ss -e` prints it).
pub fn cookie_u64(cookie: &[u8; 8]) -> u64 {
    let lo = u32::from_ne_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
    let hi = u32::from_ne_bytes([cookie[4], cookie[5], cookie[6], cookie[7]]);
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Size of `struct inet_diag_msg`, after which the attributes start.
const INET_DIAG_MSG_LEN: usize = 72;

/// The two attributes sockq reads from a listener's reply, found without building the crate's
/// attribute list (this runs for every listener, up to 10 times a second).
fn listener_attrs(payload: &[u8]) -> Result<(Option<u64>, Option<bool>), NetlinkError> {
    let mut drops = None;
    let mut v6only = None;
    let Some(attrs) = payload.get(INET_DIAG_MSG_LEN..) else {
        return Ok((None, None));
    };
    for nla in NlasIterator::new(attrs) {
        let nla = nla.map_err(decode_err)?;
        match nla.kind() {
            INET_DIAG_SKMEMINFO => {
                drops = Some(u64::from(
                    MemInfo::parse(nla.value()).map_err(decode_err)?.drops,
                ));
            }
            INET_DIAG_SKV6ONLY => v6only = nla.value().first().map(|b| *b != 0),
            _ => {}
        }
    }
    Ok((drops, v6only))
}

/// Decodes one inet_diag reply of a LISTEN dump. Non-LISTEN messages (which a correct kernel
/// does not send) are skipped with `Ok(None)`. SYN-RECV and owners are filled in later.
pub fn decode_listener(payload: &[u8]) -> Result<Option<TcpListener>, NetlinkError> {
    let h = InetResponseHeader::parse(payload).map_err(decode_err)?;
    if h.state != TCP_LISTEN {
        return Ok(None);
    }
    let (drops, v6only) = listener_attrs(payload)?;
    Ok(Some(TcpListener {
        family: family_of(h.family)?,
        address: h.socket_id.source_address,
        port: h.socket_id.source_port,
        v6only,
        inode: u64::from(h.inode),
        cookie: cookie_u64(&h.socket_id.cookie),
        uid: h.uid,
        accept_queue: h.recv_queue,
        backlog: h.send_queue,
        drops,
        syn_recv: 0,
        syn_recv_group: 1,
        syn_recv_max_retrans: None,
        owners: Owners::Unknown {
            reason: "not looked up".into(),
        },
        service: None,
    }))
}

/// Decodes only a listener's identity and accept-queue depth (the fast poll's needs).
pub fn decode_listener_depth(payload: &[u8]) -> Result<Option<(ListenerKey, u32)>, NetlinkError> {
    let h = InetResponseHeader::parse(payload).map_err(decode_err)?;
    if h.state != TCP_LISTEN {
        return Ok(None);
    }
    Ok(Some((
        ListenerKey {
            inode: u64::from(h.inode),
            cookie: cookie_u64(&h.socket_id.cookie),
        },
        h.recv_queue,
    )))
}

/// The dump request for TCP listeners of one family without extensions (depths only).
pub fn listen_depth_request(family: Family) -> SockDiagMessage {
    inet_request(family, StateFlags::LISTEN, ExtensionFlags::empty())
}

/// What identifies one listener to the kernel for an exact request: the local address and port
/// it is bound to, the device it is bound to (0: none) and its cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactListener {
    /// Address family of the socket.
    pub family: Family,
    /// Bound address (unspecified for a wildcard listener).
    pub address: IpAddr,
    /// Bound port.
    pub port: u16,
    /// `SO_BINDTODEVICE` interface index, 0 when unbound (the lookup matches it).
    pub ifindex: u32,
    /// The socket's cookie: the kernel answers ENOENT when the socket it finds has another.
    pub cookie: u64,
}

/// The exact request for one listener's depth and backlog (no extensions), sent without
/// NLM_F_DUMP. The kernel (inet_diag_find_one_icsk) runs its receive-path lookup with the
/// request's source as the local end and an all-zero remote end, which finds the listener
/// bound there, then compares cookies: O(1), whatever the number of listeners. A member of an
/// SO_REUSEPORT group other than the one the lookup's hash picks answers ENOENT.
pub fn listener_exact_request(l: &ExactListener) -> SockDiagMessage {
    let mut request = inet_request(l.family, StateFlags::LISTEN, ExtensionFlags::empty());
    if let SockDiagMessage::InetRequest(r) = &mut request {
        r.socket_id.source_address = l.address;
        r.socket_id.source_port = l.port;
        r.socket_id.interface_id = l.ifindex;
        r.socket_id.cookie = cookie_bytes(l.cookie);
    }
    request
}

/// The dump request for the depths of one family's listeners on one port: the kernel still
/// walks its listening hash but builds a message only for sockets on that port (the fallback
/// for listeners an exact request cannot reach).
pub fn listen_port_depth_request(family: Family, port: u16) -> SockDiagMessage {
    let mut request = listen_depth_request(family);
    if let SockDiagMessage::InetRequest(r) = &mut request {
        r.socket_id.source_port = port;
    }
    request
}

/// The inverse of [`cookie_u64`].
pub fn cookie_bytes(cookie: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&(cookie as u32).to_ne_bytes());
    b[4..].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
    b
}

/// Offset of `id.idiag_if` in `struct inet_diag_msg` (after family, state, timer, retrans, the
/// two ports and the two 16-byte addresses).
const IDIAG_IF_OFFSET: usize = 40;

/// The interface index a socket is bound to, from its inet_diag reply (0: none or too short).
pub fn reply_ifindex(payload: &[u8]) -> u32 {
    payload
        .get(IDIAG_IF_OFFSET..IDIAG_IF_OFFSET + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

/// One SYN-RECV request as far as sockq needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynRecvEntry {
    /// Family of the request (that of its listener: a dual-stack listener's IPv4 requests are
    /// IPv6 with a v4-mapped address).
    pub family: Family,
    /// The local address the SYN was sent to.
    pub address: IpAddr,
    /// The local port.
    pub port: u16,
    /// SYN-ACK retransmissions so far.
    pub retrans: u8,
}

/// Decodes one reply of a SYN_RECV dump (header only: no attributes are parsed).
pub fn decode_syn_recv(payload: &[u8]) -> Result<Option<SynRecvEntry>, NetlinkError> {
    let h = InetResponseHeader::parse(payload).map_err(decode_err)?;
    if h.state != TCP_SYN_RECV {
        return Ok(None);
    }
    let retrans = match h.timer {
        Some(Timer::Retransmit(_, n)) => n,
        _ => 0,
    };
    Ok(Some(SynRecvEntry {
        family: family_of(h.family)?,
        address: h.socket_id.source_address,
        port: h.socket_id.source_port,
        retrans,
    }))
}

/// Decodes one unix_diag reply of a LISTEN dump.
pub fn decode_unix_listener(payload: &[u8]) -> Result<Option<UnixListener>, NetlinkError> {
    let resp = UnixResponse::parse(payload).map_err(decode_err)?;
    if resp.header.state != TCP_LISTEN {
        return Ok(None);
    }
    let name = match resp.name() {
        Some(UnixDiagName::Pathname(p)) => p.to_string_lossy().into_owned(),
        // ss prints an abstract name with a leading '@'.
        Some(UnixDiagName::Abstract(a)) => format!("@{}", String::from_utf8_lossy(a)),
        None => String::new(),
    };
    Ok(Some(UnixListener {
        name,
        inode: u64::from(resp.header.inode),
        accept_queue: resp.number_of_pending_connection().unwrap_or(0),
        backlog: resp.max_number_of_pending_connection().unwrap_or(0),
        owners: Owners::Unknown {
            reason: "not looked up".into(),
        },
    }))
}

/// SYN-RECV requests aggregated by local (address, port).
#[derive(Debug, Default, Clone)]
pub struct SynRecvTally {
    /// (family, local address, port) → (requests, highest retransmit count).
    pub by_local: HashMap<LocalKey, (u64, u8)>,
    /// All requests seen.
    pub total: u64,
}

impl SynRecvTally {
    /// Counts one request.
    pub fn add(&mut self, e: SynRecvEntry) {
        self.add_run((e.family, e.address, e.port), 1, e.retrans);
    }

    /// Counts `n` requests to the same listener, the highest retransmit count among them `retrans`.
    fn add_run(&mut self, key: LocalKey, n: u64, retrans: u8) {
        self.total += n;
        let slot = self.by_local.entry(key).or_insert((0, 0));
        slot.0 += n;
        slot.1 = slot.1.max(retrans);
    }
}

/// (family, local address, port): the key of a socket's listener (in a [`SynRecvTally`], and
/// for the service dump).
pub type LocalKey = (Family, IpAddr, u16);

/// Builds a [`SynRecvTally`] one run at a time. The kernel dumps the established hash bucket by
/// bucket, and a listener's requests hash together often enough that the dump lists them in runs
/// (100,000 requests to one listener: runs of many); the map is touched once per run instead of
/// once per request. Gives exactly what [`SynRecvTally::add`] per request gives.
#[derive(Debug, Default)]
pub struct SynRecvRuns {
    tally: SynRecvTally,
    /// The run being counted: key, requests, highest retransmit count.
    run: Option<(LocalKey, u64, u8)>,
}

impl SynRecvRuns {
    /// Counts one request.
    pub fn add(&mut self, e: SynRecvEntry) {
        let key = (e.family, e.address, e.port);
        match &mut self.run {
            Some((k, n, r)) if *k == key => {
                *n += 1;
                *r = (*r).max(e.retrans);
            }
            run => {
                if let Some((k, n, r)) = run.replace((key, 1, e.retrans)) {
                    self.tally.add_run(k, n, r);
                }
            }
        }
    }

    /// The tally of every request added.
    #[must_use]
    pub fn finish(mut self) -> SynRecvTally {
        if let Some((k, n, r)) = self.run.take() {
            self.tally.add_run(k, n, r);
        }
        self.tally
    }
}

/// The IPv4 address of a v4-mapped IPv6 address.
pub fn v4_mapped(a: &IpAddr) -> Option<IpAddr> {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

/// Listeners by port: the candidates of a socket's local port, for [`ListenerIndex::group`].
#[derive(Debug, Default)]
pub struct ListenerIndex {
    by_port: crate::model::FastMap<u16, Vec<usize>>,
}

impl ListenerIndex {
    /// Indexes `listeners` by port.
    pub fn new(listeners: &[TcpListener]) -> Self {
        let mut by_port: crate::model::FastMap<u16, Vec<usize>> = Default::default();
        for (i, l) in listeners.iter().enumerate() {
            by_port.entry(l.port).or_default().push(i);
        }
        Self { by_port }
    }

    /// True when some listener has this port.
    pub fn has_port(&self, port: u16) -> bool {
        self.by_port.contains_key(&port)
    }

    /// The listeners (indices into the slice indexed) a socket with local address `addr` and
    /// port `port` of `family` belongs to, into `group` (cleared first): the most specific
    /// listeners on its port — those bound to its exact local address; else the wildcard
    /// (0.0.0.0 / ::) listeners of its family; else, for an IPv4 socket, IPv6 wildcard
    /// listeners that are not v6only (dual stack). Several (SO_REUSEPORT): the socket belongs
    /// to the group, not to one of them.
    pub fn group(
        &self,
        listeners: &[TcpListener],
        (family, addr, port): LocalKey,
        group: &mut Vec<usize>,
    ) {
        group.clear();
        let candidates: &[usize] = self.by_port.get(&port).map_or(&[], Vec::as_slice);
        let mapped = v4_mapped(&addr);
        // 1. Exact local address (an IPv4 address also matches a listener bound to its v4-mapped
        //    form, and a v4-mapped address an IPv4-bound listener).
        group.extend(candidates.iter().copied().filter(|&i| {
            let l = &listeners[i];
            l.address == addr
                || mapped.is_some_and(|m| l.address == m)
                || v4_mapped(&l.address).is_some_and(|m| m == addr)
        }));
        // 2. Wildcard listeners of the socket's family.
        if group.is_empty() {
            group.extend(candidates.iter().copied().filter(|&i| {
                let l = &listeners[i];
                l.family == family && l.address.is_unspecified()
            }));
        }
        // 3. An IPv4 socket on a dual-stack [::] listener.
        if group.is_empty() && family == Family::Ipv4 {
            group.extend(candidates.iter().copied().filter(|&i| {
                let l = &listeners[i];
                l.address == IpAddr::V6(Ipv6Addr::UNSPECIFIED) && l.v6only != Some(true)
            }));
        }
    }
}

/// Matches SYN-RECV requests to listeners and writes `syn_recv`, `syn_recv_group` and
/// `syn_recv_max_retrans` on each listener. Returns the number of requests that matched none.
///
/// A request belongs to the listeners [`ListenerIndex::group`] gives for its local address.
/// When that set has several sockets (SO_REUSEPORT), the count is the group's: each member
/// shows it, with `syn_recv_group` = the group's size.
pub fn attribute_syn_recv(listeners: &mut [TcpListener], tally: &SynRecvTally) -> u64 {
    for l in listeners.iter_mut() {
        l.syn_recv = 0;
        l.syn_recv_group = 1;
        l.syn_recv_max_retrans = None;
    }
    if tally.by_local.is_empty() {
        return 0;
    }
    let index = ListenerIndex::new(listeners);
    let mut unmatched = 0;
    let mut group: Vec<usize> = Vec::new();
    for (&key, &(count, retrans)) in &tally.by_local {
        index.group(listeners, key, &mut group);
        if group.is_empty() {
            unmatched += count;
            continue;
        }
        let size = u32::try_from(group.len()).unwrap_or(u32::MAX);
        for &i in &group {
            let l = &mut listeners[i];
            l.syn_recv += count;
            l.syn_recv_group = l.syn_recv_group.max(size);
            l.syn_recv_max_retrans =
                Some(l.syn_recv_max_retrans.map_or(retrans, |r| r.max(retrans)));
        }
    }
    unmatched
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn listener(addr: IpAddr, port: u16) -> TcpListener {
        crate::model::testing::tcp_listener(port)
            .addr(addr)
            .v6only(addr.is_ipv6().then_some(false))
            .identity(1, 1)
            .build()
    }

    fn req(addr: IpAddr, port: u16, retrans: u8) -> SynRecvEntry {
        SynRecvEntry {
            family: Family::of(&addr),
            address: addr,
            port,
            retrans,
        }
    }

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1));
    const ANY4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    const ANY6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

    #[test]
    fn exact_address_wins_over_wildcard() {
        let mut ls = vec![listener(V4, 80), listener(ANY4, 80), listener(ANY4, 81)];
        let mut t = SynRecvTally::default();
        for _ in 0..3 {
            t.add(req(V4, 80, 1));
        }
        t.add(req(IpAddr::V4(Ipv4Addr::LOCALHOST), 80, 4));
        assert_eq!(attribute_syn_recv(&mut ls, &t), 0);
        assert_eq!((ls[0].syn_recv, ls[0].syn_recv_max_retrans), (3, Some(1)));
        assert_eq!((ls[1].syn_recv, ls[1].syn_recv_max_retrans), (1, Some(4)));
        assert_eq!((ls[2].syn_recv, ls[2].syn_recv_max_retrans), (0, None));
    }

    #[test]
    fn runs_tally_equals_the_per_request_tally() {
        // Runs, interleavings, a key coming back after others, retransmit maxima inside runs.
        let a = req(V4, 80, 0);
        let b = req(IpAddr::V4(Ipv4Addr::LOCALHOST), 80, 2);
        let c = req("2001:db8::1".parse().unwrap(), 443, 5);
        let d = req(V4, 81, 7);
        let seqs: Vec<Vec<SynRecvEntry>> = vec![
            vec![],
            vec![a],
            vec![a, a, a, b, b, a, c, c, c, c, a, d, b],
            vec![c, a, c, a, c],
            vec![d; 1000],
        ];
        for seq in seqs {
            let mut one = SynRecvTally::default();
            let mut runs = SynRecvRuns::default();
            for e in &seq {
                one.add(*e);
                runs.add(*e);
            }
            let runs = runs.finish();
            assert_eq!(runs.total, one.total, "{seq:?}");
            assert_eq!(runs.by_local, one.by_local, "{seq:?}");
        }
        // Retransmit maximum found in the middle of a run.
        let mut runs = SynRecvRuns::default();
        for r in [1, 6, 2] {
            runs.add(req(V4, 80, r));
        }
        assert_eq!(runs.finish().by_local[&(Family::Ipv4, V4, 80)], (3, 6));
    }

    #[test]
    fn reuseport_group_shares_the_count() {
        let mut ls = vec![listener(ANY4, 80), listener(ANY4, 80)];
        let mut t = SynRecvTally::default();
        for _ in 0..5 {
            t.add(req(V4, 80, 0));
        }
        attribute_syn_recv(&mut ls, &t);
        for l in &ls {
            assert_eq!((l.syn_recv, l.syn_recv_group), (5, 2));
        }
    }

    #[test]
    fn dual_stack_listener_takes_mapped_and_v4_requests() {
        let mut ls = vec![listener(ANY6, 8080)];
        let mut t = SynRecvTally::default();
        t.add(req("::ffff:10.88.0.1".parse().unwrap(), 8080, 0));
        t.add(req(V4, 8080, 0));
        t.add(req("2001:db8::1".parse().unwrap(), 8080, 2));
        t.add(req(V4, 9999, 0));
        assert_eq!(attribute_syn_recv(&mut ls, &t), 1);
        assert_eq!(ls[0].syn_recv, 3);
        assert_eq!(t.total, 4);
    }

    #[test]
    fn exact_request_carries_the_listener_and_round_trips_its_cookie() {
        for cookie in [0u64, 1, 0x1234_5678_9abc_def0, u64::MAX] {
            assert_eq!(cookie_u64(&cookie_bytes(cookie)), cookie);
        }
        let l = ExactListener {
            family: Family::Ipv6,
            address: "::1".parse().unwrap(),
            port: 8080,
            ifindex: 3,
            cookie: 0xdead_beef_0000_0042,
        };
        let SockDiagMessage::InetRequest(r) = listener_exact_request(&l) else {
            panic!("not an inet request");
        };
        assert_eq!(r.family, AF_INET6);
        assert_eq!(r.socket_id.source_address, l.address);
        assert_eq!(r.socket_id.source_port, 8080);
        assert_eq!(r.socket_id.interface_id, 3);
        assert_eq!(cookie_u64(&r.socket_id.cookie), l.cookie);
        assert!(r.extensions.is_empty());
        let SockDiagMessage::InetRequest(p) = listen_port_depth_request(Family::Ipv4, 443) else {
            panic!("not an inet request");
        };
        assert_eq!((p.family, p.socket_id.source_port), (AF_INET, 443));
        let mut payload = vec![0u8; 72];
        payload[40..44].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(reply_ifindex(&payload), 7);
        assert_eq!(reply_ifindex(&payload[..42]), 0);
    }

    #[test]
    fn cookie_is_low_word_first() {
        let mut c = [0u8; 8];
        c[..4].copy_from_slice(&0x0000_1234u32.to_ne_bytes());
        c[4..].copy_from_slice(&0x0000_0001u32.to_ne_bytes());
        assert_eq!(cookie_u64(&c), 0x1_0000_1234);
    }
}
