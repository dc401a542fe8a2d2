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
mod fleet;
mod itself;
mod listener;
mod namespace;

use std::collections::HashMap;

pub use encode::{encode_openmetrics, encode_text, format_float};
pub use fleet::{
    fleet_families, FleetExport, FleetNs, DEFAULT_MAX_LISTENERS_PER_NETNS, DEFAULT_MAX_NETNS,
};
pub use itself::{build_info, process_families};

use crate::model::{ListenerKey, TcpListener};
use crate::model::{ListenerTick, Tick};

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
    let ns = tick.snapshot.netns.label.as_str();
    let ns_label = || vec![("netns", ns.to_string())];
    let chosen = select_listeners(tick, opts.max_listeners);
    let mut out = listener::families(tick, &chosen);
    out.extend(namespace::families(tick, chosen.len(), &ns_label));
    out.extend(itself::families(tick, stats));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};
    use crate::model::meta::QUEUE_COUNTER_INFO;
    use crate::model::ProcessSelf;
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
                }]
                .into(),
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
        const METRICS_MD: &str = include_str!("../../../docs/metrics.md");
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
            l.owners = Owners::Known {
                processes: processes.into(),
            };
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
            let processes = std::sync::Arc::make_mut(processes);
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
        const METRICS_MD: &str = include_str!("../../../docs/metrics.md");
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
