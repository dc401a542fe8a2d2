//! Views that print the model: the one-shot table and JSON (and later the stream and exporter).

pub mod fleet;
pub mod json;
pub mod prometheus;
pub mod serve;
pub mod table;
pub mod watch;
