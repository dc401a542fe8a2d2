//! Pure parsers of the /proc texts the owner lookup reads: `socket:[N]` and `net:[N]` link
//! targets, the "Max open files" row of /proc/PID/limits, the `NSpid:` line of
//! /proc/PID/status, the fields of /proc/PID/stat sockq uses. No I/O: each takes the bytes or
//! text already read.
//!
//! These stay hand-written rather than the `procfs` crate's parsers, which the tests below use as
//! a reference instead. The link parsers run once per fd in a scan and once per cached socket in
//! every refresh, on the bytes `readlinkat` returns, without allocating; procfs's
//! `FDTarget::from_str` needs UTF-8 text, allocates a `PathBuf` for every file target and takes
//! `socket:[+1]`. The limits and status parsers must take what procfs rejects as a whole: one
//! row or line is all that is needed here, while its `Limits` wants all 16 rows (and panics on a
//! line of fewer than three words where overflow checks are on) and its `Status` about 20
//! fields; its `Limits` also costs about 40 times as much (a map of every row).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Inode of a socket from the target of a /proc/PID/fd link: `socket:[12345]` → 12345.
/// `None` for anything else (files, pipes, anon inodes) and for malformed numbers.
pub fn parse_socket_link<T: AsRef<OsStr> + ?Sized>(target: &T) -> Option<u64> {
    socket_link_inode(target.as_ref().as_bytes())
}

/// [`parse_socket_link`] on the raw bytes of a link target.
pub fn socket_link_inode(target: &[u8]) -> Option<u64> {
    parse_bracketed(target, b"socket:[")
}

/// Inode of a network namespace from the target of a /proc/PID/ns/net link: `net:[4026531840]`.
pub fn netns_link_inode(target: &[u8]) -> Option<u64> {
    parse_bracketed(target, b"net:[")
}

/// `PREFIX` + decimal + `]` → the number (namespace and socket links share this form).
fn parse_bracketed(text: &[u8], prefix: &[u8]) -> Option<u64> {
    let digits = text.strip_prefix(prefix)?.strip_suffix(b"]")?;
    parse_decimal(digits)
}

/// A plain unsigned decimal (ASCII digits only, no sign, no overflow).
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &c| {
        if c.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// A plain unsigned decimal that fits a pid: /proc entry names, fd names, the `self` link.
pub fn parse_decimal_u32(digits: &[u8]) -> Option<u32> {
    parse_decimal(digits).and_then(|n| u32::try_from(n).ok())
}

/// The `RLIMIT_NOFILE` soft limit from the text of /proc/PID/limits ("Max open files" row):
/// `Some(Some(n))` for a number, `Some(None)` for `unlimited`, `None` when the row is missing
/// or malformed.
pub fn parse_nofile_soft_limit(limits_text: &str) -> Option<Option<u64>> {
    let row = limits_text
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    match row.split_whitespace().next()? {
        "unlimited" => Some(None),
        soft => parse_decimal(soft.as_bytes()).map(Some),
    }
}

/// True when the `NSpid:` line of a /proc/PID/status text has exactly one pid (the procfs
/// belongs to the process's own PID namespace), or when there is no such line (Linux before
/// 4.1, which had no way to tell; the pid check stands alone then).
pub fn nspid_is_single(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_none_or(|pids| pids.split_whitespace().count() == 1)
}

/// What sockq takes from one /proc/PID/stat line (field numbers as in proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// (3) `state`: R running, S sleeping, D uninterruptible sleep, T stopped by a signal,
    /// t stopped by a tracer, Z zombie, X dead, I idle, P parked (older kernels: W, K, x).
    /// Of the main thread: /proc/PID/stat of a thread-group leader shows the leader's own state.
    pub state: char,
    /// (14) `utime` + (15) `stime`: clock ticks the whole process (all its threads, living and
    /// exited) ran in user and in kernel mode.
    pub cpu_ticks: u64,
    /// (20) `num_threads`.
    pub threads: u32,
    /// (22) `starttime`: clock ticks after boot at which the process started; with the pid it
    /// tells one process from a later one that was given the same pid.
    pub starttime: u64,
}

