//! Property tests of the engine's rates and history (docs/fuzzing.md): counter rates are never
//! negative or NaN whatever the counters do (resets, 32- and 64-bit wraps), and the engine, fed
//! any sequence of samples, failed samples and resets at any time steps (gaps, time going
//! backwards, huge jumps), never panics, keeps every ring within its capacity, numbers its ticks
//! in increasing order and holds no more history than listeners × capacity × point size.
//!
//! The case count is kept modest so `cargo test` stays fast; `PROPTEST_CASES=10000 cargo test
//! --test engine_props` runs more.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and tools may panic on failure

use std::collections::HashSet;
use std::mem::size_of;
use std::time::Duration;

use proptest::prelude::*;
use sockq::engine::{Engine, EngineConfig};
use sockq::model::history::ListenerPoint;
use sockq::model::meta::QUEUE_COUNTER_INFO;
use sockq::model::rates::{counter_delta, rate, CounterWidth};
use sockq::model::{testing, DepthRange, ListenerKey, Sample, SampleError, SampleEvent, Tick};

const TWO_32: u64 = 1 << 32;

/// Counter readings that favour the edges: zero, around 2^31 and 2^32, near u64::MAX.
fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..1_000u64,
        (1u64 << 31) - 1_000..(1u64 << 31) + 1_000,
        TWO_32 - 1_000..TWO_32 + 1_000,
        u64::MAX - 1_000..=u64::MAX,
        any::<u64>(),
    ]
}

/// Intervals in seconds, the bad ones included (zero, negative, NaN, infinite, subnormal).
fn seconds() -> impl Strategy<Value = f64> {
    prop_oneof![
        1e-9..1e6f64,
        Just(0.0),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::MIN_POSITIVE),
        any::<f64>(),
    ]
}

fn width() -> impl Strategy<Value = CounterWidth> {
    prop_oneof![Just(CounterWidth::Bits32), Just(CounterWidth::Bits64)]
}

fn cases() -> ProptestConfig {
    // PROPTEST_CASES, when set, overrides the default number of cases.
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        default.cases
    } else {
        64
    };
    ProptestConfig { cases, ..default }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn counter_delta_counts_what_happened(prev in counter(), cur in counter(), w in width()) {
        match counter_delta(prev, cur, w) {
            Some(d) if cur >= prev => prop_assert_eq!(d, cur - prev),
            Some(d) => {
                // Only a 32-bit counter falling by more than half its range wraps, once.
                prop_assert_eq!(w, CounterWidth::Bits32);
                prop_assert!(prev < TWO_32 && prev - cur > TWO_32 / 2);
                prop_assert!(d <= TWO_32 / 2);
                prop_assert_eq!((prev + d) % TWO_32, cur % TWO_32);
            }
            None => prop_assert!(cur < prev, "{} -> {} has a delta", prev, cur),
        }
    }

    #[test]
    fn rate_is_never_negative_or_nan(
        prev in counter(),
        cur in counter(),
        dt in seconds(),
        w in width(),
    ) {
        match rate(prev, cur, dt, w) {
            Some(r) => {
                prop_assert!(r >= 0.0, "rate {} from {} -> {} in {}s", r, prev, cur, dt);
                prop_assert!(dt > 0.0 && dt.is_finite());
                // The engine's intervals are whole nanoseconds: any delta over one is finite.
                if dt >= 1e-9 {
                    prop_assert!(r.is_finite(), "rate {} over {}s", r, dt);
                }
            }
            None => prop_assert!(
                !(dt > 0.0 && dt.is_finite()) || counter_delta(prev, cur, w).is_none()
            ),
        }
    }

    /// A counter read again and again, with resets and wraps anywhere: each step's rate is
    /// absent or a non-negative number.
    #[test]
    fn rates_along_a_series_stay_non_negative(
        series in prop::collection::vec((counter(), 1e-9..1e4f64), 2..50),
        w in width(),
    ) {
        for pair in series.windows(2) {
            let ((prev, _), (cur, dt)) = (pair[0], pair[1]);
            if let Some(r) = rate(prev, cur, dt, w) {
                prop_assert!(r >= 0.0 && r.is_finite(), "{} -> {}: {}", prev, cur, r);
            }
        }
    }
}

