//! One display tick: a sample and everything the engine derived from it. What `watch --json`
//! prints and every live view renders.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ArrivalCheck, CollectorStats, Finding, ListenerKey, ServiceTick, Snapshot};

/// Version of the tick JSON schema (`docs/schema/tick.schema.json`).
pub const TICK_SCHEMA_VERSION: u32 = 1;

/// Per-tick state of one listener, as the JSON stream carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ListenerTick {
    /// Identity.
    pub key: ListenerKey,
    /// `address:port` as ss prints it.
    // Shared with the engine's copy: not a new string per listener per tick.
    pub endpoint: std::sync::Arc<str>,
    /// Accept-queue depth at the tick.
    pub depth: u32,
    /// Backlog in force.
    pub backlog: u32,
    /// Highest depth since the previous tick (fast sampler); may be backlog+1. Set to
    /// backlog+1 when the drop counters prove an overflow that no poll saw (`overflow_proven`).
    pub depth_high: u32,
    /// Lowest depth since the previous tick.
    pub depth_low: u32,
    /// Drops per second from the listener's own counter; absent on the first tick or a reset.
    pub drops_per_s: Option<f64>,
    /// Seconds the fill has stayed ≥ 80 %.
    pub high_fill_s: f64,
    /// Seconds the queue has stayed non-empty without draining.
    pub undrained_s: f64,
    /// The accept queue overflowed during this tick: a poll saw it full
    /// (depth_high > backlog), or the drop counters prove it (`overflow_proven`).
    #[serde(default)]
    pub overflowed: bool,
    /// The overflow was proven by the counters, not seen by a poll: the listener's own drop
    /// counter and the namespace's ListenOverflows both moved in this tick, so the queue held
    /// backlog+1 between two polls (the kernel drops only when depth > backlog:
    /// `sk_acceptq_is_full`).
    #[serde(default)]
    pub overflow_proven: bool,
    /// Drops counted by the listener's own counter in this tick (packets: a SYN and each of
    /// its retransmissions count).
    #[serde(default)]
    pub drops_delta: Option<u64>,
    /// The listener disappeared; shown until pruned.
    pub gone: bool,
    /// Rates of the listener's children from successive service dumps (new connections per
    /// second, Little's law, CLOSE-WAIT growth). Absent without service numbers.
    #[serde(default)]
    pub service: Option<ServiceTick>,
}

/// One display tick: the sample and everything derived from it. Serialized as one JSON line by
/// `sockq watch --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tick {
    /// Version of this schema (docs/schema/tick.schema.json).
    pub schema_version: u32,
    /// Tick number since the engine started (gaps count too).
    pub seq: u64,
    /// Seconds since the previous sample; absent on the first.
    pub interval_s: Option<f64>,
    /// Samples were missed just before this one (a gap is recorded in the history).
    pub gap_before: bool,
    /// The sample itself.
    pub snapshot: Snapshot,
    /// Derived per-listener numbers: the current listeners, and those that went away in this
    /// tick (`gone`: true, once).
    pub listeners: Vec<ListenerTick>,
    /// Listeners that went away within the retention (60 s) and are still kept, this tick's
    /// included: counted here instead of repeated in every tick.
    #[serde(default)]
    pub gone_listeners: usize,
    /// Per-second rates of every TcpExt counter; absent (null) on the first tick or a reset.
    pub counter_rates: BTreeMap<String, Option<f64>>,
    /// When ListenOverflows or ListenDrops moved this tick: the listeners whose own drop
    /// counters moved in the same interval.
    pub dropping_listeners: Vec<String>,
    /// Children first seen by cookie against Tcp PassiveOpens, between the last two service
    /// dumps. Absent before two dumps.
    #[serde(default)]
    pub arrivals: Option<ArrivalCheck>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// The sampler's own cost.
    pub collector: CollectorStats,
}
