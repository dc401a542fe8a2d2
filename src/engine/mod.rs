//! The engine: turns a stream of [`Sample`]s into history, rates, peaks and findings — the
//! [`Tick`] that every live view (stream, dashboard, exporter) renders. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::model::history::{ListenerPoint, Ring};
use crate::model::meta::QUEUE_COUNTER_INFO;
use crate::model::rates::{counter_delta, rate, CounterWidth};
use crate::model::{
    DepthRange, ListenerKey, ListenerTick, Sample, Snapshot, TcpListener, Tick, TICK_SCHEMA_VERSION,
};
use crate::rules;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Display interval the samples are expected at (for gap detection and ring sizes).
    pub interval: Duration,
    /// History window (default 15 minutes).
    pub window: Duration,
    /// How long a listener that disappeared stays visible, marked gone.
    pub gone_retention: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            window: Duration::from_secs(15 * 60),
            gone_retention: Duration::from_secs(60),
        }
    }
}

impl EngineConfig {
    /// Ticks the history holds.
    pub fn capacity(&self) -> usize {
        let ticks = self.window.as_secs_f64() / self.interval.as_secs_f64().max(1e-3);
        (ticks.ceil() as usize).clamp(2, 1_000_000)
    }
}

/// What the engine keeps about one listener.
#[derive(Debug, Clone)]
pub struct ListenerHistory {
    /// The latest reading of the socket.
    pub listener: TcpListener,
    /// One point per tick since first seen (gaps included), newest last.
    pub points: Ring<ListenerPoint>,
    /// Drops per second in the latest tick; `None` on the first sighting or after a reset.
    pub drops_per_s: Option<f64>,
    /// Drops counted in the latest tick.
    pub drops_delta: Option<u64>,
    /// Depth range of the latest tick (fast sampler).
    pub range: Option<DepthRange>,
    /// Seconds the fill has stayed at or above 80 % of the backlog, up to now.
    pub high_fill_s: f64,
    /// Seconds the queue has stayed non-empty without draining to 0 once, up to now.
    pub undrained_s: f64,
    /// Monotonic time (ns) the listener was last seen; set with `gone`.
    pub last_seen_ns: u64,
    /// The listener was not in the latest sample.
    pub gone: bool,
}

/// History, rates and findings over a stream of samples.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    cap: usize,
    seq: u64,
    listeners: HashMap<ListenerKey, ListenerHistory>,
    counter_history: BTreeMap<&'static str, Ring<Option<f64>>>,
    prev: Option<Snapshot>,
    latest: Option<Tick>,
    /// Gaps already recorded (failed samples) since the previous ingested sample.
    gaps_since_prev: u64,
}

impl Engine {
    /// A new engine.
    pub fn new(cfg: EngineConfig) -> Self {
        let cap = cfg.capacity();
        let counter_history = QUEUE_COUNTER_INFO
            .iter()
            .map(|c| (c.name, Ring::new(cap)))
            .collect();
        Self {
            cfg,
            cap,
            seq: 0,
            listeners: HashMap::new(),
            counter_history,
            prev: None,
            latest: None,
            gaps_since_prev: 0,
        }
    }

    /// Settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Changes the expected interval (history keeps its ring sizes).
    pub fn set_interval(&mut self, interval: Duration) {
        self.cfg.interval = interval;
    }

    /// The latest tick.
    pub fn latest(&self) -> Option<&Tick> {
        self.latest.as_ref()
    }

    /// History of one listener.
    pub fn listener(&self, key: &ListenerKey) -> Option<&ListenerHistory> {
        self.listeners.get(key)
    }

    /// All listener histories (current and recently gone).
    pub fn listeners(&self) -> impl Iterator<Item = &ListenerHistory> {
        self.listeners.values()
    }

    /// Rate history of a queue counter (one entry per tick; `None` for gaps and unknowns).
    pub fn counter_history(&self, name: &str) -> Option<&Ring<Option<f64>>> {
        self.counter_history.get(name)
    }

    /// Heap bytes held by the history (rings only; bounded by window × listeners).
    pub fn history_bytes(&self) -> usize {
        self.listeners
            .values()
            .map(|h| h.points.heap_bytes())
            .sum::<usize>()
            + self
                .counter_history
                .values()
                .map(Ring::heap_bytes)
                .sum::<usize>()
    }

    /// Records that a tick's sample is missing (a failed sample): a gap in every series.
    pub fn record_gap(&mut self) {
        self.gaps_since_prev += 1;
        self.push_gap();
    }

    fn push_gap(&mut self) {
        self.seq += 1;
        for h in self.listeners.values_mut() {
            h.points.push(ListenerPoint::gap());
        }
        for r in self.counter_history.values_mut() {
            r.push(None);
        }
    }