/// How the clock moves between two events.
#[derive(Debug, Clone)]
enum Clock {
    /// Forward by this many ns (0 included: two samples at the same instant).
    Forward(u64),
    /// Backward by this many ns (saturating at 0).
    Backward(u64),
    /// To this absolute time.
    At(u64),
}

/// One listener in a sample: which of a few ports and socket identities, and its numbers.
#[derive(Debug, Clone)]
struct Seen {
    port: u16,
    /// A small inode number: the same port may come back as another socket.
    generation: u64,
    depth: u32,
    backlog: u32,
    drops: Option<u64>,
    range: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
enum Event {
    Sample {
        clock: Clock,
        listeners: Vec<Seen>,
        overflows: Option<u64>,
        drops: Option<u64>,
    },
    Gap,
    Reset,
}

fn clock() -> impl Strategy<Value = Clock> {
    prop_oneof![
        8 => (0..3_000_000_000u64).prop_map(Clock::Forward),
        2 => (0..u64::MAX / 4).prop_map(Clock::Forward),
        1 => Just(Clock::Forward(u64::MAX)),
        2 => (0..10_000_000_000u64).prop_map(Clock::Backward),
        1 => any::<u64>().prop_map(Clock::At),
    ]
}

fn seen() -> impl Strategy<Value = Seen> {
    (
        1..6u16,
        0..3u64,
        prop_oneof![0..10u32, any::<u32>()],
        prop_oneof![0..10u32, any::<u32>()],
        prop::option::of(counter()),
        prop::option::of((any::<u32>(), any::<u32>())),
    )
        .prop_map(|(port, generation, depth, backlog, drops, range)| Seen {
            port,
            generation,
            depth,
            backlog,
            drops,
            range,
        })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        10 => (
            clock(),
            prop::collection::vec(seen(), 0..6),
            prop::option::of(counter()),
            prop::option::of(counter()),
        )
            .prop_map(|(clock, listeners, overflows, drops)| Event::Sample {
                clock,
                listeners,
                overflows,
                drops,
            }),
        2 => Just(Event::Gap),
        1 => Just(Event::Reset),
    ]
}

fn config() -> impl Strategy<Value = EngineConfig> {
    // Windows of up to 300 intervals (and zero), so that rings fill and wrap within a case;
    // a zero interval is taken as 1 ms.
    (
        prop_oneof![
            Just(Duration::from_millis(100)),
            Just(Duration::from_secs(1)),
            Just(Duration::ZERO),
            (1..5_000u64).prop_map(Duration::from_millis),
        ],
        0..300u32,
        (0..120u64).prop_map(Duration::from_secs),
    )
        .prop_map(|(interval, ticks, gone_retention)| EngineConfig {
            interval,
            window: interval.max(Duration::from_millis(1)) * ticks,
            gone_retention,
            ..EngineConfig::default()
        })
}

fn sample(now: u64, listeners: &[Seen], overflows: Option<u64>, drops: Option<u64>) -> Sample {
    let mut ranges = Vec::new();
    let mut built = Vec::new();
    let mut keys = HashSet::new();
    for s in listeners {
        let inode = 10_000 + u64::from(s.port) * 10 + s.generation;
        // A socket is in a dump once.
        if !keys.insert(inode) {
            continue;
        }
        let l = testing::tcp_listener(20_000 + s.port)
            .identity(inode, inode)
            .queue(s.depth, s.backlog)
            .drops(s.drops)
            .build();
        if let Some((a, b)) = s.range {
            ranges.push(DepthRange {
                key: ListenerKey::from(&l),
                high: a.max(b),
                low: a.min(b),
                readings: 3,
            });
        }
        built.push(l);
    }
    let mut snapshot = testing::snapshot(built, now);
    if let Some(n) = overflows {
        snapshot
            .counters
            .tcp_ext
            .insert("ListenOverflows".into(), n);
    }
    if let Some(n) = drops {
        snapshot.counters.tcp_ext.insert("ListenDrops".into(), n);
    }
    Sample {
        snapshot,
        depth_ranges: ranges,
        collector: Default::default(),
    }
}

