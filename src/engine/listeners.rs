//! Per-listener state across samples: history points, drop rates, the sustained-fill and
//! not-draining timers, and listeners that disappeared.

use std::collections::hash_map::Entry;

use super::ListenerHistory;
use crate::model::history::{ListenerPoint, RunRing, ServicePoint};
use crate::model::rates::{counter_delta, CounterWidth};
use crate::model::{DepthRange, FastMap, ListenerKey, ListenerTick, TcpListener};

/// One sample's view of the listeners, applied to the histories.
pub struct Update<'a> {
    /// Listeners in the sample.
    pub listeners: &'a [TcpListener],
    /// Depth ranges from the fast sampler.
    pub ranges: Vec<DepthRange>,
    /// Seconds since the previous sample.
    pub dt: Option<f64>,
    /// Monotonic time of the sample, ns.
    pub now_ns: u64,
    /// Ring size for a new listener.
    pub cap: usize,
    /// How long a gone listener stays, ns.
    pub retention_ns: u64,
    /// CLOCK_MONOTONIC of the sample's service dump, if it has one.
    pub service_dump_ns: Option<u64>,
}

/// Applies one sample to the histories: seen listeners get a point, unseen ones a gap and the
/// `gone` mark, and gone ones past their retention are dropped.
pub fn update(histories: &mut FastMap<ListenerKey, Box<ListenerHistory>>, u: Update<'_>) {
    let ranges: FastMap<ListenerKey, DepthRange> =
        u.ranges.into_iter().map(|r| (r.key, r)).collect();
    for h in histories.values_mut() {
        // Until seen below (`see` clears both): a listener not gone before goes now.
        h.newly_gone = !h.gone;
        h.gone = true;
    }
    for l in u.listeners {
        let key = ListenerKey::from(l);
        // One lookup per listener: this runs for every listener on every tick.
        let (h, known) = match histories.entry(key) {
            Entry::Occupied(e) => (e.into_mut(), true),
            Entry::Vacant(e) => (
                e.insert(Box::new(ListenerHistory::first_seen(l, u.cap, u.now_ns))),
                false,
            ),
        };
        see(h, l, ranges.get(&key).copied(), known, u.dt, u.now_ns);
        h.service.see(l.service.as_ref(), u.service_dump_ns);
        see_service(h, l);
    }
    histories.retain(|_, h| {
        if h.gone {
            h.points.push(ListenerPoint::gap());
            if let Some(r) = h.service_points.as_mut() {
                r.push(ServicePoint::gap());
            }
            h.drops_per_s = None;
            h.drops_delta = None;
            h.range = None;
            u.now_ns.saturating_sub(h.last_seen_ns) <= u.retention_ns
        } else {
            true
        }
    });
    prune_gone(histories, MAX_GONE);
}

/// Most listeners kept after they went away: a churn of thousands of short-lived listeners
/// must not grow memory (or every view) without bound; the oldest gone ones go first.
pub const MAX_GONE: usize = 1000;

fn prune_gone(histories: &mut FastMap<ListenerKey, Box<ListenerHistory>>, max: usize) {
    let mut gone: Vec<(u64, ListenerKey)> = histories
        .iter()
        .filter(|(_, h)| h.gone)
        .map(|(k, h)| (h.last_seen_ns, *k))
        .collect();
    if gone.len() <= max {
        return;
    }
    gone.sort_unstable();
    for (_, k) in &gone[..gone.len() - max] {
        histories.remove(k);
    }
}

