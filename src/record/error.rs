//! Why recording, or reading a recording, failed. Every message names the file and what was
//! being done with it.

use std::io;
use std::path::PathBuf;

use super::RECORDING_VERSION;

/// An error of `record` or `replay`.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file operation failed (the I/O error is in the message, not chained).
    #[error("{doing} {}: {error}", path.display())]
    Io {
        /// What was being done, e.g. "writing".
        doing: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        error: io::Error,
    },
    /// Rotating: a file could not be renamed.
    #[error("rotating {}: renaming it to {}: {error}", from.display(), to.display())]
    Rename {
        /// The file being moved.
        from: PathBuf,
        /// Its new name.
        to: PathBuf,
        /// Why it failed.
        error: io::Error,
    },
    /// The path is not a regular file (a device, a FIFO, a socket, a directory, a symbolic
    /// link): `record` neither writes nor rotates it.
    #[error(
        "refusing to {doing} {}: it is {what}; sockq records only to regular files (a new \
         file, or an existing regular file; not a device, FIFO, socket, directory or \
         symbolic link)",
        path.display()
    )]
    NotRegular {
        /// "record to" or "rotate".
        doing: &'static str,
        /// The path.
        path: PathBuf,
        /// What it is, e.g. "a character device".
        what: &'static str,
    },
    /// The file being recorded to was removed or replaced by another: rotation leaves it be.
    #[error(
        "rotating {}: it is no longer the file sockq was writing (removed or replaced); \
         not rotating it",
        path.display()
    )]
    Replaced {
        /// The path.
        path: PathBuf,
    },
    /// The file is not a sockq recording.
    #[error("reading {}: not a sockq recording ({why})", path.display())]
    NotARecording {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, in words.
        why: String,
    },
    /// The recording was written by a newer sockq.
    #[error(
        "reading {}: recording version {version} is newer than this sockq reads (up to {})",
        path.display(),
        RECORDING_VERSION
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u64,
    },
    /// The recording has a version no sockq wrote (0).
    #[error(
        "reading {}: recording version {version} is not one sockq writes (1 to {})",
        path.display(),
        RECORDING_VERSION
    )]
    BadVersion {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u64,
    },
}

impl RecordError {
    /// An I/O error while `doing` something with `path`.
    pub(crate) fn io(
        doing: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |error| RecordError::Io { doing, path, error }
    }
}
