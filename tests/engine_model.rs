//! The engine over synthetic samples: rates, gaps, gone listeners, peaks, every diagnosis rule,
//! and the memory bound of the history. Pure and fast: no kernel, no root.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sockq::engine::{Engine, EngineConfig};
use sockq::model::meta::QUEUE_COUNTER_INFO;
use sockq::model::testing;
use sockq::model::Tick;
use sockq::model::{
    CollectorStats, Counters, DepthRange, HostInfo, ListenerKey, NetnsInfo, Owners, ProcessInfo,
    Sample, SampleTime, Snapshot, SynRecvSummary, TcpListener, Tunables, QUEUE_COUNTERS,
    SCHEMA_VERSION,
};
use sockq::model::{Finding, Severity};

/// Monotonic time of the first sample (ns); any value far from 0 will do.
const T0_NS: u64 = 5_000_000_000_000;

/// A TCP listener on 127.0.0.1:`port` whose identity is derived from `id`.
fn listener(port: u16, id: u64, depth: u32, backlog: u32, drops: Option<u64>) -> TcpListener {
    testing::tcp_listener(port)
        .identity(10_000 + id, 0xC0FF_EE00 + id)
        .queue(depth, backlog)
        .drops(drops)
        .build()
}

fn key(l: &TcpListener) -> ListenerKey {
    ListenerKey::from(l)
}

/// The defaults of a fresh network namespace on a current kernel.
fn default_tunables() -> Tunables {
    testing::fresh_netns_tunables()
}

/// A snapshot at `ms` milliseconds after [`T0_NS`].
fn snapshot(
    ms: u64,
    listeners: Vec<TcpListener>,
    counters: &BTreeMap<String, u64>,
    tunables: Tunables,
) -> Snapshot {
    Snapshot {
        schema_version: SCHEMA_VERSION,
        time: SampleTime {
            wall: "2025-01-01T00:00:00.000Z".into(),
            wall_unix_ms: 1_735_689_600_000 + ms,
            monotonic_ns: T0_NS + ms * 1_000_000,
        },
        host: HostInfo {
            hostname: "test".into(),
            kernel: "6.18.0".into(),
        },
        netns: NetnsInfo {
            label: "current".into(),
            inode: Some(4026531840),
        },
        tcp_listeners: listeners,
        syn_recv: SynRecvSummary::default(),
        unix_listeners: None,
        service: None,
        sockstat: None,
        counters: Counters {
            tcp_ext: counters.clone(),
            tcp: BTreeMap::new(),
        },
        tunables,
        blind_spots: vec![],
    }
}

/// Mutable state of a synthetic namespace, fed to an engine one tick at a time.
struct World {
    engine: Engine,
    listeners: Vec<TcpListener>,
    counters: BTreeMap<String, u64>,
    tunables: Tunables,
    /// Depth ranges for the next tick only.
    ranges: Vec<DepthRange>,
}

impl World {
    fn new() -> Self {
        Self::with_config(EngineConfig::default())
    }

    fn with_config(cfg: EngineConfig) -> Self {
        Self {
            engine: Engine::new(cfg),
            listeners: vec![],
            counters: QUEUE_COUNTERS.iter().map(|n| (n.to_string(), 0)).collect(),
            tunables: default_tunables(),
            ranges: vec![],
        }
    }

    fn add(&mut self, l: TcpListener) -> ListenerKey {
        let k = key(&l);
        self.listeners.push(l);
        k
    }

    fn l(&mut self, port: u16) -> &mut TcpListener {
        self.listeners
            .iter_mut()
            .find(|l| l.port == port)
            .unwrap_or_else(|| panic!("no listener on port {port}"))
    }

    fn set(&mut self, counter: &str, v: u64) {
        self.counters.insert(counter.to_string(), v);
    }

    fn bump(&mut self, counter: &str, by: u64) {
        *self.counters.entry(counter.to_string()).or_insert(0) += by;
    }

    /// The fast sampler saw `high`/`low` on `port` since the previous tick.
    fn range(&mut self, port: u16, high: u32, low: u32) {
        let k = key(self.l(port));
        self.ranges.push(DepthRange {
            key: k,
            high,
            low,
            readings: 10,
        });
    }

    /// Ingests a sample taken `ms` after T0; returns (a copy of) the tick.
    fn tick_at(&mut self, ms: u64) -> Tick {
        let sample = Sample {
            snapshot: snapshot(
                ms,
                self.listeners.clone(),
                &self.counters,
                self.tunables.clone(),
            ),
            depth_ranges: std::mem::take(&mut self.ranges),
            collector: CollectorStats::default(),
        };
        self.engine.ingest(sample).clone()
    }
}

fn ep(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn evidence(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// (rule, listener) of every active finding, in the tick's order (cleared findings held on
/// screen are left out; `held` lists them).
fn rules(t: &Tick) -> Vec<(&str, Option<&str>)> {
    t.findings
        .iter()
        .filter(|f| f.is_active())
        .map(|f| (f.rule.as_str(), f.listener.as_deref()))
        .collect()
}

/// (rule, seconds since it cleared) of every finding held after its cause stopped.
fn held(t: &Tick) -> Vec<(&str, f64)> {
    t.findings
        .iter()
        .filter_map(|f| f.cleared_s.map(|s| (f.rule.as_str(), s)))
        .collect()
}

/// The single finding of `rule`; panics with the tick's findings when there is not exactly one.
fn only<'a>(t: &'a Tick, rule: &str) -> &'a Finding {
    let found: Vec<&Finding> = t
        .findings
        .iter()
        .filter(|f| f.rule == rule && f.is_active())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one `{rule}` finding in {:#?}",
        t.findings
    );
    found[0]
}

fn has(t: &Tick, rule: &str) -> bool {
    t.findings.iter().any(|f| f.rule == rule && f.is_active())
}

fn rate(t: &Tick, name: &str) -> Option<f64> {
    *t.counter_rates
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from counter_rates"))
}

fn lt(t: &Tick, port: u16) -> &sockq::model::ListenerTick {
    t.listeners
        .iter()
        .find(|l| *l.endpoint == *ep(port))
        .unwrap_or_else(|| panic!("{} not in {:#?}", ep(port), t.listeners))
}

// ---------------------------------------------------------------------------------------------
// Rates

#[test]
fn first_tick_has_no_rates_then_exact_per_second_rates() {
    let mut w = World::new();
    w.add(listener(8080, 1, 0, 128, Some(7)));
    w.set("ListenOverflows", 100);
    w.set("ListenDrops", 120);
    let t = w.tick_at(0);
    assert_eq!(t.seq, 1);
    assert_eq!(t.interval_s, None);
    assert!(!t.gap_before);
    assert_eq!(t.counter_rates.len(), QUEUE_COUNTERS.len());
    assert!(
        t.counter_rates.values().all(Option::is_none),
        "{:?}",
        t.counter_rates
    );
    assert_eq!(lt(&t, 8080).drops_per_s, None);

    w.set("ListenOverflows", 130);
    w.set("ListenDrops", 160);
    w.l(8080).drops = Some(37);
    let t = w.tick_at(1000);
    assert_eq!(t.seq, 2);
    assert_eq!(t.interval_s, Some(1.0));
    assert_eq!(rate(&t, "ListenOverflows"), Some(30.0));
    assert_eq!(rate(&t, "ListenDrops"), Some(40.0));
    assert_eq!(rate(&t, "SyncookiesSent"), Some(0.0));
    assert_eq!(lt(&t, 8080).drops_per_s, Some(30.0));

    // 1.25 s later: rates are per second, not per tick.
    w.bump("ListenOverflows", 5);
    w.bump("ListenDrops", 5);
    w.l(8080).drops = Some(42);
    let t = w.tick_at(2250);
    assert_eq!(t.interval_s, Some(1.25));
    assert!(!t.gap_before);
    assert_eq!(rate(&t, "ListenOverflows"), Some(4.0));
    assert_eq!(lt(&t, 8080).drops_per_s, Some(4.0));
    let h = w.engine.listener(&key(&w.listeners[0])).unwrap();
    assert_eq!(h.drops_delta, Some(5));
    assert_eq!(h.points.last().unwrap().drops_per_s, 4.0);

    let hist: Vec<Option<f64>> = w
        .engine
        .counter_history("ListenOverflows")
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(hist, vec![None, Some(30.0), Some(4.0)]);
}

