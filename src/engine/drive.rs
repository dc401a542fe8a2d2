//! The one loop: source → engine → sink. Every non-interactive command (`watch`, `record`,
//! `serve`, `lab --headless`, `replay --json`) runs it; the dashboard's terminal loop feeds its
//! engine through the same [`Engine::apply`] step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::source::{Source, SourceEnded};
use super::Engine;
use crate::model::{Sample, SampleError, SampleEvent, Tick};

/// How long the loop waits for an event before it checks the stop flag and calls
/// [`Sink::idle`].
pub const WAKE: Duration = Duration::from_millis(100);

/// Whether the loop goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop now (a count was reached, the output closed).
    Stop,
}

/// What a command does with the stream. Every method defaults to doing nothing.
pub trait Sink {
    /// The command's error type; a source that ends is one of its errors.
    type Error: From<SourceEnded>;

    /// A raw sample, before the engine sees it (`record` writes it).
    fn sample(&mut self, _sample: &Sample) -> Result<Flow, Self::Error> {
        Ok(Flow::Continue)
    }

    /// The tick the engine derived from a sample.
    fn tick(&mut self, _tick: &Tick) -> Result<Flow, Self::Error> {
        Ok(Flow::Continue)
    }

    /// A failed sample, already recorded as a gap.
    fn gap(&mut self, _error: &SampleError) -> Result<Flow, Self::Error> {
        Ok(Flow::Continue)
    }

    /// Called after every wait, event or not (at least every [`WAKE`]).
    fn idle(&mut self) -> Result<Flow, Self::Error> {
        Ok(Flow::Continue)
    }
}

/// Runs until `stop` is set, the sink says stop, or the source is exhausted. Without an
/// engine, the sink sees samples and gaps but no ticks.
pub fn drive<S: Sink>(
    source: &mut dyn Source,
    mut engine: Option<&mut Engine>,
    stop: &AtomicBool,
    sink: &mut S,
) -> Result<(), S::Error> {
    while !stop.load(Ordering::Relaxed) {
        if let Some(event) = source.next_event(WAKE)? {
            if deliver(event, engine.as_deref_mut(), sink)? == Flow::Stop {
                return Ok(());
            }
        } else if source.exhausted() {
            return Ok(());
        }
        if sink.idle()? == Flow::Stop {
            return Ok(());
        }
    }
    Ok(())
}

fn deliver<S: Sink>(
    event: SampleEvent,
    engine: Option<&mut Engine>,
    sink: &mut S,
) -> Result<Flow, S::Error> {
    match event {
        SampleEvent::Sample(sample) => {
            if sink.sample(&sample)? == Flow::Stop {
                return Ok(Flow::Stop);
            }
            match engine {
                Some(engine) => sink.tick(engine.ingest(*sample)),
                None => Ok(Flow::Continue),
            }
        }
        SampleEvent::Gap(e) => {
            if let Some(engine) = engine {
                engine.record_gap();
            }
            sink.gap(&e)
        }
        SampleEvent::Reset => {
            if let Some(engine) = engine {
                engine.reset();
            }
            Ok(Flow::Continue)
        }
    }
}
