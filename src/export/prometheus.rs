//! Prometheus exposition of the latest [`Tick`]: the metric families (pure, built at scrape
//! time from the same model every other view renders) and their two encodings — the Prometheus
//! text format 0.0.4 and OpenMetrics 1.0 text, both written by `encode` (prometheus/encode.rs).
//!
//! Names follow the Prometheus conventions: `sockq_` prefix (sockq's own process keeps the
//! standard `process_*` names: [`process_families`]), base units in the name
//! (`_seconds`, `_ratio`), `_total` on counters only. Every HELP text says what the kernel means
//! (the wording of [`crate::model::meta`]). A value sockq could not read is left out, never
//! exported as 0.
//!
//! Cardinality: per-listener series are bounded by `max_listeners`; when a namespace has more
//! listeners, the most active ones are exported (see [`select_listeners`]), and
//! `sockq_listeners` / `sockq_listeners_exported` show the truncation.

mod encode;

use std::collections::HashMap;

pub use encode::{encode_openmetrics, encode_text, format_float};

use crate::model::labels::tightest_owner;
use crate::model::meta::{tunable_meaning, QUEUE_COUNTER_INFO};
use crate::model::{ListenerKey, TcpListener};
use crate::model::{ListenerTick, Tick};
use crate::model::{ProcessSelf, Severity};

/// Content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics 1.0 text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Default bound on exported listeners (`--max-listeners`).
pub const DEFAULT_MAX_LISTENERS: usize = 500;

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter; the name ends in `_total`.
    Counter,
    /// Gauge.
    Gauge,
    /// Info metric (a gauge of 1 in the 0.0.4 format); the name ends in `_info`.
    Info,
}

/// A sample value: integers stay integers in the output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Int(u64),
    /// Anything else (always finite).
    Float(f64),
}

impl Value {
    /// As a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// One sample of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// Label names and values, in output order.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// A metric family: name (as exposed in the 0.0.4 format, `_total` included for counters),
/// HELP, type and samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full metric name.
    pub name: String,
    /// What the number means.
    pub help: String,
    /// Type.
    pub kind: Kind,
    /// Samples (a family without samples is not exposed).
    pub samples: Vec<MetricSample>,
}

impl Family {
    fn new(name: impl Into<String>, help: impl AsRef<str>, kind: Kind) -> Self {
        Self {
            name: name.into(),
            help: sanitize_help(help.as_ref()),
            kind,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Vec<(&'static str, String)>, value: Value) {
        if let Value::Float(v) = value {
            if !v.is_finite() {
                return;
            }
        }
        self.samples.push(MetricSample { labels, value });
    }

    /// The sample whose labels include all of `want` (for tests and tools).
    pub fn find(&self, want: &[(&str, &str)]) -> Option<&MetricSample> {
        self.samples.iter().find(|s| {
            want.iter()
                .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }
}

/// HELP text that reads the same in both formats: one line, no backslash, no double quote
/// (the encoders escape them, but differently: OpenMetrics escapes `"` in HELP, 0.0.4 does not).
fn sanitize_help(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect()
}

/// Export settings.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// At most this many listeners get per-listener series.
    pub max_listeners: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            max_listeners: DEFAULT_MAX_LISTENERS,
        }
    }
}

/// Numbers about the exporter itself that are not in the tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExporterStats {
    /// Full samples that failed since start (each recorded as a gap).
    pub sample_errors: u64,
    /// What the HTTP server did at its connection limits.
    pub connections: ConnectionStats,
}

/// What the HTTP server did at its connection limits since start: idle connections it closed
/// to make room for a new one, and new ones it refused (every connection under the limit was
/// being answered); each at `--max-connections` (global) and `--max-connections-per-peer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Idle connections closed to make room at the global limit.
    pub made_room_global: u64,
    /// Idle connections closed to make room at their peer's limit.
    pub made_room_per_peer: u64,
    /// New connections refused at the global limit.
    pub refused_global: u64,
    /// New connections refused at their peer's limit.
    pub refused_per_peer: u64,
}

/// Metric name of a queue counter (TcpExt) by its kernel name.
pub fn tcpext_metric_name(kernel_name: &str) -> Option<&'static str> {
    Some(match kernel_name {
        "ListenOverflows" => "sockq_tcpext_listen_overflows_total",
        "ListenDrops" => "sockq_tcpext_listen_drops_total",
        "TCPReqQFullDrop" => "sockq_tcpext_req_q_full_drop_total",
        "TCPReqQFullDoCookies" => "sockq_tcpext_req_q_full_do_cookies_total",
        "SyncookiesSent" => "sockq_tcpext_syncookies_sent_total",
        "SyncookiesRecv" => "sockq_tcpext_syncookies_recv_total",
        "SyncookiesFailed" => "sockq_tcpext_syncookies_failed_total",
        "EmbryonicRsts" => "sockq_tcpext_embryonic_rsts_total",
        _ => return None,
    })
}

