//! sockq's own families: its sampler's cost and state, the exporter's connections, its build,
//! and the standard `process_*` numbers.

use super::{ConnectionStats, ExporterStats, Family, Kind, Value};
use crate::model::{ProcessSelf, Tick};

/// The families about sockq itself.
pub(super) fn families(tick: &Tick, stats: &ExporterStats) -> Vec<Family> {
    let snap = &tick.snapshot;
    let mut out = Vec::new();
    let c = &tick.collector;
    let mut f = Family::new(
        "sockq_sample_duration_seconds",
        "Wall time of sockq's latest full sample.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Float(c.sample_ms / 1000.0));
    out.push(f);
    let mut f = Family::new(
        "sockq_collector_cpu_ratio",
        "CPU time of sockq's sampler thread over the latest interval, as a fraction of one core.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Float(c.cpu_percent / 100.0));
    out.push(f);
    let mut f = Family::new(
        "sockq_collector_cpu_budget_ratio",
        "CPU budget the sampler keeps to (--cpu-budget), as a fraction of one core.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Float(c.budget_percent / 100.0));
    out.push(f);
    let mut f = Family::new(
        "sockq_collector_throttled",
        "1 when the CPU budget made the sampler dump SYN-RECV less often or poll listeners more \
         slowly than configured.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Int(u64::from(c.throttled)));
    out.push(f);
    let mut f = Family::new(
        "sockq_collector_active_listeners",
        "Listeners the fast sampler polls between ticks (the active ones: a queue, drops, \
         SYN-RECV or new connections within the last minute); the others are read once per tick.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Int(c.active_listeners));
    out.push(f);
    let mut f = Family::new(
        "sockq_collector_fast_polls_per_second",
        "Fast polls of the active listeners per second over the latest interval (0 when none \
         was active).",
        Kind::Gauge,
    );
    f.push(vec![], Value::Float(c.fast_poll_hz));
    out.push(f);
    let mut f = Family::new(
        "sockq_syn_recv_age_seconds",
        "Age of the SYN-RECV numbers: 0 when dumped for the latest sample, more when the budget \
         spaced out the (expensive) SYN-RECV dump.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Float(c.syn_recv_age_ms as f64 / 1000.0));
    out.push(f);
    let mut f = Family::new(
        "sockq_last_sample_timestamp_seconds",
        "Wall-clock time of the latest sample, in seconds since the Unix epoch.",
        Kind::Gauge,
    );
    f.push(vec![], Value::Float(snap.time.wall_unix_ms as f64 / 1000.0));
    out.push(f);
    let mut f = Family::new(
        "sockq_ticks_total",
        "Sample ticks since sockq started, missed samples included.",
        Kind::Counter,
    );
    f.push(vec![], Value::Int(tick.seq));
    out.push(f);
    let mut f = Family::new(
        "sockq_sample_errors_total",
        "Full samples that failed (each recorded as a gap).",
        Kind::Counter,
    );
    f.push(vec![], Value::Int(stats.sample_errors));
    out.push(f);
    out.extend(connection_families(&stats.connections));
    out.push(build_info());
    out
}

/// The HTTP server's connection-limit counters, by `reason` (the flag whose limit was met).
fn connection_families(c: &ConnectionStats) -> [Family; 2] {
    let reasons = |global: u64, per_peer: u64| {
        [
            ("max_connections", global),
            ("max_connections_per_peer", per_peer),
        ]
    };
    let mut evicted = Family::new(
        "sockq_http_connections_evicted_total",
        "Idle HTTP connections to sockq (no complete request head yet, nothing being answered) \
         closed to make room for a new connection, by the limit met: max_connections (the \
         oldest idle connection) or max_connections_per_peer (the same peer's oldest idle one).",
        Kind::Counter,
    );
    for (reason, n) in reasons(c.made_room_global, c.made_room_per_peer) {
        evicted.push(vec![("reason", reason.to_string())], Value::Int(n));
    }
    let mut refused = Family::new(
        "sockq_http_connections_refused_total",
        "New HTTP connections to sockq closed at once because a limit was met (reason: \
         max_connections or max_connections_per_peer) and every connection under it was being \
         answered.",
        Kind::Counter,
    );
    for (reason, n) in reasons(c.refused_global, c.refused_per_peer) {
        refused.push(vec![("reason", reason.to_string())], Value::Int(n));
    }
    [evicted, refused]
}

/// `sockq_build_info{version,revision}` 1: the crate version and the git revision it was built
/// from (build.rs; `unknown revision` outside a git checkout), as `sockq --version` names them.
pub fn build_info() -> Family {
    let mut f = Family::new(
        "sockq_build_info",
        "sockq's version and git revision, as labels; the value is always 1.",
        Kind::Info,
    );
    f.push(
        vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("revision", env!("SOCKQ_GIT_REVISION").to_string()),
        ],
        Value::Int(1),
    );
    f
}

/// sockq's own process as the Prometheus client libraries' process collectors export it
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …: same names, same meanings),
/// so the usual dashboards and alerts for an exporter work on sockq. What could not be read has
/// no sample (and so no family). Pure: the numbers were read by the caller.
pub fn process_families(p: &ProcessSelf) -> Vec<Family> {
    let mut out = Vec::new();
    let mut one = |name: &str, help: &str, kind: Kind, value: Option<Value>| {
        let mut f = Family::new(name, help, kind);
        if let Some(v) = value {
            f.push(vec![], v);
        }
        out.push(f);
    };
    one(
        "process_cpu_seconds_total",
        "Total user and system CPU time of sockq (all its threads), in seconds \
         (/proc/self/stat utime + stime).",
        Kind::Counter,
        p.cpu_seconds.map(Value::Float),
    );
    one(
        "process_resident_memory_bytes",
        "Resident memory size of sockq, in bytes (/proc/self/stat rss).",
        Kind::Gauge,
        p.resident_memory_bytes.map(Value::Int),
    );
    one(
        "process_virtual_memory_bytes",
        "Virtual memory size of sockq, in bytes (/proc/self/stat vsize).",
        Kind::Gauge,
        p.virtual_memory_bytes.map(Value::Int),
    );
    one(
        "process_open_fds",
        "Number of open file descriptors of sockq (/proc/self/fd).",
        Kind::Gauge,
        p.open_fds.map(Value::Int),
    );
    one(
        "process_max_fds",
        "Maximum number of open file descriptors of sockq (RLIMIT_NOFILE soft limit); absent \
         when unlimited.",
        Kind::Gauge,
        p.max_fds.map(Value::Int),
    );
    one(
        "process_start_time_seconds",
        "Start time of sockq since the Unix epoch, in seconds.",
        Kind::Gauge,
        p.start_time_seconds.map(Value::Float),
    );
    one(
        "process_threads",
        "Number of OS threads in sockq.",
        Kind::Gauge,
        p.threads.map(Value::Int),
    );
    out
}
