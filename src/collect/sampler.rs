//! The sampler thread: two cadences and a CPU budget.
//!
//! - a fast listener sampler (default 10 Hz) that keeps the highest and lowest accept-queue
//!   depth seen between display ticks, so a 200 ms burst between two 1 s ticks is not lost. It
//!   reads every listener while that is cheap, else only the active ones (see
//!   [`super::active`]) by exact requests: O(active) ([`poll_everything`]);
//! - a full sample (SYN-RECV, counters, tunables, owners) every display interval.
//!
//! The SYN-RECV dump walks the kernel's established hash and grows with a flood; the sampler
//! keeps its own CPU under a budget by spacing that dump and slowing the fast sampler, and says
//! so in [`CollectorStats`] rather than silently showing stale numbers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::active::ActiveSet;
use super::netns::NetnsTarget;
use super::peaks::Peaks;
use super::{thread_cpu, CollectError, Collector, CollectorOptions};
use crate::engine::{Source, SourceEnded, Waker};
use crate::model::{CollectorStats, ListenerKey, Sample, SampleError, SampleEvent};

/// Sampler settings.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Display tick: one full sample per interval.
    pub interval: Duration,
    /// Fast listener sampling interval (100 ms = 10 Hz).
    pub fast_interval: Duration,
    /// CPU budget of the sampler thread, in percent of one core.
    pub budget_percent: f64,
    /// What the collector reads.
    pub collector: CollectorOptions,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            fast_interval: Duration::from_millis(100),
            budget_percent: 2.0,
            collector: CollectorOptions::default(),
        }
    }
}

/// Commands to the sampler thread.
pub enum SamplerCommand {
    /// Change the display interval.
    SetInterval(Duration),
    /// Call this after every event sent (the dashboard wakes on it).
    SetWaker(Waker),
    /// Listeners the user selected: polled at the fast rate whether active or not (replaces
    /// the previous selection; takes effect at the next tick).
    Select(Vec<ListenerKey>),
}

impl std::fmt::Debug for SamplerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SamplerCommand::SetInterval(d) => f.debug_tuple("SetInterval").field(d).finish(),
            SamplerCommand::SetWaker(_) => f.write_str("SetWaker"),
            SamplerCommand::Select(keys) => f.debug_tuple("Select").field(keys).finish(),
        }
    }
}

/// A running sampler thread. Dropping it stops the thread.
pub struct Sampler {
    events: Receiver<SampleEvent>,
    commands: mpsc::Sender<SamplerCommand>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `target` on a new thread. Fails if the namespace cannot be entered or
    /// the collector cannot be created (reported before any sample).
    pub fn start(target: NetnsTarget, config: SamplerConfig) -> Result<Self, CollectError> {
        let (tx, rx) = mpsc::sync_channel(4);
        let (ctx, crx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), CollectError>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sockq-sampler".into())
            .spawn(move || {
                let setup = (|| -> Result<Collector, CollectError> {
                    target.enter_on_this_thread()?;
                    Collector::new(target.label(), config.collector.clone())
                })();
                let collector = match setup {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                run(collector, config, tx, crx, stop2);
            })
            .map_err(|source| CollectError::Spawn {
                what: "starting the sampler thread",
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                return Err(CollectError::Thread(
                    "the sampler thread died while starting",
                ))
            }
        }
        Ok(Self {
            events: rx,
            commands: ctx,
            stop,
            handle: Some(handle),
        })
    }

    /// Waits up to `timeout` for the next event. `Ok(None)` on timeout; an error when the
    /// thread has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<SampleEvent>, SourceEnded> {
        match self.events.recv_timeout(timeout) {
            Ok(e) => Ok(Some(e)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(SourceEnded),
        }
    }

    /// Sends a command to the thread (ignored if it has stopped).
    pub fn command(&self, c: SamplerCommand) {
        let _ = self.commands.send(c);
    }
}

impl Source for Sampler {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<SampleEvent>, SourceEnded> {
        if timeout.is_zero() {
            return match self.events.try_recv() {
                Ok(e) => Ok(Some(e)),
                Err(mpsc::TryRecvError::Empty) => Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => Err(SourceEnded),
            };
        }
        self.recv_timeout(timeout)
    }

