//! Every network namespace at once (`--all-netns`): discovery refreshed every few seconds and
//! one [`super::Collector`] per namespace, all on one sampling thread (`worker`), under one CPU
//! budget.
//!
//! Why one thread rather than a sampler thread per namespace: measured through
//! `sockq watch --all-netns` at 200 idle namespaces (docs/perf.md), 200 sampler threads cost
//! 24 % of a core even with one full sample a minute — each wakes at least every 100 ms and
//! polls at the rate of its own budget share — while entering a namespace costs about 2 µs
//! (`setns`, measured). A collector reads its counters from `/proc/thread-self/net/*` and its
//! tunables from `/proc/sys/net/*`, which follow the reading thread's namespace, so the thread
//! enters each namespace (by the namespace file it keeps open) before sampling it; each
//! collector was created right after the thread entered its namespace, so its netlink socket
//! lives there.
//!
//! The budget: the fleet measures what each namespace costs per full sample (the thread's CPU
//! spent on it) and samples the *quiet* ones (nothing queued, no drop, no SYN-RECV request for
//! [`BUSY_HOLD`]) less often — as often as the busy ones leave room for in `--cpu-budget`
//! ([`budget::plan_quiet`]), with at most one fast poll per interval — and the busy ones at `--interval`
//! with fast polls in their share of what is left. It says so per namespace ([`NetnsSampling`])
//! and for the whole ([`FleetSampling`]).
//!
//! Namespaces that appear are added at the next refresh; those that disappear are dropped (the
//! thread closes their collector and namespace file). A namespace that cannot be entered (no
//! CAP_SYS_ADMIN) is listed in [`Fleet::unreadable`]; sockq's own namespace is always read,
//! without setns.

pub mod budget;
mod worker;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::budget::{plan_quiet, MemberCost, QuietPlan};
use self::worker::{Command, Report, Worker};
use super::netns::{current_netns_inode, NetnsError};
use super::netns_all::{Discovery, DiscoveryError, DiscoveryOptions};
use super::sampler::SamplerConfig;
use super::CollectError;
use crate::model::fleet::{FleetSampling, NetnsSampling};
use crate::model::{NetnsRef, Sample, SampleEvent};

/// A namespace stays busy this long after the last sign of activity.
pub const BUSY_HOLD: Duration = Duration::from_secs(30);

/// Share of the budget (% of one core) a quiet namespace plans its fast polls with: small
/// enough that it polls only once per interval.
const QUIET_SHARE: f64 = 0.001;

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Sampling settings; `budget_percent` is the budget of the whole fleet.
    pub sampler: SamplerConfig,
    /// Where discovery looks.
    pub discovery: DiscoveryOptions,
    /// How often discovery runs again.
    pub refresh: Duration,
    /// Longest interval of a quiet namespace's full samples.
    pub max_quiet_interval: Duration,
}

impl FleetConfig {
    /// Defaults around the given sampler settings: discovery every 3 s, quiet namespaces at
    /// most every 15 s.
    pub fn new(sampler: SamplerConfig) -> Self {
        Self {
            sampler,
            discovery: DiscoveryOptions::default(),
            refresh: Duration::from_secs(3),
            max_quiet_interval: Duration::from_secs(15),
        }
    }
}

/// What the fleet hands its consumer.
#[derive(Debug)]
pub enum FleetEvent {
    /// A namespace appeared and is being sampled.
    Added(NetnsRef),
    /// A namespace disappeared (no more samples of it).
    Removed(NetnsRef),
    /// A namespace's name or way in changed.
    Changed(NetnsRef),
    /// A namespace found could not be entered.
    Unreadable(NetnsRef, String),
    /// A namespace's sample or failed sample (its snapshot's `netns.label` is the namespace's
    /// label).
    Sample {
        /// The namespace.
        inode: u64,
        /// The event.
        event: SampleEvent,
    },
    /// A namespace's sampling interval changed (busy or quiet).
    Interval {
        /// The namespace.
        inode: u64,
        /// The new interval.
        interval: Duration,
    },
}

/// One namespace being sampled.
struct Member {
    r: NetnsRef,
    interval: Duration,
    share: f64,
    last_sample: Option<Instant>,
    samples: u64,
    cpu_per_sample_s: f64,
    busy_until: Instant,
    /// ListenOverflows + ListenDrops + every listener's drops at the last sample.
    last_drops: Option<u64>,
    throttled: bool,
}

