//! Reading a recording back: its header, and every sample up to the first damage.
//!
//! A recording is a series of gzip members (one per line as written, though a line may span
//! members and a member hold several lines). Each member is decoded in turn and its CRC-32 and
//! length trailer checked before any line in it counts: the samples parsed from a member whose
//! trailer fails, or that ends early, are dropped, and reading stops there.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;

use super::{Header, RecordError, RECORDING_VERSION};
use crate::model::Sample;

/// The first bytes of a gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

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
pub fn read(path: &Path) -> Result<Recording, RecordError> {
    let file = File::open(path).map_err(RecordError::io("opening", path))?;
    read_from(file, path)
}

/// [`read`] over any reader; `path` names it in errors.
pub fn read_from(r: impl Read, path: &Path) -> Result<Recording, RecordError> {
    let mut src = Counted {
        inner: BufReader::new(r),
        pos: 0,
    };
    let mut loader = Loader {
        path,
        header: None,
        samples: Vec::new(),
        pending: Vec::new(),
        lines: 0,
        pending_lines: 0,
        line: Vec::new(),
    };
    let mut chunk = vec![0u8; 64 << 10];
    let mut member_at;
    loop {
        member_at = src.pos;
        match src.fill_buf() {
            Ok([]) => break,
            Ok(start) if member_at == 0 && !start.starts_with(&GZIP_MAGIC) => {
                return Err(loader.not_a_recording("not gzip".into()));
            }
            Ok(_) => {}
            Err(e) => return loader.stop(member_at, Stop::Gzip(e)),
        }
        let mut member = GzDecoder::new(&mut src);
        loop {
            match member.read(&mut chunk) {
                // The end of the member: its trailer matched what was decoded.
                Ok(0) => break,
                Ok(n) => {
                    if let Err(stop) = loader.feed(chunk.get(..n).unwrap_or_default()) {
                        return loader.stop(member_at, stop);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return loader.stop(member_at, Stop::Gzip(e)),
            }
        }
        loader.verified();
    }
    if loader.line.is_empty() {
        loader.finish(None)
    } else {
        loader.stop(member_at, Stop::CutShort)
    }
}

/// Why reading stopped before the end of the file.
enum Stop {
    /// The gzip data is damaged, cut short, or could not be read.
    Gzip(io::Error),
    /// The file ends inside a line.
    CutShort,
    /// A line is not a sample (the JSON error).
    Invalid(String),
    /// The first line is not a sockq recording's header.
    Header(RecordError),
}

/// The state of a read: what was verified, what waits for its member's trailer.
struct Loader<'a> {
    path: &'a Path,
    header: Option<Header>,
    /// Samples of members whose trailer matched.
    samples: Vec<Sample>,
    /// Samples of the member being read.
    pending: Vec<Sample>,
    /// Lines (the header's included) of members whose trailer matched.
    lines: u64,
    /// Lines of the member being read.
    pending_lines: u64,
    /// The line being put together (it may span members).
    line: Vec<u8>,
}

impl Loader<'_> {
    /// Takes decoded bytes: whole lines are parsed (their member is not verified yet).
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Stop> {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            let (head, rest) = bytes.split_at(i + 1);
            self.line.extend_from_slice(head);
            bytes = rest;
            let line = std::mem::take(&mut self.line);
            self.take_line(&line)?;
            self.line = line;
            self.line.clear();
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn take_line(&mut self, line: &[u8]) -> Result<(), Stop> {
        if self.header.is_none() {
            self.header = Some(self.parse_header(line).map_err(Stop::Header)?);
        } else if line.starts_with(b"{\"format\":\"sockq-recording\"") {
            // A header repeated after rotation, in a concatenation of files.
        } else {
            let sample =
                serde_json::from_slice::<Sample>(line).map_err(|e| Stop::Invalid(e.to_string()))?;
            self.pending.push(sample);
        }
        self.pending_lines += 1;
        Ok(())
    }

    fn parse_header(&self, line: &[u8]) -> Result<Header, RecordError> {
        let header = serde_json::from_slice(line)
            .ok()
            .filter(|h: &Header| h.format == "sockq-recording")
            .ok_or_else(|| self.not_a_recording("no sockq-recording header".into()))?;
        if header.version > RECORDING_VERSION {
            return Err(RecordError::NewerVersion {
                path: self.path.to_path_buf(),
                version: header.version.into(),
            });
        }
        if header.version != RECORDING_VERSION {
            return Err(RecordError::BadVersion {
                path: self.path.to_path_buf(),
                version: header.version.into(),
            });
        }
        Ok(header)
    }

    /// The member being read ended and its trailer matched: its samples count.
    fn verified(&mut self) {
        self.samples.append(&mut self.pending);
        self.lines += self.pending_lines;
        self.pending_lines = 0;
    }

    fn not_a_recording(&self, why: String) -> RecordError {
        RecordError::NotARecording {
            path: self.path.to_path_buf(),
            why,
        }
    }

    /// Reading stopped in the member at byte `at`: the samples verified so far, and why, or
    /// an error when not even the header was.
    fn stop(self, at: u64, stop: Stop) -> Result<Recording, RecordError> {
        if let Stop::Header(e) = stop {
            return Err(e);
        }
        if self.lines == 0 {
            let why = match stop {
                Stop::Gzip(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
                    format!("its header is damaged: {e}")
                }
                _ => "the file ends inside its header".into(),
            };
            return Err(self.not_a_recording(why));
        }
        let what = match stop {
            Stop::Gzip(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                "is cut short: the file ends inside it".to_string()
            }
            Stop::CutShort => "is cut short: the file ends inside it".to_string(),
            Stop::Gzip(e) => format!("is damaged: {e}"),
            Stop::Invalid(e) => format!("is not a valid sample: {e}"),
            Stop::Header(_) => String::new(),
        };
        let n = self.samples.len();
        let damage = format!(
            "stopped after sample {n}: sample {} (line {}, gzip member at byte {at}) {what}",
            n + 1,
            self.lines + 1
        );
        self.finish(Some(damage))
    }

    fn finish(self, damage: Option<String>) -> Result<Recording, RecordError> {
        match self.header {
            Some(header) if self.lines > 0 => Ok(Recording {
                header,
                samples: self.samples,
                damage,
            }),
            _ => Err(self.not_a_recording("an empty file".into())),
        }
    }
}

/// A reader that counts the bytes taken from it (where each gzip member starts).
struct Counted<R> {
    inner: R,
    pos: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}
