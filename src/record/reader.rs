//! Reading a recording back: its header, and every sample up to the first damage.
//!
//! A recording is a series of gzip members (one per line as written, though a line may span
//! members and a member hold several lines). Each member is decoded in turn and its CRC-32 and
//! length trailer checked before any line in it counts: the samples parsed from a member whose
//! trailer fails, or that ends early, are dropped, and reading stops there.
//!
//! What a read holds is bounded whatever the file: one line at most [`MAX_LINE_BYTES`], the
//! samples at most [`MAX_HELD_BYTES`] (past it, loading stops and says where, as at damage),
//! and an error quotes at most [`MAX_QUOTE_CHARS`] characters of the input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;

use bytesize::ByteSize;

use super::{Header, RecordError, RECORDING_VERSION};
use crate::model::{DepthRange, Owners, ProcessInfo, Sample, TcpListener, UnixListener};

/// The longest line (one sample's JSON) a recording may hold: far above any real sample
/// (a namespace with 10 000 listeners writes about 4 MiB).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The most memory the samples of one replay may hold, as estimated by [`held_bytes`]. A
/// sample of a busy host holds 10 to 30 times its compressed size, so a 64 MiB recording
/// (the default rotation size) may reach it; loading then stops there and says so.
pub const MAX_HELD_BYTES: u64 = 1 << 30;

/// The longest first line: a header is a few hundred bytes.
const MAX_HEADER_BYTES: usize = 64 << 10;

/// The most characters of the input an error quotes.
pub const MAX_QUOTE_CHARS: usize = 100;

/// Bounds on what reading a recording may hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest line, bytes: a longer one stops the read there.
    pub max_line: usize,
    /// The most the samples read may hold ([`held_bytes`]): loading stops before the sample
    /// that would pass it.
    pub max_held: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE_BYTES,
            max_held: MAX_HELD_BYTES,
        }
    }
}

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
    read_from_with(r, path, ReadLimits::default())
}

/// [`read_from`] within `limits`.
pub fn read_from_with(
    r: impl Read,
    path: &Path,
    limits: ReadLimits,
) -> Result<Recording, RecordError> {
    let mut src = Counted {
        inner: BufReader::new(r),
        pos: 0,
        failed: false,
    };
    let mut loader = Loader {
        path,
        limits,
        held: 0,
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
            Err(e) => return loader.stop(member_at, Stop::Read(e)),
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
                Err(e) if member.get_ref().failed => return loader.stop(member_at, Stop::Read(e)),
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
    /// The file could not be read.
    Read(io::Error),
    /// The gzip data is damaged or cut short.
    Gzip(io::Error),
    /// The file ends inside a line.
    CutShort,
    /// A line is not a sample (the JSON error).
    Invalid(String),
    /// A line is longer than the limit.
    TooLong,
    /// The samples read hold as much memory as the limit allows.
    Full,
    /// The first line is not a sockq recording's header.
    Header(RecordError),
}

/// The state of a read: what was verified, what waits for its member's trailer.
struct Loader<'a> {
    path: &'a Path,
    limits: ReadLimits,
    /// What the samples read so far hold ([`held_bytes`]).
    held: u64,
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
        let max = if self.header.is_none() {
            MAX_HEADER_BYTES.min(self.limits.max_line)
        } else {
            self.limits.max_line
        };
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            let (head, rest) = bytes.split_at(i + 1);
            if self.line.len() + head.len() > max {
                return Err(Stop::TooLong);
            }
            self.line.extend_from_slice(head);
            bytes = rest;
            let line = std::mem::take(&mut self.line);
            self.take_line(&line)?;
            self.line = line;
            self.line.clear();
        }
        if self.line.len() + bytes.len() > max {
            return Err(Stop::TooLong);
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
            let sample = serde_json::from_slice::<Sample>(line)
                .map_err(|e| Stop::Invalid(clip(&e.to_string())))?;
            let held = held_bytes(&sample);
            if self.held + held > self.limits.max_held {
                return Err(Stop::Full);
            }
            self.held += held;
            self.pending.push(sample);
        }
        self.pending_lines += 1;
        Ok(())
    }

    /// The header: its format and version first (a newer version may have other fields).
    fn parse_header(&self, line: &[u8]) -> Result<Header, RecordError> {
        #[derive(serde::Deserialize)]
        struct Probe {
            format: String,
            version: u64,
        }
        let probe = serde_json::from_slice::<Probe>(line)
            .ok()
            .filter(|p| p.format == "sockq-recording")
            .ok_or_else(|| self.not_a_recording("no sockq-recording header".into()))?;
        let path = self.path.to_path_buf();
        if probe.version > u64::from(RECORDING_VERSION) {
            return Err(RecordError::NewerVersion {
                path,
                version: probe.version,
            });
        }
        if probe.version != u64::from(RECORDING_VERSION) {
            return Err(RecordError::BadVersion {
                path,
                version: probe.version,
            });
        }
        serde_json::from_slice(line).map_err(|e| {
            self.not_a_recording(format!("a damaged header: {}", clip(&e.to_string())))
        })
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

    /// Reading stopped in the member at byte `at`: the samples verified so far and where it
    /// stopped, or an error when the header is not there or its gzip member is damaged.
    fn stop(self, at: u64, stop: Stop) -> Result<Recording, RecordError> {
        let cut_short = || "is cut short: the file ends inside it".to_string();
        // The member is damaged: none of its lines count. A line is not a sample: the lines of
        // the member before it wait for the trailer, and are dropped with it.
        let (what, member_failed) = match stop {
            Stop::Header(e) => return Err(e),
            Stop::Read(error) if self.lines == 0 => {
                return Err(RecordError::Io {
                    doing: "reading",
                    path: self.path.to_path_buf(),
                    error,
                })
            }
            Stop::TooLong if self.header.is_none() => {
                let max = ByteSize(MAX_HEADER_BYTES.min(self.limits.max_line) as u64);
                return Err(self.not_a_recording(format!("its first line is longer than {max}")));
            }
            Stop::Read(e) => (format!("could not be read: {e}"), true),
            Stop::Gzip(e) if e.kind() == io::ErrorKind::UnexpectedEof => (cut_short(), true),
            Stop::CutShort => (cut_short(), true),
            Stop::Gzip(e) => (format!("is damaged: {}", clip(&e.to_string())), true),
            Stop::Invalid(e) => (format!("is not a valid sample: {e}"), false),
            Stop::TooLong => (
                format!(
                    "is longer than {}, the most one sample may take",
                    ByteSize(self.limits.max_line as u64)
                ),
                false,
            ),
            Stop::Full => (
                format!(
                    "would take the samples loaded past {}, the most a replay holds",
                    ByteSize(self.limits.max_held)
                ),
                false,
            ),
        };
        if self.header.is_none() || (member_failed && self.lines == 0) {
            return Err(self.not_a_recording(format!(
                "its header, in the gzip member at byte {at}, {what}"
            )));
        }
        let n = self.samples.len();
        let (sample, line) = if member_failed {
            (n + 1, self.lines + 1)
        } else {
            (
                n + self.pending.len() + 1,
                self.lines + self.pending_lines + 1,
            )
        };
        let damage = format!(
            "stopped after sample {n}: sample {sample} (line {line}, gzip member at byte {at}) \
             {what}"
        );
        self.finish(Some(damage))
    }

    fn finish(self, damage: Option<String>) -> Result<Recording, RecordError> {
        match self.header {
            Some(header) => Ok(Recording {
                header,
                samples: self.samples,
                damage,
            }),
            _ => Err(self.not_a_recording("an empty file".into())),
        }
    }
}

