//! Rules about the whole network namespace, from its TcpExt counters: overflows, SYN cookies,
//! SYN drops.

use super::{ev, rate};
use crate::model::{Finding, Severity, Tick};

/// Rules over the namespace's TcpExt counter rates.
pub(super) fn namespace_rules(t: &Tick, out: &mut Vec<Finding>) {
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