    fn set_interval(&mut self, d: Duration) {
        self.command(SamplerCommand::SetInterval(d));
    }

    fn set_waker(&mut self, waker: Waker) {
        self.command(SamplerCommand::SetWaker(waker));
    }

    fn select(&mut self, keys: Vec<ListenerKey>) {
        self.command(SamplerCommand::Select(keys));
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            // The thread sleeps at most one fast interval (and blocks at most one netlink
            // timeout) before it sees the flag.
            let _ = h.join();
        }
    }
}

/// The least of the last [`RecentMin::LEN`] costs of a fast poll: what the budget plans with.
/// One poll's thread CPU time jumps when the machine is loaded (a virtual CPU preempted by
/// its host is charged to the thread it ran); planning with one such reading slowed the poll
/// and, through it, spaced the SYN-RECV and service dumps to a minute on a loaded small host.
/// A poll never costs less than its work, so the least of the last few is that work.
#[derive(Debug, Clone, Default)]
pub(super) struct RecentMin {
    last: [Duration; Self::LEN],
    next: usize,
}

impl RecentMin {
    /// Readings kept: 1.6 s of polls at 10 Hz.
    pub(super) const LEN: usize = 16;

    /// Records one poll's cost.
    pub(super) fn push(&mut self, d: Duration) {
        self.last[self.next] = d;
        self.next = (self.next + 1) % Self::LEN;
    }

    /// The least of the costs recorded (zero before the first).
    pub(super) fn min(&self) -> Duration {
        self.last.iter().copied().min().unwrap_or_default()
    }
}

/// Spacing of the expensive parts under the budget.
#[derive(Debug, Clone, Copy)]
pub struct BudgetPlan {
    /// Interval of the fast listener sampler.
    pub fast_interval: Duration,
    /// Minimum time between two SYN-RECV dumps (and two service dumps: both walk the
    /// established hash and are planned as one cost).
    pub syn_interval: Duration,
}

/// Longest spacing of the SYN-RECV dump.
const MAX_SYN_INTERVAL: Duration = Duration::from_secs(60);

/// Chooses the spacing of the fast sampler and the SYN-RECV dump within `budget_percent`.
/// The fast poll comes first — it is what catches a burst that fills an accept queue — so the
/// SYN-RECV dump is spaced out (up to [`MAX_SYN_INTERVAL`]) before the poll is slowed: the poll
/// may use 90 % of the budget less what the SYN-RECV dump costs at its longest spacing, and
/// the dump gets what the poll leaves. Never faster than configured; the fast poll never
/// slower than one per tick.
pub fn plan_budget(
    config_fast: Duration,
    interval: Duration,
    budget_percent: f64,
    fast_cost: Duration,
    syn_cost: Duration,
) -> BudgetPlan {
    let budget = (budget_percent / 100.0).max(1e-6);
    let share =
        |cost: Duration, every: Duration| cost.as_secs_f64() / every.as_secs_f64().max(1e-6);
    let syn_min_share = share(syn_cost, MAX_SYN_INTERVAL);
    let fast_share = (budget * 0.9 - syn_min_share).max(budget * 0.1);
    let fast =
        secs(fast_cost.as_secs_f64() / fast_share).clamp(config_fast, interval.max(config_fast));
    let syn_share = (budget * 0.9 - share(fast_cost, fast))
        .max(syn_min_share)
        .max(1e-9);
    BudgetPlan {
        fast_interval: fast,
        syn_interval: secs(syn_cost.as_secs_f64() / syn_share)
            .clamp(Duration::ZERO, MAX_SYN_INTERVAL),
    }
}

/// Up to this many listeners the fast poll dumps them all, whatever the last dump cost (a
/// measured cost moves with the machine's load; a small host must catch a burst on a listener
/// that was quiet at the last tick every time).
pub const POLL_ALL_UP_TO: usize = 256;