/// The fields of /proc/PID/stat that sockq uses, from the bytes of the whole file; `None` when
/// they are not all there and well formed.
///
/// Field 2, `comm`, is the command name in parentheses, unescaped: it may hold spaces and
/// parentheses itself (`x) (y z`), so the fields after it are counted from the **last** `)`.
pub fn parse_proc_stat(text: &[u8]) -> Option<ProcStat> {
    let close = text.iter().rposition(|&c| c == b')')?;
    // Field 3 is the first after the `)`; field N is at index N - 3.
    let mut fields = text[close + 1..]
        .split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let state = match fields.next()? {
        [c] if c.is_ascii_alphabetic() => char::from(*c),
        _ => return None,
    };
    // After `state` (index 0): utime is index 11, stime 12, num_threads 17, starttime 19.
    let mut fields = fields.skip(10);
    let utime = parse_decimal(fields.next()?)?;
    let stime = parse_decimal(fields.next()?)?;
    let mut fields = fields.skip(4);
    let threads = parse_decimal_u32(fields.next()?)?;
    let starttime = parse_decimal(fields.nth(1)?)?;
    Some(ProcStat {
        state,
        cpu_ticks: utime.checked_add(stime)?,
        threads,
        starttime,
    })
}

/// Field 2 of a /proc/PID/stat line, the command name, without its parentheses: from the
/// first `(` to the last `)` (the name may hold both). The same text as /proc/PID/comm
/// (without its newline).
pub fn proc_stat_comm(text: &[u8]) -> Option<&[u8]> {
    let open = text.iter().position(|&c| c == b'(')?;
    let close = text.iter().rposition(|&c| c == b')')?;
    text.get(open + 1..close)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::owners::test_support::{LIMITS, LIMITS_1024, LIMITS_UNLIMITED};
    use procfs::FromBufRead as _;
    use std::fs;
    use std::path::Path;

    const STATUS: &str = include_str!("../../../tests/fixtures/owners/status");
    const STAT_STOPPED: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-stopped");
    const STAT_THREADS: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-threads");
    const STAT_ZOMBIE: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-zombie");
    const STAT_PARENS: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-comm-parens");
    const STAT_NICE: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-negative-nice");
    const STAT_BUSY_0: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-busy-0s");
    const STAT_BUSY_2: &[u8] = include_bytes!("../../../tests/fixtures/owners/stat-busy-2s");
    const STATUS_NESTED: &str = include_str!("../../../tests/fixtures/owners/status-nested-pidns");

    #[test]
    fn parse_socket_link_reads_socket_targets() {
        assert_eq!(parse_socket_link("socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(Path::new("socket:[0]")), Some(0));
        assert_eq!(
            parse_socket_link(OsStr::new("socket:[18446744073709551615]")),
            Some(u64::MAX)
        );
    }

    #[test]
    fn parse_socket_link_rejects_everything_else() {
        for target in [
            "pipe:[12345]",
            "anon_inode:[eventpoll]",
            "/dev/null",
            "/tmp/socket:[1]",
            "socket:[]",
            "socket:[12a]",
            "socket:[-1]",
            "socket:[+1]",
            "socket:[1] ",
            "socket:[1",
            "socket:[18446744073709551616]",
            "",
        ] {
            assert_eq!(parse_socket_link(target), None, "{target:?}");
        }
    }

    #[test]
    fn netns_link_inode_reads_net_targets_only() {
        assert_eq!(netns_link_inode(b"net:[4026531840]"), Some(4_026_531_840));
        assert_eq!(netns_link_inode(b"socket:[4026531840]"), None);
        assert_eq!(netns_link_inode(b"net:[]"), None);
        assert_eq!(socket_link_inode(b"net:[4026531840]"), None);
    }

    #[test]
    fn parse_decimal_u32_takes_pids_and_fds_only() {
        assert_eq!(parse_decimal_u32(b"4194304"), Some(4_194_304));
        assert_eq!(parse_decimal_u32(b"4294967295"), Some(u32::MAX));
        for name in [&b"4294967296"[..], b"self", b"-1", b"", b".", b".."] {
            assert_eq!(parse_decimal_u32(name), None, "{name:?}");
        }
    }

    #[test]
    fn parse_nofile_soft_limit_real_fixtures() {
        assert_eq!(parse_nofile_soft_limit(LIMITS), Some(Some(20000)));
        assert_eq!(parse_nofile_soft_limit(LIMITS_1024), Some(Some(1024)));
        assert_eq!(parse_nofile_soft_limit(LIMITS_UNLIMITED), Some(None));
    }

    #[test]
    fn parse_nofile_soft_limit_missing_or_malformed_row() {
        assert_eq!(parse_nofile_soft_limit(""), None);
        assert_eq!(
            parse_nofile_soft_limit("Limit Soft Limit Hard Limit Units\nMax processes 5 5\n"),
            None
        );
        assert_eq!(parse_nofile_soft_limit("Max open files\n"), None);
        assert_eq!(
            parse_nofile_soft_limit("Max open files  lots  4096  files"),
            None
        );
        assert_eq!(
            parse_nofile_soft_limit("Max open files  1024  4096  files"),
            Some(Some(1024))
        );
    }

    #[test]
    fn parse_nofile_soft_limit_reads_this_process() {
        let text = fs::read_to_string("/proc/self/limits").unwrap();
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let want = (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft);
        assert_eq!(parse_nofile_soft_limit(&text), Some(want));
    }

    /// The soft limit as the `procfs` crate reads the same text (`None` where it fails).
    fn procfs_nofile_soft_limit(text: &str) -> Option<Option<u64>> {
        let limits = procfs::process::Limits::from_buf_read(text.as_bytes()).ok()?;
        Some(match limits.max_open_files.soft_limit {
            procfs::process::LimitValue::Unlimited => None,
            procfs::process::LimitValue::Value(n) => Some(n),
        })
    }

    #[test]
    fn parse_nofile_soft_limit_agrees_with_procfs_on_whole_texts() {
        let own = fs::read_to_string("/proc/self/limits").unwrap();
        for text in [LIMITS, LIMITS_1024, LIMITS_UNLIMITED, own.as_str()] {
            let ours = parse_nofile_soft_limit(text);
            assert!(ours.is_some(), "{text}");
            assert_eq!(ours, procfs_nofile_soft_limit(text), "{text}");
        }
        // Where they part: one row is enough here, procfs wants all 16.
        let one_row = "Max open files  1024  4096  files\n";
        assert_eq!(parse_nofile_soft_limit(one_row), Some(Some(1024)));
        assert_eq!(procfs_nofile_soft_limit(one_row), None);
    }

    #[test]
    fn nspid_single_only_in_the_procfs_own_namespace() {
        let status = |nspid: &str| format!("Name:\tsockq\nPid:\t42\n{nspid}PPid:\t1\n");
        assert!(nspid_is_single(&status("NSpid:\t42\n")));
        assert!(!nspid_is_single(&status("NSpid:\t9042\t42\n")));
        assert!(!nspid_is_single(&status("NSpid:\t9042\t300\t42\n")));
        // Before Linux 4.1: no NSpid line, nothing to tell by.
        assert!(nspid_is_single(&status("")));
        let real = fs::read_to_string("/proc/self/status").unwrap();
        assert!(real.contains("NSpid:"), "{real}");
    }

    #[test]
    fn nspid_agrees_with_procfs_on_whole_texts() {
        let own = fs::read_to_string("/proc/self/status").unwrap();
        for (text, single) in [(STATUS, true), (STATUS_NESTED, false)] {
            assert_eq!(nspid_is_single(text), single, "{text}");
            let status = procfs::process::Status::from_buf_read(text.as_bytes()).unwrap();
            assert_eq!(
                status.nspid.map(|p| p.len()),
                Some(if single { 1 } else { 2 })
            );
        }
        let status = procfs::process::Status::from_buf_read(own.as_bytes()).unwrap();
        let procfs_single = status.nspid.is_none_or(|p| p.len() == 1);
        assert_eq!(nspid_is_single(&own), procfs_single, "{own}");
        // Where they part: one line is enough here, procfs wants the whole status.
        let minimal = "Name:\tsockq\nPid:\t42\nNSpid:\t42\nPPid:\t1\n";
        assert!(nspid_is_single(minimal));
        assert!(procfs::process::Status::from_buf_read(minimal.as_bytes()).is_err());
    }

    fn stat(state: char, cpu_ticks: u64, threads: u32, starttime: u64) -> Option<ProcStat> {
        Some(ProcStat {
            state,
            cpu_ticks,
            threads,
            starttime,
        })
    }

    #[test]
    fn parse_proc_stat_real_fixtures() {
        // `sleep` after SIGSTOP (ps: T).
        assert_eq!(parse_proc_stat(STAT_STOPPED), stat('T', 0, 1, 386_700));
        // python3 with 3 threads besides the main one (ps: Sl, NLWP 4): utime 4 + stime 0.
        assert_eq!(parse_proc_stat(STAT_THREADS), stat('S', 4, 4, 386_700));
        assert_eq!(parse_proc_stat(STAT_ZOMBIE), stat('Z', 0, 1, 386_702));
        // comm `x) (y z`: the fields are counted from the last `)`.
        assert_eq!(parse_proc_stat(STAT_PARENS), stat('S', 0, 1, 386_700));
        // Negative priority and nice (-10) sit between stime and num_threads.
        assert_eq!(parse_proc_stat(STAT_NICE), stat('S', 381 + 1968, 14, 24));
        // A busy loop read 2 s apart: utime 51 → 82, stime 0.
        assert_eq!(parse_proc_stat(STAT_BUSY_0), stat('R', 51, 1, 386_700));
        assert_eq!(parse_proc_stat(STAT_BUSY_2), stat('R', 82, 1, 386_700));
    }

    #[test]
    fn parse_proc_stat_comm_with_spaces_and_parentheses() {
        let line = |comm: &str| {
            format!("42 ({comm}) t 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 2 0 999 0 0\n")
        };
        for comm in ["a b", "a) b", ") (", "((", "))", "x) S 1 2 3", ""] {
            assert_eq!(
                parse_proc_stat(line(comm).as_bytes()),
                stat('t', 10, 2, 999),
                "{comm:?}"
            );
        }
    }

    #[test]
    fn proc_stat_comm_is_between_the_first_and_the_last_parenthesis() {
        assert_eq!(proc_stat_comm(STAT_PARENS), Some(&b"x) (y z"[..]));
        assert_eq!(proc_stat_comm(STAT_STOPPED), Some(&b"sleep"[..]));
        assert_eq!(proc_stat_comm(STAT_NICE), Some(&b"process_api"[..]));
        assert_eq!(proc_stat_comm(b"1 () S"), Some(&b""[..]));
        for bad in [
            &b"1 sleep S"[..],
            b"1 (sleep S",
            b"1 sleep) S",
            b"1 )( S",
            b"",
        ] {
            assert_eq!(proc_stat_comm(bad), None, "{bad:?}");
        }
        // What /proc/PID/comm says, for this very thread.
        let line = fs::read("/proc/thread-self/stat").unwrap();
        let comm = fs::read("/proc/thread-self/comm").unwrap();
        assert_eq!(proc_stat_comm(&line), comm.strip_suffix(b"\n"));
    }

    #[test]
    fn parse_proc_stat_refuses_what_is_not_a_stat_line() {
        let full = "42 (x) R 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 2 0 999 0 0\n";
        assert_eq!(parse_proc_stat(full.as_bytes()), stat('R', 10, 2, 999));
        // Cut before starttime, or anywhere earlier.
        let cut = full.find(" 999").unwrap();
        for end in (0..=cut).rev() {
            assert_eq!(parse_proc_stat(&full.as_bytes()[..end]), None, "{end}");
        }
        for bad in [
            "42 x R 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 2 0 999 0 0",
            "42 (x) RR 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 2 0 999 0 0",
            "42 (x) 5 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 2 0 999 0 0",
            "42 (x) R 1 42 42 0 -1 4194304 0 0 0 0 -7 3 0 0 20 0 2 0 999 0 0",
            "42 (x) R 1 42 42 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 4294967296 0 999",
            "42 (x) R 1 42 42 0 -1 4194304 0 0 0 0 18446744073709551615 1 0 0 20 0 2 0 9",
            "",
        ] {
            assert_eq!(parse_proc_stat(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn parse_proc_stat_agrees_with_procfs() {
        use procfs::FromRead as _;
        // The reading thread is running: its own stat says R.
        let own = fs::read("/proc/thread-self/stat").unwrap();
        for text in [
            STAT_STOPPED,
            STAT_THREADS,
            STAT_ZOMBIE,
            STAT_PARENS,
            STAT_NICE,
            STAT_BUSY_0,
            STAT_BUSY_2,
            own.as_slice(),
        ] {
            let ours = parse_proc_stat(text).unwrap();
            let theirs = procfs::process::Stat::from_read(text).unwrap();
            assert_eq!(ours.state, theirs.state, "{text:?}");
            assert_eq!(ours.cpu_ticks, theirs.utime + theirs.stime);
            assert_eq!(i64::from(ours.threads), theirs.num_threads);
            assert_eq!(ours.starttime, theirs.starttime);
        }
        assert_eq!(parse_proc_stat(&own).unwrap().state, 'R');
    }
}