    /// Takes one sample in; returns the tick derived from it.
    pub fn ingest(&mut self, sample: Sample) -> &Tick {
        let Sample {
            snapshot,
            depth_ranges,
            collector,
        } = sample;
        let now_ns = snapshot.time.monotonic_ns;
        let dt = self
            .prev
            .as_ref()
            .map(|p| now_ns.saturating_sub(p.time.monotonic_ns) as f64 / 1e9);
        // More than 1.5 intervals since the previous sample: samples were missed.
        let expected = self.cfg.interval.as_secs_f64();
        let missed = dt.map_or(0, |d| ((d / expected) - 0.5).floor().max(0.0) as u64);
        // Ticks already recorded as gaps (failed samples) are not counted twice.
        let missed_now = missed.saturating_sub(std::mem::take(&mut self.gaps_since_prev));
        let gap_before = missed >= 1;
        // The rings only need `capacity` gaps; the tick number counts every missed tick.
        let pushed = missed_now.min(self.cap as u64);
        for _ in 0..pushed {
            self.push_gap();
        }
        self.seq += missed_now - pushed;
        self.seq += 1;

        // Counter rates.
        let mut counter_rates = BTreeMap::new();
        for (name, &cur) in &snapshot.counters.tcp_ext {
            let r = match (&self.prev, dt) {
                (Some(p), Some(dt)) => p
                    .counters
                    .tcp_ext(name)
                    .and_then(|prev| rate(prev, cur, dt, CounterWidth::Bits64)),
                _ => None,
            };
            counter_rates.insert(name.clone(), r);
        }
        for (name, ring) in self.counter_history.iter_mut() {
            ring.push(counter_rates.get(*name).copied().flatten());
        }

        // Listeners.
        let ranges: HashMap<ListenerKey, DepthRange> =
            depth_ranges.into_iter().map(|r| (r.key, r)).collect();
        for h in self.listeners.values_mut() {
            h.gone = true; // until seen below
        }
        for l in &snapshot.tcp_listeners {
            let key = ListenerKey::from(l);
            let range = ranges.get(&key).copied();
            let known = self.listeners.contains_key(&key);
            let cap = self.cap;
            let h = self
                .listeners
                .entry(key)
                .or_insert_with(|| ListenerHistory {
                    listener: l.clone(),
                    points: Ring::new(cap),
                    drops_per_s: None,
                    drops_delta: None,
                    range: None,
                    high_fill_s: 0.0,
                    undrained_s: 0.0,
                    last_seen_ns: now_ns,
                    gone: false,
                });
            let (delta, per_s) = match (h.listener.drops, l.drops, dt) {
                (Some(prev), Some(cur), Some(dt)) if known => {
                    let d = counter_delta(prev, cur, CounterWidth::Bits32);
                    (d, d.and_then(|d| (dt > 0.0).then(|| d as f64 / dt)))
                }
                _ => (None, None),
            };
            let step = dt.unwrap_or(0.0);
            let high_fill = l.fill().is_some_and(|f| f >= 0.8);
            h.high_fill_s = if high_fill { h.high_fill_s + step } else { 0.0 };
            let low = range.map_or(l.accept_queue, |r| r.low);
            h.undrained_s = if low > 0 && l.accept_queue > 0 {
                h.undrained_s + step
            } else {
                0.0
            };
            h.points.push(ListenerPoint {
                depth: l.accept_queue,
                high: range.map_or(l.accept_queue, |r| r.high.max(l.accept_queue)),
                syn_recv: u32::try_from(l.syn_recv).unwrap_or(u32::MAX),
                drops_per_s: per_s.map_or(f32::NAN, |r| r as f32),
            });
            h.listener = l.clone();
            h.drops_per_s = per_s;
            h.drops_delta = delta;
            h.range = range;
            h.last_seen_ns = now_ns;
            h.gone = false;
        }
        let retention_ns = u64::try_from(self.cfg.gone_retention.as_nanos()).unwrap_or(u64::MAX);
        self.listeners.retain(|_, h| {
            if h.gone {
                h.points.push(ListenerPoint::gap());
                h.drops_per_s = None;
                h.drops_delta = None;
                h.range = None;
                now_ns.saturating_sub(h.last_seen_ns) <= retention_ns
            } else {
                true
            }
        });

        let overflow_moved = ["ListenOverflows", "ListenDrops"].iter().any(|n| {
            counter_rates
                .get(*n)
                .copied()
                .flatten()
                .is_some_and(|r| r > 0.0)
        });
        let mut dropping_listeners: Vec<String> = if overflow_moved {
            self.listeners
                .values()
                .filter(|h| h.drops_delta.is_some_and(|d| d > 0))
                .map(|h| h.listener.endpoint())
                .collect()
        } else {
            Vec::new()
        };
        dropping_listeners.sort();

        let mut listeners: Vec<ListenerTick> = self
            .listeners
            .iter()
            .map(|(key, h)| {
                let depth = h.listener.accept_queue;
                ListenerTick {
                    key: *key,
                    endpoint: h.listener.endpoint(),
                    depth,
                    backlog: h.listener.backlog,
                    depth_high: h.range.map_or(depth, |r| r.high.max(depth)),
                    depth_low: h.range.map_or(depth, |r| r.low.min(depth)),
                    drops_per_s: h.drops_per_s,
                    high_fill_s: h.high_fill_s,
                    undrained_s: h.undrained_s,
                    gone: h.gone,
                }
            })
            .collect();
        listeners.sort_by(|a, b| a.gone.cmp(&b.gone).then(a.endpoint.cmp(&b.endpoint)));

        let mut tick = Tick {
            schema_version: TICK_SCHEMA_VERSION,
            seq: self.seq,
            interval_s: dt,
            gap_before,
            snapshot,
            listeners,
            counter_rates,
            dropping_listeners,
            findings: Vec::new(),
            collector,
        };
        tick.findings = rules::evaluate(&tick);
        self.prev = Some(tick.snapshot.clone());
        self.latest.insert(tick)
    }
}
