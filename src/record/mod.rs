//! `sockq record` / `sockq replay`: samples to a file and back.
//!
//! Format: gzip, one gzip member per line, each line one JSON document — so `zcat FILE | jq`
//! reads it, a crash loses at most the sample being written, and a truncated or corrupted file
//! still yields every complete sample before the damage. The first line is a [`Header`]; every
//! other line is a [`Sample`] (what the engine ingests, so a replay derives exactly what the
//! live views derived). Files rotate at a size cap: FILE, FILE.1, FILE.2, …

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use crate::model::Sample;

pub mod replay;

pub use replay::Replay;

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

/// Writes samples, rotating at `max_bytes`, keeping `keep` old files.
pub struct Recorder {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    header: Header,
    out: BufWriter<File>,
    written: u64,
}

impl Recorder {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: &Path, header: Header, max_bytes: u64, keep: u32) -> anyhow::Result<Self> {
        let out = open_new(path)?;
        let mut r = Self {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            header,
            out,
            written: 0,
        };
        r.write_line(&serde_json::to_vec(&r.header)?)?;
        Ok(r)
    }

    fn write_line(&mut self, json: &[u8]) -> anyhow::Result<()> {
        let mut gz = GzEncoder::new(
            Vec::with_capacity(json.len() / 4 + 64),
            Compression::default(),
        );
        gz.write_all(json)?;
        gz.write_all(b"\n")?;
        let member = gz.finish()?;
        self.out
            .write_all(&member)
            .with_context(|| format!("writing {}", self.path.display()))?;
        // Each sample reaches the file at once: a crash or kill loses nothing already written.
        self.out.flush()?;
        self.written += member.len() as u64;
        Ok(())
    }

    /// Appends one sample; rotates first if the file is over the cap.
    pub fn write(&mut self, sample: &Sample) -> anyhow::Result<()> {
        if self.written >= self.max_bytes {
            self.rotate()?;
        }
        self.write_line(&serde_json::to_vec(sample)?)
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            std::fs::remove_file(&self.path).ok();
        } else {
            std::fs::remove_file(numbered(self.keep)).ok();
            for n in (1..self.keep).rev() {
                if numbered(n).exists() {
                    std::fs::rename(numbered(n), numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.out = open_new(&self.path)?;
        self.written = 0;
        let header = serde_json::to_vec(&self.header)?;
        self.write_line(&header)
    }

    /// Bytes written to the current file.
    pub fn written(&self) -> u64 {
        self.written
    }
}

fn open_new(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok(BufWriter::new(f))
}

/// A recording read back: the samples up to the first damage, and where the damage is.
#[derive(Debug)]
pub struct Recording {
    /// The header.
    pub header: Header,
    /// Every complete sample before any damage.
    pub samples: Vec<Sample>,
    /// Where reading stopped early, in words (None when the file was read to its end).
    pub damage: Option<String>,
}

/// Reads a recording. A file that is not a sockq recording is an error; a truncated or
/// corrupted one yields its valid prefix and a description of where it stopped.
pub fn read(path: &Path) -> anyhow::Result<Recording> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    read_from(file).with_context(|| format!("reading {}", path.display()))
}

/// [`read`] over any reader.
pub fn read_from(r: impl Read) -> anyhow::Result<Recording> {
    let mut reader = BufReader::new(MultiGzDecoder::new(BufReader::new(r)));
    let mut line = Vec::new();
    let header: Header = match reader.read_until(b'\n', &mut line) {
        Ok(0) => anyhow::bail!("empty file: not a sockq recording"),
        Ok(_) => serde_json::from_slice(&line)
            .ok()
            .filter(|h: &Header| h.format == "sockq-recording")
            .ok_or_else(|| anyhow::anyhow!("not a sockq recording (no sockq-recording header)"))?,
        Err(e) => anyhow::bail!("not a sockq recording (not gzip: {e})"),
    };
    if header.version != RECORDING_VERSION {
        anyhow::bail!(
            "recording format version {} is not supported (this sockq reads version {RECORDING_VERSION})",
            header.version
        );
    }
    let mut samples = Vec::new();
    let mut damage = None;
    let mut lineno = 1u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                lineno += 1;
                if line.last() != Some(&b'\n') {
                    damage = Some(format!(
                        "truncated at sample {} (line {lineno}): the file ends inside a sample",
                        samples.len() + 1
                    ));
                    break;
                }
                if line.starts_with(b"{\"format\":\"sockq-recording\"") {
                    continue; // a header repeated after rotation within a concatenation
                }
                match serde_json::from_slice::<Sample>(&line) {
                    Ok(s) => samples.push(s),
                    Err(e) => {
                        damage = Some(format!(
                            "corrupted sample {} (line {lineno}): {e}",
                            samples.len() + 1
                        ));
                        break;
                    }
                }
            }
            Err(e) => {
                damage = Some(format!(
                    "damaged after sample {} (line {}): {e}",
                    samples.len(),
                    lineno + 1
                ));
                break;
            }
        }
    }
    Ok(Recording {
        header,
        samples,
        damage,
    })
}
