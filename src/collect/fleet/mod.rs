//! Every network namespace at once (`--all-netns`): discovery refreshed every few seconds and
//! one [`Sampler`] per namespace, under one CPU budget.
//!
//! Why a sampler thread per namespace rather than one thread holding every collector: a
//! collector reads its counters from `/proc/thread-self/net/*` and its tunables from
//! `/proc/sys/net/*`, which follow the *reading thread's* namespace, so one thread would have
//! to `setns` before every read of every namespace (and hold a namespace file open for each);
//! a thread that entered its namespace once reads it with the sampler exactly as `--netns`
//! does, burst-catching fast polls included. The threads cost memory (docs/perf.md measures
//! the whole process at 30 and 200 namespaces) but no CPU while they sleep.
//!
//! The budget: each sampler gets an equal share of `--cpu-budget` for its own planning (fast
//! polls, SYN-RECV spacing); the fleet measures what each costs per full sample and samples
//! the *quiet* namespaces (nothing queued, no drop, no SYN-RECV request for
//! [`BUSY_HOLD`]) less often, as often as the busy ones leave room for
//! ([`budget::plan_quiet`]), and says so per namespace ([`NetnsSampling`]) and for the whole
//! ([`FleetSampling`]).
//!
//! Namespaces that appear get a sampler at the next refresh; those that disappear lose theirs
//! (stopped on a thread of its own, so the caller never waits for it). A namespace that cannot
//! be entered (no CAP_SYS_ADMIN) is listed in [`Fleet::unreadable`]; sockq's own namespace is
//! always read, without setns.

pub mod budget;

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::budget::{plan_quiet, MemberCost, QuietPlan};
use super::netns::{current_netns_inode, NetnsError, NetnsTarget};
use super::netns_all::{self, Discovery, DiscoveryError, DiscoveryOptions};
use super::sampler::{Sampler, SamplerConfig};
use super::CollectError;
use crate::engine::Source;
use crate::model::fleet::{FleetSampling, NetnsSampling};
use crate::model::{NetnsRef, Sample, SampleEvent};

/// A namespace stays busy this long after the last sign of activity.
pub const BUSY_HOLD: Duration = Duration::from_secs(30);

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Every sampler's settings; `budget_percent` is the budget of all of them together.
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
    /// most every 10 s.
    pub fn new(sampler: SamplerConfig) -> Self {
        Self {
            sampler,
            discovery: DiscoveryOptions::default(),
            refresh: Duration::from_secs(3),
            max_quiet_interval: Duration::from_secs(10),
        }
    }
}

/// What the fleet hands its consumer.
#[derive(Debug)]
pub enum FleetEvent {
    /// A namespace appeared and is being sampled.
    Added(NetnsRef),
    /// A namespace disappeared (its sampler is stopped).
    Removed(NetnsRef),
    /// A namespace's name or way in changed.
    Changed(NetnsRef),
    /// A namespace found could not be entered.
    Unreadable(NetnsRef, String),
    /// A namespace's sampler sent an event (its snapshot's `netns.label` is the namespace's
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
    sampler: Sampler,
    interval: Duration,
    last_sample: Option<Instant>,
    cpu_per_sample_s: f64,
    busy_until: Instant,
    /// ListenOverflows + ListenDrops + every listener's drops at the last sample.
    last_drops: Option<u64>,
    throttled: bool,
}

/// Every namespace's sampler, discovery, and the budget over them.
pub struct Fleet {
    cfg: FleetConfig,
    discovery: Discovery,
    members: BTreeMap<u64, Member>,
    unreadable: BTreeMap<u64, (NetnsRef, String, bool)>,
    wake_tx: Sender<u64>,
    wake_rx: Receiver<u64>,
    pending: VecDeque<FleetEvent>,
    next_refresh: Instant,
    own_inode: Option<u64>,
    plan: QuietPlan,
}

