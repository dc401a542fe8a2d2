//! Per-listener state across samples: history points, drop rates, the sustained-fill and
//! not-draining timers, and listeners that disappeared.

use std::collections::hash_map::Entry;

use super::order::TickOrder;
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
    /// This update's number (the engine counts them): a history stamped with it was seen.
    pub stamp: u64,
    /// The namespace's ListenOverflows rose (or rose unexplained the tick before).
    pub overflows_moved: bool,
    /// List the listeners whose own drop counters moved (`Pass::dropping`).
    pub want_dropping: bool,
}

/// What one update found, from the one walk over every history it makes.
#[derive(Debug, Default)]
pub struct Pass {
    /// The tick's listeners: current ones and those that went away in it, in the tick's order
    /// (see [`TickOrder`]).
    pub ticks: Vec<ListenerTick>,
    /// Histories kept as gone (retention).
    pub gone: usize,
    /// Some current listener's own drop counter moved.
    pub any_dropping: bool,
    /// Endpoints of the listeners whose drop counters moved, sorted (when asked for).
    pub dropping: Vec<String>,
}

/// Applies one sample to the histories: seen listeners get a point, unseen ones a gap and the
/// `gone` mark, and gone ones past their retention are dropped. Every history is visited once
/// after the sample's listeners (the tick's numbers are built on the way): at 10,000 listeners
/// each visit of a history is a cache miss, and the walks over all of them were most of a
/// quiet tick's engine time.
pub fn update(
    histories: &mut FastMap<ListenerKey, Box<ListenerHistory>>,
    order: &mut TickOrder,
    u: Update<'_>,
) -> Pass {
    let ranges: FastMap<ListenerKey, DepthRange> =
        u.ranges.into_iter().map(|r| (r.key, r)).collect();
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
        h.stamp = u.stamp;
        h.service.see(l.service.as_ref(), u.service_dump_ns);
        see_service(h, l);
    }
    let mut pass = Pass {
        ticks: Vec::with_capacity(u.listeners.len()),
        ..Pass::default()
    };
    let mut check = order.check();
    let last = &*order;
    histories.retain(|key, h| {
        if h.stamp != u.stamp {
            if !gone_now(h, u.now_ns, u.retention_ns) {
                return false;
            }
            pass.gone += 1;
        } else if h.drops_delta.is_some_and(|d| d > 0) {
            pass.any_dropping = true;
            if u.want_dropping {
                pass.dropping.push(h.endpoint.to_string());
            }
        }
        if !h.gone || h.newly_gone {
            last.see(&mut check, *key, h.gone);
            pass.ticks.push(listener_tick(*key, h, u.overflows_moved));
        }
        true
    });
    if pass.gone > MAX_GONE {
        prune_gone(histories, MAX_GONE);
        // Only a churn of more than MAX_GONE listeners in one tick prunes one gone in it.
        pass.ticks.retain(|t| histories.contains_key(&t.key));
        check = order.check();
        for t in &pass.ticks {
            order.see(&mut check, t.key, t.gone);
        }
        pass.gone = MAX_GONE;
    }
    order.apply(check, &mut pass.ticks);
    pass.dropping.sort();
    pass
}

/// A listener not in this sample: gone (once newly), with a gap in its series. False when it
/// has been gone longer than the retention.
fn gone_now(h: &mut ListenerHistory, now_ns: u64, retention_ns: u64) -> bool {
    h.newly_gone = !h.gone;
    h.gone = true;
    h.points.push(ListenerPoint::gap());
    if let Some(r) = h.service_points.as_mut() {
        r.push(ServicePoint::gap());
    }
    h.drops_per_s = None;
    h.drops_delta = None;
    h.range = None;
    now_ns.saturating_sub(h.last_seen_ns) <= retention_ns
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
            stamp: 0,
            gone: false,
            newly_gone: false,
            service: super::service::ServiceTrack::default(),
            service_points: None,
        }
    }
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

    /// A churn of more than MAX_GONE listeners gone in one tick keeps MAX_GONE of them, and the
    /// tick lists exactly those kept, in order, after the current ones.
    #[test]
    fn a_churn_past_max_gone_lists_only_the_kept_ones() {
        use super::MAX_GONE;
        let l = |port: u16| tcp_listener(port).build();
        let mut e = Engine::new(EngineConfig::default());
        let many: Vec<_> = (1000..1000 + MAX_GONE as u16 + 500).map(l).collect();
        e.ingest(at(many, 1));
        let t = e.ingest(at(vec![l(80)], 2));
        assert_eq!(t.gone_listeners, MAX_GONE);
        assert_eq!(t.listeners.len(), 1 + MAX_GONE);
        assert!(!t.listeners[0].gone);
        assert!(t.listeners[1..].iter().all(|x| x.gone));
        let eps: Vec<&str> = t.listeners[1..].iter().map(|x| &*x.endpoint).collect();
        let mut sorted = eps.clone();
        sorted.sort();
        assert_eq!(eps, sorted);
        assert_eq!(e.listeners().filter(|h| h.gone).count(), MAX_GONE);
        // The next tick lists none of them (gone before it), and keeps counting them.
        let t = e.ingest(at(vec![l(80)], 3));
        assert_eq!(t.listeners.len(), 1);
        assert_eq!(t.gone_listeners, MAX_GONE);
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
