//! Replaying a recording as a sample source: at its recorded pace × speed, with pause, step
//! and seek (the dashboard), or as fast as it is read (`replay --json`).

use std::time::{Duration, Instant};

use crate::engine::{Source, SourceEnded};
use crate::model::{Sample, SampleEvent};

/// Replays recorded samples at their recorded pace × speed, with pause, step and seek.
pub struct Replay {
    samples: Vec<Sample>,
    /// Next sample to hand out.
    next: usize,
    /// Samples to hand out at once (after a seek), up to this index.
    catch_up_to: usize,
    reset_pending: bool,
    /// Playback speed; `None` replays as fast as the consumer takes samples (`--json`).
    speed: Option<f64>,
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
            speed: Some(1.0),
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

    /// A replay that hands out every sample as soon as it is asked for (no pacing, no keys).
    pub fn unpaced(samples: Vec<Sample>, damage: Option<String>) -> Self {
        Self {
            speed: None,
            ..Self::new(samples, damage)
        }
    }

    fn take(&mut self) -> Option<SampleEvent> {
        let s = self.samples.get(self.next)?.clone();
        self.anchor = Some((Instant::now(), s.snapshot.time.monotonic_ns));
        self.next += 1;
        Some(SampleEvent::Sample(Box::new(s)))
    }
}

impl Replay {
    /// The next event if one is due now.
    fn poll(&mut self) -> Option<SampleEvent> {
        if self.reset_pending {
            self.reset_pending = false;
            return Some(SampleEvent::Reset);
        }
        if self.next < self.catch_up_to {
            return self.take();
        }
        if self.paused || self.next >= self.samples.len() {
            return None;
        }
        if self.until_due().is_zero() {
            self.take()
        } else {
            None
        }
    }

    /// Time until the next sample is due at the current speed (zero when due, or unpaced).
    fn until_due(&self) -> Duration {
        match (self.anchor, self.speed) {
            (Some((wall, rec)), Some(speed)) => {
                let gap_ns = self.recorded_ns(self.next).saturating_sub(rec) as f64 / speed;
                let gap = Duration::from_nanos(gap_ns.min(u64::MAX as f64) as u64);
                gap.saturating_sub(wall.elapsed())
            }
            _ => Duration::ZERO,
        }
    }
}

impl Source for Replay {
    fn next_event(&mut self, timeout: Duration) -> Result<Option<SampleEvent>, SourceEnded> {
        if let Some(e) = self.poll() {
            return Ok(Some(e));
        }
        // Nothing due yet: wait for it, up to the timeout.
        if let Some(wait) = self.next_due() {
            std::thread::sleep(wait.min(timeout));
            return Ok(self.poll());
        }
        Ok(None)
    }

    fn next_due(&self) -> Option<Duration> {
        let waiting = self.reset_pending || self.next < self.catch_up_to;
        if waiting {
            return Some(Duration::ZERO);
        }
        if self.paused || self.next >= self.samples.len() {
            return None;
        }
        Some(self.until_due())
    }

    fn exhausted(&self) -> bool {
        !self.reset_pending && self.next >= self.samples.len()
    }

    fn on_key(&mut self, key: char) -> bool {
        let Some(speed) = self.speed else {
            return false;
        };
        match key {
            ' ' => {
                self.paused = !self.paused;
                self.anchor = self.anchor.map(|(_, rec)| (Instant::now(), rec));
            }
            '.' => {
                self.paused = true;
                self.catch_up_to = (self.next + 1).min(self.samples.len());
            }
            ',' => {
                self.paused = true;
                self.seek(self.next.saturating_sub(2));
            }
            '>' => self.seek(self.next + 59),
            '<' => self.seek(self.next.saturating_sub(61)),
            ']' => self.speed = Some((speed * 2.0).min(64.0)),
            '[' => self.speed = Some((speed / 2.0).max(0.125)),
            '0' => self.seek(0),
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
            self.speed.unwrap_or(f64::INFINITY),
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
