//! `--all-netns`: every network namespace of the host at once, for `snapshot`, `watch`, `serve`
//! and `record`. The live commands run [`drive_fleet`]: the fleet (one sampler per namespace,
//! discovery, one CPU budget) → one [`Engine`] per namespace → the command's [`FleetSink`].

mod live;
mod snapshot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{CmdError, CmdResult, LiveConfig};
use crate::collect::fleet::{Fleet, FleetConfig, FleetEvent};
use crate::engine::{drive::WAKE, Engine, EngineConfig, Flow};
use crate::model::labels::terminal_safe;
use crate::model::{NetnsRef, Sample, SampleError, SampleEvent, Tick};

pub use live::{record, serve, watch, ALL_NETNS_RECORDING};
pub use snapshot::snapshot;

/// What a command does with every namespace's stream. Every method defaults to nothing.
pub trait FleetSink {
    /// A raw sample of a namespace (its snapshot's `netns.label` is the namespace's label).
    fn sample(&mut self, _r: &NetnsRef, _s: &Sample) -> Result<Flow, CmdError> {
        Ok(Flow::Continue)
    }

    /// The tick a namespace's engine derived.
    fn tick(&mut self, _fleet: &Fleet, _r: &NetnsRef, _t: &Tick) -> Result<Flow, CmdError> {
        Ok(Flow::Continue)
    }

    /// A namespace appeared.
    fn added(&mut self, _r: &NetnsRef) -> Result<Flow, CmdError> {
        Ok(Flow::Continue)
    }

    /// A namespace disappeared.
    fn removed(&mut self, _r: &NetnsRef) -> Result<Flow, CmdError> {
        Ok(Flow::Continue)
    }

    /// A namespace's sample failed (a gap in its history).
    fn gap(&mut self, r: &NetnsRef, e: &SampleError) -> Result<Flow, CmdError> {
        eprintln!(
            "sockq: sample of {} failed (recorded as a gap): {}",
            terminal_safe(&r.label()),
            terminal_safe(&e.to_string())
        );
        Ok(Flow::Continue)
    }

    /// After every wait, event or not.
    fn idle(&mut self, _fleet: &Fleet) -> Result<Flow, CmdError> {
        Ok(Flow::Continue)
    }
}

/// Starts the fleet for a live command; says in one line on stderr what it cannot see.
pub fn start(live: &LiveConfig) -> Result<Fleet, CmdError> {
    let fleet =
        Fleet::start(FleetConfig::new(live.sampler.clone())).map_err(anyhow::Error::from)?;
    let blind = fleet.blind_spot().unwrap_or_default();
    let read = fleet.members().count();
    report_access(
        &blind,
        fleet.denied(),
        read + fleet.unreadable().count(),
        read,
    );
    Ok(fleet)
}

/// Says on stderr, once, what `--all-netns` could not read: the missing capabilities, else the
/// discovery's blind spot (escaped), else nothing.
pub fn report_access(blind: &str, denied: usize, found: usize, read: usize) {
    match missing_line(blind, denied, found, read) {
        Some(line) => eprintln!("{line}"),
        None if !blind.is_empty() => eprintln!("sockq: --all-netns: {}", terminal_safe(blind)),
        None => {}
    }
}

/// Without privilege, one line saying what is missing and what is shown; `None` when nothing
/// is missing for want of a capability (the blind spot then says what else is not seen).
pub fn missing_line(blind: &str, denied: usize, found: usize, read: usize) -> Option<String> {
    let mut missing = Vec::new();
    if blind.contains("CAP_SYS_PTRACE") && !nix::unistd::geteuid().is_root() {
        missing.push("CAP_SYS_PTRACE to see other users' processes' namespaces".to_string());
    }
    if denied > 0 {
        missing.push(format!(
            "CAP_SYS_ADMIN to enter {denied} of the {found} namespaces found"
        ));
    }
    (!missing.is_empty()).then(|| {
        format!(
            "sockq: --all-netns: missing {} (run as root); showing the {read} it can read",
            missing.join(" and ")
        )
    })
}

/// Runs until `stop` is set or the sink says stop. With `engine`, one engine per namespace
/// (made when the namespace appears, dropped when it goes) turns its samples into ticks.
pub fn drive_fleet<S: FleetSink>(
    fleet: &mut Fleet,
    engine: Option<&EngineConfig>,
    stop: &AtomicBool,
    sink: &mut S,
) -> CmdResult {
    let mut engines: HashMap<u64, Engine> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(event) = fleet.next(WAKE) {
            let flow = match event {
                FleetEvent::Added(r) => {
                    if let Some(cfg) = engine {
                        engines.insert(r.inode, Engine::new(cfg.clone()));
                    }
                    sink.added(&r)?
                }
                FleetEvent::Removed(r) => {
                    engines.remove(&r.inode);
                    sink.removed(&r)?
                }
                FleetEvent::Changed(_) | FleetEvent::Unreadable(..) => Flow::Continue,
                FleetEvent::Interval { inode, interval } => {
                    if let Some(e) = engines.get_mut(&inode) {
                        e.set_interval(interval);
                    }
                    Flow::Continue
                }
                FleetEvent::Sample { inode, event } => {
                    deliver(fleet, engines.get_mut(&inode), inode, event, sink)?
                }
            };
            if flow == Flow::Stop {
                return Ok(());
            }
        }
        if sink.idle(fleet)? == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

fn deliver<S: FleetSink>(
    fleet: &Fleet,
    engine: Option<&mut Engine>,
    inode: u64,
    event: SampleEvent,
    sink: &mut S,
) -> Result<Flow, CmdError> {
    let Some(r) = fleet.get(inode) else {
        return Ok(Flow::Continue); // removed since: its last sample is not shown
    };
    match event {
        SampleEvent::Sample(sample) => {
            if sink.sample(r, &sample)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            match engine {
                Some(e) => sink.tick(fleet, r, e.ingest(*sample)),
                None => Ok(Flow::Continue),
            }
        }
        SampleEvent::Gap(e) => {
            if let Some(engine) = engine {
                engine.record_gap();
            }
            sink.gap(r, &e)
        }
        SampleEvent::Reset => {
            if let Some(engine) = engine {
                engine.reset();
            }
            Ok(Flow::Continue)
        }
    }
}

/// Refuses `--all-netns` where it is not built (the lab, replay).
pub fn not_here(what: &str) -> CmdError {
    CmdError::Other(anyhow::anyhow!(
        "--all-netns is not available in {what} yet: use `sockq --all-netns` (the dashboard), \
         `snapshot --all-netns`, `watch --all-netns`, `serve --all-netns` or `record \
         --all-netns`, or pick one namespace with --netns NAME / --netns-pid PID"
    ))
}
