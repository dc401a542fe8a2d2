//! Poll what moves: the fast (10 Hz) poll reads only the *active* listeners, each with an exact
//! sock_diag request by socket id and cookie, instead of dumping every listener.
//!
//! A listener is active when, at a display tick, its accept queue is not empty, its drop
//! counter moved, it has SYN-RECV requests or new connections (the service dump's
//! `connections_seen_total` moved) — or it was so at some tick of the last [`ACTIVE_FOR`] — or
//! the user selected it. The full sample of each tick still reads every listener, so a listener
//! that wakes up joins the active set at the next tick, and an overflow in between is proven by
//! the drop counters of that tick (the engine's `overflow_proven`).
//!
//! An exact request costs O(1) in the kernel (a hash lookup) where a dump walks every listener:
//! the poll is O(active), not O(all). The kernel's lookup finds one member of an SO_REUSEPORT
//! group only (the one its hash picks for an all-zero remote end); the others answer ENOENT and
//! are polled instead with a dump of their port (the kernel builds messages for that port only).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::diag::{self, ExactListener};
use super::error::{netlink, CollectError};
use super::netlink::ExactAnswer;
use super::Collector;
use crate::model::{Family, FastMap, FastSet, ListenerKey, TcpListener};

/// How long a listener stays in the active set after its last sign of activity.
pub const ACTIVE_FOR: Duration = Duration::from_secs(60);

/// ENOENT: no socket with that id and cookie (closed, or not the one the lookup picks).
const ENOENT: i32 = 2;

/// What a listener looked like at the previous tick (to see its counters move).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    drops: Option<u64>,
    connections_seen: u64,
}

/// One listener the fast poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    key: ListenerKey,
    id: ExactListener,
    /// An exact request answered ENOENT while the listener was there: polled by port.
    by_port: bool,
}

/// Which listeners the fast poll reads, updated at every display tick.
#[derive(Debug, Default)]
pub struct ActiveSet {
    seen: FastMap<u64, Seen>,
    /// The previous tick's `seen`, kept for its allocation.
    spare: FastMap<u64, Seen>,
    /// When each listener was last active, and the update that last saw it.
    last_active: FastMap<ListenerKey, (Instant, u64)>,
    /// Updates so far.
    updates: u64,
    selected: FastSet<ListenerKey>,
    targets: Vec<Target>,
}

impl ActiveSet {
    /// Listeners the user selected: polled at the fast rate while they exist, active or not.
    pub fn select(&mut self, keys: impl IntoIterator<Item = ListenerKey>) {
        self.selected = keys.into_iter().collect();
    }

    /// Takes a tick's full sample of every listener into account (`bound_if`: interface index
    /// by cookie of the listeners bound to a device). O(listeners).
    pub fn update(
        &mut self,
        listeners: &[TcpListener],
        bound_if: &HashMap<u64, u32>,
        now: Instant,
    ) {
        // One walk, three hash lookups per listener (this runs for every listener on every
        // tick); last tick's map of counters is reused, not reallocated.
        let mut seen = std::mem::take(&mut self.spare);
        seen.clear();
        seen.reserve(listeners.len());
        let by_port: FastSet<ListenerKey> = self
            .targets
            .iter()
            .filter(|t| t.by_port)
            .map(|t| t.key)
            .collect();
        self.updates += 1;
        let stamp = self.updates;
        let mut targets = Vec::with_capacity(self.targets.len());
        for l in listeners {
            let key = ListenerKey::from(l);
            let now_seen = Seen {
                drops: l.drops,
                connections_seen: l.service.as_ref().map_or(0, |s| s.connections_seen_total),
            };
            let moved = self.seen.get(&l.cookie).is_some_and(|before| {
                now_seen.connections_seen > before.connections_seen
                    || matches!((before.drops, now_seen.drops), (Some(a), Some(b)) if b != a)
            });
            seen.insert(l.cookie, now_seen);
            let active = if l.accept_queue > 0 || l.syn_recv > 0 || moved {
                self.last_active.insert(key, (now, stamp));
                true
            } else if let Some(at) = self.last_active.get_mut(&key) {
                at.1 = stamp;
                now.saturating_duration_since(at.0) < ACTIVE_FOR
            } else {
                false
            };
            if active || (!self.selected.is_empty() && self.selected.contains(&key)) {
                targets.push(Target {
                    key,
                    id: ExactListener {
                        family: l.family,
                        address: l.address,
                        port: l.port,
                        ifindex: bound_if.get(&l.cookie).copied().unwrap_or(0),
                        cookie: l.cookie,
                    },
                    by_port: by_port.contains(&key),
                });
            }
        }
        self.spare = std::mem::replace(&mut self.seen, seen);
        self.last_active
            .retain(|_, at| at.1 == stamp && now.saturating_duration_since(at.0) < ACTIVE_FOR);
        self.targets = targets;
    }

    /// Number of listeners the fast poll reads.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when no listener is polled between ticks.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Number of polled listeners an exact request could not reach (an SO_REUSEPORT group's
    /// other members), read by a dump of their port instead.
    pub fn by_port(&self) -> usize {
        self.targets.iter().filter(|t| t.by_port).count()
    }