/// One listener seen in a sample.
fn see(
    h: &mut ListenerHistory,
    l: &TcpListener,
    range: Option<DepthRange>,
    known: bool,
    dt: Option<f64>,
    now_ns: u64,
) {
    let (delta, per_s) = match (h.listener.drops, l.drops, dt) {
        (Some(prev), Some(cur), Some(dt)) if known => {
            let d = counter_delta(prev, cur, CounterWidth::Bits32);
            (d, d.and_then(|d| (dt > 0.0).then(|| d as f64 / dt)))
        }
        _ => (None, None),
    };
    let step = dt.unwrap_or(0.0);
    let high_fill = l.fill().is_some_and(|f| f >= 0.8);
    h.high_fill_s = if high_fill { h.high_fill_s + step } else { 0.0 };
    let low = range.map_or(l.accept_queue, |r| r.low);
    h.undrained_s = if low > 0 && l.accept_queue > 0 {
        h.undrained_s + step
    } else {
        0.0
    };
    h.points.push(ListenerPoint {
        depth: l.accept_queue,
        high: range.map_or(l.accept_queue, |r| r.high.max(l.accept_queue)),
        syn_recv: u32::try_from(l.syn_recv).unwrap_or(u32::MAX),
        drops_per_s: per_s.map_or(f32::NAN, |r| r as f32),
    });
    // A quiet listener is the same as last tick: comparing costs less than a copy (its
    // owners, names and service numbers are allocations), and equal values are the same copy.
    if h.listener != *l {
        h.listener.clone_from(l);
    }
    h.drops_per_s = per_s;
    h.drops_delta = delta;
    h.range = range;
    h.last_seen_ns = now_ns;
    h.gone = false;
    h.newly_gone = false;
}

/// The children's point of a listener seen in a sample: its ring is made with the first
/// service numbers (as long as `points`, growing as it does), a gap when they are missing.
fn see_service(h: &mut ListenerHistory, l: &TcpListener) {
    let point = l.service.as_ref().map(ServicePoint::of);
    match (h.service_points.as_mut(), point) {
        (Some(r), p) => r.push(p.unwrap_or_else(ServicePoint::gap)),
        (None, Some(p)) => {
            let mut r = RunRing::new(h.points.capacity());
            r.push(p);
            h.service_points = Some(r);
        }
        (None, None) => {}
    }
}

impl ListenerHistory {
    fn first_seen(l: &TcpListener, cap: usize, now_ns: u64) -> Self {
        ListenerHistory {
            endpoint: l.endpoint().into(),
            listener: l.clone(),
            points: RunRing::new(cap),
            drops_per_s: None,
            drops_delta: None,
            range: None,
            high_fill_s: 0.0,
            undrained_s: 0.0,
            last_seen_ns: now_ns,
            gone: false,
            newly_gone: false,
            service: super::service::ServiceTrack::default(),
            service_points: None,
        }
    }
}

/// The listeners whose own drop counters moved in this tick (asked for when the namespace's
/// overflow counters moved), by endpoint.
pub fn dropping(histories: &FastMap<ListenerKey, Box<ListenerHistory>>) -> Vec<String> {
    let mut out: Vec<String> = histories
        .values()
        .filter(|h| h.drops_delta.is_some_and(|d| d > 0))
        .map(|h| h.endpoint.to_string())
        .collect();
    out.sort();
    out
}

/// The per-tick numbers of the current listeners and of those that went away in this tick
/// (marked gone once; the engine keeps them a while longer, see [`gone_ticks`]), current
/// first, then by endpoint. `overflows_moved`: the namespace's ListenOverflows rose.
/// `order`: the last tick's order (key, gone), reused while the same listeners are listed
/// with the same gone marks (a listener's endpoint never changes), sorted again otherwise:
/// sorting 10,000 endpoints every tick was most of the string comparisons of a quiet tick.
pub fn ticks(
    histories: &FastMap<ListenerKey, Box<ListenerHistory>>,
    overflows_moved: bool,
    order: &mut Vec<(ListenerKey, bool)>,
) -> Vec<ListenerTick> {
    let listed = |h: &ListenerHistory| !h.gone || h.newly_gone;
    let count = histories.values().filter(|h| listed(h)).count();
    let same = order.len() == count
        && order.iter().all(|(k, gone)| {
            histories
                .get(k)
                .is_some_and(|h| listed(h) && h.gone == *gone)
        });
    if same {
        return order
            .iter()
            .filter_map(|(k, _)| {
                histories
                    .get(k)
                    .map(|h| listener_tick(*k, h, overflows_moved))
            })
            .collect();
    }
    let mut out: Vec<ListenerTick> = histories
        .iter()
        .filter(|(_, h)| listed(h))
        .map(|(key, h)| listener_tick(*key, h, overflows_moved))
        .collect();
    // The key breaks ties between the members of an SO_REUSEPORT group (same endpoint), so
    // the order never depends on the map's.
    out.sort_by(|a, b| {
        a.gone
            .cmp(&b.gone)
            .then(a.endpoint.cmp(&b.endpoint))
            .then(a.key.cmp(&b.key))
    });
    order.clear();
    order.extend(out.iter().map(|t| (t.key, t.gone)));
    out
}

