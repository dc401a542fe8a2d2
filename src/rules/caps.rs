//! Application caps seen from outside: connections in service that stop growing at a round
//! number — nginx `worker_connections`, haproxy `maxconn`, redis `maxclients`, a thread or
//! connection pool — while the excess waits in the accept queue or is accepted and reset.
//! Silent when healthy: a flat in-service count alone is a steady load, not a cap.

use super::{ev, rate, who, ACCEPT_WAIT_MS, FD_NEAR};
use crate::model::{Finding, ListenerTick, ServiceStats, Severity, TcpListener, Tick};

/// In-service counts below this are not looked at (too many small numbers are "round").
pub const CAP_MIN: u64 = 64;
/// In-service growth (connections per second, over at least 10 s of dumps) that still counts
/// as flat.
pub const CAP_FLAT_PER_S: f64 = 0.1;

/// Defaults of common servers that are not of the 1/2/5 × 10ⁿ or 2ⁿ kind: Debian's nginx
/// `worker_connections 768`, Apache's `MaxRequestWorkers` 150 (prefork) and 400 (event).
const KNOWN_DEFAULTS: [u64; 3] = [150, 400, 768];

fn is_round(n: u64) -> bool {
    if n.is_power_of_two() && n >= CAP_MIN {
        return true;
    }
    if KNOWN_DEFAULTS.contains(&n) {
        return true;
    }
    // 1, 2 or 5 followed by at least two zeros: 100, 200, 500, 1000 … 10000 …
    let mut m = n;
    let mut zeros = 0;
    while m >= 10 && m % 10 == 0 {
        m /= 10;
        zeros += 1;
    }
    zeros >= 2 && matches!(m, 1 | 2 | 5)
}

/// The round number `n` sits at or just under: caps often count a few connections of their own
/// (nginx's listening sockets take slots of `worker_connections`), so up to max(2, cap/64)
/// below it counts.
pub fn round_cap(n: u64) -> Option<u64> {
    if n < CAP_MIN - 2 {
        return None;
    }
    (n..=n.saturating_add(n / 63 + 2)).find(|&c| is_round(c) && c - n <= (c / 64).max(2))
}

/// What shows the excess over the cap: connections waiting for accept() for long, the queue
/// overflowing, or connections reset (accepted and closed with the request unread).
struct Pressure {
    waiting: u64,
    oldest_wait_s: Option<f64>,
    overflowing: bool,
    resets_per_s: f64,
}

impl Pressure {
    fn of(t: &Tick, lt: &ListenerTick, s: &ServiceStats) -> Option<Self> {
        let oldest = s
            .waiting_oldest_ms
            .filter(|_| s.waiting > 0)
            .map(|ms| ms as f64 / 1000.0);
        let overflowing = lt.overflowed || lt.drops_per_s.is_some_and(|d| d > 0.0);
        let queued = s.waiting > 0
            && (overflowing || oldest.is_some_and(|o| o * 1000.0 >= ACCEPT_WAIT_MS as f64));
        // Accepted and closed with the request unread: the kernel resets (TcpExt, namespace).
        let resets_per_s = rate(t, "TCPAbortOnData") + rate(t, "TCPAbortOnClose");
        // Connections turned away at once live too short for a dump to see them: the
        // namespace's PassiveOpens count them too.
        let arriving = lt
            .service
            .as_ref()
            .and_then(|st| st.new_conns_per_s)
            .is_some_and(|r| r > 0.0)
            || t.arrivals
                .as_ref()
                .is_some_and(|a| a.passive_opens_per_s > 0.0);
        let resetting = resets_per_s > 0.0 && arriving;
        (queued || resetting).then_some(Self {
            waiting: s.waiting,
            oldest_wait_s: oldest,
            overflowing,
            resets_per_s,
        })
    }

    fn describe(&self, endpoint: &str) -> String {
        let mut parts = Vec::new();
        if self.waiting > 0 {
            parts.push(format!(
                "{} connection{} wait for accept(){}{}",
                self.waiting,
                if self.waiting == 1 { "" } else { "s" },
                self.oldest_wait_s
                    .map_or(String::new(), |o| format!(", the oldest {o:.1} s")),
                if self.overflowing {
                    " and the queue overflows"
                } else {
                    ""
                }
            ));
        }
        if self.resets_per_s > 0.0 {
            parts.push(format!(
                "the namespace resets {:.1} connections/s closed with data unread (TCPAbortOnData + TCPAbortOnClose) as new ones keep arriving on {endpoint}",
                self.resets_per_s
            ));
        }
        parts.join("; ")
    }
}

