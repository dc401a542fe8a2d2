//! Metric families of a synthetic tick in which every kind of metric sockq exports has samples
//! (built with `sockq::model::testing`, through the engine): for the tests of the Prometheus
//! output that need no kernel and no root.

use sockq::engine::{Engine, EngineConfig};
use sockq::export::prometheus::{self as prom, ConnectionStats, ExportOptions, ExporterStats};
use sockq::model::meta::QUEUE_COUNTER_INFO;
use sockq::model::{testing, CollectorStats, Owners, ProcessSelf, Sample, Tick};

/// Two samples one second apart: a REUSEPORT pair overflowing and dropping, an idle listener
/// whose owner has an awkward name, one whose owner is unknown; every TcpExt queue counter
/// rising; a blind spot; a throttled collector.
pub fn rich_tick() -> Tick {
    let sample = |s: u64| {
        let owner = |pid, comm: &str| testing::process(pid, comm, Some(900 + s), Some(1024));
        let listeners = vec![
            testing::tcp_listener(80)
                .addr("0.0.0.0".parse().expect("address"))
                .identity(1, 11)
                .queue(5, 4)
                .drops(Some(10 * s))
                .syn_recv(3, Some(2))
                .owner(owner(100, "nginx"))
                .build(),
            testing::tcp_listener(80)
                .addr("0.0.0.0".parse().expect("address"))
                .identity(2, 12)
                .queue(1, 4)
                .drops(Some(0))
                .owner(owner(101, "nginx"))
                .build(),
            testing::tcp_listener(8080)
                .owner(owner(200, "we\"ird\\ name\nx"))
                .build(),
            testing::tcp_listener(443)
                .addr("::".parse().expect("address"))
                .owners(Owners::Unknown {
                    reason: "owned by another user".into(),
                })
                .build(),
        ];
        let mut snapshot = testing::snapshot(listeners, 5_000_000_000_000 + s * 1_000_000_000);
        for (i, c) in QUEUE_COUNTER_INFO.iter().enumerate() {
            snapshot
                .counters
                .tcp_ext
                .insert(c.name.to_string(), (i as u64 + 1) * 100 * s);
        }
        snapshot.syn_recv.total = 3;
        snapshot.syn_recv.age_ms = 1500;
        snapshot.blind_spots = vec!["processes of other users (not root)".into()];
        Sample {
            snapshot,
            depth_ranges: vec![],
            collector: CollectorStats {
                cpu_percent: 1.5,
                budget_percent: 2.0,
                sample_ms: 3.25,
                fast_interval_ms: 200,
                fast_interval_asked_ms: 100,
                syn_recv_age_ms: 1500,
                throttled: true,
                ..CollectorStats::default()
            },
        }
    };
    let mut engine = Engine::new(EngineConfig::default());
    engine.ingest(sample(1));
    engine.ingest(sample(2)).clone()
}

/// sockq's own process, every number read.
pub fn full_process() -> ProcessSelf {
    ProcessSelf {
        cpu_seconds: Some(12.34),
        resident_memory_bytes: Some(9_437_184),
        virtual_memory_bytes: Some(123_731_968),
        open_fds: Some(17),
        max_fds: Some(1_048_576),
        start_time_seconds: Some(1_735_689_000.27),
        threads: Some(5),
    }
}

/// What a scrape of [`rich_tick`] exposes: its families, then sockq's own process.
pub fn rich_families() -> Vec<prom::Family> {
    let stats = ExporterStats {
        sample_errors: 2,
        connections: ConnectionStats {
            made_room_global: 1,
            made_room_per_peer: 2,
            refused_global: 3,
            refused_per_peer: 4,
        },
    };
    let mut fs = prom::families(&rich_tick(), &ExportOptions::default(), &stats);
    fs.extend(prom::process_families(&full_process()));
    fs
}
