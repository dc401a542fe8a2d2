//! Rules about one listener: its accept queue full or high, not draining (its holders stopped
//! or busy), capped by somaxconn, or a SYN queue at risk without cookies.

use std::collections::BTreeMap;

use super::holders::{holder_busy, holder_with_state, holders_stopped, list};
use super::{ev, who, HIGH_FILL, SUSTAINED_HIGH_S, UNDRAINED_S};
use crate::model::{Finding, ListenerTick, Severity, TcpListener, Tick};

/// Every rule about one listener, in the order their findings are listed.
pub(super) fn listener_rules(t: &Tick, lt: &ListenerTick, l: &TcpListener, out: &mut Vec<Finding>) {
    out.extend(accept_queue_fill(t, lt, l));
    out.extend(holders_stopped(lt, l));
    out.extend(holder_busy(lt, l));
    out.extend(not_accepting(lt, l));
    out.extend(capped_by_somaxconn(t, lt));
    out.extend(syn_queue_without_cookies(t, lt, l));
}

/// The queue numbers every accept-queue finding shows. Built only when a rule fires: the
/// rules run for every listener on every tick.
fn queue_evidence(lt: &ListenerTick) -> BTreeMap<String, f64> {
    ev([
        ("depth", Some(f64::from(lt.depth))),
        ("backlog", Some(f64::from(lt.backlog))),
        ("peak", Some(f64::from(lt.depth_high))),
        ("drops_per_s", lt.drops_per_s),
        ("drops", lt.drops_delta.filter(|&d| d > 0).map(|d| d as f64)),
        ("overflow_proven", lt.overflow_proven.then_some(1.0)),
    ])
}

/// What the kernel does to a connection that meets a full accept queue.
fn overflow_effect(t: &Tick) -> &'static str {
    match t.snapshot.tunables.tcp_abort_on_overflow {
        Some(1) => "the kernel drops new SYNs, and resets clients whose final ACK meets it (tcp_abort_on_overflow=1)",
        _ => "the kernel drops new connections to it",
    }
}

/// The sentence of an accept queue that overflowed: full now, filled and drained between
/// two ticks (a poll saw it), or proven by the drop counters between two polls.
fn overflow_message(t: &Tick, lt: &ListenerTick) -> String {
    let (ep, backlog, effect) = (&lt.endpoint, lt.backlog, overflow_effect(t));
    if lt.depth > backlog {
        return format!(
            "The accept queue of {ep} is full ({}/{backlog}): {effect}.",
            lt.depth
        );
    }
    if lt.overflow_proven {
        return format!(
            "The accept queue of {ep} overflowed between two polls ({}/{backlog}): its own drop counter counted {} drops this tick while ListenOverflows rose; the fast poll (every {} ms) did not catch the peak, the counters prove it. Meanwhile {effect}.",
            lt.depth_high,
            lt.drops_delta.unwrap_or(0),
            t.collector.fast_interval_ms
        );
    }
    format!(
        "The accept queue of {ep} filled up ({}/{backlog}) since the last tick and drained again: {effect} during that burst.",
        lt.depth_high
    )
}

/// Full now or since the last tick (CRIT), or staying high (WARN).
fn accept_queue_fill(t: &Tick, lt: &ListenerTick, l: &TcpListener) -> Option<Finding> {
    let ep = &lt.endpoint;
    let backlog = lt.backlog;
    if lt.overflowed || lt.depth > backlog {
        let message = overflow_message(t, lt);
        return Some(Finding {
            severity: Severity::Critical,
            rule: "accept_queue_full".into(),
            listener: Some(ep.to_string()),
            key: Some(lt.key),
            cleared_s: None,
            message,
            evidence: queue_evidence(lt),
            next: format!(
                "Check that {} calls accept() fast enough (free workers, CPU, fd limit); a larger listen() backlog (and net.core.somaxconn) absorbs bursts.",
                who(l)
            ),
        });
    }
    (lt.high_fill_s >= SUSTAINED_HIGH_S).then(|| Finding {
            severity: Severity::Warning,
            rule: "accept_queue_high".into(),
            listener: Some(ep.to_string()),
            key: Some(lt.key),
            cleared_s: None,
            message: format!(
                "The accept queue of {ep} has stayed at least {:.0}% full for {:.0} s ({}/{backlog}): {} accepts barely as fast as connections arrive.",
                HIGH_FILL * 100.0,
                lt.high_fill_s,
                lt.depth,
                who(l)
            ),
            evidence: {
                let mut e = queue_evidence(lt);
                e.insert("seconds".into(), lt.high_fill_s);
                e
            },
            next: format!(
                "At {} waiting connections the kernel starts dropping; look at {}'s workers and CPU.",
                backlog + 1,
                who(l)
            ),
        })
}

