//! The fleet's one sampling thread: a [`Collector`] per namespace, each created right after
//! the thread entered its namespace (its netlink socket stays there), and the thread enters a
//! namespace again (`setns` on the namespace file it keeps open, about 2 µs) before each of its
//! samples, so `/proc/thread-self/net/*` and `/proc/sys/net/*` read that namespace. Per
//! namespace the sampler's two cadences: a full sample every interval the fleet sets, and the
//! fast depth poll (with the high/low between samples) at the rate its share of the budget
//! allows ([`plan_budget`]) — for a quiet namespace, at most one per interval.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use super::super::netns::{current_netns_inode, NetnsError};
use super::super::peaks::Peaks;
use super::super::sampler::{plan_budget, BudgetPlan, RecentMin, SamplerConfig};
use super::super::{thread_cpu, CollectError, Collector};
use crate::model::{
    CollectorStats, EnterBy, ListenerKey, NetnsRef, Sample, SampleError, SampleEvent,
};

/// What the fleet asks of its thread.
#[derive(Debug)]
pub(super) enum Command {
    /// Start sampling a namespace (`own`: sockq's own, read without setns).
    Add(Box<NetnsRef>, bool),
    /// Stop sampling it (its collector and namespace file are closed).
    Remove(u64),
    /// Full samples every interval, fast polls within a budget share (% of one core).
    Plan(u64, Duration, f64),
}

/// What the thread hands the fleet.
#[derive(Debug)]
pub(super) enum Report {
    /// The answer to an `Add`.
    Started(u64, Result<(), CollectError>),
    /// A namespace's sample or failed sample.
    Event(u64, SampleEvent),
}

/// One namespace being sampled.
struct Slot {
    inode: u64,
    file: Option<File>,
    collector: Collector,
    interval: Duration,
    share: f64,
    plan: BudgetPlan,
    next_full: Instant,
    next_fast: Instant,
    fast_cost: RecentMin,
    /// Thread CPU spent on this namespace since its previous full sample, and when that was.
    cpu: Duration,
    since: Instant,
    peaks: Peaks,
}

/// The thread's state.
pub(super) struct Worker {
    cfg: SamplerConfig,
    slots: BTreeMap<u64, Slot>,
    /// The namespace the thread is in now.
    current: Option<u64>,
    commands: Receiver<Command>,
    reports: SyncSender<Report>,
    stop: Arc<AtomicBool>,
    depths: Vec<(ListenerKey, u32)>,
}