#[test]
fn counter_reset_gives_no_rate_not_a_negative_one() {
    let mut w = World::new();
    w.set("ListenOverflows", 1000);
    w.tick_at(0);
    w.set("ListenOverflows", 1010);
    assert_eq!(rate(&w.tick_at(1000), "ListenOverflows"), Some(10.0));
    // The namespace was recreated: the counter starts again from a small number.
    w.set("ListenOverflows", 3);
    let t = w.tick_at(2000);
    assert_eq!(rate(&t, "ListenOverflows"), None);
    assert!(
        !has(&t, "listen_overflows"),
        "a reset is no overflow: {:?}",
        rules(&t)
    );
    // And counting resumes from the new base.
    w.set("ListenOverflows", 5);
    assert_eq!(rate(&w.tick_at(3000), "ListenOverflows"), Some(2.0));
    let hist: Vec<Option<f64>> = w
        .engine
        .counter_history("ListenOverflows")
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(hist, vec![None, Some(10.0), None, Some(2.0)]);
}

#[test]
fn listener_drop_counter_wrapping_at_32_bits_gives_the_true_rate() {
    let mut w = World::new();
    let k = w.add(listener(8080, 1, 0, 128, Some(u64::from(u32::MAX) - 4)));
    w.tick_at(0);
    // u32::MAX-4 → 5 is 10 drops across the wrap.
    w.l(8080).drops = Some(5);
    let t = w.tick_at(1000);
    assert_eq!(lt(&t, 8080).drops_per_s, Some(10.0));
    assert_eq!(w.engine.listener(&k).unwrap().drops_delta, Some(10));
    // A small fall is not a wrap: no rate, never a negative one.
    w.l(8080).drops = Some(2);
    let t = w.tick_at(2000);
    assert_eq!(lt(&t, 8080).drops_per_s, None);
    assert_eq!(w.engine.listener(&k).unwrap().drops_delta, None);
    assert!(w
        .engine
        .listener(&k)
        .unwrap()
        .points
        .last()
        .unwrap()
        .drops_per_s
        .is_nan());
    // Drops unknown (no SK_MEMINFO) → no rate either.
    w.l(8080).drops = None;
    assert_eq!(lt(&w.tick_at(3000), 8080).drops_per_s, None);
}

// ---------------------------------------------------------------------------------------------
// Gaps

#[test]
fn sample_after_3_2_intervals_records_two_gaps() {
    let mut w = World::new();
    let k = w.add(listener(8080, 1, 2, 128, Some(0)));
    w.set("ListenOverflows", 10);
    w.tick_at(0);
    w.set("ListenOverflows", 26);
    // Ticks at 1 s and 2 s were missed; this one is the 3 s tick, late.
    let t = w.tick_at(3200);
    assert!(t.gap_before);
    assert_eq!(t.seq, 4, "two missed ticks count in seq");
    assert_eq!(t.interval_s, Some(3.2));
    assert_eq!(rate(&t, "ListenOverflows"), Some(5.0), "16 over 3.2 s");

    let points: Vec<bool> = w
        .engine
        .listener(&k)
        .unwrap()
        .points
        .iter()
        .map(|p| p.is_gap())
        .collect();
    assert_eq!(points, vec![false, true, true, false]);
    let last = *w.engine.listener(&k).unwrap().points.last().unwrap();
    assert_eq!((last.depth, last.high), (2, 2));
    let hist: Vec<Option<f64>> = w
        .engine
        .counter_history("ListenOverflows")
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(hist, vec![None, None, None, Some(5.0)]);

    // Back on schedule: no gap.
    let t = w.tick_at(4200);
    assert!(!t.gap_before);
    assert_eq!(t.seq, 5);
}

#[test]
fn late_but_within_one_and_a_half_intervals_is_no_gap() {
    let mut w = World::new();
    w.add(listener(8080, 1, 0, 128, Some(0)));
    w.tick_at(0);
    let t = w.tick_at(1400);
    assert!(!t.gap_before);
    assert_eq!(t.seq, 2);
    assert_eq!(
        w.engine.counter_history("ListenDrops").unwrap().len(),
        2,
        "no gap entry"
    );
}

#[test]
fn record_gap_pushes_a_gap_into_every_series() {
    let mut w = World::new();
    let a = w.add(listener(8080, 1, 1, 128, Some(0)));
    let b = w.add(listener(8081, 2, 0, 64, Some(0)));
    w.tick_at(0);
    w.engine.record_gap();
    w.engine.record_gap();
    for k in [a, b] {
        let pts: Vec<bool> = w
            .engine
            .listener(&k)
            .unwrap()
            .points
            .iter()
            .map(|p| p.is_gap())
            .collect();
        assert_eq!(pts, vec![false, true, true]);
    }
    for info in QUEUE_COUNTER_INFO {
        let h: Vec<Option<f64>> = w
            .engine
            .counter_history(info.name)
            .unwrap()
            .iter()
            .copied()
            .collect();
        assert_eq!(h, vec![None, None, None], "{}", info.name);
    }
    // The latest tick is still the last real one.
    assert_eq!(w.engine.latest().unwrap().seq, 1);
}

/// The CLI calls `record_gap()` when a sample fails; the next sample then arrives two intervals
/// after the previous successful one. The missed tick must be recorded once, not twice.
#[test]
fn record_gap_then_next_sample_does_not_double_count_the_gap() {
    let mut w = World::new();
    let k = w.add(listener(8080, 1, 1, 128, Some(0)));
    w.tick_at(0); // seq 1
    w.engine.record_gap(); // the 1 s sample failed: seq 2
    let t = w.tick_at(2000); // the 2 s sample: seq 3
    assert_eq!(t.seq, 3, "one tick was missed, recorded once");
    let pts: Vec<bool> = w
        .engine
        .listener(&k)
        .unwrap()
        .points
        .iter()
        .map(|p| p.is_gap())
        .collect();
    assert_eq!(pts, vec![false, true, false]);
    assert_eq!(
        w.engine.counter_history("ListenOverflows").unwrap().len(),
        3
    );
}

/// `Tick::seq` counts every tick since the start, gaps included; a pause longer than the
/// window must still advance it by the number of missed ticks (the rings only need `capacity`
/// gaps, but the tick number is not a ring).
#[test]
fn seq_counts_every_missed_tick_even_beyond_the_window() {
    let mut w = World::with_config(EngineConfig {
        interval: Duration::from_secs(1),
        window: Duration::from_secs(10),
        gone_retention: Duration::from_secs(60),
        ..EngineConfig::default()
    });
    let k = w.add(listener(8080, 1, 0, 128, Some(0)));
    w.tick_at(0);
    let t = w.tick_at(100_000); // 99 ticks missed
    assert!(t.gap_before);
    assert_eq!(t.seq, 101);
    let h = w.engine.listener(&k).unwrap();
    assert_eq!(h.points.len(), 10);
    assert_eq!(h.points.iter().filter(|p| p.is_gap()).count(), 9);
}

#[test]
fn a_pause_longer_than_the_window_fills_the_rings_with_gaps_but_never_overflows_them() {
    let cfg = EngineConfig {
        interval: Duration::from_secs(1),
        window: Duration::from_secs(10),
        gone_retention: Duration::from_secs(600),
        ..EngineConfig::default()
    };
    assert_eq!(cfg.capacity(), 10);
    let mut w = World::with_config(cfg);
    let k = w.add(listener(8080, 1, 0, 128, Some(0)));
    w.tick_at(0);
    let t = w.tick_at(100_000);
    assert!(t.gap_before);
    let h = w.engine.listener(&k).unwrap();
    assert_eq!(h.points.len(), 10);
    let gaps: Vec<bool> = h.points.iter().map(|p| p.is_gap()).collect();
    assert_eq!(gaps, [vec![true; 9], vec![false]].concat());
    assert_eq!(w.engine.counter_history("ListenDrops").unwrap().len(), 10);
}

