//! Process attribution: which processes hold a socket, and how close each is to its fd limit.
//!
//! A socket shows up in the fd table of every process holding it as a `socket:[INODE]` link
//! under /proc/PID/fd. Finding the holders of an inode needs a readlink of every fd of every
//! process (a *scan*, a few microseconds per fd), so [`OwnerResolver`] caches inode → (pid, fd)
//! and re-checks a cached holder with a single readlink of /proc/PID/fd/FD on each call. What
//! changes from second to second — the holder's open-fd count and its `RLIMIT_NOFILE` soft limit,
//! which tell how close a server is to EMFILE — is read fresh on every call.
//!
//! Nothing here fails as a whole: processes exit and fds close while /proc is read; whatever
//! could not be read becomes an absent field or an [`Owners::Unknown`] with the reason.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::snapshot::{Owners, ProcessInfo};

/// Longest time between two full /proc scans (or `min_rescan`, when that is longer). A full
/// scan catches holders that a cached entry cannot show: a process that forked or received the
/// socket after the last scan.
pub const FULL_RESCAN_INTERVAL: Duration = Duration::from_secs(30);

/// Socket owner uid to pass to [`OwnerResolver::resolve`] when the kernel did not report one
/// (UNIX sockets). `(uid_t)-1` is never a real uid.
pub const UID_UNKNOWN: u32 = u32::MAX;

/// A process holding a socket, and one fd number under which it held it at the last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holder {
    pid: u32,
    fd: u32,
}

/// What the cache knows about one inode.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// Asked for after the last scan; no scan has looked for it yet.
    Pending,
    /// Held by these processes (sorted by pid, one entry per pid). `stale`: a holder found by
    /// the last scan no longer holds it, so the list may miss a new holder until the next scan.
    Held { holders: Vec<Holder>, stale: bool },
    /// The last scan looked for it and found no holder. Settled until the next full scan: a
    /// socket no scan can find (another user's, another PID namespace's) must not make every
    /// call rescan /proc.
    NotFound,
}

#[derive(Debug, Clone)]
struct Entry {
    lookup: Lookup,
    /// Last `resolve` that asked for this inode; entries not asked for within
    /// [`FULL_RESCAN_INTERVAL`] are dropped at the next scan.
    last_asked: Instant,
}

/// What the last scan could and could not see; the basis of the "not found" reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ScanStats {
    /// PID directories seen.
    processes: u32,
    /// Processes whose /proc/PID/fd could not be opened for lack of permission.
    unreadable: u32,
    /// Processes skipped because their network namespace is not the one asked for.
    other_netns: u32,
    /// The proc root itself could not be listed: the whole error, in words.
    root_error: Option<String>,
}

/// Maps socket inodes to the processes holding them, with a cache that keeps /proc scans rare.
///
/// Not thread-safe by design: one collector owns one resolver.
#[derive(Debug)]
pub struct OwnerResolver {
    proc_root: PathBuf,
    netns_inode: Option<u64>,
    min_rescan: Duration,
    euid: u32,
    /// `proc_root` is procfs (not a test's fake tree): fd counts may come from `stat`.
    on_procfs: bool,
    entries: HashMap<u64, Entry>,
    last_scan: Option<Instant>,
    last_stats: ScanStats,
    scans: u64,
}

impl OwnerResolver {
    /// A resolver reading `proc_root` (normally "/proc").
    ///
    /// `netns_inode`: when `Some`, only processes whose /proc/PID/ns/net link is
    /// `net:[that inode]` are scanned (a cheap filter; a process whose link is unreadable is
    /// still scanned). `min_rescan`: the shortest time between two full /proc scans.
    #[must_use]
    pub fn new(proc_root: PathBuf, netns_inode: Option<u64>, min_rescan: Duration) -> Self {
        let on_procfs = is_procfs(&proc_root);
        OwnerResolver {
            proc_root,
            netns_inode,
            min_rescan,
            euid: nix::unistd::geteuid().as_raw(),
            on_procfs,
            entries: HashMap::new(),
            last_scan: None,
            last_stats: ScanStats::default(),
            scans: 0,
        }
    }

    /// Number of full /proc scans done so far.
    #[must_use]
    pub fn scans(&self) -> u64 {
        self.scans
    }