    /// Keys of the polled listeners, in the order of the tick's dump.
    pub fn keys(&self) -> impl Iterator<Item = ListenerKey> + '_ {
        self.targets.iter().map(|t| t.key)
    }

    /// One fast poll: the depth of every active listener into `out` (key, depth); a listener
    /// that has gone is left out. Exact requests first; those answered ENOENT, and those known
    /// to need it, by a dump of their port.
    pub fn poll(
        &mut self,
        collector: &mut Collector,
        out: &mut Vec<(ListenerKey, u32)>,
    ) -> Result<(), CollectError> {
        out.clear();
        let exact: Vec<usize> = (0..self.targets.len())
            .filter(|&i| !self.targets[i].by_port)
            .collect();
        let requests = exact
            .iter()
            .map(|&i| diag::listener_exact_request(&self.targets[i].id))
            .collect();
        let mut missed: Vec<usize> = Vec::new();
        let mut failed = None;
        let targets = &self.targets;
        collector
            .diag
            .exact(requests, |n, answer| {
                let Some(&i) = exact.get(n) else { return };
                match answer {
                    ExactAnswer::Found(payload) => match diag::decode_listener_depth(payload) {
                        Ok(Some((key, depth))) if key.cookie == targets[i].key.cookie => {
                            out.push((targets[i].key, depth));
                        }
                        Ok(_) => missed.push(i),
                        Err(e) => failed = Some(e),
                    },
                    ExactAnswer::Error(ENOENT) => missed.push(i),
                    ExactAnswer::Error(errno) => {
                        failed = Some(super::netlink::NetlinkError::Kernel { errno })
                    }
                }
            })
            .map_err(netlink("polling the active TCP listeners"))?;
        if let Some(e) = failed {
            return Err(netlink("polling the active TCP listeners")(e));
        }
        for &i in &missed {
            self.targets[i].by_port = true;
        }
        self.poll_by_port(collector, out)
    }

    /// Dumps the ports of the listeners that need it (one dump per family and port) and keeps
    /// the depths of those polled.
    fn poll_by_port(
        &mut self,
        collector: &mut Collector,
        out: &mut Vec<(ListenerKey, u32)>,
    ) -> Result<(), CollectError> {
        let mut ports: Vec<(Family, u16)> = self
            .targets
            .iter()
            .filter(|t| t.by_port)
            .map(|t| (t.id.family, t.id.port))
            .collect();
        if ports.is_empty() {
            return Ok(());
        }
        ports.sort_unstable();
        ports.dedup();
        let wanted: HashMap<u64, ListenerKey> = self
            .targets
            .iter()
            .filter(|t| t.by_port)
            .map(|t| (t.key.cookie, t.key))
            .collect();
        for (family, port) in ports {
            collector
                .diag
                .dump(diag::listen_port_depth_request(family, port), |payload| {
                    if let Some((key, depth)) = diag::decode_listener_depth(payload)? {
                        if let Some(&k) = wanted.get(&key.cookie) {
                            out.push((k, depth));
                        }
                    }
                    Ok(())
                })
                .map_err(netlink(format!(
                    "polling the {family:?} TCP listeners on port {port}"
                )))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceStats;

    fn listener(cookie: u64, port: u16) -> TcpListener {
        crate::model::testing::tcp_listener(port)
            .identity(cookie + 1000, cookie)
            .build()
    }

    fn polled(a: &ActiveSet) -> Vec<u64> {
        a.keys().map(|k| k.cookie).collect()
    }

    #[test]
    fn only_listeners_that_move_are_polled_and_they_stay_a_minute() {
        let mut ls: Vec<TcpListener> = (1..=5).map(|c| listener(c, 8000 + c as u16)).collect();
        let mut a = ActiveSet::default();
        let t0 = Instant::now();
        let bound = HashMap::from([(3u64, 7u32)]);
        a.update(&ls, &bound, t0);
        assert!(a.is_empty(), "a quiet host polls nothing");

        // 1: a queue; 2: drops moved; 3: SYN-RECV; 4: new connections; 5 stays quiet.
        ls[0].accept_queue = 4;
        ls[1].drops = Some(9);
        ls[2].syn_recv = 1;
        ls[3].service = Some(ServiceStats {
            connections_seen_total: 2,
            ..ServiceStats::default()
        });
        a.update(&ls, &bound, t0 + Duration::from_secs(1));
        assert_eq!(polled(&a), [1, 2, 3, 4]);
        assert_eq!(
            a.targets[2].id.ifindex, 7,
            "a bound listener's device is named"
        );
        assert_eq!(a.targets[0].id.ifindex, 0);

        // Quiet again: still polled within the minute, not after it.
        ls[0].accept_queue = 0;
        ls[2].syn_recv = 0;
        a.update(&ls, &bound, t0 + Duration::from_secs(30));
        assert_eq!(
            polled(&a),
            [1, 2, 3, 4],
            "drops unchanged since: no new activity"
        );
        a.update(&ls, &bound, t0 + Duration::from_secs(62));
        assert!(a.is_empty(), "{:?}", polled(&a));

        // Selected listeners are polled whatever they do; a listener gone is dropped.
        a.select([ListenerKey::from(&ls[4])]);
        a.update(&ls, &bound, t0 + Duration::from_secs(63));
        assert_eq!(polled(&a), [5]);
        ls[0].accept_queue = 1;
        a.update(&ls, &bound, t0 + Duration::from_secs(64));
        assert_eq!(polled(&a), [1, 5]);
        ls.remove(0);
        a.update(&ls, &bound, t0 + Duration::from_secs(65));
        assert_eq!(polled(&a), [5]);
        assert!(!a.last_active.contains_key(&ListenerKey {
            inode: 1001,
            cookie: 1
        }));
    }

    #[test]
    fn a_listener_polled_by_port_stays_so_while_active() {
        let mut ls = vec![listener(1, 80)];
        ls[0].accept_queue = 1;
        let mut a = ActiveSet::default();
        let t0 = Instant::now();
        a.update(&ls, &HashMap::new(), t0);
        a.targets[0].by_port = true;
        a.update(&ls, &HashMap::new(), t0 + Duration::from_secs(1));
        assert!(a.targets[0].by_port);
    }
}