fn check_tick(tick: &Tick) -> Result<(), TestCaseError> {
    for (name, r) in &tick.counter_rates {
        if let Some(r) = r {
            prop_assert!(*r >= 0.0 && r.is_finite(), "{} rate {}", name, r);
        }
    }
    for l in &tick.listeners {
        if let Some(r) = l.drops_per_s {
            prop_assert!(r >= 0.0 && r.is_finite(), "{} drops/s {}", l.endpoint, r);
        }
        prop_assert!(l.high_fill_s >= 0.0 && l.high_fill_s.is_finite());
        prop_assert!(l.undrained_s >= 0.0 && l.undrained_s.is_finite());
    }
    if let Some(dt) = tick.interval_s {
        prop_assert!(dt >= 0.0 && dt.is_finite(), "interval {}", dt);
    }
    Ok(())
}

fn check_engine(engine: &Engine, cap: usize) -> Result<(), TestCaseError> {
    let mut listeners = 0;
    for h in engine.listeners() {
        listeners += 1;
        prop_assert!(h.points.len() <= cap, "{} points > {}", h.points.len(), cap);
        prop_assert_eq!(h.points.capacity(), cap);
        prop_assert!(h.high_fill_s >= 0.0 && h.undrained_s >= 0.0);
    }
    let mut rings = 0;
    for c in QUEUE_COUNTER_INFO {
        let ring = engine
            .counter_history(c.name)
            .expect("a ring per queue counter");
        rings += 1;
        prop_assert!(
            ring.len() <= cap,
            "{}: {} points > {}",
            c.name,
            ring.len(),
            cap
        );
        for r in ring.iter().flatten() {
            prop_assert!(*r >= 0.0 && r.is_finite(), "{} rate {}", c.name, r);
        }
    }
    // Run-length rings: at most one run per point, each run the value and its length.
    let bound = listeners * cap * size_of::<(ListenerPoint, u32)>()
        + rings * cap * size_of::<(Option<f64>, u32)>();
    prop_assert!(
        engine.history_bytes() <= bound,
        "{} bytes of history > {} ({} listeners, capacity {})",
        engine.history_bytes(),
        bound,
        listeners,
        cap
    );
    Ok(())
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn engine_survives_any_stream(
        cfg in config(),
        events in prop::collection::vec(event(), 1..60),
    ) {
        let cap = cfg.capacity();
        prop_assert!(cap >= 2);
        let mut engine = Engine::new(cfg);
        let mut now = 1_000_000_000u64;
        // The seq of the latest tick since the last reset.
        let mut last_seq: Option<u64> = None;
        for event in events {
            let event = match event {
                Event::Sample { clock, listeners, overflows, drops } => {
                    now = match clock {
                        Clock::Forward(d) => now.saturating_add(d),
                        Clock::Backward(d) => now.saturating_sub(d),
                        Clock::At(t) => t,
                    };
                    SampleEvent::Sample(Box::new(sample(now, &listeners, overflows, drops)))
                }
                Event::Gap => SampleEvent::Gap(SampleError { message: "failed".into() }),
                Event::Reset => {
                    last_seq = None;
                    SampleEvent::Reset
                }
            };
            if let Some(tick) = engine.apply(event) {
                if let Some(prev) = last_seq {
                    prop_assert!(tick.seq > prev, "seq {} after {}", tick.seq, prev);
                }
                last_seq = Some(tick.seq);
                check_tick(tick)?;
            }
            check_engine(&engine, cap)?;
            prop_assert_eq!(engine.config().capacity(), cap);
        }
    }
}
