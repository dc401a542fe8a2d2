//! Rates of a listener's children from successive service dumps: new connections per second
//! (children first seen by cookie), Little's law, CLOSE-WAIT and in-service growth; and the
//! namespace's cross-check of arrivals against Tcp PassiveOpens.
//!
//! Rates are taken between dumps (their CLOCK_MONOTONIC times), not ticks: a dump reused for a
//! few ticks under the CPU budget adds no point.

use std::collections::VecDeque;

use crate::model::{ArrivalCheck, Counters, ListenerTick, ServiceStats, ServiceTick};

/// Growth is measured over the dumps of this window.
const WINDOW_NS: u64 = 60_000_000_000;
/// Growth needs dumps spanning at least this long.
const MIN_SPAN_NS: u64 = 10_000_000_000;

/// One dump of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    dump_ns: u64,
    seen_total: u64,
    in_service: u64,
    close_wait: u64,
}

/// The service dumps of one listener over the last minute and what they give.
#[derive(Debug, Clone, Default)]
pub struct ServiceTrack {
    points: VecDeque<Point>,
    /// Since when CLOSE-WAIT has risen without falling (ns).
    cw_rising_since_ns: Option<u64>,
    /// The latest derived numbers; `None` without service numbers.
    pub tick: Option<ServiceTick>,
}

impl Point {
    /// The numbers of the point, without its time.
    fn values(&self) -> (u64, u64, u64) {
        (self.seen_total, self.in_service, self.close_wait)
    }
}

impl ServiceTrack {
    /// Appends a dump's point and drops those older than the window, keeping a flat stretch
    /// as its two ends: a listener whose numbers do not move costs two points, not one per
    /// dump of the last minute (10,000 quiet listeners: 1.3 MB instead of 20 MB). When the
    /// oldest end of a flat stretch leaves the window it moves to the window's start instead
    /// (its numbers held there), at most one dump earlier than the point a full list would
    /// have kept there: growth over the window is then that much lower at most.
    fn push_point(&mut self, now: Point) {
        let n = self.points.len();
        let flat = n >= 2
            && self.points[n - 2].values() == now.values()
            && self.points[n - 1].values() == now.values();
        if flat {
            self.points[n - 1] = now;
        } else {
            self.points.push_back(now);
        }
        let cutoff = now.dump_ns.saturating_sub(WINDOW_NS);
        while self.points.len() > 2 && self.points[0].dump_ns < cutoff {
            if self.points[0].values() == self.points[1].values() && self.points[1].dump_ns > cutoff
            {
                self.points[0].dump_ns = cutoff;
                break;
            }
            self.points.pop_front();
        }
        if self.points.capacity() > 16 && self.points.len() * 4 < self.points.capacity() {
            self.points.shrink_to(self.points.len() * 2);
        }
    }
}

fn per_s(delta: f64, ns: u64) -> Option<f64> {
    (ns > 0).then(|| delta / (ns as f64 / 1e9))
}

