//! Plain data: samples and what is derived from them. No I/O, no terminal.

pub mod engine;
pub mod filter;
pub mod history;
pub mod meta;
pub mod rates;
pub mod sample;
pub mod snapshot;

pub use filter::Filter;
pub use sample::*;
pub use snapshot::*;
