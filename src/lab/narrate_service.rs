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