/// Every namespace, discovery, the sampling thread and the budget over them. Dropping it
/// stops the thread.
pub struct Fleet {
    cfg: FleetConfig,
    discovery: Discovery,
    members: BTreeMap<u64, Member>,
    unreadable: BTreeMap<u64, (NetnsRef, String, bool)>,
    commands: Sender<Command>,
    reports: Receiver<Report>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pending: VecDeque<FleetEvent>,
    next_refresh: Instant,
    own_inode: Option<u64>,
    plan: QuietPlan,
}

impl Fleet {
    /// Discovers every namespace and starts sampling each it can enter. Fails only when /proc
    /// cannot be listed or the thread cannot start. The first events are the namespaces added.
    pub fn start(mut cfg: FleetConfig) -> Result<Self, FleetError> {
        cfg.sampler.collector = cfg.sampler.collector.across_namespaces();
        let (commands, crx) = mpsc::channel();
        // room for a few samples of every namespace; more are lost as gaps, never blocking
        let (rtx, reports) = mpsc::sync_channel(4096);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker::new(cfg.sampler.clone(), crx, rtx, stop.clone());
        let thread = std::thread::Builder::new()
            .name("sockq-fleet".into())
            .spawn(move || worker.run())
            .map_err(|source| {
                FleetError::Collect(CollectError::Spawn {
                    what: "starting the sampling thread",
                    source,
                })
            })?;
        let mut fleet = Self {
            discovery: Discovery::new(cfg.discovery.clone()),
            plan: QuietPlan {
                interval: cfg.sampler.interval,
                estimated_percent: 0.0,
                over_budget: false,
            },
            cfg,
            members: BTreeMap::new(),
            unreadable: BTreeMap::new(),
            commands,
            reports,
            stop,
            thread: Some(thread),
            pending: VecDeque::new(),
            next_refresh: Instant::now(),
            own_inode: current_netns_inode(),
        };
        fleet.refresh()?;
        Ok(fleet)
    }