/// About how much memory a parsed sample holds: its structs, and each string, list item and
/// map entry with an allocation's overhead. A recording is read back into these, so this is
/// what [`ReadLimits::max_held`] bounds. (A field of the model that holds memory of its own,
/// a string, list or map, belongs here.)
pub fn held_bytes(s: &Sample) -> u64 {
    use std::mem::size_of;
    /// Allocator header and rounding, per allocation or map entry.
    const ALLOC: usize = 32;
    let text = |t: &str| t.len() + ALLOC;
    let owners = |o: &Owners| match o {
        Owners::Known { processes } => processes
            .iter()
            .map(|p| size_of::<ProcessInfo>() + text(&p.comm))
            .sum(),
        Owners::Unknown { reason } => text(reason),
    };
    let snap = &s.snapshot;
    let counters = &snap.counters;
    let bytes = size_of::<Sample>()
        + [
            &snap.time.wall,
            &snap.host.hostname,
            &snap.host.kernel,
            &snap.netns.label,
        ]
        .iter()
        .map(|t| text(t))
        .sum::<usize>()
        + snap
            .tcp_listeners
            .iter()
            .map(|l| size_of::<TcpListener>() + owners(&l.owners))
            .sum::<usize>()
        + snap
            .unix_listeners
            .iter()
            .flatten()
            .map(|u| size_of::<UnixListener>() + text(&u.name) + owners(&u.owners))
            .sum::<usize>()
        + counters
            .tcp_ext
            .keys()
            .chain(counters.tcp.keys())
            .map(|k| size_of::<(String, u64)>() + text(k))
            .sum::<usize>()
        + snap
            .blind_spots
            .iter()
            .map(|b| size_of::<String>() + text(b))
            .sum::<usize>()
        + s.depth_ranges.len() * size_of::<DepthRange>();
    bytes as u64
}

/// `text` with at most [`MAX_QUOTE_CHARS`] characters of it: its start and its end.
fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= MAX_QUOTE_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_QUOTE_CHARS / 2).collect();
    let tail: String = text.chars().skip(n - MAX_QUOTE_CHARS / 2).collect();
    format!(
        "{head} … ({} characters left out) … {tail}",
        n - MAX_QUOTE_CHARS
    )
}

/// A reader that counts the bytes taken from it (where each gzip member starts), and tells
/// its own errors from the decoder's.
struct Counted<R> {
    inner: R,
    pos: u64,
    /// Reading failed (an error other than EINTR).
    failed: bool,
}

/// Notes in `failed` that reading failed, unless only interrupted.
fn noted(failed: &mut bool, e: io::Error) -> io::Error {
    *failed |= e.kind() != io::ErrorKind::Interrupted;
    e
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| noted(&mut self.failed, e))?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let Self { inner, failed, .. } = self;
        inner.fill_buf().map_err(|e| noted(failed, e))
    }

    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_at_most_the_quote_limit_of_long_text() {
        assert_eq!(clip("short"), "short");
        let long = format!("start {} end", "é".repeat(10_000));
        let clipped = clip(&long);
        assert!(clipped.starts_with("start é"), "{clipped}");
        assert!(clipped.ends_with("é end"), "{clipped}");
        assert!(clipped.contains("(9910 characters left out)"), "{clipped}");
        let kept = clipped.chars().filter(|&c| c == 'é').count();
        assert!(kept <= MAX_QUOTE_CHARS, "{kept}");
    }
}