/// Whether the fast poll dumps every listener instead of polling the active ones: with at most
/// [`POLL_ALL_UP_TO`] listeners, or while that dump (its cost at least the tick's listener dump,
/// `dump_cost`) at the configured fast rate takes at most half the budget. A small host then
/// catches a burst on any listener, also one that was quiet at the last tick; at scale (10,000
/// listeners: about 10 ms a dump, 10 % of a core at 10 Hz) only the active listeners are
/// polled.
pub fn poll_everything(
    listeners: usize,
    dump_cost: Duration,
    fast_interval: Duration,
    budget_percent: f64,
) -> bool {
    let share = dump_cost.as_secs_f64() / fast_interval.as_secs_f64().max(1e-6);
    listeners <= POLL_ALL_UP_TO || share <= budget_percent / 100.0 / 2.0
}

/// A duration of `s` seconds, saturating (no panic on a huge or non-finite value).
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(if s > 0.0 {
        Duration::MAX
    } else {
        Duration::ZERO
    })
}

fn run(
    collector: Collector,
    config: SamplerConfig,
    tx: SyncSender<SampleEvent>,
    commands: Receiver<SamplerCommand>,
    stop: Arc<AtomicBool>,
) {
    let mut w = Worker::new(collector, config, tx);
    while !stop.load(Ordering::Relaxed) {
        while let Ok(command) = commands.try_recv() {
            w.command(command);
        }
        if Instant::now() >= w.next_full {
            let event = w.full_sample();
            if !w.send(event) {
                return; // nobody listens any more
            }
            w.next_full = next_after(w.next_full, w.interval);
        }
        if Instant::now() >= w.next_fast {
            w.fast_poll();
            w.next_fast = next_after(w.next_fast, w.plan.fast_interval);
        }
        let wake = w.next_full.min(w.next_fast);
        let sleep = wake.saturating_duration_since(Instant::now());
        std::thread::sleep(sleep.min(Duration::from_millis(100)));
    }
}

/// The next deadline `step` after `due`; when that is already past (a slow sample, or the
/// process was stopped), `step` from now: skip, do not burst.
fn next_after(due: Instant, step: Duration) -> Instant {
    let next = due + step;
    let now = Instant::now();
    if next < now {
        now + step
    } else {
        next
    }
}

/// The sampler thread's state between wake-ups.
struct Worker {
    collector: Collector,
    config: SamplerConfig,
    tx: SyncSender<SampleEvent>,
    waker: Option<Waker>,
    /// Display interval now in force.
    interval: Duration,
    peaks: Peaks,
    /// Thread CPU of the last fast polls.
    fast_cost: RecentMin,
    plan: BudgetPlan,
    next_full: Instant,
    next_fast: Instant,
    /// Thread CPU and wall time at the previous full sample.
    tick_cpu0: Duration,
    tick_wall0: Instant,
    depths: Vec<(ListenerKey, u32)>,
    /// The listeners the fast poll reads.
    active: ActiveSet,
    /// Fast polls of a non-empty active set since the previous tick.
    polls: u32,
    /// The fast poll dumps every listener ([`poll_everything`]).
    poll_all: bool,
    /// Listeners in the last full sample.
    listeners: usize,
}

impl Worker {
    fn new(collector: Collector, config: SamplerConfig, tx: SyncSender<SampleEvent>) -> Self {
        let plan = BudgetPlan {
            fast_interval: config.fast_interval,
            syn_interval: Duration::ZERO,
        };
        let start = Instant::now();
        Self {
            collector,
            interval: config.interval,
            tx,
            waker: None,
            peaks: Peaks::default(),
            fast_cost: RecentMin::default(),
            next_full: start,
            next_fast: start + plan.fast_interval,
            plan,
            config,
            tick_cpu0: thread_cpu(),
            tick_wall0: start,
            depths: Vec::new(),
            active: ActiveSet::default(),
            polls: 0,
            poll_all: false,
            listeners: 0,
        }
    }

    fn command(&mut self, command: SamplerCommand) {
        match command {
            SamplerCommand::SetInterval(d) => {
                self.interval = d.max(Duration::from_millis(100));
                self.next_full = self.next_full.min(Instant::now() + self.interval);
            }
            SamplerCommand::SetWaker(w) => self.waker = Some(w),
            SamplerCommand::Select(keys) => self.active.select(keys),
        }
    }

