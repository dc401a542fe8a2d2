//! Rules about the service side of a listener — what happens after accept() — and the
//! namespace's TCP memory. Silent when healthy; the evidence is the numbers the message shows.
//! An SO_REUSEPORT group shares its children's numbers, so its findings are made once (by the
//! caller, per endpoint).

use std::collections::BTreeMap;

use super::{ev, rate, who};
use crate::model::{Finding, ListenerTick, ServiceStats, Severity, TcpListener, Tick};

/// Unread requests older than this make `not_reading` fire (ms).
pub const NOT_READING_MS: u64 = 1_000;
/// A head-of-line wait in the accept queue longer than this makes `accept_wait` fire (ms).
pub const ACCEPT_WAIT_MS: u64 = 1_000;
/// A Send-Q that has not shrunk for this long makes `slow_readers` fire (ms).
pub const SLOW_READER_MS: u64 = 5_000;
/// CLOSE-WAIT must have risen for this long, without falling, to be `close_wait_growing` (s).
pub const CLOSE_WAIT_RISING_S: f64 = 10.0;
/// ... and hold at least this many sockets.
pub const CLOSE_WAIT_MIN: u64 = 5;
/// `fds_at_this_rate` fires when the fds left last less than this at the current growth (s).
pub const FDS_HORIZON_S: f64 = 300.0;

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn finding(
    severity: Severity,
    rule: &str,
    lt: &ListenerTick,
    message: String,
    evidence: BTreeMap<String, f64>,
    next: String,
) -> Finding {
    Finding {
        severity,
        rule: rule.into(),
        listener: Some(lt.endpoint.to_string()),
        key: Some(lt.key),
        cleared_s: None,
        message,
        evidence,
        next,
    }
}

/// " (numbers N s old)" when the service dump was reused under the CPU budget.
fn staleness(t: &Tick) -> String {
    match t.snapshot.service.as_ref().map(|s| s.age_ms) {
        Some(age) if age >= 1000 => format!(" (numbers {:.0} s old)", secs(age)),
        _ => String::new(),
    }
}

/// Every service rule about one listener (once per SO_REUSEPORT group).
pub(super) fn service_rules(t: &Tick, lt: &ListenerTick, l: &TcpListener, out: &mut Vec<Finding>) {
    let Some(s) = l.service.as_ref() else {
        return;
    };
    out.extend(not_reading(t, lt, l, s));
    out.extend(accept_wait(t, lt, l, s));
    out.extend(slow_readers(t, lt, l, s));
    out.extend(close_wait_growing(lt, l, s));
    out.extend(fds_at_this_rate(lt, l, s));
}

/// Accepted connections whose requests sit unread: the process accepts but does not read.
fn not_reading(t: &Tick, lt: &ListenerTick, l: &TcpListener, s: &ServiceStats) -> Option<Finding> {
    let oldest = s.unread_oldest_ms.filter(|&ms| ms >= NOT_READING_MS)?;
    let n = s.unread_conns;
    Some(finding(
        Severity::Warning,
        "not_reading",
        lt,
        format!(
            "{n} accepted connection{} on {} {} unread requests, oldest {:.1} s{}: {} accepts but does not read — a blocked event loop or busy workers.",
            if n == 1 { "" } else { "s" },
            lt.endpoint,
            if n == 1 { "has" } else { "have" },
            secs(oldest),
            staleness(t),
            who(l)
        ),
        ev([
            ("unread_connections", Some(n as f64)),
            ("unread_bytes", Some(s.unread_bytes as f64)),
            ("oldest_unread_s", Some(secs(oldest))),
            ("in_service", Some(s.in_service as f64)),
        ]),
        format!(
            "See where {} waits instead of reading: its threads (top -H -p PID), their kernel stacks (cat /proc/PID/task/*/stack), or a stack dump of the runtime (py-spy dump, jstack, gdb); ss -tnp state established '( sport = :{} )' shows the connections.",
            who(l),
            l.port
        ),
    ))
}