impl Worker {
    pub(super) fn new(
        cfg: SamplerConfig,
        commands: Receiver<Command>,
        reports: SyncSender<Report>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            cfg,
            slots: BTreeMap::new(),
            current: current_netns_inode(),
            commands,
            reports,
            stop,
            depths: Vec::new(),
        }
    }

    /// Runs until stopped or the fleet is gone.
    pub(super) fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            loop {
                match self.commands.try_recv() {
                    Ok(c) => self.command(c),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            let due: Vec<u64> = self
                .slots
                .values()
                .filter(|s| s.next_full <= now || s.next_fast <= now)
                .map(|s| s.inode)
                .collect();
            for inode in due {
                if !self.work(inode) {
                    return;
                }
            }
            let wake = self
                .slots
                .values()
                .map(|s| s.next_full.min(s.next_fast))
                .min()
                .unwrap_or(now + Duration::from_millis(100));
            let sleep = wake.saturating_duration_since(Instant::now());
            // commands and the stop flag are looked at least every 100 ms
            match self
                .commands
                .recv_timeout(sleep.min(Duration::from_millis(100)))
            {
                Ok(c) => self.command(c),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Add(r, own) => {
                let inode = r.inode;
                let result = self.add(*r, own);
                let _ = self.reports.send(Report::Started(inode, result));
            }
            Command::Remove(inode) => {
                self.slots.remove(&inode);
            }
            Command::Plan(inode, interval, share) => {
                if let Some(s) = self.slots.get_mut(&inode) {
                    if interval != s.interval {
                        s.next_full = s.next_full.min(Instant::now() + interval);
                    }
                    s.interval = interval;
                    s.share = share;
                }
            }
        }
    }

    /// Opens the namespace (checked to be `r`), enters it, creates its collector.
    fn add(&mut self, r: NetnsRef, own: bool) -> Result<(), CollectError> {
        // sockq's own namespace is the main thread's (/proc/self): kept open to come back to
        // it after entering another (which needs privilege anyway); without privilege the
        // thread never leaves it
        let file = if own {
            File::open("/proc/self/ns/net").ok()
        } else {
            Some(open(&r)?)
        };
        self.enter(r.inode, file.as_ref())?;
        let collector = Collector::new(r.label(), self.cfg.collector.clone())?;
        let now = Instant::now();
        self.slots.insert(
            r.inode,
            Slot {
                inode: r.inode,
                file,
                collector,
                interval: self.cfg.interval,
                share: self.cfg.budget_percent,
                plan: BudgetPlan {
                    fast_interval: self.cfg.fast_interval,
                    syn_interval: Duration::ZERO,
                },
                next_full: now,
                next_fast: now + self.cfg.fast_interval,
                fast_cost: RecentMin::default(),
                cpu: Duration::ZERO,
                since: now,
                peaks: Peaks::default(),
            },
        );
        Ok(())
    }

    /// Enters the namespace `inode` (its open file) unless the thread is in it already.
    fn enter(&mut self, inode: u64, file: Option<&File>) -> Result<(), NetnsError> {
        if self.current == Some(inode) {
            return Ok(());
        }
        let Some(file) = file else {
            // sockq's own namespace: the thread left it only to enter another, by file
            return Err(NetnsError::Other {
                what: format!("net:[{inode}]"),
                why: "no namespace file to enter it again".into(),
            });
        };
        setns(file, CloneFlags::CLONE_NEWNET).map_err(|e| match e {
            nix::errno::Errno::EPERM => NetnsError::Permission {
                what: format!("net:[{inode}]"),
                why: format!("setns: {}", e.desc()),
                needs: "CAP_SYS_ADMIN to enter it",
            },
            _ => NetnsError::Other {
                what: format!("net:[{inode}]"),
                why: e.desc().to_string(),
            },
        })?;
        self.current = Some(inode);
        Ok(())
    }

    /// A due full sample and/or fast poll of one namespace. False when the fleet is gone.
    fn work(&mut self, inode: u64) -> bool {
        let Some(mut slot) = self.slots.remove(&inode) else {
            return true;
        };
        let cpu0 = thread_cpu();
        let entered = self.enter(inode, slot.file.as_ref());
        let now = Instant::now();
        let mut alive = true;
        match entered {
            Err(e) => {
                // cannot enter it any more: a gap each interval until the fleet removes it
                if slot.next_full <= now {
                    slot.next_full = now + slot.interval;
                    alive = self.send(
                        inode,
                        SampleEvent::Gap(SampleError {
                            message: e.to_string(),
                        }),
                    );
                }
                slot.next_fast = slot.next_full;
            }
            Ok(()) => {
                if slot.next_fast <= now {
                    fast_poll(&mut slot, &mut self.depths);
                    slot.next_fast = next_after(slot.next_fast, slot.plan.fast_interval);
                }
                if slot.next_full <= now {
                    slot.cpu += thread_cpu().saturating_sub(cpu0);
                    let event = full_sample(&mut slot, &self.cfg);
                    alive = self.send(inode, event);
                    slot.next_full = next_after(slot.next_full, slot.interval);
                    slot.next_fast = slot.next_fast.min(now + slot.plan.fast_interval);
                    self.slots.insert(inode, slot);
                    return alive;
                }
            }
        }
        slot.cpu += thread_cpu().saturating_sub(cpu0);
        self.slots.insert(inode, slot);
        alive
    }

    /// Never blocks: a full channel loses the sample (a gap in that namespace's history).
    fn send(&self, inode: u64, event: SampleEvent) -> bool {
        !matches!(
            self.reports.try_send(Report::Event(inode, event)),
            Err(TrySendError::Disconnected(_))
        )
    }
}

