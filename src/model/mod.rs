//! Plain data: samples and what is derived from them. No I/O, no terminal.

pub mod filter;
pub mod meta;
pub mod snapshot;

pub use filter::Filter;
pub use snapshot::*;