    /// Time between two forced full scans: [`FULL_RESCAN_INTERVAL`], or `min_rescan` if longer.
    fn full_interval(&self) -> Duration {
        FULL_RESCAN_INTERVAL.max(self.min_rescan)
    }

    /// Owners of each socket; `sockets` holds (inode, owner uid of the socket) pairs and the
    /// result has one entry per distinct inode.
    ///
    /// Scans /proc only when needed: when [`FULL_RESCAN_INTERVAL`] has passed since the last
    /// scan, or when some inode is new (or one of its holders is gone) and at least
    /// `min_rescan` has passed. Otherwise cached holders are re-checked (one readlink each).
    /// An inode that a scan looked for and did not find is not looked for again before the
    /// next full scan (another user's socket would otherwise cost a scan every `min_rescan`).
    /// Open-fd count, fd limit and command name are read fresh for every owner on every call.
    pub fn resolve(&mut self, sockets: &[(u64, u32)], now: Instant) -> HashMap<u64, Owners> {
        let mut out = HashMap::with_capacity(sockets.len());
        if sockets.is_empty() {
            return out;
        }
        for &(inode, _) in sockets {
            if inode != 0 {
                self.entries
                    .entry(inode)
                    .and_modify(|e| e.last_asked = now)
                    .or_insert(Entry {
                        lookup: Lookup::Pending,
                        last_asked: now,
                    });
            }
        }

        let since_scan = self.last_scan.map(|t| now.saturating_duration_since(t));
        if since_scan.is_none_or(|d| d >= self.full_interval()) {
            self.scan(now);
        } else {
            let mut need_scan = false;
            // One open /proc/PID/fd per process for all its re-checks (readlinkat), instead of a
            // path walk per socket.
            let mut fd_dirs: HashMap<u32, Option<File>> = HashMap::new();
            for &(inode, _) in sockets {
                if let Some(entry) = self.entries.get_mut(&inode) {
                    need_scan |= recheck(&self.proc_root, inode, &mut entry.lookup, &mut fd_dirs);
                }
            }
            if need_scan && since_scan.is_none_or(|d| d >= self.min_rescan) {
                self.scan(now);
            }
        }

        // Seconds until a scan is allowed again, for the "not looked up yet" reasons.
        let next_scan = self
            .last_scan
            .map(|t| {
                self.min_rescan
                    .saturating_sub(now.saturating_duration_since(t))
            })
            .unwrap_or_default();
        let mut infos: HashMap<u32, Option<ProcessInfo>> = HashMap::new();
        for &(inode, uid) in sockets {
            if out.contains_key(&inode) {
                continue;
            }
            let owners = match self.entries.get_mut(&inode) {
                None => Owners::Unknown {
                    reason: "the kernel reports no inode for this socket, so no process can be \
                             matched to it"
                        .to_string(),
                },
                Some(entry) => match &mut entry.lookup {
                    Lookup::Pending => Owners::Unknown {
                        reason: format!(
                            "not looked up yet (next /proc scan in {})",
                            whole_seconds(next_scan)
                        ),
                    },
                    Lookup::NotFound => Owners::Unknown {
                        reason: not_found_reason(uid, self.euid, &self.last_stats),
                    },
                    Lookup::Held { holders, stale } => {
                        let mut processes = Vec::with_capacity(holders.len());
                        let before = holders.len();
                        holders.retain(|h| {
                            let info = infos.entry(h.pid).or_insert_with(|| {
                                read_process(&self.proc_root, h.pid, self.on_procfs)
                            });
                            match info {
                                Some(info) => {
                                    processes.push(info.clone());
                                    true
                                }
                                None => false,
                            }
                        });
                        *stale |= holders.len() != before;
                        if processes.is_empty() {
                            Owners::Unknown {
                                reason: format!(
                                    "the process that held it has closed it or exited; not looked \
                                     up again yet (next /proc scan in {})",
                                    whole_seconds(next_scan)
                                ),
                            }
                        } else {
                            Owners::Known { processes }
                        }
                    }
                },
            };
            out.insert(inode, owners);
        }
        out
    }