/// The fast poll: depths only, into the slot's peaks.
fn fast_poll(slot: &mut Slot, depths: &mut Vec<(ListenerKey, u32)>) {
    let cpu0 = thread_cpu();
    if slot.collector.listener_depths(depths).is_ok() {
        for &(key, depth) in depths.iter() {
            slot.peaks.see(key, depth);
        }
    }
    slot.fast_cost.push(thread_cpu().saturating_sub(cpu0));
}

/// A full sample with the depth ranges since the previous one and this namespace's cost;
/// re-plans its fast poll and SYN-RECV spacing within its share.
fn full_sample(slot: &mut Slot, cfg: &SamplerConfig) -> SampleEvent {
    let t0 = Instant::now();
    let cpu0 = thread_cpu();
    let result = slot
        .collector
        .sample_reusing_syn_recv(slot.plan.syn_interval);
    let sample_ms = t0.elapsed().as_secs_f64() * 1000.0;
    slot.cpu += thread_cpu().saturating_sub(cpu0);
    let snapshot = match result {
        Ok(s) => s,
        Err(e) => {
            return SampleEvent::Gap(SampleError {
                message: e.to_string(),
            })
        }
    };
    for l in &snapshot.tcp_listeners {
        slot.peaks.see(l.into(), l.accept_queue);
    }
    let wall = slot.since.elapsed().as_secs_f64().max(1e-3);
    let cpu_percent = slot.cpu.as_secs_f64() / wall * 100.0;
    slot.cpu = Duration::ZERO;
    slot.since = Instant::now();
    slot.plan = plan_budget(
        cfg.fast_interval,
        slot.interval,
        slot.share,
        slot.fast_cost.min(),
        slot.collector.syn_recv_cost() + slot.collector.service_cost(),
    );
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    // The fleet's fast poll dumps every listener of the namespace: all are "active"; the
    // poll rate is the most readings any listener got since the previous tick.
    let polls = u64::from(slot.peaks.most_readings());
    let collector = CollectorStats {
        active_listeners: snapshot.tcp_listeners.len() as u64,
        fast_poll_hz: polls as f64 / wall,
        cpu_percent,
        budget_percent: slot.share,
        sample_ms,
        fast_interval_ms: ms(slot.plan.fast_interval),
        fast_interval_asked_ms: ms(cfg.fast_interval),
        syn_recv_age_ms: snapshot.syn_recv.age_ms,
        throttled: slot.plan.fast_interval > cfg.fast_interval
            || slot.plan.syn_interval > slot.interval
            || slot.interval > cfg.interval,
    };
    let depth_ranges = slot.peaks.take();
    SampleEvent::Sample(Box::new(Sample {
        snapshot,
        depth_ranges,
        collector,
    }))
}

/// The next deadline `step` after `due`; from now when that is already past (skip, do not
/// burst).
fn next_after(due: Instant, step: Duration) -> Instant {
    let next = due + step;
    let now = Instant::now();
    if next < now {
        now + step
    } else {
        next
    }
}

/// Opens `r`'s namespace file and checks it is still `r` (a pid reused, a name made again).
fn open(r: &NetnsRef) -> Result<File, NetnsError> {
    let path = match &r.enter {
        EnterBy::Named(n) => PathBuf::from("/run/netns").join(n),
        EnterBy::Path(p) => p.clone(),
        EnterBy::Pid(p) => PathBuf::from(format!("/proc/{p}/ns/net")),
    };
    let what = r.label();
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => NetnsError::Permission {
            what: what.clone(),
            why: format!("cannot open {}: {e}", path.display()),
            needs: "CAP_SYS_PTRACE to open another user's /proc/PID/ns/net",
        },
        _ => NetnsError::Other {
            what: what.clone(),
            why: format!("{}: {e}", path.display()),
        },
    })?;
    let found = file
        .metadata()
        .map_err(|e| NetnsError::Other {
            what: what.clone(),
            why: e.to_string(),
        })?
        .ino();
    if found != r.inode {
        return Err(NetnsError::Changed {
            what,
            expected: r.inode,
            found,
        });
    }
    // entering needs CAP_SYS_ADMIN: tried here, on the fleet's thread, by the caller
    Ok(file)
}