    /// One full sample with the depth ranges since the previous one and the sampler's cost;
    /// re-plans the budget.
    fn full_sample(&mut self) -> SampleEvent {
        let t0 = Instant::now();
        let result = self
            .collector
            .sample_reusing_syn_recv(self.plan.syn_interval);
        let sample_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let snapshot = match result {
            Ok(snapshot) => snapshot,
            Err(e) => {
                return SampleEvent::Gap(SampleError {
                    message: e.to_string(),
                })
            }
        };
        // The tick's own reading joins the fast readings of the listeners polled since the
        // last tick; a listener not polled gets no range (the engine reads its depth as both
        // ends, as it would a range of that one reading): O(polled), not O(listeners).
        for l in &snapshot.tcp_listeners {
            let key = ListenerKey::from(l);
            if self.peaks.has(&key) {
                self.peaks.see(key, l.accept_queue);
            }
        }
        let wall = self.tick_wall0.elapsed().as_secs_f64().max(1e-3);
        let fast_poll_hz = f64::from(std::mem::take(&mut self.polls)) / wall;
        self.active.update(
            &snapshot.tcp_listeners,
            &self.collector.bound_if,
            Instant::now(),
        );
        self.listeners = snapshot.tcp_listeners.len();
        self.poll_all = poll_everything(
            self.listeners,
            self.collector.listeners_cost(),
            self.config.fast_interval,
            self.config.budget_percent,
        );
        let cpu = thread_cpu();
        let cpu_percent = cpu.saturating_sub(self.tick_cpu0).as_secs_f64() / wall * 100.0;
        self.tick_cpu0 = cpu;
        self.tick_wall0 = Instant::now();
        let c = &self.config;
        self.plan = plan_budget(
            c.fast_interval,
            self.interval,
            c.budget_percent,
            self.fast_cost.min(),
            // Both dumps walk the established hash and are spaced out together.
            self.collector.syn_recv_cost() + self.collector.service_cost(),
        );
        let collector = CollectorStats {
            cpu_percent,
            budget_percent: c.budget_percent,
            sample_ms,
            fast_interval_ms: u64::try_from(self.plan.fast_interval.as_millis())
                .unwrap_or(u64::MAX),
            fast_interval_asked_ms: u64::try_from(c.fast_interval.as_millis()).unwrap_or(u64::MAX),
            syn_recv_age_ms: snapshot.syn_recv.age_ms,
            throttled: self.plan.fast_interval > c.fast_interval
                || self.plan.syn_interval > self.interval,
            active_listeners: if self.poll_all {
                self.listeners
            } else {
                self.active.len()
            } as u64,
            fast_poll_hz,
        };
        SampleEvent::Sample(Box::new(Sample {
            snapshot,
            depth_ranges: self.peaks.take(),
            collector,
        }))
    }