    /// Full /proc scan for every inode asked for recently; rebuilds the cache.
    fn scan(&mut self, now: Instant) {
        let keep = self.full_interval();
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_asked) < keep);
        let entries = &self.entries;
        let (mut found, stats) = scan_proc(
            &self.proc_root,
            self.netns_inode,
            |ino| entries.contains_key(&ino),
            entries.len(),
        );
        for (inode, entry) in &mut self.entries {
            entry.lookup = match found.remove(inode) {
                Some(mut holders) => {
                    holders.sort_by_key(|h| h.pid);
                    holders.dedup_by_key(|h| h.pid);
                    Lookup::Held {
                        holders,
                        stale: false,
                    }
                }
                None => Lookup::NotFound,
            };
        }
        self.last_scan = Some(now);
        self.last_stats = stats;
        self.scans += 1;
    }
}

/// Re-checks a cached entry with one readlink per holder, dropping holders that no longer
/// hold the socket (fd closed, process exited, pid reused). True when a scan is wanted.
fn recheck(
    proc_root: &Path,
    inode: u64,
    lookup: &mut Lookup,
    fd_dirs: &mut HashMap<u32, Option<File>>,
) -> bool {
    match lookup {
        Lookup::Pending => true,
        Lookup::NotFound => false,
        Lookup::Held { holders, stale } => {
            let before = holders.len();
            holders.retain(|h| {
                let dir = fd_dirs.entry(h.pid).or_insert_with(|| {
                    File::open(proc_root.join(h.pid.to_string()).join("fd")).ok()
                });
                let Some(dir) = dir.as_ref() else {
                    return false; // the process is gone (or no longer readable)
                };
                nix::fcntl::readlinkat(dir, h.fd.to_string().as_str())
                    .ok()
                    .and_then(|t| parse_socket_link(&t))
                    == Some(inode)
            });
            *stale |= holders.len() != before;
            *stale
        }
    }
}

/// Reads /proc/PID/{fd,ns/net} of every process and returns the holders of the wanted inodes.
fn scan_proc(
    proc_root: &Path,
    netns_inode: Option<u64>,
    wanted: impl Fn(u64) -> bool,
    wanted_count: usize,
) -> (HashMap<u64, Vec<Holder>>, ScanStats) {
    let mut found: HashMap<u64, Vec<Holder>> = HashMap::new();
    let mut stats = ScanStats::default();
    let dir = match fs::read_dir(proc_root) {
        Ok(dir) => dir,
        Err(e) => {
            stats.root_error = Some(format!("cannot list {}: {e}", proc_root.display()));
            return (found, stats);
        }
    };
    // Processes of other network namespaces are searched last, and only if some socket is still
    // unaccounted for: a process may hold a socket of another namespace (a socket passed over a
    // UNIX socket, or made by a thread that entered the namespace with setns, since
    // /proc/PID/ns/net shows the main thread's namespace only).
    let mut deferred: Vec<u32> = Vec::new();
    // /proc lists thread-group leaders only (threads live under /proc/PID/task), so each
    // process is read once however many threads it has.
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = parse_decimal_u32(name.as_bytes()) else {
            continue;
        };
        stats.processes += 1;
        if let Some(want) = netns_inode {
            let ns = fs::read_link(proc_root.join(&name).join("ns/net"))
                .ok()
                .and_then(|t| parse_bracketed(t.as_os_str().as_bytes(), b"net:["));
            if ns.is_some_and(|ns| ns != want) {
                deferred.push(pid);
                continue;
            }
        }
        scan_pid(proc_root, pid, &wanted, &mut found, &mut stats);
    }
    if found.len() < wanted_count {
        for pid in deferred {
            scan_pid(proc_root, pid, &wanted, &mut found, &mut stats);
        }
    } else {
        stats.other_netns = u32::try_from(deferred.len()).unwrap_or(u32::MAX);
    }
    (found, stats)
}

