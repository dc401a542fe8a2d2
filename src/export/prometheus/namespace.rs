//! The per-namespace families: listener counts, TcpExt counters, tunables, TCP memory,
//! SYN-RECV, findings and blind spots.

use super::{sysctl_metric_name, tcpext_metric_name, Family, Kind, Value};
use crate::model::meta::{tunable_meaning, QUEUE_COUNTER_INFO};
use crate::model::{Severity, Tick};

/// The families of the namespace; `exported` listeners have per-listener series.
pub(super) fn families(
    tick: &Tick,
    exported_count: usize,
    ns_label: &dyn Fn() -> Vec<(&'static str, String)>,
) -> Vec<Family> {
    let snap = &tick.snapshot;
    let mut out = Vec::new();
    let mut total = Family::new(
        "sockq_listeners",
        "TCP listening sockets in the namespace (after --port/--process filters).",
        Kind::Gauge,
    );
    total.push(ns_label(), Value::Int(snap.tcp_listeners.len() as u64));
    let mut exported = Family::new(
        "sockq_listeners_exported",
        "Listeners with per-listener series; fewer than sockq_listeners when --max-listeners \
         truncated (the most active are kept).",
        Kind::Gauge,
    );
    exported.push(ns_label(), Value::Int(exported_count as u64));
    out.extend([total, exported]);

    // Per namespace: queue counters, tunables, SYN-RECV, findings, blind spots.
    for c in QUEUE_COUNTER_INFO {
        let Some(name) = tcpext_metric_name(c.name) else {
            continue;
        };
        let mut f = Family::new(
            name,
            format!(
                "TcpExt {}: {} (cumulative since the namespace was created).",
                c.name, c.meaning
            ),
            Kind::Counter,
        );
        if let Some(v) = snap.counters.tcp_ext(c.name) {
            f.push(ns_label(), Value::Int(v));
        }
        out.push(f);
    }
    for (sysctl, value) in snap.tunables.entries() {
        let Some(v) = value else {
            continue;
        };
        let mut f = Family::new(
            sysctl_metric_name(sysctl),
            format!("Sysctl {sysctl}: {}.", tunable_meaning(sysctl, None)),
            Kind::Gauge,
        );
        f.push(ns_label(), Value::Float(v as f64));
        out.push(f);
    }
    out.extend(tcp_memory_families(tick, ns_label));
    let mut syn_total = Family::new(
        "sockq_syn_recv_requests",
        "Half-open (SYN-RECV) connection requests in the namespace (ss -tn state syn-recv).",
        Kind::Gauge,
    );
    syn_total.push(ns_label(), Value::Int(snap.syn_recv.total));
    out.push(syn_total);
    let mut findings = Family::new(
        "sockq_findings",
        "Current findings of sockq's diagnosis, by severity (critical: connections are being \
         lost now).",
        Kind::Gauge,
    );
    for sev in [Severity::Info, Severity::Warning, Severity::Critical] {
        let n = tick
            .findings
            .iter()
            .filter(|f| f.severity == sev && f.is_active())
            .count();
        let name = match sev {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        };
        let mut lab = ns_label();
        lab.push(("severity", name.to_string()));
        findings.push(lab, Value::Int(n as u64));
    }
    out.push(findings);
    let mut blind = Family::new(
        "sockq_blind_spots",
        "Things sockq could not see in the latest sample (e.g. other users' processes when not \
         root); sockq snapshot lists them.",
        Kind::Gauge,
    );
    blind.push(ns_label(), Value::Int(snap.blind_spots.len() as u64));
    out.push(blind);

    out
}

/// TCP memory (host-wide, from sockstat) against net.ipv4.tcp_mem, the service dump's age,
/// and the arrivals cross-check.
fn tcp_memory_families(
    tick: &Tick,
    ns_label: &dyn Fn() -> Vec<(&'static str, String)>,
) -> Vec<Family> {
    let snap = &tick.snapshot;
    let mut mem = Family::new(
        "sockq_tcp_memory_bytes",
        "Memory charged to TCP, host-wide (/proc/net/sockstat TCP mem, in pages, times the page size): every namespace shows the same number.",
        Kind::Gauge,
    );
    if let Some(b) = snap.sockstat.as_ref().and_then(|s| s.mem_bytes()) {
        mem.push(ns_label(), Value::Int(b));
    }
    let mut limits = Family::new(
        sysctl_metric_name("net.ipv4.tcp_mem"),
        "Sysctl net.ipv4.tcp_mem, in pages, by threshold: min (below it TCP does not regulate its memory), pressure (above it TCP enters memory pressure, left below min), max. Host-wide; only the initial namespace has it.",
        Kind::Gauge,
    );
    if let Some(v) = snap.tunables.tcp_mem {
        for (threshold, pages) in ["min", "pressure", "max"].into_iter().zip(v) {
            let mut lab = ns_label();
            lab.push(("threshold", threshold.to_string()));
            limits.push(lab, Value::Float(pages as f64));
        }
    }
    let mut age = Family::new(
        "sockq_service_age_seconds",
        "Age of the listeners' connection numbers (the service dump): 0 when dumped for the latest sample, more when the budget spaced out the dump.",
        Kind::Gauge,
    );
    if let Some(s) = snap.service.as_ref() {
        age.push(ns_label(), Value::Float(s.age_ms as f64 / 1000.0));
    }
    let mut seen = Family::new(
        "sockq_connections_seen_ratio",
        "New connections seen by cookie over all listeners divided by Tcp PassiveOpens, between the last two service dumps: below 1 when connections live shorter than the dump spacing (or belong to listeners filtered out).",
        Kind::Gauge,
    );
    if let Some(c) = tick.arrivals.as_ref().and_then(|a| a.coverage()) {
        seen.push(ns_label(), Value::Float(c));
    }
    vec![mem, limits, age, seen]
}