    /// Hands an event to the consumer without ever blocking (a blocked sampler could not be
    /// stopped). False when the consumer is gone.
    fn send(&mut self, event: SampleEvent) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => {
                if let Some(w) = &self.waker {
                    w();
                }
                true
            }
            // The consumer is behind: this tick is lost and shows up as a gap in the history.
            // Its depth ranges carry over to the next tick, so a burst is still not lost.
            Err(mpsc::TrySendError::Full(SampleEvent::Sample(lost))) => {
                for r in &lost.depth_ranges {
                    self.peaks.see(r.key, r.high);
                    self.peaks.see(r.key, r.low);
                }
                true
            }
            Err(mpsc::TrySendError::Full(_)) => true,
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        }
    }

    /// The fast poll: accept-queue depths of every listener or of the active ones only
    /// ([`poll_everything`]), into the peaks.
    fn fast_poll(&mut self) {
        if !self.poll_all && self.active.is_empty() {
            self.fast_cost.push(Duration::ZERO);
            return;
        }
        let cpu0 = thread_cpu();
        let polled = if self.poll_all {
            self.collector.listener_depths(&mut self.depths)
        } else {
            self.active.poll(&mut self.collector, &mut self.depths)
        };
        if polled.is_ok() {
            for &(key, depth) in &self.depths {
                self.peaks.see(key, depth);
            }
        }
        self.polls += 1;
        self.fast_cost.push(thread_cpu().saturating_sub(cpu0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_preempted_poll_does_not_slow_the_plan_but_a_costlier_host_does() {
        let mut c = RecentMin::default();
        assert_eq!(c.min(), Duration::ZERO);
        for _ in 0..RecentMin::LEN {
            c.push(Duration::from_micros(80));
        }
        c.push(MS(9)); // one reading charged with time the thread did not run
        assert_eq!(c.min(), Duration::from_micros(80));
        let slowed = plan_budget(MS(100), MS(1000), 2.0, MS(9), Duration::from_micros(500));
        let planned = plan_budget(MS(100), MS(1000), 2.0, c.min(), Duration::from_micros(500));
        assert!(slowed.fast_interval > MS(100), "{slowed:?}");
        assert_eq!(planned.fast_interval, MS(100));
        assert!(planned.syn_interval < MS(1000), "{planned:?}");
        // Every poll costlier (more listeners): the plan follows within LEN polls.
        for _ in 0..RecentMin::LEN {
            c.push(MS(3));
        }
        assert_eq!(c.min(), MS(3));
    }

    #[test]
    fn cheap_work_runs_at_the_configured_rates() {
        let p = plan_budget(
            MS(100),
            MS(1000),
            2.0,
            Duration::from_micros(50),
            Duration::from_micros(80),
        );
        assert_eq!(p.fast_interval, MS(100));
        assert!(p.syn_interval < MS(1000));
    }

    #[test]
    fn expensive_syn_recv_dump_is_spaced_to_what_the_fast_poll_leaves() {
        // 100 ms of CPU per dump, 2 % budget; the fast poll (50 µs every 100 ms, 0.05 %)
        // leaves 1.75 % of the 1.8 % for the dump: once every 5.7 s.
        let p = plan_budget(MS(100), MS(1000), 2.0, Duration::from_micros(50), MS(100));
        assert_eq!(p.fast_interval, MS(100));
        let s = p.syn_interval.as_secs_f64();
        assert!((s - 0.1 / 0.0175).abs() < 0.01, "{s}");
    }

    #[test]
    fn the_fast_poll_keeps_its_rate_while_the_syn_recv_dump_is_spaced_out() {
        // 1,000 listeners: 1.4 ms per poll; a SYN-RECV dump of 50 ms. The old 30 % share
        // slowed the poll to 233 ms and missed bursts; the dump gives way first now.
        let p = plan_budget(MS(100), MS(1000), 2.0, Duration::from_micros(1400), MS(50));
        assert_eq!(p.fast_interval, MS(100));
        assert!(p.syn_interval > MS(1000), "{:?}", p.syn_interval);
    }

    #[test]
    fn expensive_fast_polls_slow_down_but_not_below_one_per_tick() {
        // 3 ms per poll at the poll's 1.8 % share: one poll per 167 ms.
        let p = plan_budget(MS(100), MS(1000), 2.0, MS(3), Duration::ZERO);
        let ms = p.fast_interval.as_secs_f64() * 1000.0;
        assert!((ms - 3.0 / 0.018).abs() < 1.0, "{ms}");
        let p = plan_budget(MS(100), MS(1000), 2.0, MS(30), Duration::ZERO);
        assert_eq!(p.fast_interval, MS(1000));
    }

    #[test]
    fn every_listener_is_polled_while_cheap_only_the_active_ones_at_scale() {
        let big = POLL_ALL_UP_TO + 1;
        // 2 % budget at 10 Hz: a dump of up to 1 ms (1 % of a core) polls everything.
        assert!(poll_everything(
            big,
            Duration::from_micros(60),
            MS(100),
            2.0
        ));
        assert!(poll_everything(big, MS(1), MS(100), 2.0));
        // 10,000 listeners: about 10 ms a dump.
        assert!(!poll_everything(10_000, MS(10), MS(100), 2.0));
        assert!(!poll_everything(
            big,
            Duration::from_micros(1001),
            MS(100),
            2.0
        ));
        // A tiny budget polls only the active listeners...
        assert!(!poll_everything(
            big,
            Duration::from_micros(10),
            MS(100),
            0.001
        ));
        // ...except on a small host, whatever a loaded machine made the dump cost.
        assert!(poll_everything(1, MS(50), MS(100), 0.001));
        assert!(poll_everything(POLL_ALL_UP_TO, MS(50), MS(100), 2.0));
    }
}