/// The head of the accept queue has waited long: clients wait before any work starts.
fn accept_wait(t: &Tick, lt: &ListenerTick, l: &TcpListener, s: &ServiceStats) -> Option<Finding> {
    let oldest = s.waiting_oldest_ms.filter(|&ms| ms > ACCEPT_WAIT_MS)?;
    Some(finding(
        Severity::Warning,
        "accept_wait",
        lt,
        format!(
            "The oldest of {} connection{} waiting for accept() on {} has waited {:.1} s{}: {} accepts too slowly, and each client waits that long before its request is even read.",
            s.waiting,
            if s.waiting == 1 { "" } else { "s" },
            lt.endpoint,
            secs(oldest),
            staleness(t),
            who(l)
        ),
        ev([
            ("waiting", Some(s.waiting as f64)),
            ("oldest_wait_s", Some(secs(oldest))),
            ("depth", Some(f64::from(lt.depth))),
            ("backlog", Some(f64::from(lt.backlog))),
        ]),
        format!(
            "Check that {} has free workers and calls accept() often enough (its CPU, its fd count, the accept loop itself).",
            who(l)
        ),
    ))
}

fn kib(bytes: u64) -> String {
    if bytes >= 10 * 1024 * 1024 {
        format!("{:.0} MiB", bytes as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// Responses that do not leave: the peers do not read (slow or stalled clients).
fn slow_readers(t: &Tick, lt: &ListenerTick, l: &TcpListener, s: &ServiceStats) -> Option<Finding> {
    let oldest = s.unsent_oldest_ms.filter(|&ms| ms >= SLOW_READER_MS)?;
    Some(finding(
        Severity::Warning,
        "slow_readers",
        lt,
        format!(
            "{} connection{} on {} hold {} of unsent responses, one Send-Q not shrinking for {:.0} s{}: clients that do not read what {} sends, holding its memory and whatever serves them.",
            s.unsent_conns,
            if s.unsent_conns == 1 { "" } else { "s" },
            lt.endpoint,
            kib(s.unsent_bytes),
            secs(oldest),
            staleness(t),
            who(l)
        ),
        ev([
            ("unsent_connections", Some(s.unsent_conns as f64)),
            ("unsent_bytes", Some(s.unsent_bytes as f64)),
            ("oldest_unsent_s", Some(secs(oldest))),
            ("mem_bytes", s.mem_bytes.map(|m| m as f64)),
        ]),
        format!(
            "ss -tni '( sport = :{} )' shows each connection's Send-Q and window; time out writes to clients that do not read (send_timeout, write deadlines), and look at the path if many stall at once.",
            l.port
        ),
    ))
}

/// CLOSE-WAIT grows: peers close and the process never closes its side (a leak).
fn close_wait_growing(lt: &ListenerTick, l: &TcpListener, s: &ServiceStats) -> Option<Finding> {
    let st = lt.service.as_ref()?;
    let growth = st.close_wait_growth_per_s.filter(|&g| g > 0.0)?;
    // Only what the process accepted: those still in the accept queue hold no descriptor.
    let held = s.close_wait.saturating_sub(s.close_wait_unaccepted);
    if st.close_wait_rising_s < CLOSE_WAIT_RISING_S || held < CLOSE_WAIT_MIN {
        return None;
    }
    Some(finding(
        Severity::Warning,
        "close_wait_growing",
        lt,
        format!(
            "CLOSE-WAIT of accepted connections on {} has grown for {:.0} s ({:.2}/s) to {}: peers close their connections and {} does not close its side — a connection leak that ends at its fd limit.",
            lt.endpoint,
            st.close_wait_rising_s,
            growth,
            held,
            who(l)
        ),
        ev([
            ("close_wait", Some(held as f64)),
            ("growth_per_s", Some(growth)),
            ("rising_s", Some(st.close_wait_rising_s)),
        ]),
        format!(
            "Find the code path that returns without closing the socket (errors, timeouts): ss -tnp state close-wait '( sport = :{} )' names the process, ls -l /proc/PID/fd counts its sockets.",
            l.port
        ),
    ))
}

/// In-service connections grow toward the owner's fd limit.
fn fds_at_this_rate(lt: &ListenerTick, l: &TcpListener, s: &ServiceStats) -> Option<Finding> {
    // Accepted CLOSE-WAIT children hold an fd each as well: a leak exhausts the table too.
    let growth = lt
        .service
        .as_ref()?
        .fds_held_growth_per_s
        .filter(|&g| g > 0.0)?;
    let close_wait = s.close_wait.saturating_sub(s.close_wait_unaccepted);
    let p = l
        .owners
        .processes()
        .iter()
        .find(|p| p.fds_open.is_some() && p.fd_limit.is_some())?;
    let (open, limit) = (p.fds_open?, p.fd_limit?);
    let left = limit.saturating_sub(open);
    let seconds = left as f64 / growth;
    if seconds > FDS_HORIZON_S {
        return None;
    }
    Some(finding(
        if seconds <= 60.0 { Severity::Critical } else { Severity::Warning },
        "fds_at_this_rate",
        lt,
        format!(
            "Connections of {} that hold a file descriptor grow by {growth:.1}/s ({} in service, {close_wait} in CLOSE-WAIT now); {}[{}] has {left} of {limit} file descriptors left: at this rate accept() fails with EMFILE in {seconds:.0} s.",
            lt.endpoint, s.in_service, p.comm, p.pid
        ),
        ev([
            ("in_service", Some(s.in_service as f64)),
            ("close_wait", Some(close_wait as f64)),
            ("growth_per_s", Some(growth)),
            ("fds_open", Some(open as f64)),
            ("fd_limit", Some(limit as f64)),
            ("seconds_left", Some(seconds)),
        ]),
        format!(
            "Find why connections are not finishing (CLOSE-WAIT, slow readers, a stuck backend) or raise RLIMIT_NOFILE of {}[{}] (LimitNOFILE=, ulimit -n).",
            p.comm, p.pid
        ),
    ))
}

/// TCP memory pressure: TCPMemoryPressures rising, or the host's TCP memory at or above
/// net.ipv4.tcp_mem's first threshold.
pub(super) fn tcp_memory_pressure(t: &Tick) -> Option<Finding> {
    let snap = &t.snapshot;
    let entering = rate(t, "TCPMemoryPressures");
    let mem = snap.sockstat.as_ref().and_then(|s| s.mem_pages);
    let limits = snap.tunables.tcp_mem;
    let above = |i: usize| {
        mem.zip(limits)
            .is_some_and(|(m, l)| i64::try_from(m).unwrap_or(i64::MAX) >= l[i])
    };
    if entering <= 0.0 && !above(0) {
        return None;
    }
    // The listener whose connections hold the most memory (once per group).
    let top = snap
        .tcp_listeners
        .iter()
        .filter_map(|l| Some((l.service.as_ref()?.mem_bytes?, l)))
        .max_by_key(|(m, _)| *m)
        .filter(|(m, _)| *m > 0);
    let page = snap.sockstat.as_ref().map_or(4096, |s| s.page_size);
    let state = if entering > 0.0 || above(1) {
        "TCP is under memory pressure: the kernel shrinks socket buffers and drops what does not fit"
    } else {
        "TCP memory is above net.ipv4.tcp_mem's first threshold: once past the second, the kernel enters memory pressure and stays there until below the first again"
    };
    let held = top.map_or(String::new(), |(m, l)| {
        format!("; the connections of {} hold {}", l.endpoint(), kib(m))
    });
    Some(Finding {
        severity: if entering > 0.0 || above(1) {
            Severity::Critical
        } else {
            Severity::Warning
        },
        rule: "tcp_memory_pressure".into(),
        listener: None,
        key: None,
        cleared_s: None,
        message: format!(
            "{state} ({}{}; TCPMemoryPressures {entering:.1}/s){held}.",
            mem.map_or("memory unknown".to_string(), |m| format!(
                "{} in use",
                kib(m.saturating_mul(page))
            )),
            limits.map_or(String::new(), |l| format!(
                " of tcp_mem {} / {} / {} pages",
                l[0], l[1], l[2]
            )),
        ),
        evidence: ev([
            ("mem_pages", mem.map(|m| m as f64)),
            ("tcp_mem_min", limits.map(|l| l[0] as f64)),
            ("tcp_mem_pressure", limits.map(|l| l[1] as f64)),
            ("tcp_mem_max", limits.map(|l| l[2] as f64)),
            ("TCPMemoryPressures_per_s", Some(entering)),
            ("top_listener_mem_bytes", top.map(|(m, _)| m as f64)),
        ]),
        next: "Find the sockets holding memory (ss -tm: large r/w/f; unread Recv-Q, slow readers' Send-Q), or raise net.ipv4.tcp_mem if the host has memory to spare.".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{process, snapshot, tcp_listener};
    use crate::model::{
        CollectorStats, ListenerKey, ServiceSummary, ServiceTick, TcpSockstat, TICK_SCHEMA_VERSION,
    };

    fn lt(l: &TcpListener, service: Option<ServiceTick>) -> ListenerTick {
        ListenerTick {
            key: ListenerKey::from(l),
            endpoint: l.endpoint().into(),
            depth: l.accept_queue,
            backlog: l.backlog,
            depth_high: l.accept_queue,
            depth_low: l.accept_queue,
            drops_per_s: Some(0.0),
            high_fill_s: 0.0,
            undrained_s: 0.0,
            overflowed: false,
            overflow_proven: false,
            drops_delta: Some(0),
            gone: false,
            service,
        }
    }

    /// A tick of `listeners` (with their derived service numbers), a fresh service dump, and
    /// the rules evaluated.
    fn tick(listeners: Vec<(TcpListener, Option<ServiceTick>)>) -> Tick {
        let lts = listeners.iter().map(|(l, st)| lt(l, st.clone())).collect();
        let mut snap = snapshot(
            listeners.into_iter().map(|(l, _)| l).collect(),
            1_000_000_000,
        );
        snap.service = Some(ServiceSummary::default());
        let mut t = Tick {
            schema_version: TICK_SCHEMA_VERSION,
            seq: 1,
            interval_s: Some(1.0),
            gap_before: false,
            snapshot: snap,
            listeners: lts,
            gone_listeners: 0,
            counter_rates: BTreeMap::new(),
            dropping_listeners: vec![],
            arrivals: None,
            findings: vec![],
            collector: CollectorStats::default(),
        };
        t.findings = super::super::evaluate(&t);
        t
    }

    fn with(s: ServiceStats) -> TcpListener {
        tcp_listener(8080)
            .owner(process(4242, "python3", Some(20), Some(1024)))
            .service(Some(ServiceStats { group: 1, ..s }))
            .build()
    }

    fn rules(t: &Tick) -> Vec<&str> {
        t.findings.iter().map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn healthy_service_is_silent() {
        let s = ServiceStats {
            in_service: 50,
            unread_conns: 3,
            unread_bytes: 300,
            unread_oldest_ms: Some(20),
            waiting: 1,
            waiting_oldest_ms: Some(5),
            unsent_conns: 2,
            unsent_bytes: 4000,
            unsent_oldest_ms: Some(100),
            close_wait: 3,
            ..ServiceStats::default()
        };
        let st = ServiceTick {
            new_conns_per_s: Some(50.0),
            mean_conn_lifetime_s: Some(1.0),
            close_wait_growth_per_s: Some(0.0),
            close_wait_rising_s: 0.0,
            in_service_growth_per_s: Some(0.0),
            fds_held_growth_per_s: Some(0.0),
        };
        let t = tick(vec![(with(s), Some(st))]);
        assert!(t.findings.is_empty(), "{:?}", t.findings);
    }

    #[test]
    fn not_reading_names_the_process_and_the_numbers() {
        let s = ServiceStats {
            in_service: 40,
            unread_conns: 37,
            unread_bytes: 3700,
            unread_oldest_ms: Some(2300),
            ..ServiceStats::default()
        };
        let t = tick(vec![(with(s), None)]);
        let f = t.findings.iter().find(|f| f.rule == "not_reading").unwrap();
        assert_eq!(
            f.message,
            "37 accepted connections on 127.0.0.1:8080 have unread requests, oldest 2.3 s: python3[4242] accepts but does not read — a blocked event loop or busy workers."
        );
        assert_eq!(f.evidence["unread_connections"], 37.0);
        assert_eq!(f.evidence["oldest_unread_s"], 2.3);
    }

    #[test]
    fn accept_wait_and_slow_readers_fire_past_their_thresholds() {
        let s = ServiceStats {
            waiting: 4,
            waiting_oldest_ms: Some(1500),
            unsent_conns: 3,
            unsent_bytes: 3 * 1024 * 1024,
            unsent_oldest_ms: Some(6000),
            in_service: 3,
            ..ServiceStats::default()
        };
        let t = tick(vec![(with(s), None)]);
        assert_eq!(rules(&t), vec!["accept_wait", "slow_readers"]);
        assert!(
            t.findings[1].message.contains("3072 KiB"),
            "{}",
            t.findings[1].message
        );
    }

    #[test]
    fn a_reuseport_group_is_reported_once() {
        let s = ServiceStats {
            group: 2,
            unread_conns: 2,
            unread_bytes: 20,
            unread_oldest_ms: Some(5000),
            ..ServiceStats::default()
        };
        let a = tcp_listener(80)
            .identity(1, 1)
            .service(Some(s.clone()))
            .build();
        let b = tcp_listener(80).identity(2, 2).service(Some(s)).build();
        let t = tick(vec![(a, None), (b, None)]);
        assert_eq!(rules(&t), vec!["not_reading"]);
    }

    #[test]
    fn close_wait_growing_needs_a_sustained_rise() {
        let s = ServiceStats {
            close_wait: 24,
            ..ServiceStats::default()
        };
        let st = |rising_s: f64| ServiceTick {
            close_wait_growth_per_s: Some(2.0),
            close_wait_rising_s: rising_s,
            ..ServiceTick::default()
        };
        assert!(rules(&tick(vec![(with(s.clone()), Some(st(9.0)))])).is_empty());
        let t = tick(vec![(with(s), Some(st(12.0)))]);
        let f = t
            .findings
            .iter()
            .find(|f| f.rule == "close_wait_growing")
            .unwrap();
        assert!(
            f.message.contains("grown for 12 s (2.00/s) to 24"),
            "{}",
            f.message
        );
    }

    #[test]
    fn fds_at_this_rate_counts_the_seconds_left() {
        let l = |open: u64| {
            tcp_listener(8080)
                .owner(process(7, "srv", Some(open), Some(1024)))
                .service(Some(ServiceStats {
                    group: 1,
                    in_service: 100,
                    ..ServiceStats::default()
                }))
                .build()
        };
        let st = ServiceTick {
            in_service_growth_per_s: Some(10.0),
            fds_held_growth_per_s: Some(10.0),
            ..ServiceTick::default()
        };
        // 1000 open of 1024, growing 10/s: 2.4 s left.
        let t = tick(vec![(l(1000), Some(st.clone()))]);
        let f = t
            .findings
            .iter()
            .find(|f| f.rule == "fds_at_this_rate")
            .unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!((f.evidence["seconds_left"] - 2.4).abs() < 1e-9, "{f:?}");
        // 1000 s left: beyond the horizon.
        let far = tcp_listener(8080)
            .owner(process(7, "srv", Some(24), Some(10_024)))
            .service(Some(ServiceStats::default()))
            .build();
        assert!(rules(&tick(vec![(far, Some(st))])).is_empty());
    }

    #[test]
    fn fds_at_this_rate_counts_a_close_wait_leak() {
        // In service flat, accepted CLOSE-WAIT growing 10/s: the fds run out all the same.
        let l = tcp_listener(8080)
            .owner(process(7, "srv", Some(1000), Some(1024)))
            .service(Some(ServiceStats {
                group: 1,
                in_service: 5,
                close_wait: 300,
                close_wait_unaccepted: 20,
                ..ServiceStats::default()
            }))
            .build();
        let st = ServiceTick {
            in_service_growth_per_s: Some(0.0),
            close_wait_growth_per_s: Some(10.0),
            fds_held_growth_per_s: Some(10.0),
            ..ServiceTick::default()
        };
        let t = tick(vec![(l, Some(st))]);
        let f = t
            .findings
            .iter()
            .find(|f| f.rule == "fds_at_this_rate")
            .expect("fires on the CLOSE-WAIT growth");
        assert_eq!(f.evidence["close_wait"], 280.0);
        assert!((f.evidence["seconds_left"] - 2.4).abs() < 1e-9, "{f:?}");
        assert!(
            f.message.contains("5 in service, 280 in CLOSE-WAIT"),
            "{}",
            f.message
        );
    }

    #[test]
    fn tcp_memory_pressure_from_the_thresholds_or_the_counter() {
        let big = tcp_listener(443)
            .service(Some(ServiceStats {
                group: 1,
                mem_bytes: Some(64 << 20),
                ..ServiceStats::default()
            }))
            .build();
        let mut t = tick(vec![(big, None)]);
        t.snapshot.sockstat = Some(TcpSockstat {
            mem_pages: Some(1500),
            page_size: 4096,
            ..TcpSockstat::default()
        });
        t.snapshot.tunables.tcp_mem = Some([1000, 2000, 3000]);
        let f = tcp_memory_pressure(&t).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message.contains("127.0.0.1:443 hold 64 MiB"),
            "{}",
            f.message
        );
        t.snapshot.tunables.tcp_mem = Some([2000, 3000, 4000]);
        assert!(tcp_memory_pressure(&t).is_none());
        // Inside a namespace tcp_mem is unknown: the counter still tells.
        t.snapshot.tunables.tcp_mem = None;
        t.counter_rates
            .insert("TCPMemoryPressures".into(), Some(0.5));
        let f = tcp_memory_pressure(&t).unwrap();
        assert_eq!(f.severity, Severity::Critical);
    }
}
