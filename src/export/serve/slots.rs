//! The HTTP server's connection slots: at most `max` connections, and at most `per_peer` from
//! one peer. When a new connection would go over a limit, the oldest *idle* connection under
//! that limit (one that has not sent a complete request head, so nothing is being answered on
//! it) yields its slot: it is closed and the new one is served. A connection being answered is
//! never cut for this; when none can yield, the new connection is refused.
//!
//! So one client that keeps many connections open without sending anything (reopening each as
//! soon as it is closed) cannot keep a scraper out: each new connection, the scraper's included,
//! takes the slot of the oldest idle one, and a scraper's connection, which sends its request
//! at once, is being answered before it is the oldest.
//!
//! Pure bookkeeping, no I/O: the accept loop asks [`Slots::admit`]; the connection's task
//! reports its phase on its [`Conn`], waits on [`Conn::closed`], and gives its slot back with
//! [`Slots::release`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::export::prometheus::ConnectionStats;

/// The limit a new connection met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--max-connections`.
    Global,
    /// `--max-connections-per-peer`.
    PerPeer,
}

/// Waiting for a request head (a new connection, or one kept alive between requests).
const IDLE: u8 = 0;
/// A request head arrived; its response is not out yet.
const ANSWERING: u8 = 1;
/// hyper has taken the whole response body; it may still sit in hyper's write buffer.
const QUEUED: u8 = 2;

/// One connection as its slot sees it: its phase (set by the connection's task) and the signal
/// that it must close.
#[derive(Debug, Default)]
pub struct Conn {
    phase: AtomicU8,
    close: Notify,
}

impl Conn {
    /// A complete request head arrived: the connection is being answered.
    pub fn request_started(&self) {
        self.phase.store(ANSWERING, Ordering::Relaxed);
    }

    /// hyper has taken the whole response body (it may not be written to the socket yet).
    pub fn response_queued(&self) {
        let _ =
            self.phase
                .compare_exchange(ANSWERING, QUEUED, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// hyper's write buffer is empty (it flushes the socket only then): a queued response is
    /// out, and the connection is idle until the next request head.
    pub fn flushed(&self) {
        let _ = self
            .phase
            .compare_exchange(QUEUED, IDLE, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn is_idle(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == IDLE
    }

    /// Resolves once the connection has yielded its slot: its task must close it.
    pub async fn closed(&self) {
        self.close.notified().await;
    }
}

/// What to do with a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Serve it in slot `id`. `made_room` names the limit that made an idle connection yield.
    Admitted {
        /// Give it back with [`Slots::release`].
        id: u64,
        /// The connection's shared state.
        conn: Arc<Conn>,
        /// Set when an idle connection was closed to make room.
        made_room: Option<Limit>,
    },
    /// Close it at once: the limit is reached and every connection under it is being answered.
    Refused(Limit),
}

#[derive(Debug)]
struct Slot {
    id: u64,
    peer: IpAddr,
    conn: Arc<Conn>,
}

/// The open connections, in the order they were accepted (ids increase), never more than the
/// global limit; and how many each peer has.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    /// None when it is not below `max` (a peer with `max` connections meets the global limit).
    per_peer: Option<usize>,
    next_id: u64,
    open: VecDeque<Slot>,
    peers: HashMap<IpAddr, usize>,
    stats: ConnectionStats,
}

/// The peer a connection counts against: an IPv4 address (IPv4-mapped IPv6 included), or an
/// IPv6 /64 — one host usually has a whole /64, so a per-address limit would not hold it.
pub fn peer_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

impl Slots {
    /// At most `max` connections and `per_peer` from one peer (both at least 1; a `per_peer`
    /// not below `max` is no limit of its own).
    pub fn new(max: usize, per_peer: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            per_peer: Some(per_peer.max(1)).filter(|&n| n < max),
            next_id: 0,
            open: VecDeque::new(),
            peers: HashMap::new(),
            stats: ConnectionStats::default(),
        }
    }

    /// Counts since start.
    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }

