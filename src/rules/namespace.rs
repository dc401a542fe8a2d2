//! Rules about the whole network namespace, from its TcpExt counters: overflows, SYN cookies,
//! SYN drops, listen drops that are not overflows, handshake resets, and a fast poll slowed
//! by the CPU budget. Kernel functions named are those of Linux 6.x (net/ipv4/tcp_input.c
//! `tcp_conn_request`, tcp_minisocks.c `tcp_check_req`, tcp_ipv4.c `tcp_v4_syn_recv_sock`).

use super::{ev, rate};
use crate::model::{Finding, Severity, Tick};

/// Rules over the namespace's TcpExt counter rates.
pub(super) fn namespace_rules(t: &Tick, out: &mut Vec<Finding>) {
    out.extend(listen_overflows(t));
    out.extend(syn_cookies(t));
    out.extend(syn_drops(t));
    out.extend(other_listen_drops(t));
    out.extend(handshake_resets(t));
    out.extend(slow_fast_poll(t));
}

/// A finding about the namespace (no listener).
fn namespace_finding(
    severity: Severity,
    rule: &str,
    message: String,
    evidence: std::collections::BTreeMap<String, f64>,
    next: &str,
) -> Finding {
    Finding {
        severity,
        rule: rule.into(),
        listener: None,
        key: None,
        cleared_s: None,
        message,
        evidence,
        next: next.into(),
    }
}

/// ListenOverflows: connection attempts that met a full accept queue (at the SYN, or at the
/// final ACK in `tcp_v4_syn_recv_sock`).
fn listen_overflows(t: &Tick) -> Option<Finding> {
    let overflows = rate(t, "ListenOverflows");
    if overflows <= 0.0 {
        return None;
    }
    let on = if t.dropping_listeners.is_empty() {
        String::new()
    } else {
        format!(" (on {})", t.dropping_listeners.join(", "))
    };
    let abort = t.snapshot.tunables.tcp_abort_on_overflow;
    let what = match abort {
        Some(1) => "tcp_abort_on_overflow=1: a client whose final ACK meets the full queue gets a reset (ECONNRESET) at once; a SYN that meets it is dropped and retried.",
        Some(0) => "tcp_abort_on_overflow=0: the kernel drops silently; clients retransmit their SYN a second or more later and see slow connects or time-outs, or believe they are connected while their first data is dropped.",
        _ => "tcp_abort_on_overflow is unknown, so whether clients see resets or silent drops cannot be told.",
    };
    let next = if t.dropping_listeners.is_empty() {
        "Find the listener whose own drop counter rises (DROPS/s) and why its process does not accept() fast enough."
    } else {
        "See why the process of the listener named does not accept() fast enough: free workers, CPU, its fd limit."
    };
    Some(namespace_finding(
        Severity::Critical,
        "listen_overflows",
        format!("{overflows:.1} connection attempts/s meet a full accept queue{on}. With {what}"),
        ev([
            ("ListenOverflows_per_s", Some(overflows)),
            ("ListenDrops_per_s", Some(rate(t, "ListenDrops"))),
            ("tcp_abort_on_overflow", abort.map(|v| v as f64)),
        ]),
        next,
    ))
}

/// SYN cookies sent. With tcp_syncookies=1 a cookie replaces a request when the SYN queue is
/// full; with 2 every SYN gets one (and TCPReqQFullDoCookies counts every SYN).
fn syn_cookies(t: &Tick) -> Option<Finding> {
    let cookies = rate(t, "SyncookiesSent").max(rate(t, "TCPReqQFullDoCookies"));
    if cookies <= 0.0 {
        return None;
    }
    let why = if t.snapshot.tunables.tcp_syncookies == Some(2) {
        "because tcp_syncookies=2 sends one for every SYN, whether or not a SYN queue is full (no SYN-RECV request is kept at all)"
    } else {
        "because a SYN queue is full: a SYN flood, or a burst larger than the backlog. No request is kept for a cookie, so SYN-RECV counts undercount meanwhile"
    };
    Some(namespace_finding(
        Severity::Warning,
        "syn_cookies",
        format!("The kernel is answering {cookies:.1} SYNs/s with SYN cookies {why}."),
        ev([
            ("SyncookiesSent_per_s", Some(rate(t, "SyncookiesSent"))),
            ("TCPReqQFullDoCookies_per_s", Some(rate(t, "TCPReqQFullDoCookies"))),
            ("SyncookiesRecv_per_s", Some(rate(t, "SyncookiesRecv"))),
        ]),
        "Look at the listener with the most SYN-RECV. SyncookiesRecv rising means real clients complete through cookies; if not, the SYNs are likely spoofed: filter them upstream.",
    ))
}

