//! Plain data: samples and what is derived from them. No I/O, no terminal, no rules.

pub mod fastmap;
pub mod filter;
pub mod finding;
pub mod fleet;
pub mod history;
pub mod lab;
pub mod labels;
pub mod meta;
pub mod netns;
pub mod process_self;
pub mod rates;
pub mod sample;
pub mod service;
pub mod snapshot;
#[doc(hidden)]
pub mod testing;
pub mod tick;

pub use fastmap::{fast_map, fast_set, FastMap, FastSet};
pub use filter::Filter;
pub use finding::{Finding, Severity};
pub use netns::{EnterBy, NetnsChanges, NetnsName, NetnsRef};
pub use process_self::ProcessSelf;
pub use sample::*;
pub use service::{ArrivalCheck, ServiceStats, ServiceSummary, ServiceTick, TcpSockstat, WaitFor};
pub use snapshot::*;
pub use tick::{ListenerTick, Tick, TICK_SCHEMA_VERSION};
