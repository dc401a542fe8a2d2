//! The names in what `getdents64(2)` returns: pure, for the listing of /proc/PID/fd without
//! `opendir`'s extra system calls (an `fstat`, two `fcntl`s, and nix's `lseek` on closing: four
//! of the about two dozen system calls a scan makes per process).

/// Bytes before `d_name` in a `struct linux_dirent64`: `d_ino` (8), `d_off` (8), `d_reclen`
/// (2), `d_type` (1).
const NAME_AT: usize = 19;

/// The entry names (without their terminating NUL) in `buf`, the bytes one `getdents64` call
/// wrote. Stops at the first record that does not fit or is shorter than its header (never
/// from the kernel, but nothing here trusts a length).
pub fn dirent_names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let reclen = match rest.get(16..18) {
            Some(&[lo, hi]) => usize::from(u16::from_ne_bytes([lo, hi])),
            _ => return None,
        };
        if reclen < NAME_AT || reclen > rest.len() {
            rest = &[];
            return None;
        }
        let (record, next) = rest.split_at(reclen);
        rest = next;
        let name = &record[NAME_AT..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(&name[..end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record as the kernel lays it out: the header, the name, a NUL, padding to 8 bytes.
    fn record(ino: u64, name: &str) -> Vec<u8> {
        let reclen = (NAME_AT + name.len() + 1).div_ceil(8) * 8;
        let mut r = Vec::with_capacity(reclen);
        r.extend(ino.to_ne_bytes());
        r.extend(0i64.to_ne_bytes());
        r.extend(u16::try_from(reclen).unwrap().to_ne_bytes());
        r.push(10); // DT_LNK
        r.extend(name.as_bytes());
        r.resize(reclen, 0);
        r
    }

    #[test]
    fn names_of_every_record_in_order() {
        let buf: Vec<u8> = [".", "..", "0", "1", "2", "17", "12345678901"]
            .iter()
            .enumerate()
            .flat_map(|(i, n)| record(i as u64, n))
            .collect();
        let names: Vec<&[u8]> = dirent_names(&buf).collect();
        let want: [&[u8]; 7] = [b".", b"..", b"0", b"1", b"2", b"17", b"12345678901"];
        assert_eq!(names, want);
        assert_eq!(dirent_names(&[]).count(), 0);
    }

    #[test]
    fn a_cut_or_malformed_buffer_ends_the_names_without_panicking() {
        let mut buf = record(1, "3");
        buf.extend(record(2, "4"));
        let whole = buf.len();
        for cut in 0..whole {
            let names: Vec<&[u8]> = dirent_names(&buf[..cut]).collect();
            assert!(names.len() <= 1, "cut at {cut}: {names:?}");
        }
        // A record length shorter than the header, or zero: stop (no endless loop).
        for bad in [0u16, 5, 18] {
            let mut b = record(1, "3");
            b[16..18].copy_from_slice(&bad.to_ne_bytes());
            assert_eq!(dirent_names(&b).count(), 0, "reclen {bad}");
        }
        // A name without its NUL (the record ends first) is taken up to the record's end.
        let mut b = record(1, "1234");
        let len = b.len();
        b[NAME_AT..len].fill(b'7');
        assert_eq!(dirent_names(&b).next(), Some(&b"77777"[..]));
    }
}