/// Reads the fd table of one process, recording the wanted socket inodes it holds.
fn scan_pid(
    proc_root: &Path,
    pid: u32,
    wanted: &impl Fn(u64) -> bool,
    found: &mut HashMap<u64, Vec<Holder>>,
    stats: &mut ScanStats,
) {
    let fd_dir = proc_root.join(pid.to_string()).join("fd");
    // The fd directory is opened twice: std's iterator does not lend its fd, and a
    // readlinkat relative to a directory fd spares the kernel the walk of /proc/PID/fd for
    // every fd (measured: ~15% less time per fd than a readlink of the full path).
    let (dir_fd, fds) = match File::open(&fd_dir).and_then(|f| Ok((f, fs::read_dir(&fd_dir)?))) {
        Ok(pair) => pair,
        Err(e) => {
            if e.kind() == io::ErrorKind::PermissionDenied {
                stats.unreadable += 1;
            }
            // Otherwise the process exited meanwhile: nothing to count.
            return;
        }
    };
    for fd_entry in fds.flatten() {
        let fd_name = fd_entry.file_name();
        // An fd closed between readdir and readlink simply fails here.
        let Ok(target) = nix::fcntl::readlinkat(&dir_fd, fd_name.as_os_str()) else {
            continue;
        };
        let Some(inode) = parse_bracketed(target.as_bytes(), b"socket:[") else {
            continue;
        };
        if !wanted(inode) {
            continue;
        }
        if let Some(fd) = parse_decimal_u32(fd_name.as_bytes()) {
            found.entry(inode).or_default().push(Holder { pid, fd });
        }
    }
}

/// Fresh facts about one process; `None` when it has exited.
/// True when `proc_root` is a procfs mount (checked once per resolver).
fn is_procfs(proc_root: &Path) -> bool {
    nix::sys::statfs::statfs(proc_root)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

fn read_process(proc_root: &Path, pid: u32, on_procfs: bool) -> Option<ProcessInfo> {
    let dir = proc_root.join(pid.to_string());
    // /proc/PID/comm is world-readable: failing to read it means the process is gone.
    let comm = fs::read(dir.join("comm")).ok()?;
    let comm = String::from_utf8_lossy(&comm)
        .trim_end_matches('\n')
        .to_string();
    let fds_open = count_fds(&dir.join("fd"), on_procfs);
    let fd_limit = fs::read_to_string(dir.join("limits"))
        .ok()
        .and_then(|text| parse_nofile_soft_limit(&text))
        .flatten();
    Some(ProcessInfo {
        pid,
        comm,
        fds_open,
        fd_limit,
    })
}

/// Open descriptors of a process. On procfs since Linux 6.2, `stat` of /proc/PID/fd gives the
/// count as its size (no listing); older kernels report 0 there, and any other filesystem (a
/// test's fake /proc) a directory size: then the directory is counted.
fn count_fds(fd_dir: &Path, on_procfs: bool) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(fd_dir) {
        Ok(m) if on_procfs && m.size() > 0 => Some(m.size()),
        Ok(_) => fs::read_dir(fd_dir)
            .ok()
            .map(|d| d.flatten().count() as u64),
        Err(_) => None,
    }
}

/// Why a socket that the last scan looked for has no known holder, in plain words.
fn not_found_reason(sock_uid: u32, euid: u32, stats: &ScanStats) -> String {
    const NOWHERE: &str = "no process in sockq's PID namespace holds it (a process in another \
                           container, or the socket is being closed)";
    if let Some(err) = &stats.root_error {
        return err.clone();
    }
    if euid != 0 && sock_uid != euid && sock_uid != UID_UNKNOWN {
        return if stats.unreadable > 0 {
            format!(
                "owned by uid {sock_uid}; sockq runs as uid {euid} and cannot read other users' \
                 /proc/PID/fd (run as root to see)"
            )
        } else {
            format!(
                "owned by uid {sock_uid}; no process visible to sockq (uid {euid}) holds it \
                 (other users' processes may be hidden, e.g. by /proc's hidepid option; run as \
                 root to see)"
            )
        };
    }
    if stats.unreadable > 0 {
        let why = if euid != 0 {
            "run as root to see"
        } else {
            "denied even to root, e.g. by AppArmor, SELinux or a user namespace"
        };
        return format!(
            "no process whose /proc/PID/fd sockq could read holds it; {} of {} processes could \
             not be read ({why})",
            stats.unreadable, stats.processes
        );
    }
    if stats.other_netns > 0 {
        format!(
            "{NOWHERE}; {} processes in other network namespaces were not searched",
            stats.other_netns
        )
    } else {
        NOWHERE.to_string()
    }
}

