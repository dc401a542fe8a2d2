//! Where the dashboard's samples come from: the live sampler, or a recording being replayed.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind};

use crate::collect::sampler::{Sampler, SamplerCommand, SamplerEvent};
use crate::model::Sample;

/// What a source hands the event loop.
#[derive(Debug)]
pub enum SourceEvent {
    /// A tick's data.
    Sample(Box<Sample>),
    /// A failed sample (a gap).
    Error(String),
    /// Start over with an empty engine (a replay seeking backwards).
    Reset,
}

/// A stream of samples for the dashboard.
pub trait Source {
    /// The next event, if one is due. Never blocks.
    fn poll(&mut self) -> Option<SourceEvent>;
    /// The user changed the display interval.
    fn set_interval(&mut self, d: Duration);
    /// Keys the source handles itself (replay controls); true when taken.
    fn on_key(&mut self, _key: &KeyEvent) -> bool {
        false
    }
    /// A status line for the header (e.g. the replay position).
    fn status(&self) -> Option<String> {
        None
    }
}

impl Source for Sampler {
    fn poll(&mut self) -> Option<SourceEvent> {
        self.try_recv().map(|e| match e {
            SamplerEvent::Sample(s) => SourceEvent::Sample(s),
            SamplerEvent::Error(e) => SourceEvent::Error(e),
        })
    }

    fn set_interval(&mut self, d: Duration) {
        self.command(SamplerCommand::SetInterval(d));
    }
}

/// Replays recorded samples at their recorded pace × speed, with pause, step and seek.
pub struct Replay {
    samples: Vec<Sample>,
    /// Next sample to hand out.
    next: usize,
    /// Samples to hand out at once (after a seek), up to this index.
    catch_up_to: usize,
    reset_pending: bool,
    speed: f64,
    paused: bool,
    /// Wall time and recorded time of the last sample handed out.
    anchor: Option<(Instant, u64)>,
    damage: Option<String>,
}

impl Replay {
    /// A replay of `samples`; `damage` describes where a damaged file stopped.
    pub fn new(samples: Vec<Sample>, damage: Option<String>) -> Self {
        Self {
            samples,
            next: 0,
            catch_up_to: 0,
            reset_pending: false,
            speed: 1.0,
            paused: false,
            anchor: None,
            damage,
        }
    }

    fn recorded_ns(&self, i: usize) -> u64 {
        self.samples
            .get(i)
            .map_or(0, |s| s.snapshot.time.monotonic_ns)
    }

    /// Moves so that the next sample handed out is `target` (history rebuilt from the start).
    pub fn seek(&mut self, target: usize) {
        let target = target.min(self.samples.len());
        self.reset_pending = true;
        self.next = 0;
        self.catch_up_to = target;
        self.anchor = None;
    }

    /// Index of the next sample.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    fn take(&mut self) -> Option<SourceEvent> {
        let s = self.samples.get(self.next)?.clone();
        self.anchor = Some((Instant::now(), s.snapshot.time.monotonic_ns));
        self.next += 1;
        Some(SourceEvent::Sample(Box::new(s)))
    }
}

impl Source for Replay {
    fn poll(&mut self) -> Option<SourceEvent> {
        if self.reset_pending {
            self.reset_pending = false;
            return Some(SourceEvent::Reset);
        }
        if self.next < self.catch_up_to {
            return self.take();
        }
        if self.paused || self.next >= self.samples.len() {
            return None;
        }
        let due = match self.anchor {
            None => true,
            Some((wall, rec)) => {
                let gap_ns = self.recorded_ns(self.next).saturating_sub(rec) as f64 / self.speed;
                wall.elapsed().as_nanos() as f64 >= gap_ns
            }
        };
        if due {
            self.take()
        } else {
            None
        }
    }

    fn set_interval(&mut self, _d: Duration) {}

    fn on_key(&mut self, key: &KeyEvent) -> bool {
        if key.kind == KeyEventKind::Release {
            return false;
        }
        match key.code {
            KeyCode::Char(' ') => {
                self.paused = !self.paused;
                self.anchor = self.anchor.map(|(_, rec)| (Instant::now(), rec));
            }
            KeyCode::Char('.') => {
                self.paused = true;
                self.catch_up_to = (self.next + 1).min(self.samples.len());
            }
            KeyCode::Char(',') => {
                self.paused = true;
                self.seek(self.next.saturating_sub(2));
            }
            KeyCode::Char('>') => self.seek(self.next + 59),
            KeyCode::Char('<') => self.seek(self.next.saturating_sub(61)),
            KeyCode::Char(']') => self.speed = (self.speed * 2.0).min(64.0),
            KeyCode::Char('[') => self.speed = (self.speed / 2.0).max(0.125),
            KeyCode::Char('0') => self.seek(0),
            _ => return false,
        }
        true
    }

    fn status(&self) -> Option<String> {
        let at = self
            .next
            .checked_sub(1)
            .and_then(|i| self.samples.get(i))
            .map_or("-".to_string(), |s| s.snapshot.time.wall.clone());
        let mut s = format!(
            "REPLAY {at}  sample {}/{}  ×{}{}",
            self.next,
            self.samples.len(),
            self.speed,
            if self.paused { "  ‖ paused" } else { "" }
        );
        if self.next >= self.samples.len() {
            s.push_str("  (end)");
        }
        if let Some(d) = &self.damage {
            s.push_str(&format!("  ⚠ {d}"));
        }
        Some(s)
    }
}