// ---------------------------------------------------------------------------------------------
// Gone listeners

#[test]
fn gone_listener_is_marked_kept_for_retention_then_pruned() {
    let mut w = World::with_config(EngineConfig {
        interval: Duration::from_secs(1),
        window: Duration::from_secs(60),
        gone_retention: Duration::from_secs(3),
        ..EngineConfig::default()
    });
    w.add(listener(8080, 1, 0, 128, Some(0)));
    let b = w.add(listener(9000, 2, 6, 4, Some(9)));
    w.tick_at(0);
    w.listeners.retain(|l| l.port != 9000);
    let t = w.tick_at(1000);
    assert_eq!(
        t.listeners
            .iter()
            .map(|l| (&*l.endpoint, l.gone))
            .collect::<Vec<_>>(),
        vec![("127.0.0.1:8080", false), ("127.0.0.1:9000", true)],
        "gone listeners come last"
    );
    let gone = lt(&t, 9000);
    assert_eq!((gone.depth, gone.backlog), (6, 4), "last known numbers");
    assert_eq!(gone.drops_per_s, None);
    // A gone listener has no findings even though its last reading was a full queue.
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
    let h = w.engine.listener(&b).unwrap();
    assert!(h.gone);
    assert_eq!(h.last_seen_ns, T0_NS);
    assert!(h.points.last().unwrap().is_gap());

    assert_eq!(t.gone_listeners, 1);
    // Kept while within gone_retention (3 s) of its last sighting, counted in each tick but
    // carried in the tick's listeners only once …
    for ms in [2000, 3000] {
        let t = w.tick_at(ms);
        assert_eq!(t.listeners.len(), 1, "at {ms} ms");
        assert_eq!(t.gone_listeners, 1, "at {ms} ms");
        let kept = w.engine.gone_listeners();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].gone && *kept[0].endpoint == *ep(9000), "at {ms} ms");
    }
    assert_eq!(w.engine.listener(&b).unwrap().points.len(), 4);
    // … then pruned.
    let t = w.tick_at(4000);
    assert_eq!(t.listeners.len(), 1);
    assert_eq!(&*t.listeners[0].endpoint, ep(8080));
    assert_eq!(t.gone_listeners, 0);
    assert!(w.engine.listener(&b).is_none());
    assert_eq!(w.engine.listeners().count(), 1);
}

#[test]
fn a_new_socket_on_the_same_port_is_a_new_listener() {
    let mut w = World::new();
    let old = w.add(listener(8080, 1, 0, 128, Some(500)));
    w.tick_at(0);
    // The server restarted: same port, new inode and cookie, drop counter from 0.
    w.listeners[0] = listener(8080, 2, 0, 511, Some(0));
    let new = key(&w.listeners[0]);
    let t = w.tick_at(1000);
    let mine: Vec<(u32, bool)> = t
        .listeners
        .iter()
        .filter(|l| *l.endpoint == *ep(8080))
        .map(|l| (l.backlog, l.gone))
        .collect();
    assert_eq!(mine, vec![(511, false), (128, true)]);
    let h = w.engine.listener(&new).unwrap();
    assert_eq!(h.drops_per_s, None, "first sighting of the new socket");
    assert_eq!(h.points.len(), 1);
    assert!(w.engine.listener(&old).unwrap().gone);
}

// ---------------------------------------------------------------------------------------------
// Peaks

#[test]
fn burst_between_ticks_shows_as_depth_high_and_accept_queue_full() {
    let mut w = World::new();
    let k = w.add(listener(8080, 1, 0, 4, Some(0)));
    let t = w.tick_at(0);
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
    // The fast sampler saw 5/4 between the ticks; the tick itself reads 0.
    w.range(8080, 5, 0);
    w.l(8080).drops = Some(3);
    let t = w.tick_at(1000);
    let l = lt(&t, 8080);
    assert_eq!(
        (l.depth, l.backlog, l.depth_high, l.depth_low),
        (0, 4, 5, 0)
    );
    assert_eq!(l.undrained_s, 0.0);
    assert_eq!(l.high_fill_s, 0.0);
    let f = only(&t, "accept_queue_full");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        f.evidence,
        evidence(&[
            ("depth", 0.0),
            ("backlog", 4.0),
            ("peak", 5.0),
            ("drops_per_s", 3.0),
            ("drops", 3.0)
        ])
    );
    assert!(
        f.message.contains("filled up (5/4) since the last tick"),
        "{}",
        f.message
    );
    let p = *w.engine.listener(&k).unwrap().points.last().unwrap();
    assert_eq!((p.depth, p.high), (0, 5));
    // The next tick without a burst has no active finding; the critical one is held on
    // screen, marked cleared, for a few seconds (no blinking), then goes.
    let t = w.tick_at(2000);
    assert_eq!(lt(&t, 8080).depth_high, 0);
    assert!(rules(&t).is_empty(), "{:?}", rules(&t));
    assert_eq!(held(&t), vec![("accept_queue_full", 1.0)]);
    let t = w.tick_at(12_000);
    assert!(t.findings.is_empty(), "{:?}", t.findings);
}

#[test]
fn peak_below_full_is_no_finding() {
    let mut w = World::new();
    w.add(listener(8080, 1, 0, 4, Some(0)));
    w.tick_at(0);
    w.range(8080, 4, 0); // 4/4 is not full: the queue holds backlog+1
    let t = w.tick_at(1000);
    assert_eq!(lt(&t, 8080).depth_high, 4);
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
}

// ---------------------------------------------------------------------------------------------
// Rules, one by one

#[test]
fn accept_queue_full_now() {
    let mut w = World::new();
    w.add(listener(8080, 1, 5, 4, Some(0)));
    let t = w.tick_at(0);
    let f = only(&t, "accept_queue_full");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        f.evidence,
        evidence(&[("depth", 5.0), ("backlog", 4.0), ("peak", 5.0)])
    );
    assert!(f.message.contains("is full (5/4)"), "{}", f.message);
    assert_eq!(t.findings[0].rule, "accept_queue_full", "most severe first");
}

#[test]
fn accept_queue_full_silent_at_exactly_the_backlog() {
    let mut w = World::new();
    w.add(listener(8080, 1, 4, 4, Some(0)));
    let t = w.tick_at(0);
    assert!(!has(&t, "accept_queue_full"), "{:?}", rules(&t));
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
}

#[test]
fn accept_queue_high_after_3_s_not_before() {
    let mut w = World::new();
    w.add(listener(8080, 1, 4, 5, Some(0))); // 80 %
    for s in 0..3 {
        let t = w.tick_at(s * 1000);
        assert_eq!(lt(&t, 8080).high_fill_s, s as f64);
        assert!(t.findings.is_empty(), "at {s} s: {:?}", rules(&t));
    }
    let t = w.tick_at(3000);
    assert_eq!(lt(&t, 8080).high_fill_s, 3.0);
    let f = only(&t, "accept_queue_high");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        f.evidence,
        evidence(&[
            ("depth", 4.0),
            ("backlog", 5.0),
            ("peak", 4.0),
            ("drops_per_s", 0.0),
            ("seconds", 3.0)
        ])
    );
    assert_eq!(
        rules(&t),
        vec![("accept_queue_high", Some("127.0.0.1:8080"))]
    );
    // One tick below 80 % resets the clock.
    w.l(8080).accept_queue = 3;
    let t = w.tick_at(4000);
    assert_eq!(lt(&t, 8080).high_fill_s, 0.0);
    assert!(!has(&t, "accept_queue_high"));
}

#[test]
fn accept_queue_high_silent_below_80_percent() {
    let mut w = World::new();
    w.add(listener(8080, 1, 79, 100, Some(0)));
    for s in 0..5 {
        let t = w.tick_at(s * 1000);
        assert_eq!(lt(&t, 8080).high_fill_s, 0.0);
        assert!(t.findings.is_empty(), "at {s} s: {:?}", rules(&t));
    }
}