/// TCPReqQFullDrop: SYNs dropped at a full SYN queue with cookies off.
fn syn_drops(t: &Tick) -> Option<Finding> {
    let syn_drops = rate(t, "TCPReqQFullDrop");
    if syn_drops <= 0.0 {
        return None;
    }
    Some(namespace_finding(
        Severity::Critical,
        "syn_drops",
        format!(
            "{syn_drops:.1} SYNs/s are dropped because a SYN queue is full and SYN cookies are off (tcp_syncookies={}): new clients cannot connect.",
            t.snapshot
                .tunables
                .tcp_syncookies
                .map_or("unknown".to_string(), |v| v.to_string())
        ),
        ev([("TCPReqQFullDrop_per_s", Some(syn_drops))]),
        "Set net.ipv4.tcp_syncookies=1 (the default), raise the listen() backlog, and check for a SYN flood.",
    ))
}

/// ListenDrops counts every listen drop; what is neither an overflow nor a SYN-queue-full drop
/// is, with cookies off, mostly `tcp_conn_request` refusing unproven peers once fewer than a
/// quarter of tcp_max_syn_backlog is left — counted in ListenDrops only.
fn other_listen_drops(t: &Tick) -> Option<Finding> {
    let other = rate(t, "ListenDrops") - rate(t, "ListenOverflows") - rate(t, "TCPReqQFullDrop");
    // Rates of counters read at one instant; allow for rounding.
    if other <= 0.05 {
        return None;
    }
    let tun = &t.snapshot.tunables;
    let why = if tun.tcp_syncookies == Some(0) {
        format!(
            "With tcp_syncookies=0 the kernel drops SYNs from peers it has not seen before once fewer than a quarter of net.ipv4.tcp_max_syn_backlog ({}) is left (tcp_conn_request).",
            tun.tcp_max_syn_backlog
                .map_or("unknown".to_string(), |v| v.to_string())
        )
    } else {
        "They are neither accept-queue overflows nor SYN-queue-full drops: e.g. memory pressure or a security module refusing the request.".to_string()
    };
    Some(namespace_finding(
        Severity::Critical,
        "listen_drops_other",
        format!("{other:.1} SYNs/s are dropped by listeners for another reason than a full queue (ListenDrops − ListenOverflows − TCPReqQFullDrop). {why}"),
        ev([
            ("ListenDrops_per_s", Some(rate(t, "ListenDrops"))),
            ("ListenOverflows_per_s", Some(rate(t, "ListenOverflows"))),
            ("TCPReqQFullDrop_per_s", Some(rate(t, "TCPReqQFullDrop"))),
            ("tcp_max_syn_backlog", tun.tcp_max_syn_backlog.map(|v| v as f64)),
        ]),
        "With tcp_syncookies=0: raise net.ipv4.tcp_max_syn_backlog, or turn SYN cookies back on (1, the default).",
    ))
}

/// EmbryonicRsts: handshakes answered with a reset in `tcp_check_req` — with
/// tcp_abort_on_overflow=1, final ACKs that met a full accept queue.
fn handshake_resets(t: &Tick) -> Option<Finding> {
    let resets = rate(t, "EmbryonicRsts");
    if resets <= 0.0 {
        return None;
    }
    let why = if t.snapshot.tunables.tcp_abort_on_overflow == Some(1) {
        "With tcp_abort_on_overflow=1 these are clients whose final ACK met a full accept queue: they see ECONNRESET at once."
    } else {
        "The final ACK was invalid or came for a request the kernel no longer had (e.g. a retransmitted or spoofed ACK)."
    };
    Some(namespace_finding(
        Severity::Warning,
        "handshake_resets",
        format!(
            "{resets:.1} connection requests/s were reset during the handshake (EmbryonicRsts). {why}"
        ),
        ev([
            ("EmbryonicRsts_per_s", Some(resets)),
            (
                "tcp_abort_on_overflow",
                t.snapshot.tunables.tcp_abort_on_overflow.map(|v| v as f64),
            ),
        ]),
        "Resets at a full accept queue are overflows: see the listener that overflows. Otherwise look for clients sending stray ACKs.",
    ))
}

/// The CPU budget slowed the fast poll: bursts shorter than its interval are not seen as peaks
/// (overflows are still proven by the drop counters).
fn slow_fast_poll(t: &Tick) -> Option<Finding> {
    let c = &t.collector;
    if c.fast_interval_asked_ms == 0 || c.fast_interval_ms <= c.fast_interval_asked_ms {
        return None;
    }
    Some(namespace_finding(
        Severity::Info,
        "fast_poll_slowed",
        format!(
            "Peaks are sampled every {} ms instead of {} ms to keep sockq within its CPU budget ({}% of a core): a burst shorter than that between two polls is not seen as a peak; an overflow is still proven by the drop counters.",
            c.fast_interval_ms, c.fast_interval_asked_ms, c.budget_percent
        ),
        ev([
            ("fast_interval_ms", Some(c.fast_interval_ms as f64)),
            ("fast_interval_asked_ms", Some(c.fast_interval_asked_ms as f64)),
            ("budget_percent", Some(c.budget_percent)),
        ]),
        "Raise --cpu-budget to poll faster, or narrow what is sampled (--no-unix, --no-owners).",
    ))
}
