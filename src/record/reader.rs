//! Reading a recording back: its header, and every sample up to the first damage.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::{Header, RecordError, RECORDING_VERSION};
use crate::model::Sample;

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
    let not_a_recording = |why: String| RecordError::NotARecording {
        path: path.to_path_buf(),
        why,
    };
    let mut reader = BufReader::new(MultiGzDecoder::new(BufReader::new(r)));
    let mut line = Vec::new();
    let header: Header = match reader.read_until(b'\n', &mut line) {
        Ok(0) => return Err(not_a_recording("an empty file".into())),
        Ok(_) => serde_json::from_slice(&line)
            .ok()
            .filter(|h: &Header| h.format == "sockq-recording")
            .ok_or_else(|| not_a_recording("no sockq-recording header".into()))?,
        Err(e) => return Err(not_a_recording(format!("not gzip: {e}"))),
    };
    if header.version > RECORDING_VERSION {
        return Err(RecordError::NewerVersion {
            path: path.to_path_buf(),
            version: header.version.into(),
        });
    }
    if header.version != RECORDING_VERSION {
        return Err(RecordError::BadVersion {
            path: path.to_path_buf(),
            version: header.version.into(),
        });
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
