//! `sockq replay`: a recording in the dashboard, or as JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::anyhow;

use super::record::recorded_interval;
use super::{CmdError, CmdResult};
use crate::engine::{drive, Engine, EngineConfig, Flow, Sink};
use crate::model::{Filter, Tick};
use crate::record::Replay;
use crate::runtime::stop_flag;
use crate::tui::DashboardConfig as TuiConfig;

/// Settings of `replay`.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The recording.
    pub file: PathBuf,
    /// JSON lines instead of the dashboard.
    pub json: bool,
    /// Colours allowed.
    pub color: bool,
    /// History window.
    pub window: Duration,
    /// Which listeners to show.
    pub filter: Filter,
}

/// Runs `replay`.
pub fn run(cfg: ReplayConfig) -> CmdResult {
    let rec = crate::record::read(&cfg.file)?;
    if rec.header.netns == super::fleet::ALL_NETNS_RECORDING {
        return Err(anyhow!(
            "{}: this recording holds every network namespace (record --all-netns); replay \
             shows one namespace and cannot replay it yet (its samples are gzip JSON lines, \
             each with its namespace in snapshot.netns: zcat FILE)",
            cfg.file.display()
        )
        .into());
    }
    let engine_cfg = EngineConfig {
        interval: recorded_interval(rec.header.interval_s),
        window: cfg.window,
        filter: cfg.filter.clone(),
        ..EngineConfig::default()
    };
    if cfg.json {
        let replayed = rec.samples.len();
        let mut replay = Replay::unpaced(rec.samples, None);
        let mut engine = Engine::new(engine_cfg);
        let mut sink = JsonLines(std::io::stdout().lock());
        drive(
            &mut replay,
            Some(&mut engine),
            &AtomicBool::new(false),
            &mut sink,
        )?;
        sink.0.flush()?;
        if let Some(d) = rec.damage {
            return Err(anyhow!("{}: replayed {replayed} samples; {d}", cfg.file.display()).into());
        }
        return Ok(());
    }
    if rec.samples.is_empty() {
        return Err(anyhow!(
            "{}: no samples to replay{}",
            cfg.file.display(),
            rec.damage.map(|d| format!(" ({d})")).unwrap_or_default()
        )
        .into());
    }
    let tui_cfg = TuiConfig {
        interval: engine_cfg.interval,
        engine: engine_cfg,
        color: cfg.color,
        filter: cfg.filter.clone(),
    };
    let mut replay = Replay::new(rec.samples, rec.damage);
    Ok(crate::tui::run(tui_cfg, &mut replay, stop_flag()?, None)?)
}

/// Prints each tick as one JSON line.
struct JsonLines<W: Write>(W);

impl<W: Write> Sink for JsonLines<W> {
    type Error = CmdError;

    fn tick(&mut self, tick: &Tick) -> Result<Flow, CmdError> {
        serde_json::to_writer(&mut self.0, tick)?;
        self.0.write_all(b"\n")?;
        Ok(Flow::Continue)
    }
}