/// One listener's tick. A poll that saw depth > backlog shows the overflow; when no poll saw it
/// but the listener's own drop counter moved while the namespace's ListenOverflows did, the
/// overflow is proven all the same: the kernel counts a listen overflow only when the queue
/// holds backlog+1 (`sk_acceptq_is_full`), so the peak is set to that.
fn listener_tick(key: ListenerKey, h: &ListenerHistory, overflows_moved: bool) -> ListenerTick {
    let depth = h.listener.accept_queue;
    let backlog = h.listener.backlog;
    let seen_high = h.range.map_or(depth, |r| r.high.max(depth));
    let seen = seen_high > backlog;
    let proven = !seen && overflows_moved && h.drops_delta.is_some_and(|d| d > 0);
    ListenerTick {
        key,
        endpoint: h.endpoint.clone(),
        depth,
        backlog,
        depth_high: if proven {
            backlog.saturating_add(1)
        } else {
            seen_high
        },
        depth_low: h.range.map_or(depth, |r| r.low.min(depth)),
        drops_per_s: h.drops_per_s,
        high_fill_s: h.high_fill_s,
        undrained_s: h.undrained_s,
        overflowed: seen || proven,
        overflow_proven: proven,
        drops_delta: h.drops_delta,
        gone: h.gone,
        service: h.service.tick.clone(),
    }
}

