//! The engine: turns a stream of [`Sample`]s into history, rates, peaks and findings — the
//! [`Tick`] that every live view (stream, dashboard, exporter) renders. Pure: no I/O.
//!
//! `gaps` counts missed ticks, `rates` turns counters into rates, `listeners` keeps each
//! listener's history and timers; [`Engine::ingest`] assembles the tick and asks the rules.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::history::{ListenerPoint, RunRing, ServicePoint};
use crate::model::meta::QUEUE_COUNTER_INFO;
use crate::model::{
    DepthRange, FastMap, Filter, ListenerKey, ListenerTick, Sample, SampleEvent, TcpListener, Tick,
    TICK_SCHEMA_VERSION,
};
use crate::rules;

pub mod drive;
mod gaps;
mod hold;
mod listeners;
mod order;
mod rates;
pub mod service;
pub mod source;

pub use drive::{drive, Flow, Sink};
pub use source::{NamespacesSource, NsEvent, Source, SourceEnded, Waker};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Display interval the samples are expected at (for gap detection and ring sizes).
    pub interval: Duration,
    /// History window (default 15 minutes).
    pub window: Duration,
    /// How long a listener that disappeared stays visible, marked gone.
    pub gone_retention: Duration,
    /// Which listeners to follow (--port, --process): applied to every sample as it comes in,
    /// so every view sees the same listeners, gone ones included.
    pub filter: Filter,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            window: Duration::from_secs(15 * 60),
            gone_retention: Duration::from_secs(60),
            filter: Filter::default(),
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
    /// `address:port` as ss prints it (formatted once, when first seen).
    pub endpoint: std::sync::Arc<str>,
    /// The latest reading of the socket.
    pub listener: TcpListener,
    /// One point per tick since first seen (gaps included), newest last.
    pub points: RunRing<ListenerPoint>,
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
    /// The engine's update that last saw it (a sample's time may repeat; this never does).
    stamp: u64,
    /// The listener was not in the latest sample.
    pub gone: bool,
    /// It went away in the latest sample (the tick carries it once, marked gone).
    pub newly_gone: bool,
    /// Its service dumps over the last minute, and the rates they give.
    pub service: service::ServiceTrack,
    /// One point per tick of its children (in service, unread, CLOSE-WAIT), aligned with
    /// `points` from the first tick it had service numbers; `None` before that, so a listener
    /// never dumped costs nothing.
    pub service_points: Option<RunRing<ServicePoint>>,
}

/// Listeners of the latest sample that the filter (`--port`, `--process`) left out: what a view
/// needs to say "2 of 7".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// TCP listeners left out.
    pub tcp: usize,
    /// UNIX listeners left out.
    pub unix: usize,
}

/// History, rates and findings over a stream of samples.
#[derive(Debug, Clone)]
pub struct Engine {
    cfg: EngineConfig,
    cap: usize,
    seq: u64,
    listeners: FastMap<ListenerKey, Box<ListenerHistory>>,
    counter_history: BTreeMap<&'static str, RunRing<Option<f64>>>,
    /// The latest tick; its snapshot is the previous sample when the next one arrives.
    latest: Option<Tick>,
    /// Critical findings held on screen a little after they cleared.
    held: hold::Held,
    /// ListenOverflows rose in the latest tick but no listener's drop counter did (yet).
    unexplained_overflow: bool,
    /// Gaps already recorded (failed samples) since the previous ingested sample.
    gaps_since_prev: u64,
    /// Arrivals seen by cookie against Tcp PassiveOpens.
    arrivals: service::Arrivals,
    /// Listeners of the latest sample the filter left out.
    left_out: LeftOut,
    /// The last tick's listener order.
    tick_order: order::TickOrder,
    /// Updates of the listener histories so far (their stamp).
    updates: u64,
}

