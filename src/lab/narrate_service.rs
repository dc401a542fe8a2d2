//! The narration of the scenarios about what happens after accept(): the numbers of the
//! listener's connections (waiting, in service, unread, unsent, closing) as the dashboard shows
//! them, said in plain words. Pure, like the rest of the narration.

use super::narrate::Seen;
use crate::model::lab::{Knobs, Scenario};
use crate::model::labels::tightest_owner;
use crate::model::{ListenerKey, ServiceStats, ServiceTick};

/// What the narration needs of the lab listener's service side.
struct Svc {
    s: ServiceStats,
    st: ServiceTick,
    fds: (Option<u64>, Option<u64>),
}

impl Svc {
    fn of(seen: &Seen) -> Self {
        let l = seen.listener;
        let st = l
            .zip(seen.tick)
            .and_then(|(l, t)| {
                let key = ListenerKey::from(l);
                t.listeners.iter().find(|x| x.key == key)?.service.clone()
            })
            .unwrap_or_default();
        let fds = l
            .and_then(|l| tightest_owner(&l.owners))
            .map_or((None, None), |p| (p.fds_open, p.fd_limit));
        Svc {
            s: l.and_then(|l| l.service.clone()).unwrap_or_default(),
            st,
            fds,
        }
    }

    fn fds(&self) -> String {
        let n = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        format!("{} of {}", n(self.fds.0), n(self.fds.1))
    }
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("-".to_string(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
}

fn size(bytes: u64) -> String {
    if bytes >= 10 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// The narration lines and the "try next" keys of an after-accept scenario.
pub(super) fn narrate_service(
    scenario: Scenario,
    step: usize,
    k: &Knobs,
    seen: &Seen,
) -> (Vec<String>, String) {
    let v = Svc::of(seen);
    match scenario {
        Scenario::BlockedLoop => blocked_loop(step, k, seen, &v),
        Scenario::SlowResponse => slow_response(k, seen, &v),
        Scenario::CloseWaitLeak => close_wait_leak(step, &v),
        _ => slow_readers(step, k, seen, &v),
    }
}

fn blocked_loop(step: usize, k: &Knobs, seen: &Seen, v: &Svc) -> (Vec<String>, String) {
    let s = &v.s;
    let mut n = vec![
        format!(
            "One thread serves everything: each request's handler holds the loop {} ms, so it serves at most {:.1} requests/s; clients arrive at {:.0}/s.",
            k.service_ms,
            k.capacity_of(Scenario::BlockedLoop),
            k.rate
        ),
        format!(
            "Accepted but unread: {} connections ({} bytes), the oldest for {}. Waiting for accept(): {} (queue {}/{}), the oldest for {}.",
            s.unread_conns,
            s.unread_bytes,
            secs(s.unread_oldest_ms),
            s.waiting,
            seen.depth,
            seen.backlog,
            secs(s.waiting_oldest_ms)
        ),
    ];
    n.push(if s.unread_oldest_ms.is_some_and(|ms| ms >= 1000) {
        format!(
            "While a handler blocks, the loop neither reads nor accepts: requests it already accepted sit unread in their sockets (Recv-Q), new connections pile up in the accept queue, and the CPU idles. Clients that gave up left {} in CLOSE-WAIT.",
            s.close_wait
        )
    } else {
        "The loop reads each request as it arrives: nothing waits.".to_string()
    });
    let next = match step {
        0 => "n: make the handler block 2 s · t/T handler time · a/A arrival rate",
        1 => "n: move the blocking call off the loop · t: a shorter handler",
        _ => "t/T handler time · a/A arrival rate",
    };
    (n, next.into())
}

fn slow_response(k: &Knobs, seen: &Seen, v: &Svc) -> (Vec<String>, String) {
    let s = &v.s;
    let w = k.service_ms as f64 / 1000.0;
    let limit = v.fds.1.or(k.fd_limit).unwrap_or(1024);
    let mut n = vec![
        format!(
            "A thread per connection: each holds its connection and a file descriptor for the response time. In service = rate × time = {:.0}/s × {w} s = {:.0}; sockq sees {}{}.",
            k.rate,
            k.rate * w,
            s.in_service,
            v.st.mean_conn_lifetime_s
                .map_or(String::new(), |l| format!(" (Little's law from its arrivals: W = {l:.1} s)"))
        ),
        format!(
            "{limit} fds serve at most fd limit / response time = {:.0} connections/s at {w} s: at 0.5 s {:.0}/s, 1 s {:.0}/s, 2 s {:.0}/s, 4 s {:.0}/s, 8 s {:.0}/s. The server has {} fds open.",
            limit as f64 / w,
            limit as f64 / 0.5,
            limit as f64,
            limit as f64 / 2.0,
            limit as f64 / 4.0,
            limit as f64 / 8.0,
            v.fds()
        ),
    ];
    if v.fds.0.zip(v.fds.1).is_some_and(|(o, l)| o + 8 >= l) {
        n.push(format!(
            "At the limit accept() fails with EMFILE: new connections wait in the accept queue ({}/{}), then the kernel drops them — the CPU idles.",
            seen.depth, seen.backlog
        ));
    }
    (
        n,
        "n: double the response time · t/T response time · a/A arrival rate · f/F fd limit".into(),
    )
}

fn close_wait_leak(step: usize, v: &Svc) -> (Vec<String>, String) {
    let held = v.s.close_wait.saturating_sub(v.s.close_wait_unaccepted);
    let mut n = vec![format!(
        "Clients read the answer and close; the server never closes its side, so each connection stays in CLOSE-WAIT holding a descriptor: CLOSE-WAIT {held}{}, fds {}.",
        v.st.close_wait_growth_per_s
            .filter(|g| *g > 0.0)
            .map_or(String::new(), |g| format!(" (+{g:.1}/s)")),
        v.fds()
    )];
    n.push(match step {
        0 => "CLOSE-WAIT means: the peer closed, this process has not called close(). It grows with the traffic until the fd limit, then accept() fails with EMFILE.".to_string(),
        1 => format!("No new clients, and CLOSE-WAIT stays at {held}: not load but a leak — only the process closing (or exiting) ends it."),
        _ => format!("The server closes what it kept: CLOSE-WAIT {held}."),
    });
    (n, "n: next step · a/A arrival rate · f/F fd limit".into())
}

fn slow_readers(step: usize, k: &Knobs, seen: &Seen, v: &Svc) -> (Vec<String>, String) {
    let s = &v.s;
    let host = seen
        .tick
        .and_then(|t| t.snapshot.sockstat.as_ref())
        .and_then(|st| st.mem_bytes());
    let mut n = vec![
        format!(
            "Each client asks for {} KiB and reads nothing: what its small receive window does not take waits in the server's Send-Q, and the server's thread waits in write().",
            k.response_kib
        ),
        format!(
            "Unsent: {} in {} connections, the oldest not shrinking for {}; their socket memory {}; TCP memory of the whole host {} (net.ipv4.tcp_mem is host-wide).",
            size(s.unsent_bytes),
            s.unsent_conns,
            secs(s.unsent_oldest_ms),
            s.mem_bytes.map_or("?".into(), size),
            host.map_or("?".into(), size)
        ),
    ];
    n.push(match step {
        0 => "Every slow client holds a thread, a descriptor and up to its answer in kernel memory: enough of them and the host's TCP memory reaches tcp_mem's thresholds.".to_string(),
        1 => "No new clients: the memory stays held as long as the clients do not read.".to_string(),
        _ => "The clients read: the Send-Qs drain and the memory is freed.".to_string(),
    });
    (n, "n: next step · a/A arrival rate".into())
}

#[cfg(test)]
mod tests {
    use super::super::narrate;
    use super::super::SERVICE;
    use crate::model::lab::{ClientView, Scenario};
    use crate::model::testing::{process, snapshot, tcp_listener};
    use crate::model::{
        CollectorStats, ListenerKey, ListenerTick, ServiceStats, ServiceTick, Tick,
        TICK_SCHEMA_VERSION,
    };
    use std::collections::BTreeMap;

    /// A tick with the lab's listener serving `s`, its derived `st`, owned by the demo server
    /// with `fds` of `limit` open.
    fn tick(s: ServiceStats, st: ServiceTick, fds: u64, limit: u64) -> Tick {
        let l = tcp_listener(SERVICE.port())
            .addr((*SERVICE.ip()).into())
            .queue(3, 32)
            .owner(process(4242, "lab-server", Some(fds), Some(limit)))
            .service(Some(ServiceStats { group: 1, ..s }))
            .build();
        let lt = ListenerTick {
            key: ListenerKey::from(&l),
            endpoint: l.endpoint().into(),
            depth: 3,
            backlog: 32,
            depth_high: 3,
            depth_low: 3,
            drops_per_s: Some(0.0),
            high_fill_s: 0.0,
            undrained_s: 0.0,
            overflowed: false,
            overflow_proven: false,
            drops_delta: None,
            gone: false,
            service: Some(st),
        };
        Tick {
            schema_version: TICK_SCHEMA_VERSION,
            seq: 1,
            interval_s: Some(1.0),
            gap_before: false,
            snapshot: snapshot(vec![l], 1_000_000_000),
            listeners: vec![lt],
            gone_listeners: 0,
            counter_rates: BTreeMap::new(),
            dropping_listeners: vec![],
            arrivals: None,
            findings: vec![],
            collector: CollectorStats::default(),
        }
    }

    fn text(scenario: Scenario, step: usize, t: &Tick) -> String {
        let k = scenario.defaults();
        narrate(scenario, step, &k, false, Some(t), &ClientView::default())
            .0
            .join("\n")
    }

    #[test]
    fn slow_response_says_rate_times_time_and_the_fd_limit_table() {
        let s = ServiceStats {
            in_service: 99,
            ..ServiceStats::default()
        };
        let st = ServiceTick {
            mean_conn_lifetime_s: Some(0.51),
            ..ServiceTick::default()
        };
        let t = text(Scenario::SlowResponse, 0, &tick(s, st, 106, 1024));
        assert!(
            t.contains("In service = rate × time = 200/s × 0.5 s = 100; sockq sees 99 (Little's law from its arrivals: W = 0.5 s)."),
            "{t}"
        );
        assert!(
            t.contains("1024 fds serve at most fd limit / response time = 2048 connections/s at 0.5 s: at 0.5 s 2048/s, 1 s 1024/s, 2 s 512/s, 4 s 256/s, 8 s 128/s. The server has 106 of 1024 fds open."),
            "{t}"
        );
        assert!(!t.contains("EMFILE"), "{t}");
        let at_limit = text(
            Scenario::SlowResponse,
            4,
            &tick(ServiceStats::default(), ServiceTick::default(), 1024, 1024),
        );
        assert!(
            at_limit.contains("accept() fails with EMFILE"),
            "{at_limit}"
        );
    }

    #[test]
    fn blocked_loop_names_unread_and_waiting_with_their_ages() {
        let s = ServiceStats {
            in_service: 33,
            unread_conns: 32,
            unread_bytes: 128,
            unread_oldest_ms: Some(2848),
            waiting: 3,
            waiting_oldest_ms: Some(904),
            close_wait: 2,
            ..ServiceStats::default()
        };
        let t = text(
            Scenario::BlockedLoop,
            1,
            &tick(s, ServiceTick::default(), 40, 1024),
        );
        assert!(
            t.contains("Accepted but unread: 32 connections (128 bytes), the oldest for 2.8 s. Waiting for accept(): 3 (queue 3/32), the oldest for 0.9 s."),
            "{t}"
        );
        assert!(t.contains("left 2 in CLOSE-WAIT"), "{t}");
        let healthy = text(
            Scenario::BlockedLoop,
            0,
            &tick(ServiceStats::default(), ServiceTick::default(), 6, 1024),
        );
        assert!(healthy.contains("nothing waits"), "{healthy}");
    }
}
