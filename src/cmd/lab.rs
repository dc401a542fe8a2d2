//! `sockq lab`: a workshop scenario in a private namespace, in the dashboard or headless.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{CmdError, CmdResult};
use crate::collect::netns::NetnsTarget;
use crate::collect::sampler::{Sampler, SamplerConfig};
use crate::engine::{drive, Engine, EngineConfig, Flow, Sink};
use crate::lab::Lab;
use crate::model::lab::{Knob, Knobs, LabStatus, Scenario};
use crate::model::{Filter, SampleError, Tick};
use crate::runtime::{report_gap, stop_flag};
use crate::tui::{DashboardConfig as TuiConfig, LabControl};

/// Settings of `lab`.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The scenario.
    pub scenario: Scenario,
    /// Its knobs (the scenario's defaults with the flags applied).
    pub knobs: Knobs,
    /// No dashboard: JSON lines.
    pub headless: bool,
    /// Headless: stop after this long (default: the scenario's script).
    pub duration: Option<Duration>,
    /// Follow the scenario's script (false: stay on the first step).
    pub steps: bool,
    /// Display interval.
    pub interval: Duration,
    /// Colours allowed.
    pub color: bool,
}

/// Runs `lab`.
pub fn run(cfg: LabConfig) -> CmdResult {
    // First, while the process is still single-threaded: every thread and child made after
    // this lives in the lab's private namespace.
    crate::lab::enter_private_namespace()?;
    let stop = stop_flag()?;
    let mut lab = Lab::start(cfg.scenario, cfg.knobs.clone())?;
    let sampler_cfg = SamplerConfig {
        interval: cfg.interval,
        ..SamplerConfig::default()
    };
    let engine_cfg = EngineConfig {
        interval: cfg.interval,
        ..EngineConfig::default()
    };
    let mut sampler = Sampler::start(NetnsTarget::Lab, sampler_cfg)?;
    if !cfg.headless {
        let tui_cfg = TuiConfig {
            engine: engine_cfg,
            interval: cfg.interval,
            color: cfg.color,
            filter: Filter::default(),
        };
        return Ok(crate::tui::run(
            tui_cfg,
            &mut sampler,
            stop,
            Some(&mut lab as &mut dyn LabControl),
        )?);
    }
    let duration = cfg
        .duration
        .unwrap_or(Duration::from_secs(lab.script_secs()));
    let mut engine = Engine::new(engine_cfg);
    let mut sink = Headless {
        lab,
        out: std::io::stdout().lock(),
        steps: cfg.steps,
        start: Instant::now(),
        duration,
    };
    drive(&mut sampler, Some(&mut engine), &stop, &mut sink)
}

impl LabControl for Lab {
    fn on_sample(&mut self) {
        if let Err(e) = self.tick() {
            self.note_problem(e);
        }
    }

    fn apply(&mut self, knob: Knob) {
        self.try_apply(knob);
    }

    fn status(&self, latest: Option<&Tick>) -> LabStatus {
        Lab::status(self, latest)
    }
}

/// One line of `sockq lab --headless`.
#[derive(Debug, serde::Serialize)]
struct LabLine<'a> {
    tick: &'a Tick,
    lab: LabStatus,
}

/// Headless: advances the script by time and prints each tick with the lab's status.
struct Headless<W: Write> {
    lab: Lab,
    out: W,
    steps: bool,
    start: Instant,
    duration: Duration,
}

impl<W: Write> Sink for Headless<W> {
    type Error = CmdError;

    fn tick(&mut self, tick: &Tick) -> Result<Flow, CmdError> {
        let line = LabLine {
            tick,
            lab: self.lab.status(Some(tick)),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(Flow::Continue)
    }

    fn gap(&mut self, e: &SampleError) -> Result<Flow, CmdError> {
        report_gap(e);
        Ok(Flow::Continue)
    }

    fn idle(&mut self) -> Result<Flow, CmdError> {
        if self.start.elapsed() >= self.duration {
            return Ok(Flow::Stop);
        }
        if self.steps {
            self.lab.advance_by_time()?;
        }
        Ok(Flow::Continue)
    }
}
