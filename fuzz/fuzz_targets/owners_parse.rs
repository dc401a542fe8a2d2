//! What the owner lookup reads from /proc: a /proc/PID/limits text (`parse_nofile_soft_limit`),
//! a /proc/PID/status text (`nspid_is_single`), the target of a /proc/PID/fd link
//! (`parse_socket_link`, `socket_link_inode`), of /proc/PID/ns/net (`netns_link_inode`), and a
//! /proc entry name (`parse_decimal_u32`). Each gets the whole input.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;
use sockq::collect::owners::{
    netns_link_inode, nspid_is_single, parse_decimal_u32, parse_nofile_soft_limit,
    parse_socket_link, socket_link_inode,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_nofile_soft_limit(&text);
    let _ = nspid_is_single(&text);
    let socket = parse_socket_link(OsStr::from_bytes(data));
    assert_eq!(socket, socket_link_inode(data));
    // Only `PREFIX[DIGITS]` is a link of that kind, and its number is the digits.
    let digits_of = |prefix: &[u8]| {
        data.strip_prefix(prefix)
            .and_then(|d| d.strip_suffix(b"]"))
            .filter(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<u64>().ok())
    };
    assert_eq!(socket, digits_of(b"socket:["));
    assert_eq!(netns_link_inode(data), digits_of(b"net:["));
    if let Some(pid) = parse_decimal_u32(data) {
        assert!(data.iter().all(u8::is_ascii_digit), "{pid}");
    }
});