/// Metric name of a tunable by its sysctl name: `net.core.somaxconn` →
/// `sockq_sysctl_net_core_somaxconn`.
pub fn sysctl_metric_name(sysctl: &str) -> String {
    let mut s = String::from("sockq_sysctl_");
    s.extend(sysctl.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    }));
    s
}

/// How busy a listener is, for choosing which ones to export: a listener dropping now first,
/// then by fill (peak depth / backlog), drop rate and SYN-RECV requests.
fn activity(l: &TcpListener, t: Option<&ListenerTick>) -> (bool, f64, f64, u64) {
    let depth = t.map_or(l.accept_queue, |t| t.depth_high.max(l.accept_queue));
    let fill = if l.backlog > 0 {
        f64::from(depth) / f64::from(l.backlog)
    } else if depth > 0 {
        f64::MAX
    } else {
        0.0
    };
    let drops = t.and_then(|t| t.drops_per_s).unwrap_or(0.0);
    (drops > 0.0, fill, drops, l.syn_recv)
}

/// Indices (into `tick.snapshot.tcp_listeners`) of the listeners to export: all of them when
/// there are at most `max`; otherwise the `max` most active — dropping now first, then by fill
/// (peak depth / backlog), drop rate and SYN-RECV requests; ties by port, address and socket
/// cookie so the set stays stable between scrapes. Returned in dump order.
pub fn select_listeners(tick: &Tick, max: usize) -> Vec<usize> {
    let ls = &tick.snapshot.tcp_listeners;
    if ls.len() <= max {
        return (0..ls.len()).collect();
    }
    let by_key: HashMap<ListenerKey, &ListenerTick> =
        tick.listeners.iter().map(|t| (t.key, t)).collect();
    let mut order: Vec<(usize, (bool, f64, f64, u64))> = ls
        .iter()
        .enumerate()
        .map(|(i, l)| (i, activity(l, by_key.get(&ListenerKey::from(l)).copied())))
        .collect();
    order.sort_by(|(ia, a), (ib, b)| {
        b.0.cmp(&a.0)
            .then(b.1.total_cmp(&a.1))
            .then(b.2.total_cmp(&a.2))
            .then(b.3.cmp(&a.3))
            .then_with(|| {
                let (la, lb) = (&ls[*ia], &ls[*ib]);
                (la.port, la.address, la.cookie).cmp(&(lb.port, lb.address, lb.cookie))
            })
    });
    let mut chosen: Vec<usize> = order.into_iter().take(max).map(|(i, _)| i).collect();
    chosen.sort_unstable();
    chosen
}

/// `process` label: the comm of the owner with the lowest pid (in a pre-fork server, the
/// master), or `unknown`. Not the first owner: owners come busiest first, and a label that
/// followed the busiest process would start a new series whenever another became busier.
fn process_label(l: &TcpListener) -> String {
    l.owners
        .processes()
        .iter()
        .min_by_key(|p| p.pid)
        .map_or_else(|| "unknown".to_string(), |p| p.comm.clone())
}

/// Labels of every listener: `netns`, `address`, `port`, `process`, plus `socket` (1, 2, …
/// in creation order) only when several sockets share the first four (SO_REUSEPORT groups held
/// by processes of the same name), so that every series stays unique.
fn listener_labels(ns: &str, ls: &[TcpListener]) -> Vec<Vec<(&'static str, String)>> {
    let base: Vec<(String, String, String)> = ls
        .iter()
        .map(|l| (l.address.to_string(), l.port.to_string(), process_label(l)))
        .collect();
    let mut groups: HashMap<&(String, String, String), Vec<usize>> = HashMap::new();
    for (i, b) in base.iter().enumerate() {
        groups.entry(b).or_default().push(i);
    }
    let mut socket: Vec<Option<usize>> = vec![None; ls.len()];
    for members in groups.values() {
        if members.len() > 1 {
            let mut m = members.clone();
            m.sort_by_key(|&i| (ls[i].cookie, ls[i].inode));
            for (n, i) in m.into_iter().enumerate() {
                socket[i] = Some(n + 1);
            }
        }
    }
    base.iter()
        .zip(socket)
        .map(|((address, port, process), socket)| {
            let mut v = vec![
                ("netns", ns.to_string()),
                ("address", address.clone()),
                ("port", port.clone()),
                ("process", process.clone()),
            ];
            if let Some(n) = socket {
                v.push(("socket", n.to_string()));
            }
            v
        })
        .collect()
}