impl Engine {
    /// A new engine.
    pub fn new(cfg: EngineConfig) -> Self {
        let cap = cfg.capacity();
        let counter_history = QUEUE_COUNTER_INFO
            .iter()
            .map(|c| (c.name, RunRing::new(cap)))
            .collect();
        Self {
            cfg,
            cap,
            seq: 0,
            listeners: FastMap::default(),
            counter_history,
            latest: None,
            held: hold::Held::default(),
            unexplained_overflow: false,
            gaps_since_prev: 0,
            arrivals: service::Arrivals::default(),
            left_out: LeftOut::default(),
            tick_order: order::TickOrder::default(),
            updates: 0,
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

    /// Listeners of the latest sample that the filter (`--port`, `--process`) left out.
    pub fn left_out(&self) -> LeftOut {
        self.left_out
    }

    /// History of one listener.
    pub fn listener(&self, key: &ListenerKey) -> Option<&ListenerHistory> {
        self.listeners.get(key).map(Box::as_ref)
    }

    /// Listeners that went away before the latest tick and are still kept, with their last
    /// numbers (the latest tick carries only those that went away in it).
    pub fn gone_listeners(&self) -> Vec<ListenerTick> {
        listeners::gone_ticks(&self.listeners)
    }

    /// All listener histories (current and recently gone).
    pub fn listeners(&self) -> impl Iterator<Item = &ListenerHistory> {
        self.listeners.values().map(Box::as_ref)
    }

    /// Rate history of a queue counter (one entry per tick; `None` for gaps and unknowns).
    pub fn counter_history(&self, name: &str) -> Option<&RunRing<Option<f64>>> {
        self.counter_history.get(name)
    }

    /// Heap bytes held by the history (rings only; bounded by window × listeners).
    pub fn history_bytes(&self) -> usize {
        self.listeners
            .values()
            .map(|h| {
                h.points.heap_bytes() + h.service_points.as_ref().map_or(0, RunRing::heap_bytes)
            })
            .sum::<usize>()
            + self
                .counter_history
                .values()
                .map(RunRing::heap_bytes)
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
            if let Some(r) = h.service_points.as_mut() {
                r.push(ServicePoint::gap());
            }
        }
        for r in self.counter_history.values_mut() {
            r.push(None);
        }
    }

    /// Feeds one event from a source: a sample becomes a tick (returned), a failed sample a
    /// gap, a reset empties the history. The one step every command and the dashboard use.
    pub fn apply(&mut self, event: SampleEvent) -> Option<&Tick> {
        match event {
            SampleEvent::Sample(s) => Some(self.ingest(*s)),
            SampleEvent::Gap(_) => {
                self.record_gap();
                None
            }
            SampleEvent::Reset => {
                self.reset();
                None
            }
        }
    }

    /// Forgets everything (a replay seeking backwards), keeping the settings.
    pub fn reset(&mut self) {
        *self = Engine::new(self.cfg.clone());
    }

    /// Takes one sample in; returns the tick derived from it.
    pub fn ingest(&mut self, sample: Sample) -> &Tick {
        let Sample {
            mut snapshot,
            depth_ranges,
            collector,
        } = sample;
        let unix = |s: &crate::model::Snapshot| s.unix_listeners.as_ref().map_or(0, Vec::len);
        let before = (snapshot.tcp_listeners.len(), unix(&snapshot));
        self.cfg.filter.apply(&mut snapshot);
        self.left_out = LeftOut {
            tcp: before.0 - snapshot.tcp_listeners.len(),
            unix: before.1 - unix(&snapshot),
        };
        let now_ns = snapshot.time.monotonic_ns;
        // The previous tick holds the previous sample: no copy of it is kept.
        let prev = self.latest.take();
        let prev_snap = prev.as_ref().map(|t| &t.snapshot);
        let dt = prev_snap.map(|p| now_ns.saturating_sub(p.time.monotonic_ns) as f64 / 1e9);
        let gap_before = self.account_missed(dt);

        let counter_rates =
            rates::counter_rates(prev_snap.map(|p| &p.counters), &snapshot.counters, dt);
        for (name, ring) in self.counter_history.iter_mut() {
            ring.push(counter_rates.get(*name).copied().flatten());
        }
        drop(prev);

        let service_dump_ns = snapshot.service.as_ref().map(|s| s.dumped_monotonic_ns);
        // ListenOverflows is read just after the listeners' drop counters: an overflow
        // between the two reads shows in the counter now and in a listener's drops next
        // tick. One that no listener's drops explained is carried over to the next tick.
        let overflows_now = rates::moved(&counter_rates, "ListenOverflows");
        let overflows_moved = overflows_now || std::mem::take(&mut self.unexplained_overflow);
        self.updates += 1;
        let pass = listeners::update(
            &mut self.listeners,
            &mut self.tick_order,
            listeners::Update {
                listeners: &snapshot.tcp_listeners,
                ranges: depth_ranges,
                dt,
                now_ns,
                cap: self.cap,
                retention_ns: u64::try_from(self.cfg.gone_retention.as_nanos()).unwrap_or(u64::MAX),
                service_dump_ns,
                stamp: self.updates,
                overflows_moved,
                want_dropping: rates::overflow_moved(&counter_rates),
            },
        );
        self.unexplained_overflow = overflows_now && !pass.any_dropping;
        let listener_ticks = pass.ticks;
        let dropping_listeners = pass.dropping;
        self.arrivals
            .see(service_dump_ns, &snapshot.counters, &listener_ticks);
        let mut tick = Tick {
            schema_version: TICK_SCHEMA_VERSION,
            seq: self.seq,
            interval_s: dt,
            gap_before,
            snapshot,
            listeners: listener_ticks,
            gone_listeners: pass.gone,
            counter_rates,
            dropping_listeners,
            arrivals: self.arrivals.check.clone(),
            findings: Vec::new(),
            collector,
        };
        tick.findings = rules::evaluate(&tick);
        let listeners = &self.listeners;
        self.held.apply(&mut tick.findings, now_ns, |k| {
            listeners.get(k).is_some_and(|h| !h.gone)
        });
        self.latest.insert(tick)
    }

    /// Counts the ticks missed before a sample `dt` seconds after the previous one: gaps in
    /// the history (at most a ring's worth) and in the tick number (all of them). True when
    /// any were missed.
    fn account_missed(&mut self, dt: Option<f64>) -> bool {
        let missed = gaps::missed_ticks(dt, self.cfg.interval.as_secs_f64());
        // Ticks already recorded as gaps (failed samples) are not counted twice.
        let missed_now = missed.saturating_sub(std::mem::take(&mut self.gaps_since_prev));
        let pushed = missed_now.min(self.cap as u64);
        for _ in 0..pushed {
            self.push_gap();
        }
        self.seq = self
            .seq
            .saturating_add(missed_now - pushed)
            .saturating_add(1);
        missed >= 1
    }
}
