//! `sockq record` / `sockq replay`: samples to a file and back.
//!
//! Format: gzip, one gzip member per line, each line one JSON document — so `zcat FILE | jq`
//! reads it, a crash loses at most the sample being written, and a truncated or corrupted file
//! still yields every sample before the damage (a sample counts once its member's checksum
//! matched). The first line is a [`Header`]; every other line is a
//! [`Sample`](crate::model::Sample) (what the engine ingests, so a replay derives exactly what
//! the live views derived). Files rotate at a size cap: FILE, FILE.1, FILE.2, …
//!
//! [`Recorder`] (writer.rs) writes and rotates regular files only; [`read`] (reader.rs) holds
//! at most [`ReadLimits`] whatever the file. Every error is a [`RecordError`] naming the file.

use serde::{Deserialize, Serialize};

mod error;
mod reader;
pub mod replay;
mod writer;

pub use error::RecordError;
pub use reader::{
    held_bytes, read, read_from, read_from_with, ReadLimits, Recording, MAX_HELD_BYTES,
    MAX_LINE_BYTES, MAX_QUOTE_CHARS,
};
pub use replay::Replay;
pub use writer::Recorder;

/// Format version written in the header.
pub const RECORDING_VERSION: u32 = 1;

/// First line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always `sockq-recording`.
    pub format: String,
    /// [`RECORDING_VERSION`].
    pub version: u32,
    /// sockq's version.
    pub sockq: String,
    /// Display interval of the recording, seconds.
    pub interval_s: f64,
    /// Which namespace was recorded (label).
    pub netns: String,
}