impl Fleet {
    /// Discovers every namespace and starts a sampler in each it can enter. Fails only when
    /// /proc cannot be listed. The first events are the namespaces added.
    pub fn start(cfg: FleetConfig) -> Result<Self, DiscoveryError> {
        let (wake_tx, wake_rx) = mpsc::channel();
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
            wake_tx,
            wake_rx,
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
        match self.wake_rx.recv_timeout(wait) {
            Ok(inode) => self.drain(Some(inode)),
            Err(RecvTimeoutError::Timeout) => self.drain(None),
            Err(RecvTimeoutError::Disconnected) => {}
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
        let denied = self
            .unreadable
            .values()
            .filter(|(_, _, denied)| *denied)
            .count();
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
        let mut stopped = Vec::new();
        for r in changes.removed {
            self.unreadable.remove(&r.inode);
            if let Some(m) = self.members.remove(&r.inode) {
                stopped.push(m.sampler);
                self.pending.push_back(FleetEvent::Removed(m.r));
            }
        }
        stop_in_background(stopped);
        let found = self.discovery.namespaces().len().max(1);
        for r in changes.added {
            self.add(r, found);
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

    fn add(&mut self, r: NetnsRef, found: usize) {
        let target = if Some(r.inode) == self.own_inode {
            NetnsTarget::Current
        } else {
            netns_all::target(&r)
        };
        let mut cfg = self.cfg.sampler.clone();
        cfg.budget_percent = (cfg.budget_percent / found as f64).max(0.001);
        match Sampler::start_expecting(target, Some(r.inode), cfg) {
            Ok(mut sampler) => {
                let tx = self.wake_tx.clone();
                let inode = r.inode;
                sampler.set_waker(Arc::new(move || {
                    let _ = tx.send(inode);
                }));
                self.pending.push_back(FleetEvent::Added(r.clone()));
                self.members.insert(
                    r.inode,
                    Member {
                        r,
                        sampler,
                        interval: self.cfg.sampler.interval,
                        last_sample: None,
                        cpu_per_sample_s: 0.0,
                        // new namespaces start busy: their first samples come at once
                        busy_until: Instant::now() + BUSY_HOLD,
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

    /// Sets every member's interval from the plan: busy ones at the interval asked for.
    fn replan(&mut self) {
        let costs: Vec<MemberCost> = self
            .members
            .values()
            .map(|m| MemberCost {
                cpu_per_sample_s: m.cpu_per_sample_s,
                busy: Instant::now() < m.busy_until,
            })
            .collect();
        let base = self.cfg.sampler.interval;
        self.plan = plan_quiet(
            base,
            self.cfg.max_quiet_interval,
            self.cfg.sampler.budget_percent,
            &costs,
        );
        let now = Instant::now();
        for (inode, m) in &mut self.members {
            let want = if now < m.busy_until {
                base
            } else {
                self.plan.interval
            };
            if want != m.interval {
                m.interval = want;
                m.sampler.set_interval(want);
                self.pending.push_back(FleetEvent::Interval {
                    inode: *inode,
                    interval: want,
                });
            }
        }
    }

    /// Takes what the samplers have ready: the one that woke us, or every one.
    fn drain(&mut self, woke: Option<u64>) {
        let inodes: Vec<u64> = match woke {
            Some(i) => {
                // more wake-ups may be queued: take them all at once
                let mut v = vec![i];
                v.extend(self.wake_rx.try_iter());
                v.sort_unstable();
                v.dedup();
                v
            }
            None => self.members.keys().copied().collect(),
        };
        let mut went_busy = false;
        for inode in inodes {
            let Some(m) = self.members.get_mut(&inode) else {
                continue;
            };
            while let Ok(Some(mut event)) = m.sampler.next_event(Duration::ZERO) {
                if let SampleEvent::Sample(s) = &mut event {
                    went_busy |= m.observe(s);
                }
                self.pending.push_back(FleetEvent::Sample { inode, event });
            }
        }
        if went_busy {
            self.replan();
        }
    }
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
        self.cpu_per_sample_s = if self.last_sample.is_none() {
            cost
        } else {
            0.7 * self.cpu_per_sample_s + 0.3 * cost
        };
        self.last_sample = Some(now);
        self.throttled = s.collector.throttled;
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

/// Stops samplers without waiting for them (each joins its thread on drop).
fn stop_in_background(samplers: Vec<Sampler>) {
    if samplers.is_empty() {
        return;
    }
    // If the thread cannot be started, they are stopped here instead.
    let _ = std::thread::Builder::new()
        .name("sockq-stop".into())
        .spawn(move || drop(samplers));
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