/// A duration rounded up to whole seconds, at least 1: "3s".
fn whole_seconds(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    format!("{}s", secs.max(1))
}

/// Inode of a socket from the target of a /proc/PID/fd link: `socket:[12345]` → 12345.
/// `None` for anything else (files, pipes, anon inodes) and for malformed numbers.
pub fn parse_socket_link<T: AsRef<OsStr> + ?Sized>(target: &T) -> Option<u64> {
    parse_bracketed(target.as_ref().as_bytes(), b"socket:[")
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

fn parse_decimal_u32(digits: &[u8]) -> Option<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{symlink, MetadataExt};

    const LIMITS: &str = include_str!("../../tests/fixtures/owners/limits");
    const LIMITS_1024: &str = include_str!("../../tests/fixtures/owners/limits-1024");
    const LIMITS_UNLIMITED: &str = include_str!("../../tests/fixtures/owners/limits-unlimited");

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

    #[test]
    fn whole_seconds_rounds_up() {
        assert_eq!(whole_seconds(Duration::ZERO), "1s");
        assert_eq!(whole_seconds(Duration::from_millis(300)), "1s");
        assert_eq!(whole_seconds(Duration::from_secs(4)), "4s");
        assert_eq!(whole_seconds(Duration::from_millis(4001)), "5s");
    }

    #[test]
    fn not_found_reasons() {
        let all_read = ScanStats {
            processes: 10,
            ..ScanStats::default()
        };
        let some_unreadable = ScanStats {
            processes: 10,
            unreadable: 3,
            ..ScanStats::default()
        };
        assert_eq!(
            not_found_reason(0, 1000, &some_unreadable),
            "owned by uid 0; sockq runs as uid 1000 and cannot read other users' /proc/PID/fd \
             (run as root to see)"
        );
        assert!(not_found_reason(0, 1000, &all_read).contains("hidepid"));
        // No uid known (UNIX sockets): the count of unreadable processes is all there is to say.
        let unix = not_found_reason(UID_UNKNOWN, 1000, &some_unreadable);
        assert!(unix.contains("3 of 10 processes"), "{unix}");
        assert!(unix.contains("run as root"), "{unix}");
        assert!(!unix.contains("owned by"), "{unix}");
        let same_user = not_found_reason(1000, 1000, &some_unreadable);
        assert!(same_user.contains("3 of 10 processes"), "{same_user}");
        assert!(same_user.contains("run as root"), "{same_user}");
        let as_root = not_found_reason(33, 0, &some_unreadable);
        assert!(as_root.contains("denied even to root"), "{as_root}");
        assert_eq!(
            not_found_reason(33, 0, &all_read),
            "no process in sockq's PID namespace holds it (a process in another container, or \
             the socket is being closed)"
        );
        let filtered = ScanStats {
            other_netns: 4,
            ..all_read.clone()
        };
        assert!(not_found_reason(33, 0, &filtered)
            .ends_with("; 4 processes in other network namespaces were not searched"));
        let no_proc = ScanStats {
            root_error: Some("cannot list /nope: No such file or directory (os error 2)".into()),
            ..ScanStats::default()
        };
        assert_eq!(
            not_found_reason(33, 0, &no_proc),
            "cannot list /nope: No such file or directory (os error 2)"
        );
    }

    // ---- the real /proc ----

    /// Open fds of this process as sockq should report them. Listing /proc/self/fd holds one
    /// extra fd (the directory) open while counting; on Linux 6.2+ sockq reads the count from
    /// `stat` (no directory open), so the listing's own fd is not part of the truth there.
    fn count_own_fds() -> u64 {
        let listed = fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let by_stat = fs::metadata("/proc/self/fd").unwrap().size();
        if by_stat > 0 {
            by_stat
        } else {
            listed
        }
    }

    fn own_listener() -> (std::net::TcpListener, u64) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let link = format!("/proc/self/fd/{}", listener.as_raw_fd());
        let inode = fs::metadata(&link).unwrap().ino();
        assert_eq!(
            parse_socket_link(&fs::read_link(&link).unwrap()),
            Some(inode)
        );
        (listener, inode)
    }

    fn own_netns() -> u64 {
        fs::metadata("/proc/self/ns/net").unwrap().ino()
    }

    #[test]
    fn real_proc_finds_own_listener() {
        let (_listener, inode) = own_listener();
        let euid = nix::unistd::geteuid().as_raw();
        let mut resolver = OwnerResolver::new(
            PathBuf::from("/proc"),
            Some(own_netns()),
            Duration::from_secs(1),
        );
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let want_limit = (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft);
        let want_comm = fs::read_to_string("/proc/self/comm").unwrap();
        let want_comm = want_comm.trim_end_matches('\n');
        let exe = std::env::current_exe().unwrap();
        let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(exe_name.starts_with(want_comm), "{exe_name} vs {want_comm}");

        // Other tests of this binary open and close fds concurrently: retry until the count is
        // steady around the call, then demand an exact match (both counts hold one directory fd
        // open while counting).
        let mut last = None;
        for _ in 0..50 {
            let before = count_own_fds();
            let owners = resolver.resolve(&[(inode, euid)], Instant::now());
            let after = count_own_fds();
            let processes = owners[&inode].processes().to_vec();
            assert_eq!(processes.len(), 1, "{owners:?}");
            let me = &processes[0];
            assert_eq!(me.pid, std::process::id());
            assert_eq!(me.comm, want_comm);
            assert_eq!(me.fd_limit, want_limit);
            if before == after && me.fds_open == Some(before) {
                assert_eq!(resolver.scans(), 1);
                return;
            }
            last = Some((before, me.fds_open, after));
        }
        panic!("fds_open never matched /proc/self/fd: (before, fds_open, after) = {last:?}");
    }

    #[test]
    fn real_proc_second_resolve_uses_cache() {
        let (_listener, inode) = own_listener();
        let euid = nix::unistd::geteuid().as_raw();
        let mut resolver = OwnerResolver::new(PathBuf::from("/proc"), None, Duration::from_secs(5));
        let t0 = Instant::now();
        let first = resolver.resolve(&[(inode, euid)], t0);
        assert_eq!(resolver.scans(), 1);
        let fds_before = first[&inode].processes()[0].fds_open.unwrap();
        // A changed fd count must show without a rescan: fresh numbers on every call.
        let extra: Vec<File> = (0..5).map(|_| File::open("/dev/null").unwrap()).collect();
        let second = resolver.resolve(&[(inode, euid)], t0 + Duration::from_secs(10));
        assert_eq!(resolver.scans(), 1, "second resolve rescanned /proc");
        let me = &second[&inode].processes()[0];
        assert_eq!(me.pid, std::process::id());
        // Other tests may open or close fds meanwhile; ours are 5 more.
        assert!(
            me.fds_open.unwrap() >= fds_before + 3,
            "{me:?} vs {fds_before}"
        );
        drop(extra);
    }

    #[test]
    fn real_proc_missing_inode_is_unknown() {
        let mut resolver = OwnerResolver::new(PathBuf::from("/proc"), None, Duration::from_secs(5));
        // Socket inodes come from a 32-bit counter: this one cannot exist.
        let ghost = u64::MAX - 1;
        let euid = nix::unistd::geteuid().as_raw();
        let owners = resolver.resolve(&[(ghost, euid), (0, euid)], Instant::now());
        let Owners::Unknown { reason } = &owners[&ghost] else {
            panic!("{owners:?}");
        };
        assert!(reason.contains("holds it"), "{reason}");
        assert!(matches!(owners[&0], Owners::Unknown { .. }));
    }

    // ---- a fake proc root ----

    /// Our euid, as the socket uid: sockets of other users get another reason when not root.
    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    struct FakeProc {
        root: PathBuf,
    }

    impl FakeProc {
        fn new(name: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("sockq-owners-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).unwrap();
            // Non-numeric entries that a real /proc has and a scan must skip.
            fs::create_dir_all(root.join("sys/net")).unwrap();
            fs::write(root.join("meminfo"), "MemTotal: 1 kB\n").unwrap();
            symlink("1", root.join("self")).unwrap();
            FakeProc { root }
        }

        /// A process with `comm`, `limits`, an optional ns/net link and fd links.
        fn add(&self, pid: u32, comm: &str, limits: &str, netns: Option<u64>, fds: &[(u32, &str)]) {
            let dir = self.root.join(pid.to_string());
            fs::create_dir_all(dir.join("fd")).unwrap();
            fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            fs::write(dir.join("limits"), limits).unwrap();
            if let Some(ns) = netns {
                fs::create_dir_all(dir.join("ns")).unwrap();
                symlink(format!("net:[{ns}]"), dir.join("ns/net")).unwrap();
            }
            for (fd, target) in fds {
                self.link(pid, *fd, target);
            }
        }

        fn link(&self, pid: u32, fd: u32, target: &str) {
            let path = self.root.join(format!("{pid}/fd/{fd}"));
            symlink(target, path).unwrap();
        }

        fn unlink(&self, pid: u32, fd: u32) {
            fs::remove_file(self.root.join(format!("{pid}/fd/{fd}"))).unwrap();
        }

        fn remove(&self, pid: u32) {
            fs::remove_dir_all(self.root.join(pid.to_string())).unwrap();
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn pids(owners: &Owners) -> Vec<u32> {
        owners.processes().iter().map(|p| p.pid).collect()
    }

    fn reason(owners: &Owners) -> &str {
        match owners {
            Owners::Unknown { reason } => reason,
            Owners::Known { .. } => panic!("expected Unknown, got {owners:?}"),
        }
    }

    #[test]
    fn fake_proc_prefork_owners_sorted_with_fresh_details() {
        let fake = FakeProc::new("prefork");
        let std_fds = [
            (0, "/dev/null"),
            (1, "pipe:[77]"),
            (2, "anon_inode:[eventpoll]"),
        ];
        // A pre-fork server: master 300 and workers 20 and 1000 share socket 42; 300 also has
        // it twice (dup) and holds socket 43 alone.
        fake.add(300, "nginx", LIMITS_1024, Some(7), &std_fds);
        fake.link(300, 3, "socket:[42]");
        fake.link(300, 9, "socket:[42]");
        fake.link(300, 4, "socket:[43]");
        fake.add(1000, "nginx", LIMITS, Some(7), &[(5, "socket:[42]")]);
        // No ns link readable: scanned anyway.
        fake.add(
            20,
            "nginx: worker",
            LIMITS_UNLIMITED,
            None,
            &[(6, "socket:[42]")],
        );
        // Another network namespace: skipped although it holds socket 42.
        fake.add(50, "other", LIMITS, Some(8), &[(3, "socket:[42]")]);

        let mut resolver = OwnerResolver::new(fake.root.clone(), Some(7), Duration::from_secs(5));
        let t0 = Instant::now();
        let owners = resolver.resolve(&[(42, me()), (43, me()), (42, me())], t0);
        assert_eq!(owners.len(), 2);
        assert_eq!(pids(&owners[&42]), [20, 300, 1000]);
        assert_eq!(
            owners[&42].processes(),
            [
                ProcessInfo {
                    pid: 20,
                    comm: "nginx: worker".into(),
                    fds_open: Some(1),
                    fd_limit: None,
                },
                ProcessInfo {
                    pid: 300,
                    comm: "nginx".into(),
                    fds_open: Some(6),
                    fd_limit: Some(1024),
                },
                ProcessInfo {
                    pid: 1000,
                    comm: "nginx".into(),
                    fds_open: Some(1),
                    fd_limit: Some(20000),
                },
            ]
        );
        assert_eq!(pids(&owners[&43]), [300]);
        assert_eq!(resolver.scans(), 1);

        // Fresh details without a rescan: 300 opened two more fds.
        fake.link(300, 10, "/dev/null");
        fake.link(300, 11, "socket:[99]");
        let owners = resolver.resolve(&[(42, me())], t0 + Duration::from_secs(1));
        assert_eq!(resolver.scans(), 1);
        assert_eq!(owners[&42].processes()[1].fds_open, Some(8));

        // Without the netns filter, 50 is an owner too.
        let mut all = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        assert_eq!(
            pids(&all.resolve(&[(42, me())], t0)[&42]),
            [20, 50, 300, 1000]
        );
    }

    #[test]
    fn fake_proc_rate_limit_and_full_rescan() {
        let fake = FakeProc::new("ratelimit");
        fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);

        let owners = resolver.resolve(&[(42, me()), (43, me())], t0);
        assert_eq!(resolver.scans(), 1);
        assert_eq!(pids(&owners[&42]), [100]);
        assert!(reason(&owners[&43]).starts_with("no process in sockq's PID namespace"));

        // Known inodes: no rescan. A not-found inode does not force one either.
        resolver.resolve(&[(42, me()), (43, me())], at(1));
        assert_eq!(resolver.scans(), 1);

        // A new inode within min_rescan of the last scan: not looked up yet.
        fake.add(101, "client", LIMITS, None, &[(7, "socket:[44]")]);
        let owners = resolver.resolve(&[(42, me()), (44, me())], at(2));
        assert_eq!(resolver.scans(), 1);
        assert_eq!(
            reason(&owners[&44]),
            "not looked up yet (next /proc scan in 3s)"
        );
        // Once min_rescan has passed, the new inode causes a scan.
        let owners = resolver.resolve(&[(42, me()), (44, me())], at(5));
        assert_eq!(resolver.scans(), 2);
        assert_eq!(pids(&owners[&44]), [101]);

        // A process that starts holding 42 later is seen at the forced full rescan only.
        fake.add(102, "server", LIMITS, None, &[(3, "socket:[42]")]);
        let owners = resolver.resolve(&[(42, me()), (44, me())], at(20));
        assert_eq!(resolver.scans(), 2);
        assert_eq!(pids(&owners[&42]), [100]);
        let owners = resolver.resolve(&[(42, me()), (44, me())], at(35));
        assert_eq!(resolver.scans(), 3);
        assert_eq!(pids(&owners[&42]), [100, 102]);
    }

    #[test]
    fn fake_proc_vanished_holder_triggers_bounded_rescan() {
        let fake = FakeProc::new("vanish");
        fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
        fake.add(
            200,
            "server",
            LIMITS,
            None,
            &[(3, "socket:[42]"), (4, "socket:[43]")],
        );
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let owners = resolver.resolve(&[(42, me()), (43, me())], t0);
        assert_eq!(pids(&owners[&42]), [100, 200]);

        // 100 exits, 200 closes socket 43; a new process 300 takes over socket 43.
        fake.remove(100);
        fake.unlink(200, 4);
        fake.add(300, "server", LIMITS, None, &[(8, "socket:[43]")]);
        let owners = resolver.resolve(&[(42, me()), (43, me())], at(1));
        assert_eq!(resolver.scans(), 1, "rate limit");
        assert_eq!(pids(&owners[&42]), [200]);
        assert!(
            reason(&owners[&43]).starts_with("the process that held it has closed it or exited")
        );
        assert!(reason(&owners[&43]).ends_with("(next /proc scan in 4s)"));

        let owners = resolver.resolve(&[(42, me()), (43, me())], at(6));
        assert_eq!(resolver.scans(), 2);
        assert_eq!(pids(&owners[&42]), [200]);
        assert_eq!(pids(&owners[&43]), [300]);
        // Settled again: no further scans.
        resolver.resolve(&[(42, me()), (43, me())], at(12));
        assert_eq!(resolver.scans(), 2);
    }

    #[test]
    fn fake_proc_pid_reuse_is_not_misattributed() {
        let fake = FakeProc::new("reuse");
        fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        let t0 = Instant::now();
        resolver.resolve(&[(42, me())], t0);
        // 100 exits and an unrelated process gets pid 100, with another socket at fd 3.
        fake.remove(100);
        fake.add(100, "unrelated", LIMITS, None, &[(3, "socket:[77]")]);
        let owners = resolver.resolve(&[(42, me())], t0 + Duration::from_secs(1));
        assert!(
            reason(&owners[&42]).starts_with("the process that held it has closed it or exited")
        );
    }

    #[test]
    fn fake_proc_unusable_root_never_fails() {
        let mut resolver = OwnerResolver::new(
            PathBuf::from("/nonexistent/sockq-proc"),
            Some(1),
            Duration::ZERO,
        );
        let owners = resolver.resolve(&[(42, me())], Instant::now());
        assert!(reason(&owners[&42]).starts_with("cannot list /nonexistent/sockq-proc"));
        assert!(resolver.resolve(&[], Instant::now()).is_empty());
    }
}
