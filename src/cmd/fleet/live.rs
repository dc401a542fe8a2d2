//! `watch`, `serve` and `record` with `--all-netns`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{drive_fleet, start, FleetSink};
use crate::cmd::{CmdError, CmdResult, RecordConfig, ServeCmdConfig, WatchConfig};
use crate::collect::fleet::Fleet;
use crate::collect::process_self;
use crate::engine::{EngineConfig, Flow};
use crate::export;
use crate::export::prometheus::{FleetExport, FleetNs};
use crate::export::serve::Server;
use crate::model::fleet::{FleetLine, FLEET_SCHEMA_VERSION};
use crate::model::labels::terminal_safe;
use crate::model::{ListenerKey, NetnsRef, Sample, SampleError, Tick};
use crate::record::{Header, Recorder, RECORDING_VERSION};
use crate::runtime::stop_flag;

/// The `netns` of a recording of every namespace (`replay` refuses it).
pub const ALL_NETNS_RECORDING: &str = "all-netns";

/// Runs `watch --all-netns`.
pub fn watch(cfg: WatchConfig) -> CmdResult {
    let stop = stop_flag()?;
    let mut fleet = start(&cfg.live)?;
    let mut sink = Lines {
        out: std::io::stdout().lock(),
        json: cfg.json,
        count: cfg.count,
        ticks: 0,
        seen: HashMap::new(),
    };
    if !cfg.json {
        writeln!(sink.out, "{}", export::fleet::watch_header())?;
        sink.out.flush()?;
    }
    drive_fleet(&mut fleet, Some(&cfg.live.engine), &stop, &mut sink)
}

/// Prints each namespace's tick, and namespaces appearing and going.
struct Lines<W: Write> {
    out: W,
    json: bool,
    count: Option<u64>,
    ticks: u64,
    seen: HashMap<u64, HashSet<(String, Option<ListenerKey>)>>,
}

impl<W: Write> Lines<W> {
    fn event(&mut self, line: FleetLine, text: String) -> Result<Flow, CmdError> {
        if self.json {
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        } else {
            writeln!(self.out, "{}", terminal_safe(&text))?;
        }
        self.out.flush()?;
        Ok(Flow::Continue)
    }
}