#[test]
fn not_accepting_after_5_s_undrained() {
    let mut w = World::new();
    w.add(listener(8080, 1, 1, 100, Some(0)));
    for s in 0..5 {
        w.range(8080, 2, 1);
        let t = w.tick_at(s * 1000);
        assert_eq!(lt(&t, 8080).undrained_s, s as f64);
        assert!(t.findings.is_empty(), "at {s} s: {:?}", rules(&t));
    }
    w.range(8080, 2, 1);
    let t = w.tick_at(5000);
    let f = only(&t, "not_accepting");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(f.evidence, evidence(&[("depth", 1.0), ("seconds", 5.0)]));
    assert!(f.message.contains("for 5 s"), "{}", f.message);
    assert_eq!(rules(&t), vec![("not_accepting", Some("127.0.0.1:8080"))]);
}

#[test]
fn not_accepting_silent_when_the_fast_sampler_saw_the_queue_drain() {
    let mut w = World::new();
    w.add(listener(8080, 1, 1, 100, Some(0)));
    for s in 0..8 {
        // The queue is non-empty at every tick, but it drained between ticks 3 and 4.
        w.range(8080, 3, if s == 4 { 0 } else { 1 });
        let t = w.tick_at(s * 1000);
        let expected = if s < 4 { s } else { s - 4 } as f64;
        assert_eq!(lt(&t, 8080).undrained_s, expected, "at {s} s");
        assert!(!has(&t, "not_accepting"), "at {s} s: {:?}", rules(&t));
    }
}

// ---------------------------------------------------------------------------------------------
// The processes holding a listener: stopped, busy, named with their state

/// A listener on `port` with `depth` of `backlog` waiting, held by `holders`.
fn held_by(port: u16, depth: u32, backlog: u32, holders: Vec<ProcessInfo>) -> TcpListener {
    testing::tcp_listener(port)
        .queue(depth, backlog)
        .owners(Owners::Known {
            processes: holders.into(),
        })
        .build()
}

fn in_state(pid: u32, comm: &str, state: char, cpu: Option<f64>, threads: u32) -> ProcessInfo {
    testing::process_in_state(pid, comm, state, cpu, threads)
}

#[test]
fn holders_stopped_one_stopped_holder_with_connections_waiting_is_critical() {
    let mut w = World::new();
    w.add(held_by(
        8080,
        3,
        128,
        vec![in_state(9512, "nginx", 'T', Some(0.0), 1)],
    ));
    let t = w.tick_at(0);
    let f = only(&t, "holders_stopped");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        f.message,
        "3 connections wait in the accept queue of 127.0.0.1:8080 (3/128), and nginx[9512] is \
         stopped (T): it cannot accept() them."
    );
    assert!(
        f.next
            .starts_with("SIGCONT or restart it (kill -CONT 9512)"),
        "{}",
        f.next
    );
    assert_eq!(
        f.evidence,
        evidence(&[
            ("depth", 3.0),
            ("backlog", 128.0),
            ("holders", 1.0),
            ("holders_stopped", 1.0)
        ])
    );
    assert_eq!(rules(&t), vec![("holders_stopped", Some("127.0.0.1:8080"))]);
}

#[test]
fn holders_stopped_names_every_worker_of_a_prefork_server_when_all_are_stopped() {
    let mut w = World::new();
    w.add(held_by(
        80,
        10,
        511,
        vec![
            in_state(9510, "nginx", 'T', None, 1),
            in_state(9511, "nginx", 'T', None, 1),
            in_state(9512, "nginx", 't', None, 1),
        ],
    ));
    let f = only(&w.tick_at(0), "holders_stopped").clone();
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.message,
        "10 connections wait in the accept queue of 127.0.0.1:80 (10/511), and none of the 3 \
         processes holding it can accept() them: nginx[9510] is stopped (T), nginx[9511] is \
         stopped (T) and nginx[9512] is stopped by a tracer (t)."
    );
    assert!(f.next.contains("kill -CONT 9510 9511"), "{}", f.next);
    assert!(f.next.contains("A tracer holds 9512 stopped"), "{}", f.next);
    assert_eq!(f.evidence["holders_stopped"], 3.0);
    assert!(!f.evidence.contains_key("holders_blocked"));
}

#[test]
fn holders_stopped_in_uninterruptible_sleep_is_a_warning_until_connections_are_lost() {
    let mut w = World::new();
    w.add(held_by(
        8080,
        2,
        4,
        vec![
            in_state(300, "app", 'D', Some(1.0), 1),
            in_state(301, "app", 'T', Some(0.0), 1),
        ],
    ));
    let f = only(&w.tick_at(0), "holders_stopped").clone();
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.message
            .ends_with("app[300] is in uninterruptible sleep (D) and app[301] is stopped (T)."),
        "{}",
        f.message
    );
    assert!(f.next.contains("cat /proc/PID/stack"), "{}", f.next);
    assert_eq!(
        (f.evidence["holders_stopped"], f.evidence["holders_blocked"]),
        (1.0, 1.0)
    );
    // The queue full: connections are lost now.
    w.l(8080).accept_queue = 5;
    let t = w.tick_at(1000);
    assert_eq!(only(&t, "holders_stopped").severity, Severity::Critical);
    assert!(has(&t, "accept_queue_full"), "{:?}", rules(&t));
}

#[test]
fn holders_stopped_silent_while_any_holder_can_accept_or_nothing_waits() {
    let cases: Vec<(&str, u32, Vec<ProcessInfo>)> = vec![
        (
            "one worker of three stopped",
            5,
            vec![
                in_state(9510, "nginx", 'S', Some(0.0), 1),
                in_state(9511, "nginx", 'T', Some(0.0), 1),
                in_state(9512, "nginx", 'S', Some(1.0), 1),
            ],
        ),
        (
            "stopped, but nothing waits",
            0,
            vec![in_state(9512, "nginx", 'T', Some(0.0), 1)],
        ),
        (
            // Only the main thread's state is known: another thread may be accepting.
            "main thread in D, other threads",
            5,
            vec![in_state(77, "java", 'D', Some(3.0), 40)],
        ),
        (
            "main thread traced, other threads",
            5,
            vec![in_state(77, "java", 't', Some(3.0), 40)],
        ),
        (
            "state unknown",
            5,
            vec![testing::process(77, "app", Some(10), Some(1024))],
        ),
        ("no holder known", 5, vec![]),
    ];
    for (what, depth, holders) in cases {
        let mut w = World::new();
        w.add(held_by(8080, depth, 128, holders));
        let t = w.tick_at(0);
        assert!(!has(&t, "holders_stopped"), "{what}: {:?}", rules(&t));
    }
}

#[test]
fn holder_busy_single_threaded_event_loop_while_connections_wait() {
    let mut w = World::new();
    w.add(held_by(
        8000,
        5,
        128,
        vec![in_state(311, "python3", 'R', Some(97.6), 1)],
    ));
    // The fast sampler saw the queue non-empty all through the tick.
    w.range(8000, 6, 4);
    let t = w.tick_at(0);
    let f = only(&t, "holder_busy");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.message,
        "python3[311] uses 98% of a core while connections wait in the accept queue of \
         127.0.0.1:8000 (5/128): its event loop is busy (one thread cannot both compute and \
         accept)."
    );
    assert!(f.next.contains("perf top -p 311"), "{}", f.next);
    assert_eq!(
        f.evidence,
        evidence(&[
            ("cpu_percent", 97.6),
            ("threads", 1.0),
            ("depth", 5.0),
            ("backlog", 128.0)
        ])
    );
    assert_eq!(rules(&t), vec![("holder_busy", Some("127.0.0.1:8000"))]);
}

