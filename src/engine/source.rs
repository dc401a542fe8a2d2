//! Where samples come from, seen from the engine: the live sampler (`collect`) or a recording
//! being replayed (`record`). Views and commands hold a `dyn Source` and never know which.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{ListenerKey, SampleEvent};

/// Called by a source when an event becomes ready, so a consumer that also waits on other
/// things (the dashboard waits on the terminal) wakes at once instead of at its next poll.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The source has ended for good (its thread stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sample source has stopped")]
pub struct SourceEnded;

/// A stream of samples.
pub trait Source {
    /// Waits up to `timeout` for the next event. `Ok(None)` when none came in time.
    fn next_event(&mut self, timeout: Duration) -> Result<Option<SampleEvent>, SourceEnded>;

    /// The user changed the display interval.
    fn set_interval(&mut self, _d: Duration) {}

    /// The listeners the user has selected (the dashboard's highlighted row): a live source
    /// polls them at its fast rate whether they are active or not. Replaces the last call's.
    fn select(&mut self, _keys: Vec<ListenerKey>) {}

    /// A key the source handles itself (replay controls); true when taken.
    fn on_key(&mut self, _key: char) -> bool {
        false
    }

    /// A status line for the header (e.g. the replay position).
    fn status(&self) -> Option<String> {
        None
    }

    /// Asks to be woken when an event is ready. Sources that are polled by time (a replay)
    /// ignore it and say when they are next due instead.
    fn set_waker(&mut self, _waker: Waker) {}

    /// How long until the next event is due, for sources paced by time; `None` when the
    /// source wakes its consumer itself (or has nothing more to give).
    fn next_due(&self) -> Option<Duration> {
        None
    }

    /// True when the source has nothing more to give (the end of a recording).
    fn exhausted(&self) -> bool {
        false
    }
}

/// What a source of every namespace (`--all-netns`) hands the dashboard's namespaces view.
#[derive(Debug)]
pub enum NsEvent {
    /// A namespace appeared.
    Added(crate::model::NetnsRef),
    /// A namespace disappeared.
    Removed(crate::model::NetnsRef),
    /// A namespace's sample (or failed sample).
    Sample(u64, SampleEvent),
    /// A namespace is now sampled at this interval.
    Interval(u64, Duration),
}

/// A stream of every namespace's samples (the live fleet).
pub trait NamespacesSource {
    /// Waits up to `timeout` for the next event.
    fn next_ns_event(&mut self, timeout: Duration) -> Option<NsEvent>;
}