    /// A new connection from `ip`: a slot for it, after closing the oldest idle connection of
    /// the same peer (at its limit) or of anyone (at the global limit); or a refusal when none
    /// is idle.
    pub fn admit(&mut self, ip: IpAddr) -> Admission {
        let peer = peer_of(ip);
        let of_peer = self.peers.get(&peer).copied().unwrap_or(0);
        let limit = if self.per_peer.is_some_and(|n| of_peer >= n) {
            Some(Limit::PerPeer)
        } else if self.open.len() >= self.max {
            Some(Limit::Global)
        } else {
            None
        };
        if let Some(limit) = limit {
            let oldest_idle = self
                .open
                .iter()
                .position(|s| s.conn.is_idle() && (limit == Limit::Global || s.peer == peer));
            let Some(slot) = oldest_idle.and_then(|i| self.open.remove(i)) else {
                match limit {
                    Limit::Global => self.stats.refused_global += 1,
                    Limit::PerPeer => self.stats.refused_per_peer += 1,
                }
                return Admission::Refused(limit);
            };
            self.forget(&slot);
            slot.conn.close.notify_one();
            match limit {
                Limit::Global => self.stats.made_room_global += 1,
                Limit::PerPeer => self.stats.made_room_per_peer += 1,
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let conn = Arc::new(Conn::default());
        self.open.push_back(Slot {
            id,
            peer,
            conn: conn.clone(),
        });
        *self.peers.entry(peer).or_insert(0) += 1;
        Admission::Admitted {
            id,
            conn,
            made_room: limit,
        }
    }

    /// The connection in slot `id` ended (a no-op when it already yielded the slot).
    pub fn release(&mut self, id: u64) {
        if let Ok(i) = self.open.binary_search_by_key(&id, |s| s.id) {
            if let Some(slot) = self.open.remove(i) {
                self.forget(&slot);
            }
        }
    }

    fn forget(&mut self, slot: &Slot) {
        if let Some(n) = self.peers.get_mut(&slot.peer) {
            *n -= 1;
            if *n == 0 {
                self.peers.remove(&slot.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Admits `n` connections from `from`; their ids and shared states.
    fn fill(slots: &mut Slots, from: &str, n: usize) -> Vec<(u64, Arc<Conn>)> {
        (0..n)
            .map(|_| match slots.admit(ip(from)) {
                Admission::Admitted {
                    id,
                    conn,
                    made_room: None,
                } => (id, conn),
                other => panic!("not admitted freely: {other:?}"),
            })
            .collect()
    }

    /// True once `conn` was told to close.
    fn told_to_close(conn: &Conn) -> bool {
        let closed = std::pin::pin!(conn.closed());
        let waker = std::task::Waker::noop();
        closed
            .poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_yields() {
        let mut slots = Slots::new(3, 3);
        let held = fill(&mut slots, "127.0.0.1", 3);
        // The oldest is being answered: the next oldest idle one yields.
        held[0].1.request_started();
        let Admission::Admitted {
            made_room: Some(Limit::Global),
            ..
        } = slots.admit(ip("127.0.0.2"))
        else {
            panic!("no room made");
        };
        assert!(!told_to_close(&held[0].1));
        assert!(told_to_close(&held[1].1));
        assert!(!told_to_close(&held[2].1));
        assert_eq!(slots.open.len(), 3);
        assert_eq!(slots.stats().made_room_global, 1);
        // The yielded slot's own release later changes nothing.
        slots.release(held[1].0);
        assert_eq!(slots.open.len(), 3);
        assert_eq!(slots.peers[&ip("127.0.0.1")], 2);
    }

    #[test]
    fn a_connection_is_busy_until_its_response_is_flushed() {
        let mut slots = Slots::new(2, 1);
        let held = fill(&mut slots, "::1", 1);
        let conn = &held[0].1;
        conn.request_started();
        assert!(matches!(
            slots.admit(ip("::1")),
            Admission::Refused(Limit::PerPeer)
        ));
        // A flush before the whole body was taken (the head went out first) is not the end.
        conn.flushed();
        conn.response_queued();
        assert!(matches!(
            slots.admit(ip("::1")),
            Admission::Refused(Limit::PerPeer)
        ));
        conn.flushed();
        assert!(matches!(
            slots.admit(ip("::1")),
            Admission::Admitted {
                made_room: Some(Limit::PerPeer),
                ..
            }
        ));
        assert!(told_to_close(conn));
        assert_eq!(slots.stats().refused_per_peer, 2);
        assert_eq!(slots.stats().made_room_per_peer, 1);
    }

    #[test]
    fn a_peer_at_its_limit_yields_its_own_oldest_idle_or_is_refused() {
        let mut slots = Slots::new(10, 2);
        let other = fill(&mut slots, "127.0.0.3", 1);
        let mine = fill(&mut slots, "127.0.0.2", 2);
        assert!(matches!(
            slots.admit(ip("127.0.0.2")),
            Admission::Admitted {
                made_room: Some(Limit::PerPeer),
                ..
            }
        ));
        assert!(told_to_close(&mine[0].1));
        assert!(
            !told_to_close(&other[0].1),
            "another peer's older one stays"
        );
        // Both of its slots busy: refused, while another peer is still admitted.
        for s in slots.open.iter().filter(|s| s.peer == ip("127.0.0.2")) {
            s.conn.request_started();
        }
        assert!(matches!(
            slots.admit(ip("127.0.0.2")),
            Admission::Refused(Limit::PerPeer)
        ));
        fill(&mut slots, "127.0.0.4", 2);
        assert_eq!(slots.open.len(), 5);
    }

    #[test]
    fn a_full_house_of_busy_connections_refuses_and_release_frees() {
        let mut slots = Slots::new(2, 2);
        let held = fill(&mut slots, "10.0.0.1", 2);
        for (_, c) in &held {
            c.request_started();
        }
        assert!(matches!(
            slots.admit(ip("10.0.0.9")),
            Admission::Refused(Limit::Global)
        ));
        slots.release(held[1].0);
        slots.release(held[0].0);
        assert!(slots.open.is_empty());
        assert!(slots.peers.is_empty(), "no entry left for a peer with none");
        fill(&mut slots, "10.0.0.9", 2);
        assert_eq!(slots.stats().refused_global, 1);
    }

    #[test]
    fn peers_are_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(peer_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(peer_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(peer_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        let mut slots = Slots::new(10, 1);
        fill(&mut slots, "2001:db8::1", 1);
        assert!(matches!(
            slots.admit(ip("2001:db8::2")),
            Admission::Admitted {
                made_room: Some(Limit::PerPeer),
                ..
            }
        ));
    }

    #[test]
    fn limits_are_at_least_one_and_per_peer_below_the_cap() {
        let slots = Slots::new(0, 0);
        assert_eq!((slots.max, slots.per_peer), (1, None));
        let slots = Slots::new(4, 0);
        assert_eq!((slots.max, slots.per_peer), (4, Some(1)));
        // A per-peer limit at the cap is the cap: one peer filling it meets the global limit.
        let mut slots = Slots::new(4, 9);
        assert_eq!((slots.max, slots.per_peer), (4, None));
        fill(&mut slots, "127.0.0.1", 4);
        assert!(matches!(
            slots.admit(ip("127.0.0.1")),
            Admission::Admitted {
                made_room: Some(Limit::Global),
                ..
            }
        ));
    }
}