#[test]
fn holder_busy_names_the_busiest_of_several_and_counts_threads() {
    let mut w = World::new();
    w.add(held_by(
        8000,
        120,
        128,
        vec![
            in_state(10, "gunicorn", 'S', Some(0.5), 1),
            in_state(11, "gunicorn", 'R', Some(93.0), 1),
            in_state(12, "gunicorn", 'R', Some(99.0), 1),
        ],
    ));
    // High fill, even though the queue drained once since the last tick.
    w.range(8000, 128, 0);
    let f = only(&w.tick_at(0), "holder_busy").clone();
    assert!(
        f.message.starts_with(
            "gunicorn[12] uses 99% of a core while connections wait in the accept queue of \
             127.0.0.1:8000 (120/128) (and 1 more of its holders uses over 90%)"
        ),
        "{}",
        f.message
    );
    // Several threads: the CPU share is the whole process's.
    let mut w = World::new();
    w.add(held_by(
        8000,
        129,
        128,
        vec![in_state(77, "java", 'R', Some(250.0), 40)],
    ));
    let t = w.tick_at(0);
    let f = only(&t, "holder_busy");
    assert_eq!(f.severity, Severity::Critical, "the queue is full");
    assert!(
        f.message
            .starts_with("java[77] uses 250% of a core across its 40 threads while"),
        "{}",
        f.message
    );
    assert!(f.next.contains("top -H -p 77"), "{}", f.next);
    assert_eq!(f.evidence["threads"], 40.0);
}

#[test]
fn holder_busy_silent_below_90_percent_unknown_or_when_the_queue_drains() {
    let busy = || vec![in_state(311, "python3", 'R', Some(99.0), 1)];
    /// (what, depth, the fast sampler's (high, low) if any, holders)
    type Case = (&'static str, u32, Option<(u32, u32)>, Vec<ProcessInfo>);
    let cases: Vec<Case> = vec![
        (
            "89%",
            5,
            None,
            vec![in_state(311, "python3", 'R', Some(89.0), 1)],
        ),
        (
            "CPU unknown (first read)",
            5,
            None,
            vec![in_state(311, "python3", 'R', None, 1)],
        ),
        ("busy, nothing waits: healthy", 0, None, busy()),
        (
            "busy, the queue drained since the last tick",
            5,
            Some((9, 0)),
            busy(),
        ),
    ];
    for (what, depth, range, holders) in cases {
        let mut w = World::new();
        w.add(held_by(8000, depth, 128, holders));
        if let Some((high, low)) = range {
            w.range(8000, high, low);
        }
        let t = w.tick_at(0);
        assert!(t.findings.is_empty(), "{what}: {:?}", rules(&t));
    }
}

#[test]
fn not_accepting_names_the_holders_with_their_state() {
    let mut w = World::new();
    w.add(held_by(
        80,
        1,
        511,
        vec![
            in_state(9511, "nginx", 'S', Some(2.0), 1),
            in_state(9510, "nginx", 'S', Some(0.0), 1),
            in_state(9512, "nginx", 'T', Some(0.0), 1),
        ],
    ));
    let mut t = w.tick_at(0);
    for s in 1..=5 {
        w.range(80, 2, 1);
        t = w.tick_at(s * 1000);
    }
    let f = only(&t, "not_accepting");
    assert_eq!(
        f.message,
        "Connections have waited in the accept queue of 127.0.0.1:80 for 5 s without it \
         draining once: its 3 holders are not calling accept(), or call it too slowly: \
         nginx[9511] sleeping (S, 2% CPU), nginx[9510] sleeping (S, 0% CPU) and nginx[9512] \
         stopped (T, 0% CPU)."
    );
    assert!(
        f.next
            .starts_with("Resume what is stopped (kill -CONT 9512)"),
        "{}",
        f.next
    );
    assert_eq!(
        f.evidence,
        evidence(&[
            ("depth", 1.0),
            ("seconds", 5.0),
            ("holders", 3.0),
            ("holders_stopped", 1.0),
            ("holder_cpu_percent_max", 2.0)
        ])
    );
    // One holder, state known: named in the sentence.
    let mut w = World::new();
    w.add(held_by(
        80,
        1,
        511,
        vec![in_state(42, "redis-server", 'S', Some(0.0), 4)],
    ));
    let mut t = w.tick_at(0);
    for s in 1..=5 {
        w.range(80, 1, 1);
        t = w.tick_at(s * 1000);
    }
    assert!(
        only(&t, "not_accepting").message.ends_with(
            "redis-server[42] sleeping (S, 0% CPU) is not calling accept(), or calls it too slowly."
        ),
        "{}",
        only(&t, "not_accepting").message
    );
}

#[test]
fn backlog_capped_by_somaxconn_info_when_calm() {
    let mut w = World::new();
    w.tunables.somaxconn = Some(128);
    w.add(listener(8080, 1, 0, 128, Some(0)));
    w.tick_at(0);
    let t = w.tick_at(1000);
    let f = only(&t, "backlog_capped_by_somaxconn");
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        f.evidence,
        evidence(&[("backlog", 128.0), ("somaxconn", 128.0)])
    );
    assert_eq!(t.findings.len(), 1, "{:?}", rules(&t));
}

#[test]
fn backlog_capped_by_somaxconn_warning_under_pressure() {
    let mut w = World::new();
    w.tunables.somaxconn = Some(128);
    w.add(listener(8080, 1, 0, 128, Some(0)));
    w.tick_at(0);
    // The listener dropped 7 connections in the last second.
    w.l(8080).drops = Some(7);
    let t = w.tick_at(1000);
    let f = only(&t, "backlog_capped_by_somaxconn");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.evidence,
        evidence(&[("backlog", 128.0), ("somaxconn", 128.0)])
    );
    // High fill alone is pressure too.
    let mut w = World::new();
    w.tunables.somaxconn = Some(128);
    w.add(listener(8080, 1, 110, 128, Some(0)));
    w.tick_at(0);
    let t = w.tick_at(1000);
    assert_eq!(lt(&t, 8080).high_fill_s, 1.0);
    assert_eq!(
        only(&t, "backlog_capped_by_somaxconn").severity,
        Severity::Warning
    );
}

#[test]
fn backlog_capped_by_somaxconn_silent_below_it() {
    let mut w = World::new();
    w.tunables.somaxconn = Some(128);
    w.add(listener(8080, 1, 0, 127, Some(0)));
    w.add(listener(8081, 2, 0, 64, Some(0)));
    let t = w.tick_at(0);
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
    // Unknown somaxconn: nothing to compare with, nothing said.
    let mut w = World::new();
    w.tunables.somaxconn = None;
    w.add(listener(8080, 1, 0, 4096, Some(0)));
    let t = w.tick_at(0);
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
}

fn owned(mut l: TcpListener, pid: u32, open: Option<u64>, limit: Option<u64>) -> TcpListener {
    l.owners = Owners::Known {
        processes: vec![ProcessInfo {
            pid,
            comm: "server".into(),
            fds_open: open,
            fd_limit: limit,
            age_ms: 0,
            ..ProcessInfo::default()
        }]
        .into(),
    };
    l
}

#[test]
fn near_fd_limit_at_90_percent_is_a_warning() {
    let mut w = World::new();
    w.add(owned(
        listener(8080, 1, 0, 128, Some(0)),
        4242,
        Some(90),
        Some(100),
    ));
    let t = w.tick_at(0);
    let f = only(&t, "near_fd_limit");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(
        f.evidence,
        evidence(&[("fds_open", 90.0), ("fd_limit", 100.0), ("depth", 0.0)])
    );
    assert!(
        f.message.contains("server[4242]") && f.message.contains("90 of 100"),
        "{}",
        f.message
    );
    assert!(f.next.contains("/proc/4242/fd"), "{}", f.next);
    assert_eq!(t.findings.len(), 1, "{:?}", rules(&t));
}

#[test]
fn near_fd_limit_at_the_limit_is_critical() {
    let mut w = World::new();
    w.add(owned(
        listener(8080, 1, 0, 128, Some(0)),
        4242,
        Some(100),
        Some(100),
    ));
    let t = w.tick_at(0);
    let f = only(&t, "near_fd_limit");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.evidence,
        evidence(&[("fds_open", 100.0), ("fd_limit", 100.0), ("depth", 0.0)])
    );
    // At 90 % with connections already waiting: critical too.
    let mut w = World::new();
    w.add(owned(
        listener(8080, 1, 3, 128, Some(0)),
        4242,
        Some(95),
        Some(100),
    ));
    let f = only(&w.tick_at(0), "near_fd_limit").clone();
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.evidence,
        evidence(&[("fds_open", 95.0), ("fd_limit", 100.0), ("depth", 3.0)])
    );
}

