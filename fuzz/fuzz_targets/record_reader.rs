//! A recording file through `sockq::record::read_from_with`, under small `ReadLimits` (so the
//! limits themselves are exercised): it must return Ok or Err, never panic, and hold no more
//! than the limits allow.
//!
//! Random bytes rarely make a gzip member whose CRC matches, so the first byte picks how the
//! rest is used: even, it is the file as is; odd, it is the decompressed text, written as one
//! gzip member per line as `sockq record` writes it (every third line split across two
//! members, as a concatenation may), which takes the fuzzer to the header, JSON and line
//! handling behind the CRC check.
#![no_main]

use std::path::Path;

use flate2::Crc;
use libfuzzer_sys::fuzz_target;
use sockq::record::{held_bytes, read_from_with, ReadLimits};

const LIMITS: ReadLimits = ReadLimits {
    max_line: 16 << 10,
    max_held: 256 << 10,
};

/// One gzip member holding `bytes` in stored (uncompressed) deflate blocks: what a compressor
/// would write, without its cost on every run.
fn member(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut blocks = bytes.chunks(u16::MAX as usize).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let len = block.len() as u16;
        out.push(u8::from(blocks.peek().is_none()));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let mut crc = Crc::new();
    crc.update(bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
}

fn gzip_lines(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        if i % 3 == 2 {
            let (a, b) = line.split_at(line.len() / 2);
            member(&mut out, a);
            member(&mut out, b);
        } else {
            member(&mut out, line);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        gzip_lines(rest)
    };
    if let Ok(rec) = read_from_with(file.as_slice(), Path::new("fuzz.rec"), LIMITS) {
        let held: u64 = rec.samples.iter().map(held_bytes).sum();
        assert!(held <= LIMITS.max_held, "{held} bytes held");
    }
});