    /// Waits up to `timeout` for the next event; runs discovery when it is due.
    pub fn next(&mut self, timeout: Duration) -> Option<FleetEvent> {
        if Instant::now() >= self.next_refresh {
            // A failed refresh keeps what was found; the next one tries again.
            let _ = self.refresh();
        }
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        let wait = timeout.min(self.next_refresh.saturating_duration_since(Instant::now()));
        match self.reports.recv_timeout(wait) {
            Ok(report) => {
                self.take(report);
                while let Ok(report) = self.reports.try_recv() {
                    self.take(report);
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        self.pending.pop_front()
    }

    /// The namespaces being sampled, host first, then by inode.
    pub fn members(&self) -> impl Iterator<Item = &NetnsRef> {
        self.members.values().map(|m| &m.r)
    }

    /// A namespace being sampled.
    pub fn get(&self, inode: u64) -> Option<&NetnsRef> {
        self.members.get(&inode).map(|m| &m.r)
    }

    /// Namespaces found that could not be entered, and why.
    pub fn unreadable(&self) -> impl Iterator<Item = (&NetnsRef, &str)> {
        self.unreadable.values().map(|(r, e, _)| (r, e.as_str()))
    }

    /// Namespaces found that could not be entered for want of privilege (CAP_SYS_ADMIN).
    pub fn denied(&self) -> usize {
        self.unreadable.values().filter(|(_, _, d)| *d).count()
    }

    /// How one namespace is being sampled.
    pub fn sampling(&self, inode: u64) -> Option<NetnsSampling> {
        let m = self.members.get(&inode)?;
        let asked = self.cfg.sampler.interval;
        Some(NetnsSampling {
            interval_ms: ms(m.interval),
            interval_asked_ms: ms(asked),
            quiet: Instant::now() >= m.busy_until,
            throttled: m.interval > asked || m.throttled,
            last_sample_age_ms: m.last_sample.map(|t| ms(t.elapsed())),
        })
    }

    /// How the whole is being sampled.
    pub fn fleet_sampling(&self) -> FleetSampling {
        FleetSampling {
            namespaces: self.discovery.namespaces().len(),
            sampled: self.members.len(),
            budget_percent: self.cfg.sampler.budget_percent,
            estimated_percent: self.plan.estimated_percent,
            slowed: self
                .members
                .values()
                .filter(|m| m.interval > self.cfg.sampler.interval)
                .count(),
            quiet_interval_ms: ms(self.plan.interval),
            over_budget: self.plan.over_budget,
        }
    }

    /// What cannot be seen, in one line: discovery's blind spot and the namespaces that could
    /// not be entered (without CAP_SYS_ADMIN, every one but sockq's own).
    pub fn blind_spot(&self) -> Option<String> {
        let mut parts: Vec<String> = self
            .discovery
            .blind_spot()
            .map(String::from)
            .into_iter()
            .collect();
        let denied = self.denied();
        if denied > 0 {
            parts.push(format!(
                "{denied} of {} namespaces cannot be entered: entering another network \
                 namespace needs CAP_SYS_ADMIN (run sockq as root); showing the {} readable",
                self.discovery.namespaces().len(),
                self.members.len()
            ));
        }
        let other = self.unreadable.len() - denied;
        if other > 0 {
            parts.push(format!(
                "{other} namespaces could not be read (they may have gone)"
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Rescans, follows what appeared and disappeared, re-plans the budget.
    fn refresh(&mut self) -> Result<(), DiscoveryError> {
        self.next_refresh = Instant::now() + self.cfg.refresh;
        let changes = self.discovery.refresh()?;
        for r in changes.removed {
            self.unreadable.remove(&r.inode);
            if let Some(m) = self.members.remove(&r.inode) {
                let _ = self.commands.send(Command::Remove(r.inode));
                self.pending.push_back(FleetEvent::Removed(m.r));
            }
        }
        for r in changes.added {
            self.add(r);
        }
        for r in changes.changed {
            if let Some(m) = self.members.get_mut(&r.inode) {
                m.r = r.clone();
                self.pending.push_back(FleetEvent::Changed(r));
            }
        }
        self.replan();
        Ok(())
    }

    /// Asks the thread to sample `r` and waits for its answer (what else it reports meanwhile
    /// is kept in order).
    fn add(&mut self, r: NetnsRef) {
        let own = Some(r.inode) == self.own_inode;
        let result = if self
            .commands
            .send(Command::Add(Box::new(r.clone()), own))
            .is_err()
        {
            Err(CollectError::Thread("the sampling thread has stopped"))
        } else {
            self.started(r.inode)
        };
        match result {
            Ok(()) => {
                self.pending.push_back(FleetEvent::Added(r.clone()));
                self.members.insert(
                    r.inode,
                    Member {
                        r,
                        interval: self.cfg.sampler.interval,
                        share: self.cfg.sampler.budget_percent,
                        last_sample: None,
                        samples: 0,
                        cpu_per_sample_s: 0.0,
                        busy_until: Instant::now(),
                        last_drops: None,
                        throttled: false,
                    },
                );
            }
            Err(e) => {
                let denied = matches!(e, CollectError::Netns(NetnsError::Permission { .. }));
                let why = e.to_string();
                self.pending
                    .push_back(FleetEvent::Unreadable(r.clone(), why.clone()));
                self.unreadable.insert(r.inode, (r, why, denied));
            }
        }
    }

    fn started(&mut self, inode: u64) -> Result<(), CollectError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(Report::Started(i, result)) if i == inode => return result,
                Ok(report) => self.take(report),
                Err(_) => return Err(CollectError::Thread("the sampling thread did not answer")),
            }
        }
    }

    /// A report of the thread into an event.
    fn take(&mut self, report: Report) {
        let Report::Event(inode, mut event) = report else {
            return; // a late answer to an add given up on
        };
        let Some(m) = self.members.get_mut(&inode) else {
            return; // removed since
        };
        if let SampleEvent::Sample(s) = &mut event {
            if m.observe(s) {
                self.replan();
            }
        }
        self.pending.push_back(FleetEvent::Sample { inode, event });
    }

    /// Sets every member's interval and budget share from the plan: busy ones at the interval
    /// asked for with fast polls in their share of what the quiet ones leave.
    fn replan(&mut self) {
        let now = Instant::now();
        let costs: Vec<MemberCost> = self
            .members
            .values()
            .map(|m| MemberCost {
                cpu_per_sample_s: m.cpu_per_sample_s,
                busy: now < m.busy_until,
            })
            .collect();
        let base = self.cfg.sampler.interval;
        let budget = self.cfg.sampler.budget_percent;
        self.plan = plan_quiet(base, self.cfg.max_quiet_interval, budget, &costs);
        let quiet_percent: f64 = costs
            .iter()
            .filter(|c| !c.busy)
            .map(|c| c.cpu_per_sample_s * 100.0 / self.plan.interval.as_secs_f64().max(1e-3))
            .sum();
        let busy = costs.iter().filter(|c| c.busy).count().max(1);
        let busy_share =
            ((budget - quiet_percent) / busy as f64).max(budget / costs.len().max(1) as f64);
        for (inode, m) in &mut self.members {
            let (want, share) = if now < m.busy_until {
                (base, busy_share)
            } else {
                (self.plan.interval, QUIET_SHARE)
            };
            let changed_share = (share - m.share).abs() > m.share * 0.2;
            if want != m.interval || changed_share {
                let _ = self.commands.send(Command::Plan(*inode, want, share));
                m.share = share;
            }
            if want != m.interval {
                m.interval = want;
                self.pending.push_back(FleetEvent::Interval {
                    inode: *inode,
                    interval: want,
                });
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // the thread looks at the flag at least every 100 ms (or after one sample)
            let _ = t.join();
        }
    }
}

/// Why the fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// /proc could not be listed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The sampling thread could not start.
    #[error(transparent)]
    Collect(#[from] CollectError),
}

impl Member {
    /// Takes a sample's cost and activity in; labels it. True when a quiet namespace became
    /// busy (its interval should shorten now).
    fn observe(&mut self, s: &mut Sample) -> bool {
        let now = Instant::now();
        let elapsed = self
            .last_sample
            .map_or(self.interval, |t| now.duration_since(t));
        let cost = s.collector.cpu_percent / 100.0 * elapsed.as_secs_f64();
        // the first sample is cold (every owner looked up): it says nothing of the cost to
        // come, so the plan counts from the second (the first two come an interval apart)
        self.samples += 1;
        self.cpu_per_sample_s = match self.samples {
            1 => 0.0,
            2 => cost,
            _ => 0.7 * self.cpu_per_sample_s + 0.3 * cost,
        };
        self.last_sample = Some(now);
        self.throttled = s.collector.throttled;
        if now >= self.busy_until {
            // sampled seldom on purpose (said in its `sampling`), not for want of budget: no
            // finding about slow polls
            s.collector.fast_interval_asked_ms = s.collector.fast_interval_ms;
            s.collector.throttled = false;
        }
        s.snapshot.netns.label = self.r.label();
        let snap = &s.snapshot;
        let drops = ["ListenOverflows", "ListenDrops"]
            .iter()
            .filter_map(|c| snap.counters.tcp_ext(c))
            .chain(snap.tcp_listeners.iter().filter_map(|l| l.drops))
            .fold(0u64, u64::wrapping_add);
        let active = snap.tcp_listeners.iter().any(|l| l.accept_queue > 0)
            || s.depth_ranges.iter().any(|r| r.high > 0)
            || snap.syn_recv.total > 0
            || self.last_drops.is_some_and(|d| d != drops);
        self.last_drops = Some(drops);
        let was_quiet = now >= self.busy_until;
        if active {
            self.busy_until = now + BUSY_HOLD;
        }
        active && was_quiet
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl crate::engine::NamespacesSource for Fleet {
    fn next_ns_event(&mut self, timeout: Duration) -> Option<crate::engine::NsEvent> {
        use crate::engine::NsEvent;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next(left)?;
            return Some(match event {
                FleetEvent::Added(r) => NsEvent::Added(r),
                FleetEvent::Removed(r) => NsEvent::Removed(r),
                FleetEvent::Sample { inode, event } => NsEvent::Sample(inode, event),
                FleetEvent::Interval { inode, interval } => NsEvent::Interval(inode, interval),
                FleetEvent::Changed(_) | FleetEvent::Unreadable(..) => {
                    if left.is_zero() {
                        return None;
                    }
                    continue;
                }
            });
        }
    }
}
