//! `sockq record`: every sample to a compressed, rotating file.

use std::path::PathBuf;
use std::time::Duration;

use super::{CmdError, CmdResult, LiveConfig};
use crate::collect::sampler::Sampler;
use crate::engine::{drive, Flow, Sink};
use crate::model::labels::terminal_safe;
use crate::model::{Sample, SampleError};
use crate::record::{Header, Recorder, RECORDING_VERSION};
use crate::runtime::stop_flag;

/// Settings of `record`.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// What to sample.
    pub live: LiveConfig,
    /// The file to write.
    pub file: PathBuf,
    /// Rotate at this size, bytes.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: u32,
    /// Stop after this many samples.
    pub count: Option<u64>,
}

/// Runs `record`.
pub fn run(cfg: RecordConfig) -> CmdResult {
    if cfg.live.all_netns {
        return super::fleet::record(cfg);
    }
    let stop = stop_flag()?;
    let interval = cfg.live.sampler.interval;
    let mut sampler = Sampler::start(cfg.live.target.clone(), cfg.live.sampler.clone())?;
    let header = Header {
        format: "sockq-recording".into(),
        version: RECORDING_VERSION,
        sockq: env!("CARGO_PKG_VERSION").into(),
        interval_s: interval.as_secs_f64(),
        netns: cfg.live.target.label(),
    };
    let rec = Recorder::create(&cfg.file, header, cfg.max_size, cfg.keep)?;
    eprintln!(
        "sockq: recording to {} every {} (rotating at {}, keeping {}); Ctrl-C stops",
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
    let result = drive(&mut sampler, None, &stop, &mut sink);
    eprintln!("sockq: recorded {} samples", sink.written);
    result
}

/// Writes each sample; failed samples are gaps in the recording.
struct Writer {
    rec: Recorder,
    count: Option<u64>,
    written: u64,
}

impl Sink for Writer {
    type Error = CmdError;

    fn sample(&mut self, s: &Sample) -> Result<Flow, CmdError> {
        self.rec.write(s)?;
        self.written += 1;
        Ok(if self.count.is_some_and(|c| self.written >= c) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    fn gap(&mut self, e: &SampleError) -> Result<Flow, CmdError> {
        // The error can quote paths from the system: escaped like every gap report.
        let text = e.to_string();
        eprintln!(
            "sockq: sample failed (a gap in the recording): {}",
            terminal_safe(&text)
        );
        Ok(Flow::Continue)
    }
}

/// The recorded interval, within the range the engine accepts.
pub fn recorded_interval(interval_s: f64) -> Duration {
    let s = if interval_s.is_finite() {
        interval_s.clamp(0.1, 3600.0)
    } else {
        1.0
    };
    Duration::from_secs_f64(s)
}