impl ServiceTrack {
    /// Takes one sample's service numbers of the listener, dumped at `dump_ns`; a dump already
    /// seen (reused under the budget) changes nothing.
    pub fn see(&mut self, s: Option<&ServiceStats>, dump_ns: Option<u64>) {
        let (Some(s), Some(dump_ns)) = (s, dump_ns) else {
            self.points.clear();
            self.cw_rising_since_ns = None;
            self.tick = None;
            return;
        };
        let prev = self.points.back().copied();
        if prev.is_some_and(|p| p.dump_ns == dump_ns) {
            return;
        }
        let now = Point {
            dump_ns,
            seen_total: s.connections_seen_total,
            in_service: s.in_service,
            // A leak is what the process holds: not the connections still in the accept
            // queue whose clients gave up waiting.
            close_wait: s.close_wait.saturating_sub(s.close_wait_unaccepted),
        };
        // A dump older than the last one (a replay seeking backwards is a Reset) or a counter
        // that fell (a new collector): start over.
        if prev.is_some_and(|p| dump_ns < p.dump_ns || now.seen_total < p.seen_total) {
            self.points.clear();
            self.cw_rising_since_ns = None;
        }
        let prev = self.points.back().copied();
        self.push_point(now);
        let new_conns_per_s =
            prev.and_then(|p| per_s((now.seen_total - p.seen_total) as f64, dump_ns - p.dump_ns));
        let mean_conn_lifetime_s = new_conns_per_s
            .filter(|&r| r > 0.0)
            .map(|r| s.in_service as f64 / r);
        match prev {
            Some(p) if now.close_wait > p.close_wait => {
                self.cw_rising_since_ns.get_or_insert(p.dump_ns);
            }
            Some(p) if now.close_wait < p.close_wait => self.cw_rising_since_ns = None,
            _ => {}
        }
        let oldest = self
            .points
            .front()
            .copied()
            .filter(|o| dump_ns - o.dump_ns >= MIN_SPAN_NS);
        let growth = |f: fn(&Point) -> u64| {
            oldest.and_then(|o| per_s(f(&now) as f64 - f(&o) as f64, dump_ns - o.dump_ns))
        };
        self.tick = Some(ServiceTick {
            new_conns_per_s,
            mean_conn_lifetime_s,
            close_wait_growth_per_s: growth(|p| p.close_wait),
            close_wait_rising_s: self
                .cw_rising_since_ns
                .map_or(0.0, |since| dump_ns.saturating_sub(since) as f64 / 1e9),
            in_service_growth_per_s: growth(|p| p.in_service),
            fds_held_growth_per_s: growth(|p| p.in_service + p.close_wait),
        });
    }
}

/// The namespace's arrivals between service dumps: Tcp PassiveOpens against the children
/// first seen by cookie.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    /// The last fresh dump and PassiveOpens then.
    last: Option<(u64, i64)>,
    /// The latest check.
    pub check: Option<ArrivalCheck>,
}