impl<W: Write> FleetSink for Lines<W> {
    fn tick(&mut self, fleet: &Fleet, r: &NetnsRef, t: &Tick) -> Result<Flow, CmdError> {
        let label = r.label();
        if self.json {
            let line = FleetLine::Tick {
                schema_version: FLEET_SCHEMA_VERSION,
                netns: r.clone(),
                label,
                sampling: fleet.sampling(r.inode).unwrap_or_default(),
                tick: Box::new(t.clone()),
            };
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        } else {
            if self.ticks > 0 && self.ticks % 40 == 0 {
                writeln!(self.out, "{}", export::fleet::watch_header())?;
            }
            let seen = self.seen.entry(r.inode).or_default();
            let mut line = export::fleet::watch_line(&label, t, seen);
            if let Some(s) = fleet
                .sampling(r.inode)
                .filter(|s| s.interval_ms > s.interval_asked_ms)
            {
                line.push_str(&export::fleet::quiet_note(&s));
            }
            writeln!(self.out, "{}", terminal_safe(&line))?;
        }
        self.out.flush()?;
        self.ticks += 1;
        Ok(if self.count.is_some_and(|n| self.ticks >= n) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    fn added(&mut self, r: &NetnsRef) -> Result<Flow, CmdError> {
        let line = FleetLine::Added {
            schema_version: FLEET_SCHEMA_VERSION,
            netns: r.clone(),
            label: r.label(),
        };
        self.event(line, format!("+ {}", export::fleet::describe(r)))
    }

    fn removed(&mut self, r: &NetnsRef) -> Result<Flow, CmdError> {
        self.seen.remove(&r.inode);
        let line = FleetLine::Removed {
            schema_version: FLEET_SCHEMA_VERSION,
            netns: r.clone(),
            label: r.label(),
        };
        self.event(line, format!("- {} is gone", export::fleet::describe(r)))
    }
}

/// Runs `serve --all-netns`.
pub fn serve(cfg: ServeCmdConfig) -> CmdResult {
    let stop = stop_flag()?;
    let server = Server::start(cfg.http, stop.clone(), Arc::new(process_self))
        .map_err(anyhow::Error::from)?;
    let local = server.local_addr();
    if !local.ip().is_loopback() {
        eprintln!(
            "sockq: warning: serving on non-loopback address {local}: anyone who can reach it \
             can read listener addresses and process names"
        );
    }
    let mut fleet = start(&cfg.live)?;
    eprintln!("sockq: serving http://{local}/metrics for every network namespace");
    // The exporter needs no history (Prometheus keeps it): the smallest rings.
    let engine = EngineConfig {
        window: cfg.live.sampler.interval * 2,
        ..cfg.live.engine.clone()
    };
    let mut sink = Publish {
        server,
        latest: HashMap::new(),
        dirty: false,
        published: Instant::now(),
        max_netns: cfg.fleet.max_netns,
        max_listeners_per_netns: cfg.fleet.max_listeners_per_netns,
    };
    let result = drive_fleet(&mut fleet, Some(&engine), &stop, &mut sink);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(fleet);
    let served = sink.server.join().map_err(anyhow::Error::from);
    result.and(served.map_err(CmdError::from))
}

/// Keeps every namespace's latest tick and publishes them together.
struct Publish {
    server: Server,
    latest: HashMap<u64, Arc<Tick>>,
    dirty: bool,
    published: Instant,
    max_netns: usize,
    max_listeners_per_netns: usize,
}

/// Publishing every namespace is at most this frequent (ticks of many namespaces come close
/// together).
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

impl FleetSink for Publish {
    fn tick(&mut self, _fleet: &Fleet, r: &NetnsRef, t: &Tick) -> Result<Flow, CmdError> {
        self.latest.insert(r.inode, Arc::new(t.clone()));
        self.dirty = true;
        Ok(Flow::Continue)
    }

    fn removed(&mut self, r: &NetnsRef) -> Result<Flow, CmdError> {
        self.latest.remove(&r.inode);
        self.dirty = true;
        Ok(Flow::Continue)
    }

    fn gap(&mut self, r: &NetnsRef, e: &SampleError) -> Result<Flow, CmdError> {
        eprintln!(
            "sockq: sample of {} failed (recorded as a gap): {}",
            terminal_safe(&r.label()),
            terminal_safe(&e.to_string())
        );
        self.server.sample_failed();
        Ok(Flow::Continue)
    }

    fn idle(&mut self, fleet: &Fleet) -> Result<Flow, CmdError> {
        if self.server.is_finished() {
            return Ok(Flow::Stop);
        }
        if self.dirty && self.published.elapsed() >= PUBLISH_EVERY {
            let namespaces = fleet
                .members()
                .filter_map(|r| {
                    Some(FleetNs {
                        r: r.clone(),
                        tick: self.latest.get(&r.inode)?.clone(),
                        sampling: fleet.sampling(r.inode)?,
                    })
                })
                .collect();
            self.server.publish_fleet(FleetExport {
                namespaces,
                unreadable: fleet.unreadable().count(),
                sampling: fleet.fleet_sampling(),
                max_netns: self.max_netns,
                max_listeners_per_netns: self.max_listeners_per_netns,
            });
            self.dirty = false;
            self.published = Instant::now();
        }
        Ok(Flow::Continue)
    }
}

/// Runs `record --all-netns`: every namespace's samples in one recording, each carrying its
/// namespace (`snapshot.netns`). `replay` refuses such a recording (it replays one namespace).
pub fn record(cfg: RecordConfig) -> CmdResult {
    let stop = stop_flag()?;
    let interval = cfg.live.sampler.interval;
    let mut fleet = start(&cfg.live)?;
    let header = Header {
        format: "sockq-recording".into(),
        version: RECORDING_VERSION,
        sockq: env!("CARGO_PKG_VERSION").into(),
        interval_s: interval.as_secs_f64(),
        netns: ALL_NETNS_RECORDING.into(),
    };
    let rec = Recorder::create(&cfg.file, header, cfg.max_size, cfg.keep)?;
    eprintln!(
        "sockq: recording every network namespace to {} every {} (quiet namespaces less often; \
         rotating at {}, keeping {}); Ctrl-C stops",
        terminal_safe(&cfg.file.display().to_string()),
        humantime::format_duration(interval),
        bytesize::ByteSize(cfg.max_size),
        cfg.keep
    );
    let mut sink = Writer {
        rec,
        count: cfg.count,
        written: 0,
    };
    let result = drive_fleet(&mut fleet, None, &stop, &mut sink);
    eprintln!("sockq: recorded {} samples", sink.written);
    result
}

/// Writes each namespace's samples.
struct Writer {
    rec: Recorder,
    count: Option<u64>,
    written: u64,
}

impl FleetSink for Writer {
    fn sample(&mut self, _r: &NetnsRef, s: &Sample) -> Result<Flow, CmdError> {
        self.rec.write(s)?;
        self.written += 1;
        Ok(if self.count.is_some_and(|c| self.written >= c) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}
