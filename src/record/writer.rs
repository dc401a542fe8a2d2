//! Writing a recording: one gzip member per line, rotating at a size cap.

use std::fs::{File, FileType, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
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
        RecordError::io("encoding JSON for", &self.path)(e.into())
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

    /// Moves FILE to FILE.1, FILE.1 to FILE.2, …, drops FILE.{keep}, and starts a new FILE.
    /// Only files sockq wrote move: FILE must still be the file it has open, and each
    /// FILE.n a regular file or absent; anything else stops the recording, untouched.
    fn rotate(&mut self) -> Result<(), RecordError> {
        self.check_still_open()?;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        // Every name is checked before anything moves, then again as it moves.
        for n in 1..=self.keep {
            regular_or_absent(&numbered(n), "rotate")?;
        }
        if self.keep == 0 {
            remove(&self.path)?;
        } else {
            if regular_or_absent(&numbered(self.keep), "rotate")? {
                remove(&numbered(self.keep))?;
            }
            for n in (1..self.keep).rev() {
                if regular_or_absent(&numbered(n), "rotate")? {
                    rename(&numbered(n), &numbered(n + 1))?;
                }
            }
            rename(&self.path, &numbered(1))?;
        }
        self.out = open_new(&self.path)?;
        self.written = 0;
        self.write_header()
    }

    /// Fails unless the path still names the file being written (same device and inode).
    fn check_still_open(&self) -> Result<(), RecordError> {
        let open = self
            .out
            .metadata()
            .map_err(RecordError::io("checking", &self.path))?;
        match std::fs::symlink_metadata(&self.path) {
            Ok(now) if now.dev() == open.dev() && now.ino() == open.ino() => Ok(()),
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(RecordError::io("checking", &self.path)(e))
            }
            _ => Err(RecordError::Replaced {
                path: self.path.clone(),
            }),
        }
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

fn remove(path: &Path) -> Result<(), RecordError> {
    std::fs::remove_file(path).map_err(RecordError::io("rotating: removing", path))
}

/// True when `path` is a regular file, false when there is nothing there; an error naming
/// it when it is anything else (looked at without following a symbolic link).
fn regular_or_absent(path: &Path, doing: &'static str) -> Result<bool, RecordError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(true),
        Ok(m) => Err(not_regular(path, doing, m.file_type())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RecordError::io("checking", path)(e)),
    }
}

fn not_regular(path: &Path, doing: &'static str, t: FileType) -> RecordError {
    let what = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    RecordError::NotRegular {
        doing,
        path: path.to_path_buf(),
        what,
    }
}

/// Opens `path` for a new recording: creates it, or truncates it when it is a regular file.
/// Anything else is refused without being opened for writing (opening a device can act on it,
/// opening a FIFO without a reader blocks, deaf to SIGTERM and SIGINT).
fn open_new(path: &Path) -> Result<File, RecordError> {
    regular_or_absent(path, "record to")?;
    // Something may take its place meanwhile: O_NOFOLLOW refuses a symbolic link as the last
    // component (ELOOP) and O_NONBLOCK keeps a FIFO from blocking the open (no effect on a
    // regular file); what was opened is checked again below, before anything is written.
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match std::fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_file() => not_regular(path, "record to", m.file_type()),
            _ => RecordError::io("creating", path)(e),
        })?;
    let meta = file.metadata().map_err(RecordError::io("checking", path))?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path, "record to", meta.file_type()));
    }
    file.set_len(0)
        .map_err(RecordError::io("truncating", path))?;
    Ok(file)
}