/// Every metric family for one tick. Pure.
pub fn families(tick: &Tick, opts: &ExportOptions, stats: &ExporterStats) -> Vec<Family> {
    let snap = &tick.snapshot;
    let ns = snap.netns.label.as_str();
    let ns_label = || vec![("netns", ns.to_string())];
    let mut out = Vec::new();

    // Per listener.
    let chosen = select_listeners(tick, opts.max_listeners);
    let labels = listener_labels(ns, &snap.tcp_listeners);
    let by_key: HashMap<ListenerKey, &ListenerTick> =
        tick.listeners.iter().map(|t| (t.key, t)).collect();
    let mut depth = Family::new(
        "sockq_listener_accept_queue_depth",
        "Connections fully established and waiting for accept() (sk_ack_backlog, ss -ltn Recv-Q). \
         The queue is full when depth > backlog: it holds backlog+1.",
        Kind::Gauge,
    );
    let mut peak = Family::new(
        "sockq_listener_accept_queue_depth_peak",
        "Highest accept-queue depth seen since the previous sample (fast sampler, default 10 Hz): \
         bursts between samples; may be backlog+1, and is backlog+1 when the drop counters prove \
         an overflow no poll saw.",
        Kind::Gauge,
    );
    let mut overflowed = Family::new(
        "sockq_listener_accept_queue_overflowed",
        "1 when the accept queue overflowed during the latest sample interval: a poll saw it full \
         (depth > backlog), or the listener's own drop counter rose while ListenOverflows did \
         (proven between polls).",
        Kind::Gauge,
    );
    let mut backlog = Family::new(
        "sockq_listener_backlog",
        "Backlog in force: min(listen() backlog, net.core.somaxconn at listen() time) \
         (sk_max_ack_backlog, ss -ltn Send-Q).",
        Kind::Gauge,
    );
    let mut syn_recv = Family::new(
        "sockq_listener_syn_recv_requests",
        "Half-open (SYN-RECV) connection requests on this listener's address and port; with \
         SO_REUSEPORT the count belongs to the whole port group. Undercounts while SYN cookies \
         are sent (no request is kept).",
        Kind::Gauge,
    );
    let mut drops = Family::new(
        "sockq_listener_drops_total",
        "Connections the kernel dropped on this listener (its own sk_drops, ss -ltm d<N>): \
         bumped by every listen drop, e.g. a SYN or final ACK at a full accept queue.",
        Kind::Counter,
    );
    let mut fds = Family::new(
        "sockq_listener_owner_open_fds",
        "Open file descriptors of the listener's owning process closest to its fd limit \
         (/proc/PID/fd). At the fd limit accept() fails with EMFILE and the accept queue fills \
         although the CPU is idle.",
        Kind::Gauge,
    );
    let mut max_fds = Family::new(
        "sockq_listener_owner_max_fds",
        "RLIMIT_NOFILE soft limit of the listener's owning process closest to its fd limit \
         (prlimit(2) or /proc/PID/limits Max open files); absent when unlimited or unreadable.",
        Kind::Gauge,
    );
    let mut fds_age = Family::new(
        "sockq_listener_owner_fds_age_seconds",
        "Age of sockq_listener_owner_open_fds and _max_fds: 0 when read for the latest sample; \
         with more than 256 owning processes, one below half its limit is re-read in turn (at \
         least every 10th sample).",
        Kind::Gauge,
    );
    let mut service = ServiceFamilies::new();
    let mut cpu = Family::new(
        "sockq_listener_owner_cpu_ratio",
        "CPU time of the listener's busiest owning process (all its threads: utime + stime of \
         /proc/PID/stat) over the interval since sockq read it before, as a fraction of one \
         core; above 1 with several busy threads. Absent on the first read of a process.",
        Kind::Gauge,
    );
    let mut stopped = Family::new(
        "sockq_listener_owner_stopped",
        "1 when no process holding the listener can call accept(): each is stopped (state T in \
         /proc/PID/stat), or has one thread stopped by a tracer (t) or in uninterruptible sleep \
         (D); 0 when one can; absent when no holder's state is known.",
        Kind::Gauge,
    );
    for &i in &chosen {
        let l = &snap.tcp_listeners[i];
        let lab = &labels[i];
        let t = by_key.get(&ListenerKey::from(l)).copied();
        service.push(l, t, lab);
        depth.push(lab.clone(), Value::Int(l.accept_queue.into()));
        let high = t.map_or(l.accept_queue, |t| t.depth_high.max(l.accept_queue));
        peak.push(lab.clone(), Value::Int(high.into()));
        let over = t.is_some_and(|t| t.overflowed) || l.accept_queue > l.backlog;
        overflowed.push(lab.clone(), Value::Int(u64::from(over)));
        backlog.push(lab.clone(), Value::Int(l.backlog.into()));
        syn_recv.push(lab.clone(), Value::Int(l.syn_recv));
        if let Some(d) = l.drops {
            drops.push(lab.clone(), Value::Int(d));
        }
        if let Some(p) = tightest_owner(&l.owners) {
            if let Some(n) = p.fds_open {
                fds.push(lab.clone(), Value::Int(n));
            }
            if let Some(n) = p.fd_limit {
                max_fds.push(lab.clone(), Value::Int(n));
            }
            fds_age.push(lab.clone(), Value::Float(p.age_ms as f64 / 1000.0));
        }
        let procs = l.owners.processes();
        if let Some(c) = procs
            .iter()
            .filter_map(|p| p.cpu_percent)
            .max_by(f64::total_cmp)
        {
            cpu.push(lab.clone(), Value::Float(c / 100.0));
        }
        if procs.iter().any(|p| p.state.is_some()) {
            let none = l.owners.none_can_accept();
            stopped.push(lab.clone(), Value::Int(u64::from(none)));
        }
    }
    out.extend([
        depth, peak, overflowed, backlog, syn_recv, drops, fds, max_fds, fds_age, cpu, stopped,
    ]);
    out.extend(service.into_families());

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
    exported.push(ns_label(), Value::Int(chosen.len() as u64));
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
    out.extend(tcp_memory_families(tick, &ns_label));
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

    // sockq itself.
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

/// After accept(): the per-listener families of the service dump (an SO_REUSEPORT group's
/// numbers are the group's, shown by every member, as for SYN-RECV).
struct ServiceFamilies {
    waiting: Family,
    waiting_oldest: Family,
    in_service: Family,
    unread_conns: Family,
    unread_bytes: Family,
    unread_oldest: Family,
    unsent_conns: Family,
    unsent_bytes: Family,
    unsent_oldest: Family,
    memory: Family,
    closing: Family,
    seen: Family,
    lifetime: Family,
}

const GROUP_NOTE: &str = "With SO_REUSEPORT the number is the group's, shown by every member.";

impl ServiceFamilies {
    fn new() -> Self {
        let g = |name: &str, help: &str, kind: Kind| {
            Family::new(name, format!("{help} {GROUP_NOTE}"), kind)
        };
        Self {
            waiting: g(
                "sockq_listener_connections_waiting",
                "Connections waiting for accept(): ESTABLISHED children with inode 0 (no file yet).",
                Kind::Gauge,
            ),
            waiting_oldest: g(
                "sockq_listener_connections_waiting_oldest_seconds",
                "How long the oldest connection waiting for accept() has waited (first seen by cookie, or longer when tcp_info last_ack_recv/last_data_recv proves it); absent with none waiting.",
                Kind::Gauge,
            ),
            in_service: g(
                "sockq_listener_connections_in_service",
                "Connections accepted and open: ESTABLISHED children with an inode.",
                Kind::Gauge,
            ),
            unread_conns: g(
                "sockq_listener_connections_unread",
                "Accepted connections with unread bytes (idiag_rqueue = rcv_nxt - copied_seq > 0, the peer's FIN not counted).",
                Kind::Gauge,
            ),
            unread_bytes: g(
                "sockq_listener_unread_bytes",
                "Bytes received on accepted connections that the process has not read (ss -tn Recv-Q, less the peer's FIN in CLOSE-WAIT).",
                Kind::Gauge,
            ),
            unread_oldest: g(
                "sockq_listener_unread_oldest_seconds",
                "How long the oldest unread bytes have waited (at least tcp_info last_data_recv, and at least since copied_seq last moved); absent with none.",
                Kind::Gauge,
            ),
            unsent_conns: g(
                "sockq_listener_connections_unsent",
                "Connections with bytes not yet acknowledged by the peer (idiag_wqueue = write_seq - snd_una > 0, the own FIN not counted).",
                Kind::Gauge,
            ),
            unsent_bytes: g(
                "sockq_listener_unsent_bytes",
                "Bytes written by the process and not yet acknowledged by the peer (ss -tn Send-Q).",
                Kind::Gauge,
            ),
            unsent_oldest: g(
                "sockq_listener_unsent_oldest_seconds",
                "How long the oldest Send-Q has stayed non-empty without shrinking, as sockq saw it between dumps; absent with none.",
                Kind::Gauge,
            ),
            memory: g(
                "sockq_listener_connections_memory_bytes",
                "Memory of the listener's connections (SK_MEMINFO rmem_alloc + wmem_queued + fwd_alloc): what they are charged against net.ipv4.tcp_mem.",
                Kind::Gauge,
            ),
            closing: g(
                "sockq_listener_connections_closing",
                "The listener's connections in a closing state, by state: close_wait (peer closed, the process has not), fin_wait1, fin_wait2, time_wait.",
                Kind::Gauge,
            ),
            seen: g(
                "sockq_listener_connections_seen_total",
                "Connections first seen (by socket cookie) since sockq started: the arrivals of Little's law; connections shorter than the dump spacing are missed (compare Tcp PassiveOpens).",
                Kind::Counter,
            ),
            lifetime: g(
                "sockq_listener_connection_lifetime_seconds",
                "Mean connection lifetime by Little's law, W = in service / new connections per second, between the last two service dumps: the response time only without keep-alive.",
                Kind::Gauge,
            ),
        }
    }

    fn push(&mut self, l: &TcpListener, t: Option<&ListenerTick>, lab: &[(&'static str, String)]) {
        let Some(s) = l.service.as_ref() else {
            return;
        };
        let lab = || lab.to_vec();
        let secs = |ms: Option<u64>| ms.map(|ms| Value::Float(ms as f64 / 1000.0));
        self.waiting.push(lab(), Value::Int(s.waiting));
        if let Some(v) = secs(s.waiting_oldest_ms) {
            self.waiting_oldest.push(lab(), v);
        }
        self.in_service.push(lab(), Value::Int(s.in_service));
        self.unread_conns.push(lab(), Value::Int(s.unread_conns));
        self.unread_bytes.push(lab(), Value::Int(s.unread_bytes));
        if let Some(v) = secs(s.unread_oldest_ms) {
            self.unread_oldest.push(lab(), v);
        }
        self.unsent_conns.push(lab(), Value::Int(s.unsent_conns));
        self.unsent_bytes.push(lab(), Value::Int(s.unsent_bytes));
        if let Some(v) = secs(s.unsent_oldest_ms) {
            self.unsent_oldest.push(lab(), v);
        }
        if let Some(m) = s.mem_bytes {
            self.memory.push(lab(), Value::Int(m));
        }
        for (state, n) in [
            ("close_wait", s.close_wait),
            ("fin_wait1", s.fin_wait1),
            ("fin_wait2", s.fin_wait2),
            ("time_wait", s.time_wait),
        ] {
            let mut l = lab();
            l.push(("state", state.to_string()));
            self.closing.push(l, Value::Int(n));
        }
        self.seen.push(lab(), Value::Int(s.connections_seen_total));
        if let Some(w) = t
            .and_then(|t| t.service.as_ref())
            .and_then(|st| st.mean_conn_lifetime_s)
        {
            self.lifetime.push(lab(), Value::Float(w));
        }
    }

    fn into_families(self) -> [Family; 13] {
        [
            self.waiting,
            self.waiting_oldest,
            self.in_service,
            self.unread_conns,
            self.unread_bytes,
            self.unread_oldest,
            self.unsent_conns,
            self.unsent_bytes,
            self.unsent_oldest,
            self.memory,
            self.closing,
            self.seen,
            self.lifetime,
        ]
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::model::{
        CollectorStats, Counters, Family as AddrFamily, HostInfo, NetnsInfo, Owners, ProcessInfo,
        Sample, SampleTime, Snapshot, SynRecvSummary, Tunables, SCHEMA_VERSION,
    };

    fn listener(port: u16, depth: u32, backlog: u32, cookie: u64, comm: &str) -> TcpListener {
        TcpListener {
            family: AddrFamily::Ipv4,
            address: "127.0.0.1".parse().unwrap(),
            port,
            v6only: None,
            inode: cookie + 1000,
            cookie,
            uid: 0,
            accept_queue: depth,
            backlog,
            drops: Some(7),
            syn_recv: 0,
            syn_recv_group: 1,
            syn_recv_max_retrans: None,
            owners: Owners::Known {
                processes: vec![ProcessInfo {
                    pid: 42,
                    comm: comm.into(),
                    fds_open: Some(10),
                    fd_limit: Some(1024),
                    age_ms: 0,
                    ..ProcessInfo::default()
                }],
            },
            service: None,
        }
    }

    fn tick(listeners: Vec<TcpListener>) -> Tick {
        let mut tcp_ext = std::collections::BTreeMap::new();
        tcp_ext.insert("ListenOverflows".to_string(), 3);
        tcp_ext.insert("ListenDrops".to_string(), 4);
        let snapshot = Snapshot {
            schema_version: SCHEMA_VERSION,
            time: SampleTime {
                wall: "2024-01-01T00:00:00.000Z".into(),
                wall_unix_ms: 1_704_067_200_000,
                monotonic_ns: 1,
            },
            host: HostInfo {
                hostname: "h".into(),
                kernel: "6.1".into(),
            },
            netns: NetnsInfo {
                label: "current".into(),
                inode: None,
            },
            tcp_listeners: listeners,
            syn_recv: SynRecvSummary::default(),
            unix_listeners: None,
            service: None,
            sockstat: None,
            counters: Counters {
                tcp_ext,
                tcp: Default::default(),
            },
            tunables: Tunables {
                somaxconn: Some(4096),
                ..Tunables::default()
            },
            blind_spots: vec![],
        };
        let mut e = Engine::new(EngineConfig::default());
        e.ingest(Sample {
            snapshot,
            depth_ranges: vec![],
            collector: CollectorStats::default(),
        })
        .clone()
    }

    fn fam<'a>(fs: &'a [Family], name: &str) -> &'a Family {
        fs.iter().find(|f| f.name == name).expect(name)
    }

    #[test]
    fn truncation_keeps_the_fullest_and_reports_counts() {
        let mut ls: Vec<TcpListener> = (0..50)
            .map(|i| listener(1000 + i, 0, 128, u64::from(i), "srv"))
            .collect();
        ls[17].accept_queue = 129;
        ls[33].accept_queue = 64;
        let t = tick(ls);
        let fs = families(&t, &ExportOptions { max_listeners: 5 }, &Default::default());
        let depth = fam(&fs, "sockq_listener_accept_queue_depth");
        assert_eq!(depth.samples.len(), 5);
        assert!(depth.find(&[("port", "1017")]).is_some());
        assert!(depth.find(&[("port", "1033")]).is_some());
        assert_eq!(fam(&fs, "sockq_listeners").samples[0].value, Value::Int(50));
        assert_eq!(
            fam(&fs, "sockq_listeners_exported").samples[0].value,
            Value::Int(5)
        );
    }

    #[test]
    fn reuseport_siblings_get_a_socket_label() {
        let t = tick(vec![
            listener(80, 1, 8, 9, "nginx"),
            listener(80, 2, 8, 3, "nginx"),
            listener(81, 0, 8, 4, "nginx"),
        ]);
        let fs = families(&t, &ExportOptions::default(), &Default::default());
        let depth = fam(&fs, "sockq_listener_accept_queue_depth");
        let s = depth.find(&[("port", "80"), ("socket", "1")]).unwrap();
        assert_eq!(
            s.value,
            Value::Int(2),
            "socket 1 is the older (lower cookie)"
        );
        assert!(depth
            .find(&[("port", "81")])
            .unwrap()
            .labels
            .iter()
            .all(|(k, _)| *k != "socket"));
    }

    #[test]
    fn both_encodings_carry_the_same_samples() {
        let t = tick(vec![listener(80, 5, 4, 1, "we\"ird\\name")]);
        let fs = families(&t, &ExportOptions::default(), &Default::default());
        let text = encode_text(&fs);
        assert!(text.contains("# TYPE sockq_listener_drops_total counter\n"));
        assert!(text.contains(
            "sockq_listener_accept_queue_depth{netns=\"current\",address=\"127.0.0.1\",port=\"80\",process=\"we\\\"ird\\\\name\"} 5\n"
        ));
        assert!(text.contains("sockq_tcpext_listen_overflows_total{netns=\"current\"} 3\n"));
        assert!(text.contains("sockq_sysctl_net_core_somaxconn{netns=\"current\"} 4096\n"));
        assert!(text.contains("# TYPE sockq_build_info gauge\n"));
        assert!(!text.contains("# EOF"));
        assert!(
            !text.contains("sockq_tcpext_req_q_full_drop_total"),
            "absent, not 0"
        );

        let om = encode_openmetrics(&fs);
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE sockq_listener_drops counter\n"));
        assert!(om.contains("# TYPE sockq_build info\n"));
        assert!(om.contains("# UNIT sockq_sample_duration_seconds seconds\n"));
        assert!(om.contains("sockq_tcpext_listen_overflows_total{netns=\"current\"} 3\n"));
        assert!(om.contains("process=\"we\\\"ird\\\\name\"} 5\n"));
    }

    fn full_process() -> ProcessSelf {
        ProcessSelf {
            cpu_seconds: Some(1.25),
            resident_memory_bytes: Some(8 << 20),
            virtual_memory_bytes: Some(64 << 20),
            open_fds: Some(12),
            max_fds: Some(1024),
            start_time_seconds: Some(1_735_689_600.5),
            threads: Some(4),
        }
    }

    #[test]
    fn process_families_have_the_standard_names_and_leave_out_the_unread() {
        let fs = process_families(&full_process());
        let names: Vec<(&str, Kind)> = fs.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("process_cpu_seconds_total", Kind::Counter),
                ("process_resident_memory_bytes", Kind::Gauge),
                ("process_virtual_memory_bytes", Kind::Gauge),
                ("process_open_fds", Kind::Gauge),
                ("process_max_fds", Kind::Gauge),
                ("process_start_time_seconds", Kind::Gauge),
                ("process_threads", Kind::Gauge),
            ]
        );
        let text = encode_text(&fs);
        for line in [
            "process_cpu_seconds_total 1.25\n",
            "process_resident_memory_bytes 8388608\n",
            "process_open_fds 12\n",
            "process_max_fds 1024\n",
            "process_start_time_seconds 1.7356896005e+09\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let none = process_families(&ProcessSelf {
            max_fds: None,
            ..full_process()
        });
        assert!(!encode_text(&none).contains("process_max_fds"));
        assert_eq!(encode_text(&process_families(&ProcessSelf::default())), "");
    }

    #[test]
    fn build_info_names_version_and_revision() {
        let f = build_info();
        assert_eq!(f.kind, Kind::Info);
        let labels: Vec<(&str, &str)> = f.samples[0]
            .labels
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", env!("SOCKQ_GIT_REVISION"))
            ]
        );
        assert!(!env!("SOCKQ_GIT_REVISION").is_empty());
    }

    #[test]
    fn help_texts_are_single_line_without_quotes() {
        let t = tick(vec![]);
        let mut seen = std::collections::HashSet::new();
        for f in families(&t, &ExportOptions::default(), &Default::default()) {
            assert!(f.name.starts_with("sockq_"), "{}", f.name);
            assert!(!f.help.contains(['"', '\\', '\n']), "{}", f.help);
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            assert_eq!(
                f.kind == Kind::Info,
                f.name.ends_with("_info"),
                "{}",
                f.name
            );
            assert!(seen.insert(f.name.clone()), "{} twice", f.name);
        }
    }

    #[test]
    fn metrics_reference_maps_every_tcpext_counter_to_node_exporter() {
        const METRICS_MD: &str = include_str!("../../docs/metrics.md");
        for c in QUEUE_COUNTER_INFO {
            let Some(name) = tcpext_metric_name(c.name) else {
                continue;
            };
            let row = format!("| `{name}` | `node_netstat_TcpExt_{}` |", c.name);
            assert!(METRICS_MD.contains(&row), "not in docs/metrics.md: {row}");
        }
    }

    #[test]
    fn service_numbers_are_exported_per_listener_and_absent_without_them() {
        use crate::model::{ServiceStats, ServiceSummary, TcpSockstat};
        let mut with = listener(80, 0, 128, 1, "srv");
        with.service = Some(ServiceStats {
            group: 1,
            waiting: 2,
            waiting_oldest_ms: Some(1500),
            in_service: 7,
            unread_conns: 1,
            unread_bytes: 10,
            unsent_conns: 0,
            close_wait: 3,
            time_wait: 9,
            mem_bytes: Some(4096),
            connections_seen_total: 42,
            ..ServiceStats::default()
        });
        let without = listener(81, 0, 128, 2, "srv");
        let mut t = tick(vec![with, without]);
        t.snapshot.service = Some(ServiceSummary {
            age_ms: 2500,
            ..ServiceSummary::default()
        });
        t.snapshot.sockstat = Some(TcpSockstat {
            mem_pages: Some(68),
            page_size: 4096,
            ..TcpSockstat::default()
        });
        t.snapshot.tunables.tcp_mem = Some([10, 20, 30]);
        let fs = families(&t, &ExportOptions::default(), &Default::default());
        let v = |name: &str, want: &[(&str, &str)]| fam(&fs, name).find(want).map(|s| s.value);
        assert_eq!(
            v("sockq_listener_connections_waiting", &[("port", "80")]),
            Some(Value::Int(2))
        );
        assert_eq!(
            v(
                "sockq_listener_connections_waiting_oldest_seconds",
                &[("port", "80")]
            ),
            Some(Value::Float(1.5))
        );
        assert_eq!(
            v("sockq_listener_connections_in_service", &[("port", "80")]),
            Some(Value::Int(7))
        );
        assert_eq!(
            v(
                "sockq_listener_connections_closing",
                &[("port", "80"), ("state", "time_wait")]
            ),
            Some(Value::Int(9))
        );
        assert_eq!(
            v("sockq_listener_connections_seen_total", &[("port", "80")]),
            Some(Value::Int(42))
        );
        assert_eq!(
            v("sockq_listener_unsent_oldest_seconds", &[("port", "80")]),
            None,
            "absent, not 0"
        );
        assert_eq!(
            v("sockq_listener_connections_in_service", &[("port", "81")]),
            None
        );
        assert_eq!(
            v("sockq_tcp_memory_bytes", &[]),
            Some(Value::Int(68 * 4096))
        );
        assert_eq!(
            v(
                "sockq_sysctl_net_ipv4_tcp_mem",
                &[("threshold", "pressure")]
            ),
            Some(Value::Float(20.0))
        );
        assert_eq!(v("sockq_service_age_seconds", &[]), Some(Value::Float(2.5)));
        let text = encode_text(&fs);
        assert!(text.contains("# TYPE sockq_listener_connections_seen_total counter\n"));
        let om = encode_openmetrics(&fs);
        assert!(om.contains("# TYPE sockq_listener_connections_seen counter\n"));
    }

    #[test]
    fn owner_cpu_and_stopped_from_the_holders_states() {
        use crate::model::testing::{process, process_in_state};
        let with = |port: u16, processes: Vec<ProcessInfo>| {
            let mut l = listener(port, 1, 8, u64::from(port), "x");
            l.owners = Owners::Known { processes };
            l
        };
        let t = tick(vec![
            // A pre-fork server, busiest first: one worker busy, the master idle.
            with(
                80,
                vec![
                    process_in_state(12, "nginx", 'R', Some(97.0), 1),
                    process_in_state(10, "nginx", 'S', Some(0.0), 1),
                ],
            ),
            // Every holder stopped.
            with(
                81,
                vec![
                    process_in_state(20, "app", 'T', Some(0.0), 1),
                    process_in_state(21, "app", 'D', None, 1),
                ],
            ),
            // Nothing known about the holder's activity: no sample.
            with(82, vec![process(30, "old", Some(5), Some(64))]),
            // A multi-threaded process: more than one core.
            with(83, vec![process_in_state(40, "java", 'S', Some(250.0), 30)]),
        ]);
        let fs = families(&t, &ExportOptions::default(), &Default::default());
        let cpu = fam(&fs, "sockq_listener_owner_cpu_ratio");
        let stopped = fam(&fs, "sockq_listener_owner_stopped");
        let at = |f: &Family, port: &str| f.find(&[("port", port)]).map(|s| s.value);
        assert_eq!(at(cpu, "80"), Some(Value::Float(0.97)));
        assert_eq!(at(cpu, "81"), Some(Value::Float(0.0)));
        assert_eq!(at(cpu, "82"), None, "absent, not 0");
        assert_eq!(at(cpu, "83"), Some(Value::Float(2.5)));
        assert_eq!(at(stopped, "80"), Some(Value::Int(0)));
        assert_eq!(at(stopped, "81"), Some(Value::Int(1)));
        assert_eq!(at(stopped, "82"), None, "absent, not 0");
        assert_eq!(at(stopped, "83"), Some(Value::Int(0)));
        // The process label stays the lowest pid's (the master), whoever is busiest; the fd
        // numbers are the tightest owner's.
        assert!(cpu.find(&[("port", "80"), ("process", "nginx")]).is_some());
        let mut l = with(
            84,
            vec![
                process_in_state(51, "worker", 'R', Some(99.0), 1),
                process_in_state(50, "master", 'S', Some(0.0), 1),
            ],
        );
        if let Owners::Known { processes } = &mut l.owners {
            processes[0].fds_open = Some(900);
            processes[0].fd_limit = Some(1000);
        }
        let fs = families(
            &tick(vec![l]),
            &ExportOptions::default(),
            &Default::default(),
        );
        let fds = fam(&fs, "sockq_listener_owner_open_fds");
        assert_eq!(fds.samples.len(), 1);
        assert_eq!(
            fds.find(&[("process", "master")]).map(|s| s.value),
            Some(Value::Int(900))
        );
    }

    #[test]
    fn every_family_is_in_the_metrics_reference() {
        const METRICS_MD: &str = include_str!("../../docs/metrics.md");
        let t = tick(vec![listener(80, 5, 4, 1, "nginx")]);
        let missing: Vec<String> = families(&t, &ExportOptions::default(), &Default::default())
            .into_iter()
            .chain(process_families(&full_process()))
            .map(|f| f.name)
            .filter(|name| {
                !METRICS_MD.contains(&format!("`{name}`"))
                    && !METRICS_MD.contains(&format!("`{name}{{"))
            })
            .collect();
        assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
    }
}
