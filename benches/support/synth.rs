//! Synthetic samples for the benchmarks and for the RSS measurement of the comparison harness
//! (`examples/perf_compare.rs` includes this file with `#[path]`).
//!
//! Deterministic: listener `i` is `10.<i/250>.<i%250>.1:<8000+i%1000>`, one owning process per
//! five listeners, depths and drops that move from tick to tick (so rates, peaks and sparklines
//! are not all zero), the counters of the 6.18 /proc fixture with the queue counters moving.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use sockq::collect::procnet;
use sockq::model::testing;
use sockq::model::{
    CollectorStats, Counters, DepthRange, HostInfo, ListenerKey, NetnsInfo, Owners, ProcessInfo,
    Sample, SampleTime, Snapshot, SynRecvSummary, TcpListener, UnixListener, SCHEMA_VERSION,
};

/// Monotonic time of tick 0 (ns).
pub const T0_NS: u64 = 5_000_000_000_000;
/// Wall time of tick 0 (ms since the epoch).
pub const WALL0_MS: u64 = 1_750_000_000_000;

const NETSTAT: &str = include_str!("../../tests/fixtures/proc/6.18/netstat");
const SNMP: &str = include_str!("../../tests/fixtures/proc/6.18/snmp");

/// The counters of the 6.18 fixture.
pub fn base_counters() -> Counters {
    procnet::parse_counters(NETSTAT, SNMP).0
}

fn listener(i: u32) -> TcpListener {
    let addr = Ipv4Addr::new(10, (i / 250 % 250) as u8, (i % 250) as u8, 1);
    let backlog = [128, 511, 4096, 64][(i % 4) as usize];
    let comm = format!("worker-{}", i / 5 % 97);
    testing::tcp_listener(8000 + (i % 1000) as u16)
        .addr(IpAddr::V4(addr))
        .identity(100_000 + u64::from(i), 0x0000_2000_0000_0000 + u64::from(i))
        .queue(0, backlog)
        .owner(testing::process(
            10_000 + i / 5,
            &comm,
            Some(40 + u64::from(i % 7)),
            Some(1024),
        ))
        .build()
}

/// A generator of samples of `n` TCP listeners (and `unix` UNIX listeners).
pub struct Synth {
    listeners: Vec<TcpListener>,
    unix: Vec<UnixListener>,
    counters: Counters,
    tick: u64,
}

impl Synth {
    /// `n` TCP listeners, `unix` UNIX listeners.
    pub fn new(n: u32, unix: u32) -> Self {
        let unix = (0..unix)
            .map(|i| UnixListener {
                name: format!("/run/synth/app-{i}.sock"),
                inode: 900_000 + u64::from(i),
                accept_queue: 0,
                backlog: 128,
                owners: Owners::Known {
                    processes: vec![ProcessInfo {
                        pid: 20_000 + i,
                        comm: "php-fpm".into(),
                        fds_open: Some(12),
                        fd_limit: Some(1024),
                        age_ms: 0,
                        ..ProcessInfo::default()
                    }]
                    .into(),
                },
            })
            .collect();
        Self {
            listeners: (0..n).map(listener).collect(),
            unix,
            counters: base_counters(),
            tick: 0,
        }
    }

    /// The tick number of the next sample.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The next sample, one second after the previous one.
    pub fn next_sample(&mut self) -> Sample {
        let t = self.tick;
        self.tick += 1;
        let mut depth_ranges = Vec::with_capacity(self.listeners.len());
        let mut dropped = 0u64;
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let i = i as u64;
            // One listener in ten is busy; one in a hundred overflows now and then.
            let depth = if i % 10 == 0 {
                ((t * 7 + i) % u64::from(l.backlog + 2)) as u32
            } else {
                ((t + i) % 3) as u32
            };
            l.accept_queue = depth;
            if i % 100 == 0 && t % 4 == 0 {
                let d = 1 + (t + i) % 5;
                l.drops = l.drops.map(|x| x + d);
                dropped += d;
            }
            l.syn_recv = if i % 50 == 0 { (t + i) % 40 } else { 0 };
            depth_ranges.push(DepthRange {
                key: ListenerKey::from(&*l),
                high: depth + (i % 2) as u32,
                low: depth.saturating_sub(1),
                readings: 10,
            });
        }
        for name in ["ListenOverflows", "ListenDrops"] {
            *self.counters.tcp_ext.entry(name.into()).or_default() += dropped;
        }
        *self
            .counters
            .tcp_ext
            .entry("TCPReqQFullDoCookies".into())
            .or_default() += t % 3;
        let wall_ms = WALL0_MS + t * 1000;
        Sample {
            snapshot: Snapshot {
                schema_version: SCHEMA_VERSION,
                time: SampleTime {
                    wall: format!("2025-06-15T15:{:02}:{:02}.000Z", t / 60 % 60, t % 60),
                    wall_unix_ms: wall_ms,
                    monotonic_ns: T0_NS + t * 1_000_000_000,
                },
                host: HostInfo {
                    hostname: "bench-host".into(),
                    kernel: "6.18.0-bench".into(),
                },
                netns: NetnsInfo {
                    label: "current".into(),
                    inode: Some(4_026_531_840),
                },
                tcp_listeners: self.listeners.clone(),
                syn_recv: SynRecvSummary {
                    total: self.listeners.iter().map(|l| l.syn_recv).sum(),
                    unmatched: 0,
                    age_ms: 0,
                },
                unix_listeners: Some(self.unix.clone()),
                service: None,
                sockstat: None,
                counters: self.counters.clone(),
                tunables: testing::fresh_netns_tunables(),
                blind_spots: Vec::new(),
            },
            depth_ranges,
            collector: CollectorStats {
                cpu_percent: 0.3,
                budget_percent: 2.0,
                sample_ms: 4.0,
                fast_interval_ms: 100,
                fast_interval_asked_ms: 100,
                syn_recv_age_ms: 0,
                throttled: false,
                ..CollectorStats::default()
            },
        }
    }
}