impl Arrivals {
    /// Takes one sample: `dump_ns` of its service dump, the counters, the listeners' ticks.
    pub fn see(&mut self, dump_ns: Option<u64>, counters: &Counters, listeners: &[ListenerTick]) {
        let Some(dump_ns) = dump_ns else {
            *self = Self::default();
            return;
        };
        if self.last.is_some_and(|(ns, _)| ns == dump_ns) {
            return;
        }
        let Some(passive) = counters.tcp.get("PassiveOpens").copied() else {
            *self = Self::default();
            return;
        };
        self.check = self.last.and_then(|(ns, before)| {
            let rate = per_s((passive - before) as f64, dump_ns.checked_sub(ns)?)?;
            (rate >= 0.0).then(|| {
                let mut endpoints = crate::model::fast_set(listeners.len());
                let seen_per_s = listeners
                    .iter()
                    .filter(|t| !t.gone && endpoints.insert(&*t.endpoint))
                    .filter_map(|t| t.service.as_ref()?.new_conns_per_s)
                    .sum();
                ArrivalCheck {
                    passive_opens_per_s: rate,
                    seen_per_s,
                }
            })
        });
        self.last = Some((dump_ns, passive));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn stats(seen: u64, in_service: u64, close_wait: u64) -> ServiceStats {
        ServiceStats {
            group: 1,
            in_service,
            close_wait,
            connections_seen_total: seen,
            ..ServiceStats::default()
        }
    }

    #[test]
    fn rates_between_dumps_and_littles_law() {
        let mut t = ServiceTrack::default();
        t.see(Some(&stats(100, 40, 0)), Some(10 * S));
        let first = t.tick.clone().unwrap();
        assert_eq!(first.new_conns_per_s, None);
        // 20 new in 2 s: 10/s; 40 in service: W = 4 s.
        t.see(Some(&stats(120, 40, 0)), Some(12 * S));
        let k = t.tick.clone().unwrap();
        assert_eq!(k.new_conns_per_s, Some(10.0));
        assert_eq!(k.mean_conn_lifetime_s, Some(4.0));
        // The same dump again (reused under the budget): nothing changes.
        t.see(Some(&stats(120, 40, 0)), Some(12 * S));
        assert_eq!(t.tick.clone().unwrap(), k);
        // No arrivals: no lifetime.
        t.see(Some(&stats(120, 40, 0)), Some(13 * S));
        assert_eq!(t.tick.clone().unwrap().mean_conn_lifetime_s, None);
        // Without service numbers: nothing.
        t.see(None, Some(14 * S));
        assert!(t.tick.is_none());
    }

    #[test]
    fn close_wait_growth_needs_ten_seconds_and_rising_resets_on_a_fall() {
        let mut t = ServiceTrack::default();
        for i in 0..=12u64 {
            t.see(Some(&stats(0, 0, 5 * i)), Some(i * S));
        }
        let k = t.tick.clone().unwrap();
        assert_eq!(k.close_wait_growth_per_s, Some(5.0));
        assert_eq!(k.close_wait_rising_s, 12.0);
        t.see(Some(&stats(0, 0, 1)), Some(13 * S));
        assert_eq!(t.tick.clone().unwrap().close_wait_rising_s, 0.0);
        let mut young = ServiceTrack::default();
        young.see(Some(&stats(0, 0, 0)), Some(0));
        young.see(Some(&stats(0, 0, 50)), Some(5 * S));
        assert_eq!(young.tick.clone().unwrap().close_wait_growth_per_s, None);
    }

    #[test]
    fn a_flat_stretch_costs_two_points_and_growth_after_it_is_over_the_window() {
        let mut t = ServiceTrack::default();
        for i in 0..=100u64 {
            t.see(Some(&stats(7, 3, 5)), Some(i * S));
            assert!(t.points.len() <= 2, "dump {i}: {}", t.points.len());
        }
        let k = t.tick.clone().unwrap();
        assert_eq!(k.new_conns_per_s, Some(0.0));
        assert_eq!(k.close_wait_growth_per_s, Some(0.0));
        // CLOSE-WAIT jumps by 60: over the minute's window (the dump at 41 s held 5, as every
        // dump since 0 s did) that is 1/s, as a list of every dump gives.
        t.see(Some(&stats(7, 3, 65)), Some(101 * S));
        let k = t.tick.clone().unwrap();
        assert_eq!(k.close_wait_growth_per_s, Some(1.0));
        assert_eq!(k.new_conns_per_s, Some(0.0));
        assert!(t.points.len() <= 3);
        assert!(t.points.capacity() <= 16, "{}", t.points.capacity());
    }

    #[test]
    fn the_window_keeps_a_minute() {
        let mut t = ServiceTrack::default();
        for i in 0..200u64 {
            t.see(Some(&stats(i, i, 0)), Some(i * S));
        }
        assert!(t.points.len() <= 62, "{}", t.points.len());
        let k = t.tick.clone().unwrap();
        assert_eq!(k.in_service_growth_per_s, Some(1.0));
    }

    #[test]
    fn arrivals_compare_passive_opens_with_children_seen() {
        let mut a = Arrivals::default();
        let mut c = Counters::default();
        c.tcp.insert("PassiveOpens".into(), 1000);
        let lt = |endpoint: &str, rate: f64| ListenerTick {
            key: crate::model::ListenerKey {
                inode: 1,
                cookie: 1,
            },
            endpoint: endpoint.into(),
            depth: 0,
            backlog: 1,
            depth_high: 0,
            depth_low: 0,
            drops_per_s: None,
            high_fill_s: 0.0,
            undrained_s: 0.0,
            overflowed: false,
            overflow_proven: false,
            drops_delta: None,
            gone: false,
            service: Some(ServiceTick {
                new_conns_per_s: Some(rate),
                ..ServiceTick::default()
            }),
        };
        // An SO_REUSEPORT group (same endpoint twice) counts once.
        let ls = vec![lt("*:80", 30.0), lt("*:80", 30.0), lt("*:81", 10.0)];
        a.see(Some(S), &c, &ls);
        assert!(a.check.is_none());
        c.tcp.insert("PassiveOpens".into(), 1100);
        a.see(Some(3 * S), &c, &ls);
        let k = a.check.clone().unwrap();
        assert_eq!((k.passive_opens_per_s, k.seen_per_s), (50.0, 40.0));
        assert_eq!(k.coverage(), Some(0.8));
    }
}