/// Connections waited without the queue draining once. Names every holder (up to four) with
/// its state and CPU share: which of a pre-fork server's processes is stopped or busy.
fn not_accepting(lt: &ListenerTick, l: &TcpListener) -> Option<Finding> {
    if lt.undrained_s < UNDRAINED_S {
        return None;
    }
    let ep = &lt.endpoint;
    let procs = l.owners.processes();
    let holders: Vec<String> = procs.iter().map(holder_with_state).collect();
    let who = match procs {
        [] => "the owning process is not calling accept(), or calls it too slowly".to_string(),
        [_] => format!(
            "{} is not calling accept(), or calls it too slowly",
            list(&holders)
        ),
        _ => format!(
            "its {} holders are not calling accept(), or call it too slowly: {}",
            procs.len(),
            list(&holders)
        ),
    };
    let stopped = procs
        .iter()
        .filter(|p| matches!(p.state, Some('T' | 't')))
        .count();
    let by_signal: Vec<String> = procs
        .iter()
        .filter(|p| p.state == Some('T'))
        .map(|p| p.pid.to_string())
        .collect();
    let mut next = String::new();
    if !by_signal.is_empty() {
        next = format!(
            "Resume what is stopped (kill -CONT {}) or restart it. ",
            by_signal.join(" ")
        );
    }
    next.push_str("See whether the process is stuck or busy: its threads' state (top -H -p PID), what it waits on (cat /proc/PID/stack, strace -p PID), and its fd count.");
    let busiest_cpu = procs
        .iter()
        .filter_map(|p| p.cpu_percent)
        .max_by(f64::total_cmp);
    Some(Finding {
        severity: Severity::Warning,
        rule: "not_accepting".into(),
        listener: Some(ep.to_string()),
        key: Some(lt.key),
        cleared_s: None,
        message: format!(
            "Connections have waited in the accept queue of {ep} for {:.0} s without it draining once: {who}.",
            lt.undrained_s,
        ),
        evidence: ev([
            ("depth", Some(f64::from(lt.depth))),
            ("seconds", Some(lt.undrained_s)),
            ("holders", (procs.len() > 1).then_some(procs.len() as f64)),
            ("holders_stopped", (stopped > 0).then_some(stopped as f64)),
            ("holder_cpu_percent_max", busiest_cpu),
        ]),
        next,
    })
}

/// The backlog equals somaxconn: the server probably asked for more.
/// The somaxconn default before Linux 5.4, still the value of many hosts and containers.
const OLD_SOMAXCONN: u32 = 128;

fn capped_by_somaxconn(t: &Tick, lt: &ListenerTick) -> Option<Finding> {
    let ep = &lt.endpoint;
    let backlog = lt.backlog;
    let somaxconn = t.snapshot.tunables.somaxconn?;
    let pressured =
        lt.overflowed || lt.high_fill_s > 0.0 || lt.drops_per_s.is_some_and(|d| d > 0.0);
    // Only under pressure: many servers ask for exactly 128, and an idle one is no news.
    if pressured && backlog == OLD_SOMAXCONN && somaxconn > i64::from(OLD_SOMAXCONN) {
        return Some(Finding {
            severity: Severity::Warning,
            rule: "backlog_from_old_somaxconn".into(),
            listener: Some(ep.to_string()),
            key: Some(lt.key),
            cleared_s: None,
            message: format!(
                "The backlog of {ep} is {OLD_SOMAXCONN}, though net.core.somaxconn is {somaxconn} now: if the server asked for more (nginx, node and redis ask for 511), it called listen() while somaxconn was still {OLD_SOMAXCONN}, and keeps that cap."
            ),
            evidence: ev([
                ("backlog", Some(f64::from(backlog))),
                ("somaxconn", Some(somaxconn as f64)),
            ]),
            next: "Restart the server (or make it call listen() again): a listener keeps the backlog it got at listen() time.".into(),
        });
    }
    if i64::from(backlog) != somaxconn {
        return None;
    }
    Some(Finding {
                severity: if pressured { Severity::Warning } else { Severity::Info },
                rule: "backlog_capped_by_somaxconn".into(),
                listener: Some(ep.to_string()),
                key: Some(lt.key),
                cleared_s: None,
                message: format!(
                    "The backlog of {ep} ({backlog}) equals net.core.somaxconn: the server probably asked for more (nginx, node and redis ask for 511) and the kernel capped it."
                ),
                evidence: ev([
                    ("backlog", Some(f64::from(backlog))),
                    ("somaxconn", Some(somaxconn as f64)),
                ]),
                next: "Raise net.core.somaxconn (it is per network namespace), then restart the server: a listener keeps its backlog until it calls listen() again.".into(),
            })
}

/// Many half-open requests with SYN cookies off: the SYN queue will drop.
fn syn_queue_without_cookies(t: &Tick, lt: &ListenerTick, l: &TcpListener) -> Option<Finding> {
    let ep = &lt.endpoint;
    let backlog = lt.backlog;
    let risky =
        t.snapshot.tunables.tcp_syncookies == Some(0) && l.syn_recv > u64::from(backlog) / 2;
    risky.then(|| Finding {
            severity: if l.syn_recv > u64::from(backlog) { Severity::Critical } else { Severity::Warning },
            rule: "syn_queue_without_cookies".into(),
            listener: Some(ep.to_string()),
            key: Some(lt.key),
            cleared_s: None,
            message: format!(
                "{ep} has {} half-open (SYN-RECV) requests for a backlog of {backlog}, and SYN cookies are off (tcp_syncookies=0): once its SYN queue is full, new SYNs are dropped.",
                l.syn_recv
            ),
            evidence: ev([
                ("syn_recv", Some(l.syn_recv as f64)),
                ("backlog", Some(f64::from(backlog))),
            ]),
            next: "Turn SYN cookies back on (net.ipv4.tcp_syncookies=1, the default) or raise the backlog; if these are spoofed SYNs, filter them upstream.".into(),
        })
}
