//! Writing a recording: one gzip member per line, rotating at a size cap.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{Header, RecordError};
use crate::model::Sample;

/// Writes samples, rotating at `max_bytes`, keeping `keep` old files.
pub struct Recorder {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    header: Header,
    out: File,
    written: u64,
}

impl Recorder {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(
        path: &Path,
        header: Header,
        max_bytes: u64,
        keep: u32,
    ) -> Result<Self, RecordError> {
        let out = open_new(path)?;
        let mut r = Self {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            header,
            out,
            written: 0,
        };
        r.write_header()?;
        Ok(r)
    }

    fn write_header(&mut self) -> Result<(), RecordError> {
        let json = serde_json::to_vec(&self.header).map_err(|e| self.encoding(e))?;
        self.write_line(&json)
    }

    fn encoding(&self, e: serde_json::Error) -> RecordError {
        RecordError::io("encoding a sample for", &self.path)(e.into())
    }

    /// Appends `json` and a newline as one gzip member, straight to the file.
    fn write_line(&mut self, json: &[u8]) -> Result<(), RecordError> {
        let mut gz = GzEncoder::new(
            Vec::with_capacity(json.len() / 4 + 64),
            Compression::default(),
        );
        let member = gz
            .write_all(json)
            .and_then(|()| gz.write_all(b"\n"))
            .and_then(|()| gz.finish())
            .map_err(RecordError::io("compressing a sample for", &self.path))?;
        // Unbuffered: each sample reaches the file at once, so a crash or kill loses nothing
        // already written.
        self.out
            .write_all(&member)
            .map_err(RecordError::io("writing", &self.path))?;
        self.written += member.len() as u64;
        Ok(())
    }

    /// Appends one sample; rotates first if the file is over the cap.
    pub fn write(&mut self, sample: &Sample) -> Result<(), RecordError> {
        if self.written >= self.max_bytes {
            self.rotate()?;
        }
        let json = serde_json::to_vec(sample).map_err(|e| self.encoding(e))?;
        self.write_line(&json)
    }

    fn rotate(&mut self) -> Result<(), RecordError> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            std::fs::remove_file(&self.path).ok();
        } else {
            std::fs::remove_file(numbered(self.keep)).ok();
            for n in (1..self.keep).rev() {
                if numbered(n).exists() {
                    rename(&numbered(n), &numbered(n + 1))?;
                }
            }
            rename(&self.path, &numbered(1))?;
        }
        self.out = open_new(&self.path)?;
        self.written = 0;
        self.write_header()
    }

    /// Bytes written to the current file.
    pub fn written(&self) -> u64 {
        self.written
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), RecordError> {
    std::fs::rename(from, to).map_err(|error| RecordError::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        error,
    })
}

fn open_new(path: &Path) -> Result<File, RecordError> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(RecordError::io("creating", path))
}
