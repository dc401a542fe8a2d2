//! Rules over a tick → findings: what is wrong, in plain words, with the numbers that show it
//! and where to look next. Pure.

use std::collections::BTreeMap;

use crate::model::{Finding, ListenerKey, ListenerTick, ProcessInfo, Severity, TcpListener, Tick};

/// Fill that counts as "high" for the sustained rule.
pub const HIGH_FILL: f64 = 0.8;
/// Seconds of high fill before it is reported.
pub const SUSTAINED_HIGH_S: f64 = 3.0;
/// Seconds a queue may stay non-empty without draining before "not accepting" is reported.
pub const UNDRAINED_S: f64 = 5.0;
/// Fraction of RLIMIT_NOFILE that counts as "near the fd limit".
pub const FD_NEAR: f64 = 0.9;

fn who(l: &TcpListener) -> String {
    match l.owners.processes() {
        [] => "the owning process".to_string(),
        [p] => format!("{}[{}]", p.comm, p.pid),
        [p, rest @ ..] => format!("{}[{}] and {} more", p.comm, p.pid, rest.len()),
    }
}

fn ev<const N: usize>(pairs: [(&str, Option<f64>); N]) -> BTreeMap<String, f64> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

fn rate(t: &Tick, name: &str) -> f64 {
    t.counter_rates.get(name).copied().flatten().unwrap_or(0.0)
}