/// Connections in service flat at (or just under) a round number while the excess waits or is
/// reset: the application stops at a configured cap, not the kernel.
pub(super) fn application_cap(t: &Tick, lt: &ListenerTick, l: &TcpListener) -> Option<Finding> {
    let s = l.service.as_ref()?;
    let growth = lt.service.as_ref()?.in_service_growth_per_s?;
    if growth.abs() > CAP_FLAT_PER_S {
        return None;
    }
    let cap = round_cap(s.in_service)?;
    // At its fd limit (1024 is the usual one) the cap is RLIMIT_NOFILE: near_fd_limit says so.
    let at_fd_limit = l.owners.processes().iter().any(|p| {
        p.fds_open
            .zip(p.fd_limit)
            .is_some_and(|(o, l)| l > 0 && o as f64 >= FD_NEAR * l as f64)
    });
    if at_fd_limit {
        return None;
    }
    let p = Pressure::of(t, lt, s)?;
    Some(Finding {
        severity: Severity::Warning,
        rule: "application_cap".into(),
        listener: Some(lt.endpoint.to_string()),
        key: Some(lt.key),
        cleared_s: None,
        message: format!(
            "Connections in service on {} hold flat at {} ({:+.2}/s over the last 10 s or more), {}the round number {cap}, while {}: {} looks capped at {cap} connections (nginx worker_connections, haproxy maxconn, redis maxclients, a pool size) — what is over the cap waits or is turned away.",
            lt.endpoint,
            s.in_service,
            growth,
            if s.in_service == cap { "exactly " } else { "just under " },
            p.describe(&lt.endpoint),
            who(l)
        ),
        evidence: ev([
            ("in_service", Some(s.in_service as f64)),
            ("cap", Some(cap as f64)),
            ("in_service_growth_per_s", Some(growth)),
            ("waiting", Some(p.waiting as f64)),
            ("oldest_wait_s", p.oldest_wait_s),
            ("resets_per_s", Some(p.resets_per_s)),
            ("depth", Some(f64::from(lt.depth))),
            ("backlog", Some(f64::from(lt.backlog))),
        ]),
        next: format!(
            "Look in the configuration of {} for a limit of {cap} (worker_connections × workers, maxconn, maxclients, max_connections, a pool size) and its log for it being reached; ss -tn state established '( sport = :{} )' | wc -l counts the connections it holds.",
            who(l),
            l.port
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, snapshot, tcp_listener};
    use crate::model::{
        CollectorStats, ListenerKey, ServiceSummary, ServiceTick, TICK_SCHEMA_VERSION,
    };
    use std::collections::BTreeMap;

    #[test]
    fn round_numbers_and_the_slack_under_them() {
        for n in [
            64, 128, 512, 1024, 100, 200, 500, 1000, 2000, 10_000, 768, 150, 400,
        ] {
            assert_eq!(round_cap(n), Some(n), "{n}");
        }
        // nginx: its listening socket takes one of 512 slots; redis at 10000 minus a few.
        assert_eq!(round_cap(511), Some(512));
        assert_eq!(round_cap(510), Some(512));
        assert_eq!(round_cap(9_850), Some(10_000));
        for n in [
            0,
            10,
            50,
            63 - 2,
            300,
            700,
            503,
            1000 - 20,
            3000,
            1500,
            9_800,
        ] {
            assert_eq!(round_cap(n), None, "{n}");
        }
    }

    /// A tick with one listener on :6379 with `s` and growth `g`, its depth and drop rate,
    /// and the TcpExt rates given.
    fn tick(s: ServiceStats, g: Option<f64>, depth: u32, rates: &[(&str, f64)]) -> Tick {
        let l = tcp_listener(6379)
            .queue(depth, 511)
            .owner(process(77, "redis-server", Some(120), Some(10_032)))
            .service(Some(ServiceStats { group: 1, ..s }))
            .build();
        let lt = ListenerTick {
            key: ListenerKey::from(&l),
            endpoint: l.endpoint().into(),
            depth,
            backlog: 511,
            depth_high: depth,
            depth_low: depth,
            drops_per_s: Some(0.0),
            high_fill_s: 0.0,
            undrained_s: 0.0,
            overflowed: false,
            overflow_proven: false,
            drops_delta: Some(0),
            gone: false,
            service: Some(ServiceTick {
                new_conns_per_s: Some(40.0),
                in_service_growth_per_s: g,
                ..ServiceTick::default()
            }),
        };
        let mut snap = snapshot(vec![l], 1_000_000_000);
        snap.service = Some(ServiceSummary::default());
        let mut t = Tick {
            schema_version: TICK_SCHEMA_VERSION,
            seq: 1,
            interval_s: Some(1.0),
            gap_before: false,
            snapshot: snap,
            listeners: vec![lt],
            gone_listeners: 0,
            counter_rates: rates
                .iter()
                .map(|(k, v)| (k.to_string(), Some(*v)))
                .collect::<BTreeMap<_, _>>(),
            dropping_listeners: vec![],
            arrivals: None,
            findings: vec![],
            collector: CollectorStats::default(),
        };
        t.findings = super::super::evaluate(&t);
        t
    }

    fn cap(t: &Tick) -> Option<&Finding> {
        t.findings.iter().find(|f| f.rule == "application_cap")
    }

    fn at(in_service: u64, waiting: u64, oldest_ms: Option<u64>) -> ServiceStats {
        ServiceStats {
            in_service,
            waiting,
            waiting_oldest_ms: oldest_ms,
            ..ServiceStats::default()
        }
    }

    #[test]
    fn a_plateau_at_a_cap_with_a_waiting_queue_names_the_numbers() {
        let t = tick(at(1024, 37, Some(2400)), Some(0.0), 37, &[]);
        let f = cap(&t).expect("application_cap");
        assert_eq!(
            f.message,
            "Connections in service on 127.0.0.1:6379 hold flat at 1024 (+0.00/s over the last 10 s or more), exactly the round number 1024, while 37 connections wait for accept(), the oldest 2.4 s: redis-server[77] looks capped at 1024 connections (nginx worker_connections, haproxy maxconn, redis maxclients, a pool size) — what is over the cap waits or is turned away."
        );
        assert_eq!(f.evidence["in_service"], 1024.0);
        assert_eq!(f.evidence["cap"], 1024.0);
        assert_eq!(f.evidence["waiting"], 37.0);
        assert_eq!(f.evidence["oldest_wait_s"], 2.4);
        assert_eq!(f.severity, Severity::Warning);
    }

    #[test]
    fn a_plateau_with_resets_and_arrivals_fires_without_a_queue() {
        let t = tick(
            at(9_998, 0, None),
            Some(0.0),
            0,
            &[("TCPAbortOnData", 12.0)],
        );
        let f = cap(&t).expect("application_cap");
        assert!(
            f.message.contains("just under the round number 10000"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("resets 12.0 connections/s"),
            "{}",
            f.message
        );
        assert_eq!(f.evidence["resets_per_s"], 12.0);
    }

    #[test]
    fn silent_when_healthy_or_not_a_cap() {
        // Flat at a round number, nothing waiting, nothing reset: a steady load.
        assert!(cap(&tick(at(1024, 0, None), Some(0.0), 0, &[])).is_none());
        // A short wait (under a second) is not a queue building up.
        assert!(cap(&tick(at(1024, 3, Some(200)), Some(0.0), 3, &[])).is_none());
        // Still growing: not a plateau.
        assert!(cap(&tick(at(1024, 37, Some(2400)), Some(3.0), 37, &[])).is_none());
        // Not yet 10 s of dumps: no growth known.
        assert!(cap(&tick(at(1024, 37, Some(2400)), None, 37, &[])).is_none());
        // Flat and queued, but not at a round number: a slow server, not a cap.
        assert!(cap(&tick(at(937, 37, Some(2400)), Some(0.0), 37, &[])).is_none());
    }

    #[test]
    fn a_plateau_at_the_fd_limit_is_left_to_near_fd_limit() {
        let mut t = tick(at(1018, 129, Some(2400)), Some(0.0), 129, &[]);
        let l = &mut t.snapshot.tcp_listeners[0];
        l.owners = crate::model::Owners::Known {
            processes: vec![process(77, "lab-server", Some(1024), Some(1024))].into(),
        };
        let findings = super::super::evaluate(&t);
        let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules.contains(&"near_fd_limit"), "{rules:?}");
        assert!(!rules.contains(&"application_cap"), "{rules:?}");
    }
}
