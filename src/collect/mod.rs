//! Talks to the kernel: sock_diag dumps, /proc counters and tunables, process attribution,
//! entering a network namespace, sockq's own process (`process_self`). I/O happens only here;
//! every parser is a pure function.
//!
//! A [`Collector`] belongs to the network namespace of the thread that created it (its netlink
//! socket stays there), so create it on the thread that will sample, after entering the
//! namespace (see [`netns::run_in`]).

pub mod active;
pub mod diag;
pub mod error;
pub mod fleet;
pub mod netlink;
pub mod netns;
pub mod netns_all;
pub mod owners;
pub mod process_self;
pub mod procnet;
pub mod sampler;
pub mod service;
pub mod tunables;

mod collector;
mod peaks;

pub use collector::{
    monotonic_ns, thread_cpu, Collector, CollectorOptions, ListenerSample, OWNER_RESCAN_FLOOR,
    SNAPSHOT_CPU_WINDOW,
};
pub use error::CollectError;
pub use process_self::process_self;