/// Evaluates every rule on a tick. Findings come most severe first.
pub fn evaluate(t: &Tick) -> Vec<Finding> {
    let mut out = Vec::new();
    let by_key: BTreeMap<ListenerKey, &TcpListener> = t
        .snapshot
        .tcp_listeners
        .iter()
        .map(|l| (ListenerKey::from(l), l))
        .collect();
    let mut fd_reported: Vec<u32> = Vec::new();
    for lt in t.listeners.iter().filter(|lt| !lt.gone) {
        let Some(l) = by_key.get(&lt.key) else {
            continue;
        };
        listener_rules(t, lt, l, &mut out);
        for p in l.owners.processes() {
            if !fd_reported.contains(&p.pid) {
                if let Some(f) = fd_rule(lt, l, p) {
                    fd_reported.push(p.pid);
                    out.push(f);
                }
            }
        }
    }
    namespace_rules(t, &mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.listener.cmp(&b.listener))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

fn listener_rules(t: &Tick, lt: &ListenerTick, l: &TcpListener, out: &mut Vec<Finding>) {
    let ep = &lt.endpoint;
    let backlog = lt.backlog;
    let full_now = lt.depth > backlog;
    let full_since = lt.depth_high > backlog;
    // Built only when a rule fires: this runs for every listener on every tick.
    let evidence = || {
        ev([
            ("depth", Some(f64::from(lt.depth))),
            ("backlog", Some(f64::from(backlog))),
            ("peak", Some(f64::from(lt.depth_high))),
            ("drops_per_s", lt.drops_per_s),
        ])
    };
    if full_now || full_since {
        let message = if full_now {
            format!(
                "The accept queue of {ep} is full ({}/{backlog}): the kernel drops new connections to it.",
                lt.depth
            )
        } else {
            format!(
                "The accept queue of {ep} filled up ({}/{backlog}) since the last tick and drained again: connections arriving in that burst were dropped.",
                lt.depth_high
            )
        };
        out.push(Finding {
            severity: Severity::Critical,
            rule: "accept_queue_full".into(),
            listener: Some(ep.clone()),
            key: Some(lt.key),
            message,
            evidence: evidence(),
            next: format!(
                "Check that {} calls accept() fast enough (free workers, CPU, fd limit); a larger listen() backlog (and net.core.somaxconn) absorbs bursts.",
                who(l)
            ),
        });
    } else if lt.high_fill_s >= SUSTAINED_HIGH_S {
        out.push(Finding {
            severity: Severity::Warning,
            rule: "accept_queue_high".into(),
            listener: Some(ep.clone()),
            key: Some(lt.key),
            message: format!(
                "The accept queue of {ep} has stayed at least {:.0}% full for {:.0} s ({}/{backlog}): {} accepts barely as fast as connections arrive.",
                HIGH_FILL * 100.0,
                lt.high_fill_s,
                lt.depth,
                who(l)
            ),
            evidence: {
                let mut e = evidence();
                e.insert("seconds".into(), lt.high_fill_s);
                e
            },
            next: format!(
                "At {} waiting connections the kernel starts dropping; look at {}'s workers and CPU.",
                backlog + 1,
                who(l)
            ),
        });
    }
    if lt.undrained_s >= UNDRAINED_S {
        out.push(Finding {
            severity: Severity::Warning,
            rule: "not_accepting".into(),
            listener: Some(ep.clone()),
            key: Some(lt.key),
            message: format!(
                "Connections have waited in the accept queue of {ep} for {:.0} s without it draining once: {} is not calling accept(), or calls it too slowly.",
                lt.undrained_s,
                who(l)
            ),
            evidence: ev([
                ("depth", Some(f64::from(lt.depth))),
                ("seconds", Some(lt.undrained_s)),
            ]),
            next: "See whether the process is stuck or busy: its threads' state (top -H -p PID), what it waits on (cat /proc/PID/stack, strace -p PID), and its fd count.".into(),
        });
    }
    if let Some(somaxconn) = t.snapshot.tunables.somaxconn {
        if i64::from(backlog) == somaxconn {
            let pressured =
                full_since || lt.high_fill_s > 0.0 || lt.drops_per_s.is_some_and(|d| d > 0.0);
            out.push(Finding {
                severity: if pressured { Severity::Warning } else { Severity::Info },
                rule: "backlog_capped_by_somaxconn".into(),
                listener: Some(ep.clone()),
                key: Some(lt.key),
                message: format!(
                    "The backlog of {ep} ({backlog}) equals net.core.somaxconn: the server probably asked for more (nginx, node and redis ask for 511) and the kernel capped it."
                ),
                evidence: ev([
                    ("backlog", Some(f64::from(backlog))),
                    ("somaxconn", Some(somaxconn as f64)),
                ]),
                next: "Raise net.core.somaxconn (it is per network namespace), then restart the server: a listener keeps its backlog until it calls listen() again.".into(),
            });
        }
    }
    if t.snapshot.tunables.tcp_syncookies == Some(0) && l.syn_recv > u64::from(backlog) / 2 {
        out.push(Finding {
            severity: if l.syn_recv > u64::from(backlog) { Severity::Critical } else { Severity::Warning },
            rule: "syn_queue_without_cookies".into(),
            listener: Some(ep.clone()),
            key: Some(lt.key),
            message: format!(
                "{ep} has {} half-open (SYN-RECV) requests for a backlog of {backlog}, and SYN cookies are off (tcp_syncookies=0): once its SYN queue is full, new SYNs are dropped.",
                l.syn_recv
            ),
            evidence: ev([
                ("syn_recv", Some(l.syn_recv as f64)),
                ("backlog", Some(f64::from(backlog))),
            ]),
            next: "Turn SYN cookies back on (net.ipv4.tcp_syncookies=1, the default) or raise the backlog; if these are spoofed SYNs, filter them upstream.".into(),
        });
    }
}

fn fd_rule(lt: &ListenerTick, l: &TcpListener, p: &ProcessInfo) -> Option<Finding> {
    let (open, limit) = (p.fds_open?, p.fd_limit?);
    if limit == 0 || (open as f64) < FD_NEAR * limit as f64 {
        return None;
    }
    let at_limit = open >= limit;
    Some(Finding {
        severity: if at_limit || lt.depth > 0 { Severity::Critical } else { Severity::Warning },
        rule: "near_fd_limit".into(),
        listener: Some(lt.endpoint.clone()),
        key: Some(lt.key),
        message: format!(
            "{}[{}] (listening on {}) has {open} of {limit} file descriptors open ({:.0}%): at the limit accept() fails with EMFILE and the accept queue fills while the CPU idles.",
            p.comm,
            p.pid,
            lt.endpoint,
            open as f64 / limit as f64 * 100.0
        ),
        evidence: ev([
            ("fds_open", Some(open as f64)),
            ("fd_limit", Some(limit as f64)),
            ("depth", Some(f64::from(l.accept_queue))),
        ]),
        next: format!(
            "Raise its RLIMIT_NOFILE (LimitNOFILE= for a systemd unit, ulimit -n), or look for an fd leak: ls -l /proc/{}/fd.",
            p.pid
        ),
    })
}

fn namespace_rules(t: &Tick, out: &mut Vec<Finding>) {
    let overflows = rate(t, "ListenOverflows");
    if overflows > 0.0 {
        let on = if t.dropping_listeners.is_empty() {
            String::new()
        } else {
            format!(" (on {})", t.dropping_listeners.join(", "))
        };
        let abort = t.snapshot.tunables.tcp_abort_on_overflow;
        let what = match abort {
            Some(1) => "tcp_abort_on_overflow=1: a client whose final ACK meets the full queue gets a reset (ECONNRESET) at once; a SYN that meets it is dropped and retried.".to_string(),
            Some(0) => "tcp_abort_on_overflow=0: the kernel drops silently; clients retransmit their SYN a second or more later and see slow connects or time-outs, or believe they are connected while their first data is dropped.".to_string(),
            _ => "tcp_abort_on_overflow is unknown, so whether clients see resets or silent drops cannot be told.".to_string(),
        };
        out.push(Finding {
            severity: Severity::Critical,
            rule: "listen_overflows".into(),
            listener: None,
            key: None,
            message: format!(
                "{overflows:.1} connection attempts/s meet a full accept queue{on}. With {what}"
            ),
            evidence: ev([
                ("ListenOverflows_per_s", Some(overflows)),
                ("ListenDrops_per_s", Some(rate(t, "ListenDrops"))),
                ("tcp_abort_on_overflow", abort.map(|v| v as f64)),
            ]),
            next: "Find the listener with a full queue above and why its process does not accept() fast enough.".into(),
        });
    }
    let cookies = rate(t, "SyncookiesSent").max(rate(t, "TCPReqQFullDoCookies"));
    if cookies > 0.0 {
        out.push(Finding {
            severity: Severity::Warning,
            rule: "syn_cookies".into(),
            listener: None,
            key: None,
            message: format!(
                "The kernel is answering {cookies:.1} SYNs/s with SYN cookies because a SYN queue is full: a SYN flood, or a burst larger than the backlog. No request is kept for a cookie, so SYN-RECV counts undercount meanwhile."
            ),
            evidence: ev([
                ("SyncookiesSent_per_s", Some(rate(t, "SyncookiesSent"))),
                ("TCPReqQFullDoCookies_per_s", Some(rate(t, "TCPReqQFullDoCookies"))),
                ("SyncookiesRecv_per_s", Some(rate(t, "SyncookiesRecv"))),
            ]),
            next: "Look at the listener with the most SYN-RECV. SyncookiesRecv rising means real clients complete through cookies; if not, the SYNs are likely spoofed: filter them upstream.".into(),
        });
    }
    let syn_drops = rate(t, "TCPReqQFullDrop");
    if syn_drops > 0.0 {
        out.push(Finding {
            severity: Severity::Critical,
            rule: "syn_drops".into(),
            listener: None,
            key: None,
            message: format!(
                "{syn_drops:.1} SYNs/s are dropped because a SYN queue is full and SYN cookies are off (tcp_syncookies={}): new clients cannot connect.",
                t.snapshot
                    .tunables
                    .tcp_syncookies
                    .map_or("unknown".to_string(), |v| v.to_string())
            ),
            evidence: ev([("TCPReqQFullDrop_per_s", Some(syn_drops))]),
            next: "Set net.ipv4.tcp_syncookies=1 (the default), raise the listen() backlog, and check for a SYN flood.".into(),
        });
    }
}