#[test]
fn near_fd_limit_once_per_process_even_with_several_listeners() {
    let mut w = World::new();
    w.add(owned(
        listener(8081, 2, 0, 128, Some(0)),
        4242,
        Some(64),
        Some(64),
    ));
    w.add(owned(
        listener(8080, 1, 0, 128, Some(0)),
        4242,
        Some(64),
        Some(64),
    ));
    let t = w.tick_at(0);
    assert_eq!(
        rules(&t),
        vec![("near_fd_limit", Some("127.0.0.1:8080"))],
        "one finding for pid 4242, on its first listener"
    );
}

#[test]
fn near_fd_limit_silent_below_90_percent_or_when_unknown() {
    for (open, limit) in [
        (Some(89), Some(100)),
        (None, Some(100)),
        (Some(100), None),
        (Some(5), Some(0)),
    ] {
        let mut w = World::new();
        w.add(owned(listener(8080, 1, 0, 128, Some(0)), 4242, open, limit));
        let t = w.tick_at(0);
        assert!(t.findings.is_empty(), "{open:?}/{limit:?}: {:?}", rules(&t));
    }
}

#[test]
fn syn_cookies_when_cookies_are_sent() {
    let mut w = World::new();
    w.add(listener(80, 1, 0, 64, Some(0)));
    w.tick_at(0);
    w.bump("SyncookiesSent", 100);
    w.bump("TCPReqQFullDoCookies", 100);
    w.bump("SyncookiesRecv", 2);
    let t = w.tick_at(1000);
    let f = only(&t, "syn_cookies");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.listener, None);
    assert_eq!(
        f.evidence,
        evidence(&[
            ("SyncookiesSent_per_s", 100.0),
            ("TCPReqQFullDoCookies_per_s", 100.0),
            ("SyncookiesRecv_per_s", 2.0)
        ])
    );
    assert!(f.message.contains("100.0 SYNs/s"), "{}", f.message);
    assert_eq!(rules(&t), vec![("syn_cookies", None)]);
}

#[test]
fn syn_cookies_silent_when_no_cookie_is_sent() {
    let mut w = World::new();
    w.set("SyncookiesSent", 5000);
    w.set("TCPReqQFullDoCookies", 5000);
    w.tick_at(0);
    // Old cookies (cumulative) are history, not news; received cookies alone are no flood.
    w.bump("SyncookiesRecv", 3);
    let t = w.tick_at(1000);
    assert_eq!(rate(&t, "SyncookiesSent"), Some(0.0));
    assert!(t.findings.is_empty(), "{:?}", rules(&t));
    // First tick: no rate, no finding, whatever the totals.
    let mut w = World::new();
    w.set("SyncookiesSent", 1_000_000);
    assert!(w.tick_at(0).findings.is_empty());
}

#[test]
fn syn_drops_when_the_syn_queue_drops() {
    let mut w = World::new();
    w.tunables.tcp_syncookies = Some(0);
    w.tick_at(0);
    w.bump("TCPReqQFullDrop", 35);
    w.bump("ListenDrops", 35);
    let t = w.tick_at(1000);
    let f = only(&t, "syn_drops");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.listener, None);
    assert_eq!(f.evidence, evidence(&[("TCPReqQFullDrop_per_s", 35.0)]));
    assert!(
        f.message.contains("35.0 SYNs/s") && f.message.contains("tcp_syncookies=0"),
        "{}",
        f.message
    );
    assert_eq!(rules(&t), vec![("syn_drops", None)]);
}

#[test]
fn syn_drops_silent_when_tcp_req_q_full_drop_is_flat() {
    let mut w = World::new();
    w.tunables.tcp_syncookies = Some(0);
    w.set("TCPReqQFullDrop", 777);
    w.tick_at(0);
    w.bump("ListenDrops", 4); // other listen drops are not SYN-queue drops
    let t = w.tick_at(1000);
    assert!(!has(&t, "syn_drops"), "{:?}", rules(&t));
    // Never "all quiet" while ListenDrops moves: the drops that are not SYN-queue-full drops
    // have a finding of their own.
    assert_eq!(rules(&t), vec![("listen_drops_other", None)]);
}

#[test]
fn syn_queue_without_cookies_warning_then_critical() {
    let mut w = World::new();
    w.tunables.tcp_syncookies = Some(0);
    let mut l = listener(80, 1, 0, 64, Some(0));
    l.syn_recv = 33; // more than half of 64
    w.add(l);
    let t = w.tick_at(0);
    let f = only(&t, "syn_queue_without_cookies");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:80"));
    assert_eq!(
        f.evidence,
        evidence(&[("syn_recv", 33.0), ("backlog", 64.0)])
    );
    assert_eq!(t.findings.len(), 1, "{:?}", rules(&t));

    w.l(80).syn_recv = 65; // the SYN queue is full: min(backlog, somaxconn) + 1
    let t = w.tick_at(1000);
    let f = only(&t, "syn_queue_without_cookies");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.evidence,
        evidence(&[("syn_recv", 65.0), ("backlog", 64.0)])
    );
    assert!(
        f.message.contains("65 half-open") && f.message.contains("tcp_syncookies=0"),
        "{}",
        f.message
    );
}

#[test]
fn syn_queue_without_cookies_silent_with_cookies_on_or_at_half() {
    for (cookies, syn_recv) in [(Some(1), 65), (Some(2), 65), (None, 65), (Some(0), 32)] {
        let mut w = World::new();
        w.tunables.tcp_syncookies = cookies;
        let mut l = listener(80, 1, 0, 64, Some(0));
        l.syn_recv = syn_recv;
        w.add(l);
        let t = w.tick_at(0);
        assert!(
            t.findings.is_empty(),
            "syncookies {cookies:?}, {syn_recv} SYN-RECV: {:?}",
            rules(&t)
        );
    }
}

/// The second tick of a listener that overflows 3/s, with tcp_abort_on_overflow = `abort`.
fn overflowing(abort: Option<i64>) -> Tick {
    let mut w = World::new();
    w.tunables.tcp_abort_on_overflow = abort;
    w.add(listener(8080, 1, 3, 2, Some(10)));
    w.tick_at(0);
    w.bump("ListenOverflows", 3);
    w.bump("ListenDrops", 3);
    w.l(8080).drops = Some(13);
    w.tick_at(1000)
}

#[test]
fn listen_overflows_with_abort_on_overflow_0_says_silently() {
    let t = overflowing(Some(0));
    let f = only(&t, "listen_overflows");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.listener, None);
    assert_eq!(
        f.evidence,
        evidence(&[
            ("ListenOverflows_per_s", 3.0),
            ("ListenDrops_per_s", 3.0),
            ("tcp_abort_on_overflow", 0.0)
        ])
    );
    assert!(
        f.message
            .starts_with("3.0 connection attempts/s meet a full accept queue (on 127.0.0.1:8080)"),
        "{}",
        f.message
    );
    assert!(f.message.contains("silently"), "{}", f.message);
    assert!(!f.message.contains("reset"), "{}", f.message);
    assert_eq!(
        rules(&t),
        vec![
            ("accept_queue_full", Some("127.0.0.1:8080")),
            ("listen_overflows", None)
        ]
    );
}

#[test]
fn listen_overflows_with_abort_on_overflow_1_says_reset() {
    let t = overflowing(Some(1));
    let f = only(&t, "listen_overflows");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.evidence,
        evidence(&[
            ("ListenOverflows_per_s", 3.0),
            ("ListenDrops_per_s", 3.0),
            ("tcp_abort_on_overflow", 1.0)
        ])
    );
    assert!(
        f.message.contains("reset") && f.message.contains("ECONNRESET"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("silently"), "{}", f.message);
    let silent = only(&overflowing(Some(0)), "listen_overflows")
        .message
        .clone();
    assert_ne!(f.message, silent);
}

