//! What the sampler thread sends to the engine every display tick.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Snapshot, TcpListener};

/// Identity of a listening socket across samples: inode numbers are reused, cookies are not.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct ListenerKey {
    /// Socket inode.
    pub inode: u64,
    /// Kernel socket cookie.
    pub cookie: u64,
}

impl From<&TcpListener> for ListenerKey {
    fn from(l: &TcpListener) -> Self {
        Self {
            inode: l.inode,
            cookie: l.cookie,
        }
    }
}

/// Highest and lowest accept-queue depth seen by the fast sampler since the previous tick
/// (the tick's own reading included), so that a burst between two ticks is not lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DepthRange {
    /// The listener.
    pub key: ListenerKey,
    /// Highest depth seen (may be backlog+1: the queue was full).
    pub high: u32,
    /// Lowest depth seen (0 means the queue drained at least once).
    pub low: u32,
    /// Number of readings the range is made of.
    pub readings: u32,
}

/// How the sampler spent its CPU budget during the tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CollectorStats {
    /// CPU time of the sampler thread since the previous tick, in percent of one core.
    pub cpu_percent: f64,
    /// The budget it keeps to, in percent of one core.
    pub budget_percent: f64,
    /// Wall time of this tick's full sample, in milliseconds.
    pub sample_ms: f64,
    /// Interval of the fast listener sampler now in force, in milliseconds (larger than asked
    /// for when the budget required it).
    pub fast_interval_ms: u64,
    /// Interval of the fast listener sampler asked for (--fast-interval), in milliseconds.
    #[serde(default)]
    pub fast_interval_asked_ms: u64,
    /// Age of the SYN-RECV numbers in this tick, in milliseconds: 0 when dumped this tick;
    /// more when the budget spaced out the (expensive) SYN-RECV dump.
    pub syn_recv_age_ms: u64,
    /// True when the budget made the sampler dump SYN-RECV less often or poll listeners more
    /// slowly than configured.
    pub throttled: bool,
    /// Listeners the fast sampler polls between ticks (the active ones: a queue, drops,
    /// SYN-RECV or new connections within the last minute, or selected); the others are read
    /// once per tick.
    #[serde(default)]
    pub active_listeners: u64,
    /// Fast polls of the active listeners per second over the interval since the previous
    /// tick (0 when none was active).
    #[serde(default)]
    pub fast_poll_hz: f64,
}

/// One display tick's worth of collected data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sample {
    /// The full sample.
    pub snapshot: Snapshot,
    /// Depth ranges per listener since the previous tick.
    pub depth_ranges: Vec<DepthRange>,
    /// The sampler's own cost.
    pub collector: CollectorStats,
}

/// Why a full sample failed. Sampling goes on; the tick becomes a gap in the history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SampleError {
    /// What failed, with its cause chain (e.g. "reading /proc/thread-self/net/netstat: …").
    pub message: String,
}

/// What a source of samples (the live sampler, a recording) hands its consumer.
#[derive(Debug)]
pub enum SampleEvent {
    /// A display tick's data.
    Sample(Box<Sample>),
    /// A full sample failed: the tick is a gap.
    Gap(SampleError),
    /// Start over with empty history (a replay seeking backwards).
    Reset,
}
