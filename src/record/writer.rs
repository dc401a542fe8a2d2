//! Writing a recording: one gzip member per line, rotating at a size cap.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::write::GzEncoder;
use flate2::Compression;

use super::Header;
use crate::model::Sample;

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