#[test]
fn listen_overflows_with_abort_on_overflow_unknown_says_so() {
    let t = overflowing(None);
    let f = only(&t, "listen_overflows");
    assert_eq!(
        f.evidence,
        evidence(&[("ListenOverflows_per_s", 3.0), ("ListenDrops_per_s", 3.0)])
    );
    assert!(f.message.contains("cannot be told"), "{}", f.message);
}

#[test]
fn listen_overflows_silent_when_only_listen_drops_move() {
    let mut w = World::new();
    w.set("ListenOverflows", 50);
    w.tick_at(0);
    w.bump("ListenDrops", 9);
    let t = w.tick_at(1000);
    assert_eq!(rate(&t, "ListenOverflows"), Some(0.0));
    assert!(!has(&t, "listen_overflows"), "{:?}", rules(&t));
    // ListenDrops − ListenOverflows is its own signal (drops that are not overflows).
    assert_eq!(rules(&t), vec![("listen_drops_other", None)]);
    let f = only(&t, "listen_drops_other");
    assert!(f.message.contains("9.0 SYNs/s"), "{}", f.message);
}

#[test]
fn healthy_ticks_have_no_findings_at_all() {
    let mut w = World::new();
    w.add(owned(
        listener(8080, 1, 0, 511, Some(12)),
        100,
        Some(40),
        Some(1024),
    ));
    w.add(owned(
        listener(8443, 2, 0, 1024, Some(0)),
        101,
        Some(900),
        Some(65536),
    ));
    w.set("ListenOverflows", 12);
    w.set("ListenDrops", 15);
    w.set("SyncookiesSent", 40);
    w.set("TCPReqQFullDrop", 3);
    for s in 0..10u64 {
        w.l(8080).accept_queue = (s % 3) as u32;
        w.l(8080).syn_recv = s;
        w.range(8080, 5, 0);
        let t = w.tick_at(s * 1000);
        assert!(t.findings.is_empty(), "at {s} s: {:#?}", t.findings);
        assert!(t.dropping_listeners.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Dropping listeners

#[test]
fn dropping_listeners_names_exactly_those_whose_drop_counters_moved() {
    let mut w = World::new();
    w.add(listener(9000, 1, 3, 2, Some(100)));
    w.add(listener(8080, 2, 5, 4, Some(0)));
    w.add(listener(7000, 3, 0, 128, Some(55)));
    w.set("ListenOverflows", 1000);
    w.set("ListenDrops", 1000);
    w.tick_at(0);
    w.l(9000).drops = Some(105);
    w.l(8080).drops = Some(2);
    w.bump("ListenOverflows", 7);
    w.bump("ListenDrops", 7);
    let t = w.tick_at(1000);
    assert_eq!(
        t.dropping_listeners,
        vec!["127.0.0.1:8080".to_string(), "127.0.0.1:9000".to_string()]
    );
    let f = only(&t, "listen_overflows");
    assert!(
        f.message.contains("(on 127.0.0.1:8080, 127.0.0.1:9000)"),
        "{}",
        f.message
    );
    assert_eq!(lt(&t, 9000).drops_per_s, Some(5.0));
    assert_eq!(lt(&t, 8080).drops_per_s, Some(2.0));
    assert_eq!(lt(&t, 7000).drops_per_s, Some(0.0));

    // Next tick only 7000 drops.
    w.l(7000).drops = Some(56);
    w.bump("ListenOverflows", 1);
    let t = w.tick_at(2000);
    assert_eq!(t.dropping_listeners, vec!["127.0.0.1:7000".to_string()]);
}

#[test]
fn dropping_listeners_empty_when_the_namespace_counters_did_not_move() {
    let mut w = World::new();
    w.add(listener(8080, 1, 0, 128, Some(0)));
    w.tick_at(0);
    w.l(8080).drops = Some(4); // e.g. the counter moved for another reason
    let t = w.tick_at(1000);
    assert_eq!(lt(&t, 8080).drops_per_s, Some(4.0));
    assert!(
        t.dropping_listeners.is_empty(),
        "{:?}",
        t.dropping_listeners
    );
}

// ---------------------------------------------------------------------------------------------
// Memory bound

/// 1,000,000 ticks under `cargo test --release`. An unoptimized build spends ~13 µs of CPU
/// per tick in `Engine::ingest` (a third of it in `diagnose::evaluate`, which builds the
/// evidence map of every listener on every tick), so 1M ticks take ~13 s of CPU there; the
/// debug build runs 500,000 (~6–7 s) to stay under 10 s.
const MEMORY_TICKS: u64 = if cfg!(debug_assertions) {
    500_000
} else {
    1_000_000
};

#[test]
fn million_ticks_with_churn_stay_within_the_history_bound() {
    const TICKS: u64 = MEMORY_TICKS;
    const ALIVE: usize = 2;
    const CHURN_EVERY: u64 = 1000;
    let cfg = EngineConfig {
        interval: Duration::from_secs(1),
        window: Duration::from_secs(120),
        gone_retention: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let cap = cfg.capacity();
    assert_eq!(cap, 120);
    // A gone listener is kept 5 ticks; with one replaced every 1000 ticks at most one is
    // gone at a time.
    const GONE_MAX: usize = 1;
    let point_bytes = 16;
    let bound = cap * (ALIVE + GONE_MAX) * point_bytes
        + QUEUE_COUNTER_INFO.len() * cap * std::mem::size_of::<Option<f64>>();

    let mut engine = Engine::new(cfg);
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    for n in ["ListenOverflows", "ListenDrops"] {
        counters.insert(n.into(), 0);
    }
    let mut template = snapshot(
        0,
        (0..ALIVE as u64)
            .map(|i| listener(8000 + i as u16, i, 0, 128, Some(0)))
            .collect(),
        &counters,
        default_tunables(),
    );
    template.host = HostInfo {
        hostname: String::new(),
        kernel: String::new(),
    };
    template.time.wall = String::new();
    template.netns.label = String::new();

    let start = Instant::now();
    let mut next_id = ALIVE as u64;
    let mut max_bytes = 0;
    let mut max_tracked = 0;
    for i in 0..TICKS {
        template.time.monotonic_ns = T0_NS + i * 1_000_000_000;
        if i > 0 && i % CHURN_EVERY == 0 {
            let slot = ((i / CHURN_EVERY) % ALIVE as u64) as usize;
            let port = template.tcp_listeners[slot].port;
            template.tcp_listeners[slot] = listener(port, next_id, 0, 128, Some(0));
            next_id += 1;
        }
        let l0 = &mut template.tcp_listeners[0];
        l0.drops = l0.drops.map(|d| d + (i % 2));
        l0.accept_queue = (i % 5) as u32;
        if let Some(v) = template.counters.tcp_ext.get_mut("ListenDrops") {
            *v += i % 3;
        }
        let t = engine.ingest(Sample {
            snapshot: template.clone(),
            depth_ranges: Vec::new(),
            collector: CollectorStats::default(),
        });
        assert_eq!(t.seq, i + 1);
        let bytes = engine.history_bytes();
        max_bytes = max_bytes.max(bytes);
        assert!(
            bytes <= bound,
            "tick {i}: history_bytes {bytes} > bound {bound}"
        );
        let mut tracked = 0;
        for h in engine.listeners() {
            tracked += 1;
            assert!(
                h.points.len() <= cap,
                "tick {i}: ring of {}",
                h.points.len()
            );
            assert_eq!(h.points.capacity(), cap);
        }
        max_tracked = max_tracked.max(tracked);
        assert!(
            tracked <= ALIVE + GONE_MAX,
            "tick {i}: {tracked} listeners tracked"
        );
    }
    for info in QUEUE_COUNTER_INFO {
        assert_eq!(engine.counter_history(info.name).unwrap().len(), cap);
    }
    let live: Vec<_> = engine.listeners().filter(|h| !h.gone).collect();
    assert_eq!(live.len(), ALIVE);
    assert!(live.iter().all(|h| h.points.len() == cap));
    assert_eq!(max_tracked, ALIVE + GONE_MAX, "churn was exercised");
    assert_eq!(next_id, ALIVE as u64 + TICKS / CHURN_EVERY - 1);
    eprintln!(
        "{TICKS} ticks in {:.2?}; max history {max_bytes} B (bound {bound} B), max {max_tracked} listeners tracked",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Overflow evidence from the counters (issue: never miss an overflow)

#[test]
fn an_overflow_no_poll_saw_is_proven_by_the_drop_counters() {
    let mut w = World::new();
    w.add(listener(8080, 1, 0, 128, Some(0)));
    w.add(listener(9090, 2, 0, 128, Some(0)));
    w.set("ListenOverflows", 0);
    w.set("ListenDrops", 0);
    w.tick_at(0);
    // Between two polls: 8080's own drop counter and ListenOverflows rose; no poll saw the
    // queue above 0 (the fast sampler was too slow for the burst).
    w.range(8080, 0, 0);
    w.l(8080).drops = Some(1097);
    w.bump("ListenOverflows", 1043);
    w.bump("ListenDrops", 1097);
    let t = w.tick_at(1000);
    let l = lt(&t, 8080);
    assert!(l.overflowed && l.overflow_proven, "{l:?}");
    assert_eq!(
        l.depth_high, 129,
        "backlog+1: the kernel drops only when depth > backlog"
    );
    assert_eq!(l.drops_delta, Some(1097));
    let quiet = lt(&t, 9090);
    assert!(!quiet.overflowed && !quiet.overflow_proven, "{quiet:?}");
    let f = only(&t, "accept_queue_full");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.listener.as_deref(), Some("127.0.0.1:8080"));
    assert!(
        f.message.contains("overflowed between two polls"),
        "{}",
        f.message
    );
    assert!(f.message.contains("1097 drops"), "{}", f.message);
    assert_eq!(f.evidence.get("overflow_proven"), Some(&1.0));
    assert!(has(&t, "listen_overflows"));
}

#[test]
fn own_drops_without_listen_overflows_prove_no_overflow() {
    let mut w = World::new();
    w.tunables.tcp_syncookies = Some(0);
    w.add(listener(8080, 1, 0, 64, Some(0)));
    w.set("ListenOverflows", 0);
    w.set("ListenDrops", 0);
    w.tick_at(0);
    // Drops that are not overflows (tcp_max_syn_backlog with cookies off): ListenDrops only.
    w.l(8080).drops = Some(20);
    w.bump("ListenDrops", 20);
    let t = w.tick_at(1000);
    let l = lt(&t, 8080);
    assert!(!l.overflowed, "{l:?}");
    assert_eq!(l.depth_high, 0);
    assert!(!has(&t, "accept_queue_full"), "{:?}", rules(&t));
    assert_eq!(rules(&t), vec![("listen_drops_other", None)]);
}

#[test]
fn a_listener_still_at_the_old_somaxconn_under_pressure_is_named() {
    let mut w = World::new();
    w.tunables.somaxconn = Some(256);
    w.add(listener(8080, 1, 129, 128, Some(0)));
    let t = w.tick_at(0);
    assert!(has(&t, "backlog_from_old_somaxconn"), "{:?}", rules(&t));
    let f = only(&t, "backlog_from_old_somaxconn");
    assert!(f.message.contains("somaxconn is 256 now"), "{}", f.message);
    // Idle, the same listener is no news: many servers ask for exactly 128.
    let mut w = World::new();
    w.tunables.somaxconn = Some(256);
    w.add(listener(8080, 1, 0, 128, Some(0)));
    let t = w.tick_at(0);
    assert!(!has(&t, "backlog_from_old_somaxconn"), "{:?}", rules(&t));
}

#[test]
fn syn_cookies_in_mode_2_are_not_blamed_on_a_full_queue() {
    let mut w = World::new();
    w.tunables.tcp_syncookies = Some(2);
    w.set("SyncookiesSent", 0);
    w.set("TCPReqQFullDoCookies", 0);
    w.tick_at(0);
    w.bump("SyncookiesSent", 100);
    w.bump("TCPReqQFullDoCookies", 100);
    let t = w.tick_at(1000);
    let f = only(&t, "syn_cookies");
    assert!(f.message.contains("tcp_syncookies=2"), "{}", f.message);
    assert!(
        !f.message.contains("because a SYN queue is full"),
        "{}",
        f.message
    );
}

#[test]
fn resets_at_a_full_queue_with_abort_on_overflow_are_called_resets() {
    let mut w = World::new();
    w.tunables.tcp_abort_on_overflow = Some(1);
    w.add(listener(8080, 1, 5, 4, Some(0)));
    w.set("EmbryonicRsts", 0);
    w.tick_at(0);
    w.bump("EmbryonicRsts", 6);
    let t = w.tick_at(1000);
    let f = only(&t, "handshake_resets");
    assert!(f.message.contains("ECONNRESET"), "{}", f.message);
    let full = only(&t, "accept_queue_full");
    assert!(full.message.contains("resets clients"), "{}", full.message);
}

#[test]
fn a_churn_of_listeners_keeps_at_most_a_thousand_gone_ones_and_grows_history_lazily() {
    let mut w = World::new();
    // 50 new listeners per tick, each gone the tick after: 60 s retention would keep 3,000.
    for tick in 0..60u64 {
        w.listeners.clear();
        for i in 0..50u64 {
            let id = tick * 50 + i;
            w.add(listener((1000 + id % 60_000) as u16, id, 0, 128, Some(0)));
        }
        let t = w.tick_at(tick * 1000);
        assert!(
            t.listeners.len() <= 100,
            "tick {tick}: {}",
            t.listeners.len()
        );
    }
    let kept = w.engine.listeners().filter(|h| h.gone).count();
    assert_eq!(
        kept, 1000,
        "the oldest gone listeners are dropped beyond 1,000"
    );
    // A listener seen for one tick holds the points of its retention (gaps once gone), not
    // the 15-minute window reserved up front (900 points × 16 bytes = 14,400 bytes).
    let per = w.engine.history_bytes() / w.engine.listeners().count();
    assert!(
        per < 1024,
        "{per} bytes of history per short-lived listener"
    );
}

#[test]
fn an_overflow_counted_between_the_two_reads_is_proven_on_the_next_tick() {
    // The listener's drops are read just before ListenOverflows: an overflow in between shows
    // in ListenOverflows this tick and in the listener's drops the next (seen live with
    // isolated single overflows).
    let mut w = World::new();
    w.add(listener(8080, 1, 0, 128, Some(24)));
    w.set("ListenOverflows", 24);
    w.set("ListenDrops", 24);
    w.tick_at(0);
    w.bump("ListenOverflows", 1);
    w.bump("ListenDrops", 1);
    let t = w.tick_at(1000);
    assert!(
        !lt(&t, 8080).overflowed,
        "not yet explained: {:?}",
        lt(&t, 8080)
    );
    assert!(has(&t, "listen_overflows"));
    w.l(8080).drops = Some(25);
    let t = w.tick_at(2000);
    let l = lt(&t, 8080);
    assert!(l.overflowed && l.overflow_proven, "{l:?}");
    assert!(has(&t, "accept_queue_full"), "{:?}", rules(&t));
    // Only once: the tick after, with nothing new, proves nothing.
    let t = w.tick_at(3000);
    assert!(!lt(&t, 8080).overflowed);
}

#[test]
fn stopped_holders_replace_not_accepting_and_come_before_the_full_queue() {
    let mut w = World::new();
    w.add(held_by(
        8080,
        129,
        128,
        vec![in_state(9512, "nginx", 'T', Some(0.0), 1)],
    ));
    for ms in (0..=8000).step_by(1000) {
        w.tick_at(ms);
    }
    let t = w.tick_at(9000);
    // The queue is full and has not drained for 9 s; the cause is the stopped holder.
    let got = rules(&t);
    assert!(
        !got.iter()
            .any(|(r, _)| *r == "not_accepting" || *r == "accept_queue_high"),
        "{got:?}"
    );
    assert_eq!(got[0].0, "holders_stopped", "the cause first: {got:?}");
    assert!(
        got.iter().any(|(r, _)| *r == "accept_queue_full"),
        "{got:?}"
    );
}
