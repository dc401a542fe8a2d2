//! `sockq watch`: one line (or JSON object) per tick.

use std::collections::HashSet;
use std::io::Write;

use super::{CmdError, CmdResult, LiveConfig};
use crate::collect::sampler::Sampler;
use crate::engine::{drive, Engine, Flow, Sink};
use crate::export;
use crate::model::labels::terminal_safe;
use crate::model::{ListenerKey, SampleError, Tick};
use crate::runtime::{report_gap, stop_flag};

/// Settings of `watch`.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// What to sample.
    pub live: LiveConfig,
    /// JSON lines instead of text.
    pub json: bool,
    /// Stop after this many ticks.
    pub count: Option<u64>,
}

/// Runs `watch`.
pub fn run(cfg: WatchConfig) -> CmdResult {
    if cfg.live.all_netns {
        return super::fleet::watch(cfg);
    }
    let stop = stop_flag()?;
    let mut sampler = Sampler::start(cfg.live.target.clone(), cfg.live.sampler.clone())?;
    let mut engine = Engine::new(cfg.live.engine.clone());
    let mut sink = Lines {
        out: std::io::stdout().lock(),
        json: cfg.json,
        count: cfg.count,
        ticks: 0,
        seen: HashSet::new(),
    };
    if !cfg.json {
        writeln!(sink.out, "{}", export::watch::HEADER)?;
        sink.out.flush()?;
    }
    drive(&mut sampler, Some(&mut engine), &stop, &mut sink)
}

/// Prints each tick.
struct Lines<W: Write> {
    out: W,
    json: bool,
    count: Option<u64>,
    ticks: u64,
    seen: HashSet<(String, Option<ListenerKey>)>,
}

impl<W: Write> Sink for Lines<W> {
    type Error = CmdError;

    fn tick(&mut self, tick: &Tick) -> Result<Flow, CmdError> {
        // The engine already keeps only the listeners the filter selects.
        if self.json {
            serde_json::to_writer(&mut self.out, &tick)?;
            self.out.write_all(b"\n")?;
        } else {
            if self.ticks > 0 && self.ticks % 20 == 0 {
                writeln!(self.out, "{}", export::watch::HEADER)?;
            }
            let line = export::watch::human_line(tick, &mut self.seen);
            // Names from the system (processes, sockets) are escaped for the terminal.
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

    fn gap(&mut self, e: &SampleError) -> Result<Flow, CmdError> {
        report_gap(e);
        Ok(Flow::Continue)
    }
}