/// The listeners that went away before this tick and are still kept (retention), as ticks
/// with their last numbers, by endpoint: the dashboard shows them dimmed, marked gone.
pub fn gone_ticks(histories: &FastMap<ListenerKey, Box<ListenerHistory>>) -> Vec<ListenerTick> {
    let mut out: Vec<ListenerTick> = histories
        .iter()
        .filter(|(_, h)| h.gone && !h.newly_gone)
        .map(|(key, h)| listener_tick(*key, h, false))
        .collect();
    out.sort_by(|a, b| a.endpoint.cmp(&b.endpoint).then(a.key.cmp(&b.key)));
    out
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, EngineConfig};
    use crate::model::testing::{snapshot, tcp_listener};
    use crate::model::{CollectorStats, ListenerKey, Sample, ServiceStats};

    fn sample(service: Option<u64>, t: u64) -> Sample {
        let l = tcp_listener(80)
            .service(service.map(|n| ServiceStats {
                group: 1,
                in_service: n,
                unread_conns: n / 2,
                close_wait: 3,
                close_wait_unaccepted: 1,
                ..ServiceStats::default()
            }))
            .build();
        Sample {
            snapshot: snapshot(vec![l], t * 1_000_000_000),
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        }
    }

    #[test]
    fn service_points_start_with_the_first_numbers_and_keep_gaps_aligned() {
        let mut e = Engine::new(EngineConfig::default());
        let key = ListenerKey::from(&tcp_listener(80).build());
        e.ingest(sample(None, 1));
        assert!(e.listener(&key).unwrap().service_points.is_none());
        e.ingest(sample(Some(10), 2));
        e.ingest(sample(None, 3));
        e.record_gap();
        e.ingest(sample(Some(20), 5));
        let h = e.listener(&key).unwrap();
        let pts: Vec<Option<(u32, u32, u32)>> = h
            .service_points
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (!p.is_gap()).then_some((p.in_service, p.unread_conns, p.close_wait)))
            .collect();
        assert_eq!(pts, [Some((10, 5, 2)), None, None, Some((20, 10, 2))]);
        assert_eq!(h.points.len(), 5);
    }

    fn at(listeners: Vec<crate::model::TcpListener>, t: u64) -> Sample {
        Sample {
            snapshot: snapshot(listeners, t * 1_000_000_000),
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        }
    }

    fn order(
        e: &mut Engine,
        listeners: Vec<crate::model::TcpListener>,
        t: u64,
    ) -> Vec<(String, bool)> {
        e.ingest(at(listeners, t))
            .listeners
            .iter()
            .map(|l| (l.endpoint.to_string(), l.gone))
            .collect()
    }

    /// The order kept from the last tick is sorted again when a listener comes, goes, comes
    /// back or is dropped, and matches a fresh engine's (sorted from scratch) every time.
    #[test]
    fn the_kept_listener_order_follows_every_change_of_the_listed_set() {
        let l = |port: u16| tcp_listener(port).build();
        let steps: Vec<Vec<u16>> = vec![
            vec![300, 100, 200],
            vec![300, 100, 200],
            vec![300, 100, 200, 150],
            vec![300, 200, 150],
            vec![300, 200, 150],
            vec![300, 100, 200, 150],
            vec![99],
            vec![99],
        ];
        let mut e = Engine::new(EngineConfig::default());
        let mut fresh_each: Vec<Vec<(String, bool)>> = Vec::new();
        for (i, ports) in steps.iter().enumerate() {
            let t = i as u64 + 1;
            let got = order(&mut e, ports.iter().map(|&p| l(p)).collect(), t);
            // Sorted from scratch: current ones by endpoint, then the ones gone this tick.
            let mut want: Vec<(String, bool)> = ports
                .iter()
                .map(|&p| (format!("127.0.0.1:{p}"), false))
                .collect();
            want.sort();
            let prev: Vec<u16> = if i == 0 { vec![] } else { steps[i - 1].clone() };
            let mut gone: Vec<(String, bool)> = prev
                .iter()
                .filter(|p| !ports.contains(p))
                .map(|p| (format!("127.0.0.1:{p}"), true))
                .collect();
            gone.sort();
            want.extend(gone);
            assert_eq!(got, want, "step {i}");
            fresh_each.push(got);
        }
        assert_eq!(fresh_each[0], fresh_each[1]);
    }

    /// The engine keeps a listener's last numbers without copying an unchanged one: a change
    /// of any input (here its holders, then its backlog) is seen.
    #[test]
    fn a_changed_listener_replaces_the_kept_one() {
        use crate::model::testing::process;
        let key = ListenerKey::from(&tcp_listener(80).build());
        let mut e = Engine::new(EngineConfig::default());
        e.ingest(at(
            vec![tcp_listener(80).owner(process(1, "a", None, None)).build()],
            1,
        ));
        e.ingest(at(
            vec![tcp_listener(80).owner(process(1, "a", None, None)).build()],
            2,
        ));
        let b = tcp_listener(80)
            .owner(process(2, "b", Some(7), None))
            .build();
        e.ingest(at(vec![b.clone()], 3));
        assert_eq!(e.listener(&key).unwrap().listener, b);
        let c = tcp_listener(80)
            .owner(process(2, "b", Some(7), None))
            .queue(3, 4)
            .build();
        let t = e.ingest(at(vec![c.clone()], 4));
        assert_eq!(t.listeners[0].backlog, 4);
        assert_eq!(e.listener(&key).unwrap().listener, c);
    }
}
