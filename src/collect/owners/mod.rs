//! Process attribution: which processes hold a socket, and how close each is to its fd limit.
//!
//! A socket shows up in the fd table of every process holding it as a `socket:[INODE]` link
//! under /proc/PID/fd. Finding the holders of an inode needs a readlink of every fd of every
//! process (a *scan*, a few microseconds per fd), so [`OwnerResolver`] caches inode → (pid, fd)
//! and, per holder process, its command name, open-fd count and `RLIMIT_NOFILE` soft limit.
//!
//! Each call *refreshes* holder processes: one open of /proc/PID/fd, the fd count from an
//! `fstat` of that directory (Linux 6.2+; a listing before), the limit from `prlimit(2)`, and
//! one read of /proc/PID/stat for the scheduler state, the thread count, the start time and the
//! CPU time (its share of a core over the interval since the process's previous read:
//! `activity`). Its cached socket fds are re-checked (a `readlinkat` each: is it still that
//! socket?) only when there is a reason — its fd count or start time changed, or the start time
//! is unreadable — and then at most [`RECHECK_PER_CALL`] per call: owners at O(change), not a
//! `readlinkat` per listener per sample. A new listener (a new inode) or a holder that exited
//! brings a scan as before. Which processes are refreshed:
//!
//! - all of them, on every call, while there are at most [`REFRESH_ALL_UP_TO`];
//! - beyond that (thousands of processes holding sockets), every process with at least
//!   [`HOT_FD_FRACTION`] of its fd limit open on every call (the ones that can hit EMFILE),
//!   every stopped one (state `T`, `t` or `D`: the ones that may keep a listener from being
//!   served), and of the others the least recently refreshed, enough that each is refreshed at
//!   least once every [`REFRESH_ROUNDS`] calls. Each process's [`ProcessInfo::age_ms`] says how
//!   old its numbers are.
//!
//! The processes of each socket come busiest first ([`Owners::sort_busiest_first`]).
//!
//! Nothing here fails as a whole: processes exit and fds close while /proc is read; whatever
//! could not be read becomes an absent field or an [`Owners::Unknown`] with the reason.
//!
//! This file holds the cache and the refresh policy; `refresh` the refresh of due holders and
//! the re-check of their sockets; `reread` the second read of a one-shot sample (CPU share
//! only); `scan` the full /proc scan and the spacing of scans; `proc_access` every system call and raw /proc read (and the only `unsafe`);
//! `parse` the pure parsers of what /proc returns; `activity` the CPU share from successive
//! reads of /proc/PID/stat.

mod activity;
mod netns_cache;
mod parse;
mod proc_access;
#[cfg(test)]
mod recheck_tests;
mod refresh;
mod reread;
mod scan;
#[cfg(test)]
mod test_support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::snapshot::{Owners, ProcessInfo};
use crate::model::{fast_map, FastMap};

pub use activity::MIN_CPU_INTERVAL;
pub use netns_cache::{NetnsCache, NETNS_CACHE_AGE};
pub use parse::{parse_nofile_soft_limit, parse_proc_stat, parse_socket_link, ProcStat};
pub use scan::{FULL_RESCAN_INTERVAL, RESCAN_COST_FACTOR};

/// The other pure parsers of /proc texts, public for the fuzz targets (fuzz/) only: not part of
/// sockq's interface.
#[doc(hidden)]
pub use parse::{netns_link_inode, nspid_is_single, parse_decimal_u32, socket_link_inode};

use activity::Activity;
use proc_access::ProcAccess;
use scan::{scan_proc, Holder, RescanSpacing, ScanStats};

/// Socket owner uid to pass to [`OwnerResolver::resolve`] when the kernel did not report one
/// (UNIX sockets). `(uid_t)-1` is never a real uid.
pub const UID_UNKNOWN: u32 = u32::MAX;

/// Up to this many holder processes, every one is refreshed on every call.
pub const REFRESH_ALL_UP_TO: usize = 256;

/// With more holder processes than [`REFRESH_ALL_UP_TO`], each is still refreshed at least
/// once every this many calls.
pub const REFRESH_ROUNDS: usize = 10;

/// A process with at least this fraction of its fd limit open is refreshed on every call,
/// however many processes there are (the near-fd-limit finding fires at 90 %).
pub const HOT_FD_FRACTION: f64 = 0.5;

/// At most this many cached sockets of one process are re-checked per call; a process holding
/// more is re-checked over several calls (10,000 listeners: 20 calls), so a busy server whose
/// fd count moves every second does not cost a `readlinkat` per listener per second.
pub const RECHECK_PER_CALL: usize = 512;

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

/// What the resolver knows about one holder process.
#[derive(Debug, Clone, PartialEq)]
struct ProcState {
    /// The command name (/proc/PID/stat field 2, as /proc/PID/comm), read when a scan found
    /// the process (it changes only on exec or prctl(PR_SET_NAME); the next full scan reads it
    /// again).
    comm: String,
    fds_open: Option<u64>,
    fd_limit: Option<u64>,
    /// State, threads and CPU share from /proc/PID/stat; `None` when unreadable.
    activity: Option<Activity>,
    /// When `fds_open`, `fd_limit` and `activity` were read and the process's cached sockets
    /// re-checked.
    checked: Instant,
    /// Re-check round in progress: where the next call starts in the process's cached sockets,
    /// and how many are still to re-check ([`RECHECK_PER_CALL`] per call).
    recheck_at: usize,
    recheck_left: usize,
}

impl ProcState {
    /// Refreshed on every call: at least [`HOT_FD_FRACTION`] of its fd limit open, or stopped
    /// (`T`, `t`) or in uninterruptible sleep (`D`).
    fn hot(&self) -> bool {
        let near_limit = match (self.fds_open, self.fd_limit) {
            (Some(open), Some(limit)) => open as f64 >= HOT_FD_FRACTION * limit as f64,
            _ => false,
        };
        near_limit || matches!(self.activity, Some(a) if matches!(a.state, 'T' | 't' | 'D'))
    }

    fn info(&self, pid: u32, now: Instant) -> ProcessInfo {
        let age = now.saturating_duration_since(self.checked);
        ProcessInfo {
            pid,
            comm: self.comm.clone(),
            fds_open: self.fds_open,
            fd_limit: self.fd_limit,
            age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            state: self.activity.map(|a| a.state),
            cpu_percent: self.activity.and_then(|a| a.cpu.percent),
            threads: self.activity.map(|a| a.threads),
        }
    }
}

/// Owner lists built in one [`OwnerResolver::resolve`] call, by their holders' pids: the
/// sockets a process holds share one list (read at the same moment, so equal anyway).
#[derive(Default)]
struct SharedLists {
    one: FastMap<u32, Arc<Vec<ProcessInfo>>>,
    many: FastMap<Vec<u32>, Arc<Vec<ProcessInfo>>>,
}

/// Maps socket inodes to the processes holding them, with a cache that keeps /proc scans rare.
///
/// Not thread-safe by design: one collector owns one resolver.
#[derive(Debug)]
pub struct OwnerResolver {
    access: ProcAccess,
    netns_inode: Option<u64>,
    spacing: RescanSpacing,
    euid: u32,
    entries: FastMap<u64, Entry>,
    procs: FastMap<u32, ProcState>,
    refresh_all_up_to: usize,
    refresh_rounds: usize,
    last_scan: Option<Instant>,
    last_stats: ScanStats,
    scans: u64,
    /// `sysconf(_SC_CLK_TCK)`: the unit of /proc/PID/stat CPU times (`None`: unknown).
    clk_tck: Option<u64>,
    /// When the current `resolve` call began (the real clock): a process's /proc/PID/stat is
    /// dated `now` plus the time since then, so that a long scan does not stretch the interval
    /// its CPU share is computed over.
    call_started: Instant,
    /// Tests of the arithmetic date every read exactly `now`.
    #[cfg(test)]
    reads_at_now: bool,
}

impl OwnerResolver {
    /// Shares the namespace of each process (read to keep a scan to its namespace's
    /// processes) with the other resolvers given the same cache: a fleet's.
    #[must_use]
    pub fn with_netns_cache(mut self, cache: Arc<NetnsCache>) -> Self {
        self.access.share_netns_cache(cache);
        self
    }

    /// A resolver reading `proc_root` (normally "/proc").
    ///
    /// `netns_inode`: when `Some`, only processes whose /proc/PID/ns/net link is
    /// `net:[that inode]` are scanned (a cheap filter; a process whose link is unreadable is
    /// still scanned). `min_rescan`: the shortest time between two full /proc scans.
    #[must_use]
    pub fn new(proc_root: PathBuf, netns_inode: Option<u64>, min_rescan: Duration) -> Self {
        OwnerResolver {
            access: ProcAccess::new(proc_root),
            netns_inode,
            spacing: RescanSpacing::new(min_rescan),
            euid: nix::unistd::geteuid().as_raw(),
            entries: FastMap::default(),
            procs: FastMap::default(),
            refresh_all_up_to: REFRESH_ALL_UP_TO,
            refresh_rounds: REFRESH_ROUNDS,
            last_scan: None,
            last_stats: ScanStats::default(),
            scans: 0,
            clk_tck: proc_access::clock_ticks_per_second(),
            call_started: Instant::now(),
            #[cfg(test)]
            reads_at_now: false,
        }
    }

    /// Another refresh policy than [`REFRESH_ALL_UP_TO`] / [`REFRESH_ROUNDS`]:
    /// `usize::MAX` as `all_up_to` refreshes every process on every call.
    #[must_use]
    pub fn with_refresh_policy(mut self, all_up_to: usize, rounds: usize) -> Self {
        self.refresh_all_up_to = all_up_to;
        self.refresh_rounds = rounds.max(1);
        self
    }

    /// Spaces the scans for new sockets by their cost instead of always `min_rescan`:
    /// [`RESCAN_COST_FACTOR`] × the last scan's duration, at least `floor`, at most `min_rescan`
    /// (the forced 30 s full rescan is unchanged).
    #[must_use]
    pub fn with_adaptive_rescan(mut self, floor: Duration) -> Self {
        self.spacing.adaptive_floor = Some(floor);
        self
    }

    /// Number of full /proc scans done so far.
    #[must_use]
    pub fn scans(&self) -> u64 {
        self.scans
    }

    /// Owners of each socket; `sockets` holds (inode, owner uid of the socket) pairs and the
    /// result has one entry per distinct inode.
    ///
    /// Scans /proc only when needed: when [`FULL_RESCAN_INTERVAL`] has passed since the last
    /// scan, or when some inode is new (or one of its holders is gone) and at least the rescan
    /// gap has passed (`min_rescan`, or less with [`OwnerResolver::with_adaptive_rescan`]).
    /// Otherwise the holder processes due (see the module docs) are refreshed. An inode that a
    /// scan looked for and did not find is not looked for again before the next full scan
    /// (another user's socket would otherwise cost a scan every `min_rescan`).
    pub fn resolve(&mut self, sockets: &[(u64, u32)], now: Instant) -> FastMap<u64, Owners> {
        let owners = self.resolve_each(sockets, now);
        let mut out = fast_map(sockets.len());
        out.extend(sockets.iter().map(|s| s.0).zip(owners));
        out
    }

    /// [`OwnerResolver::resolve`], answered in the order asked: the owners of `sockets[i]` at
    /// index `i` (no map of every socket built and taken apart again on every sample).
    pub fn resolve_each(&mut self, sockets: &[(u64, u32)], now: Instant) -> Vec<Owners> {
        self.call_started = Instant::now();
        let mut out = Vec::with_capacity(sockets.len());
        if sockets.is_empty() {
            return out;
        }
        // Some socket not looked up yet, or with a holder found gone: a reason to scan.
        let mut unresolved = false;
        for &(inode, _) in sockets {
            if inode != 0 {
                let e = self
                    .entries
                    .entry(inode)
                    .and_modify(|e| e.last_asked = now)
                    .or_insert(Entry {
                        lookup: Lookup::Pending,
                        last_asked: now,
                    });
                unresolved |=
                    matches!(e.lookup, Lookup::Pending | Lookup::Held { stale: true, .. });
            }
        }

        let since_scan = self.last_scan.map(|t| now.saturating_duration_since(t));
        if since_scan.is_none_or(|d| d >= self.spacing.full_interval()) {
            self.scan(now);
        } else {
            let need_scan = self.refresh(sockets, now, unresolved);
            if need_scan && since_scan.is_none_or(|d| d >= self.spacing.gap()) {
                self.scan(now);
            }
        }

        // Seconds until a scan is allowed again, for the "not looked up yet" reasons.
        let next_scan = self
            .last_scan
            .map(|t| {
                self.spacing
                    .gap()
                    .saturating_sub(now.saturating_duration_since(t))
            })
            .unwrap_or_default();
        let mut shared = SharedLists::default();
        for &(inode, uid) in sockets {
            out.push(self.owners_of(inode, uid, next_scan, now, &mut shared));
        }
        out
    }

    /// What the cache says about one inode asked for (`uid`: the socket's owner), after this
    /// call's refresh or scan; holders found gone are dropped from its entry on the way.
    fn owners_of(
        &mut self,
        inode: u64,
        uid: u32,
        next_scan: Duration,
        now: Instant,
        shared: &mut SharedLists,
    ) -> Owners {
        let Some(entry) = self.entries.get_mut(&inode) else {
            return Owners::Unknown {
                reason: "the kernel reports no inode for this socket, so no process can be \
                         matched to it"
                    .to_string(),
            };
        };
        match &mut entry.lookup {
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
                let procs = &self.procs;
                let before = holders.len();
                holders.retain(|h| procs.contains_key(&h.pid));
                *stale |= holders.len() != before;
                let build = || {
                    let mut processes: Vec<ProcessInfo> = holders
                        .iter()
                        .filter_map(|h| procs.get(&h.pid).map(|p| p.info(h.pid, now)))
                        .collect();
                    processes.sort_by(ProcessInfo::busiest_first);
                    Arc::new(processes)
                };
                let processes = match holders.as_slice() {
                    [h] => shared.one.entry(h.pid).or_insert_with(build).clone(),
                    many => {
                        let mut pids: Vec<u32> = many.iter().map(|h| h.pid).collect();
                        pids.sort_unstable();
                        shared.many.entry(pids).or_insert_with(build).clone()
                    }
                };
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
        }
    }

    /// When a read made just now in this `resolve` call happened, on the caller's clock.
    fn read_time(&self, now: Instant) -> Instant {
        #[cfg(test)]
        if self.reads_at_now {
            return now;
        }
        now + self.call_started.elapsed()
    }

    /// Full /proc scan for every inode asked for recently; rebuilds the cache.
    fn scan(&mut self, now: Instant) {
        let keep = self.spacing.full_interval();
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last_asked) < keep);
        let started = Instant::now();
        let entries = &self.entries;
        let mut scanned = scan_proc(
            &self.access,
            self.netns_inode,
            |ino| entries.contains_key(&ino),
            entries.len(),
        );
        // Facts about each holder process, read once here; refreshes keep them current. The
        // CPU time base of a process known before carries over (a scan must not blank the CPU
        // share of every process every 30 s); a reused pid is told apart by its start time.
        let before = std::mem::take(&mut self.procs);
        for (pid, fds_open) in scanned.fd_counts {
            // The command name from /proc/PID/stat, read anyway; /proc/PID/comm when stat
            // does not parse.
            let (stat, comm) = match self.access.stat_and_comm(pid) {
                Some((stat, comm)) => (Some(stat), comm),
                None => match self.access.comm(pid) {
                    Some(comm) => (None, comm),
                    None => continue, // exited since its fds were read
                },
            };
            let fd_limit = self.access.fd_limit(pid);
            let prev = before.get(&pid).and_then(|p| p.activity.as_ref());
            let read_at = self.read_time(now);
            let activity = stat.map(|s| Activity::next(prev, &s, read_at, self.clk_tck));
            self.procs.insert(
                pid,
                ProcState {
                    comm,
                    fds_open: Some(fds_open),
                    fd_limit,
                    activity,
                    checked: now,
                    recheck_at: 0,
                    recheck_left: 0,
                },
            );
        }
        for (inode, entry) in &mut self.entries {
            entry.lookup = match scanned.found.remove(inode) {
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
        self.spacing.last_scan_cost = started.elapsed();
        self.last_stats = scanned.stats;
        self.scans += 1;
    }
}

/// The processes to refresh on this call, from (pid, last refreshed, hot) of every known
/// holder: all of them while there are at most `all_up_to`; else every hot one, plus the
/// least recently refreshed others, `max(all_up_to, ⌈n / rounds⌉)` of them, so that each is
/// refreshed at least once every `rounds` calls.
fn due_pids(
    procs: impl Iterator<Item = (u32, Instant, bool)>,
    all_up_to: usize,
    rounds: usize,
) -> HashSet<u32> {
    let procs: Vec<(u32, Instant, bool)> = procs.collect();
    let n = procs.len();
    if n <= all_up_to {
        return procs.into_iter().map(|(pid, _, _)| pid).collect();
    }
    let batch = all_up_to.max(n.div_ceil(rounds.max(1)));
    let mut due: HashSet<u32> = procs
        .iter()
        .filter(|p| p.2)
        .map(|&(pid, _, _)| pid)
        .collect();
    let mut cold: Vec<(Instant, u32)> = procs
        .iter()
        .filter(|p| !p.2)
        .map(|&(pid, checked, _)| (checked, pid))
        .collect();
    if cold.len() > batch {
        cold.select_nth_unstable(batch);
        cold.truncate(batch);
    }
    due.extend(cold.into_iter().map(|(_, pid)| pid));
    due
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

#[cfg(test)]
mod tests {
    use super::test_support::{me, pids, reason, FakeProc, LIMITS, LIMITS_1024};
    use super::*;
    use std::collections::HashMap;
    use std::fs::{self, File};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

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
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let want_limit = (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft);
        let want_comm = fs::read_to_string("/proc/self/comm").unwrap();
        let want_comm = want_comm.trim_end_matches('\n');
        let exe = std::env::current_exe().unwrap();
        let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(exe_name.starts_with(want_comm), "{exe_name} vs {want_comm}");

        // Other tests of this binary open and close fds concurrently: retry until the count is
        // steady around the call, then demand an exact match. First from a scan (a new resolver
        // each try), then from a refresh of the cached entry (a second call, no scan).
        let check = |resolver: &mut OwnerResolver, now: Instant| -> Result<(), String> {
            let before = count_own_fds();
            let owners = resolver.resolve(&[(inode, euid)], now);
            let after = count_own_fds();
            let processes = owners[&inode].processes().to_vec();
            assert_eq!(processes.len(), 1, "{owners:?}");
            let me = &processes[0];
            assert_eq!(me.pid, std::process::id());
            assert_eq!(me.comm, want_comm);
            assert_eq!(me.fd_limit, want_limit);
            assert_eq!(me.age_ms, 0);
            if before == after && me.fds_open == Some(before) {
                Ok(())
            } else {
                Err(format!(
                    "(before, fds_open, after) = ({before}, {:?}, {after})",
                    me.fds_open
                ))
            }
        };
        let mut last = String::new();
        for _ in 0..50 {
            let mut resolver = OwnerResolver::new(
                PathBuf::from("/proc"),
                Some(own_netns()),
                Duration::from_secs(1),
            );
            let t0 = Instant::now();
            match check(&mut resolver, t0) {
                Ok(()) => {}
                Err(e) => {
                    last = format!("scan: {e}");
                    continue;
                }
            }
            assert_eq!(resolver.scans(), 1);
            match check(&mut resolver, t0 + Duration::from_millis(500)) {
                Ok(()) => {
                    assert_eq!(resolver.scans(), 1, "the second call rescanned");
                    return;
                }
                Err(e) => last = format!("refresh: {e}"),
            }
        }
        panic!("fds_open never matched /proc/self/fd: {last}");
    }

    #[test]
    fn real_proc_second_resolve_uses_cache() {
        let (_listener, inode) = own_listener();
        let euid = nix::unistd::geteuid().as_raw();
        let mut resolver = OwnerResolver::new(PathBuf::from("/proc"), None, Duration::from_secs(5));
        let t0 = Instant::now();
        let first = resolver.resolve(&[(inode, euid)], t0);
        assert_eq!(resolver.scans(), 1);
        assert!(first[&inode].processes()[0].fds_open.is_some());
        // A changed fd count must show without a rescan: fresh numbers on every call. Other
        // tests of this process open and close fds meanwhile, so a call counts when /proc/self/fd
        // read just before and just after it agree, and then its count must be that one.
        let mut last = String::new();
        for attempt in 0..50u64 {
            let extra: Vec<File> = (0..5).map(|_| File::open("/dev/null").unwrap()).collect();
            let before = count_own_fds();
            let now = t0 + Duration::from_secs(10) + Duration::from_millis(attempt);
            let second = resolver.resolve(&[(inode, euid)], now);
            let after = count_own_fds();
            assert_eq!(resolver.scans(), 1, "a later resolve rescanned /proc");
            let me = &second[&inode].processes()[0];
            assert_eq!(me.pid, std::process::id());
            drop(extra);
            if before == after && me.fds_open == Some(before) {
                return;
            }
            last = format!(
                "(before, fds_open, after) = ({before}, {:?}, {after})",
                me.fds_open
            );
        }
        panic!("fds_open never matched /proc/self/fd: {last}");
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

    // ---- state, threads and CPU share ----

    /// Percent of one core for `ticks` clock ticks in `secs` seconds, at this system's
    /// clock tick rate (as the resolver computes it).
    fn share(resolver: &OwnerResolver, ticks: u64, secs: f64) -> Option<f64> {
        resolver
            .clk_tck
            .map(|hz| ticks as f64 / hz as f64 / secs * 100.0)
    }

    fn close(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            _ => false,
        }
    }

    #[test]
    fn fake_proc_state_threads_and_cpu_share_across_refreshes_scans_and_pid_reuse() {
        let fake = FakeProc::new("activity");
        fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
        fake.stat(100, 'S', 100, 3, 5000);
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        // Reads dated exactly `now`, for exact arithmetic (see the next test for real dates).
        resolver.reads_at_now = true;
        assert!(resolver.clk_tck.is_some(), "sysconf(_SC_CLK_TCK)");
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let me_ = |o: &FastMap<u64, Owners>| o[&42].processes()[0].clone();

        // First read (a scan): state and threads, no CPU share yet.
        let p = me_(&resolver.resolve(&[(42, me())], t0));
        assert_eq!(
            (p.state, p.threads, p.cpu_percent),
            (Some('S'), Some(3), None)
        );

        // A refresh 1 s later: 90 ticks more.
        fake.stat(100, 'R', 190, 3, 5000);
        let p = me_(&resolver.resolve(&[(42, me())], at(1)));
        assert_eq!(resolver.scans(), 1);
        assert_eq!(p.state, Some('R'));
        assert!(close(p.cpu_percent, share(&resolver, 90, 1.0)), "{p:?}");

        // The forced full rescan (30 s on) keeps the base: 300 ticks in 30 s.
        fake.stat(100, 'S', 490, 3, 5000);
        let p = me_(&resolver.resolve(&[(42, me())], at(31)));
        assert_eq!(resolver.scans(), 2);
        assert_eq!(p.state, Some('S'));
        assert!(close(p.cpu_percent, share(&resolver, 300, 30.0)), "{p:?}");

        // The pid now belongs to a process started later, holding the same socket at the same
        // fd (it inherited it): no share from the old process's ticks.
        fake.stat(100, 'S', 20, 1, 9000);
        let p = me_(&resolver.resolve(&[(42, me())], at(32)));
        assert_eq!(resolver.scans(), 2);
        assert_eq!(
            (p.state, p.threads, p.cpu_percent),
            (Some('S'), Some(1), None)
        );
        fake.stat(100, 'S', 20, 1, 9000);
        let p = me_(&resolver.resolve(&[(42, me())], at(33)));
        assert_eq!(p.cpu_percent, Some(0.0));

        // /proc/PID/stat unreadable (here: gone) while /proc/PID/fd still reads: all absent.
        fs::remove_file(fake.root.join("100/stat")).unwrap();
        let p = me_(&resolver.resolve(&[(42, me())], at(34)));
        assert_eq!((p.state, p.threads, p.cpu_percent), (None, None, None));
        assert_eq!(p.fds_open, Some(1));
    }

    #[test]
    fn fake_proc_scan_takes_the_command_name_from_stat_else_from_comm() {
        let fake = FakeProc::new("comm-from-stat");
        fake.add(100, "comm-file", LIMITS, None, &[(3, "socket:[42]")]);
        fake.add(101, "only-comm", LIMITS, None, &[(3, "socket:[43]")]);
        let line = "100 (x) (y z) S 1 100 100 0 -1 4194304 0 0 0 0 3 1 0 0 20 0 1 0 77 0 0\n";
        fs::write(fake.root.join("100/stat"), line).unwrap();
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        let owners = resolver.resolve(&[(42, me()), (43, me())], Instant::now());
        let p = &owners[&42].processes()[0];
        assert_eq!((p.comm.as_str(), p.state), ("x) (y z", Some('S')));
        let p = &owners[&43].processes()[0];
        assert_eq!((p.comm.as_str(), p.state), ("only-comm", None));
    }

    #[test]
    fn a_long_call_does_not_stretch_the_cpu_interval() {
        // Dated by the real clock from the call's start: a read made 300 ms into a call (a
        // slow scan) is dated 300 ms after `now`.
        let fake = FakeProc::new("read-time");
        fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        let now = Instant::now();
        resolver.call_started = Instant::now() - Duration::from_millis(300);
        let at = resolver.read_time(now);
        assert!(at >= now + Duration::from_millis(300), "{:?}", at - now);
    }

    #[test]
    fn fake_proc_owners_come_busiest_first() {
        let fake = FakeProc::new("busiest");
        // A pre-fork server: the master (lowest pid) sleeps, one worker is stopped, one
        // computes, one serves a little.
        for (pid, state, ticks) in [(100, 'S', 0), (101, 'T', 0), (102, 'R', 0), (103, 'S', 0)] {
            fake.add(pid, "nginx", LIMITS, None, &[(6, "socket:[42]")]);
            fake.stat(pid, state, ticks, 1, 5000);
        }
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        let t0 = Instant::now();
        // No CPU share yet: by state (running, sleeping, stopped), then pid.
        let owners = resolver.resolve(&[(42, me())], t0);
        assert_eq!(pids(&owners[&42]), [102, 100, 103, 101]);
        fake.stat(102, 'R', 95, 1, 5000);
        fake.stat(103, 'S', 4, 1, 5000);
        let owners = resolver.resolve(&[(42, me())], t0 + Duration::from_secs(1));
        assert_eq!(pids(&owners[&42]), [102, 103, 100, 101]);
        let states: Vec<Option<char>> = owners[&42].processes().iter().map(|p| p.state).collect();
        assert_eq!(states, [Some('R'), Some('S'), Some('S'), Some('T')]);
    }

    #[test]
    fn fake_proc_stopped_holders_are_refreshed_on_every_call() {
        let fake = FakeProc::new("stopped-hot");
        for pid in 100..=109 {
            let sock = format!("socket:[{}]", 1000 + pid);
            fake.add(pid, "worker", LIMITS, None, &[(3, sock.as_str())]);
            fake.stat(pid, 'S', 0, 1, 5000);
        }
        fake.stat(105, 'T', 0, 1, 5000);
        fake.stat(107, 'D', 0, 1, 5000);
        let sockets: Vec<(u64, u32)> = (100..=109).map(|pid| (1000 + pid, me())).collect();
        // 10 processes, all-up-to 1, rounds 10: one cold process per call.
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(20))
            .with_refresh_policy(1, 10);
        let t0 = Instant::now();
        resolver.resolve(&sockets, t0);
        for call in 1..=5 {
            let owners = resolver.resolve(&sockets, t0 + Duration::from_secs(call));
            for pid in [105u64, 107] {
                let p = &owners[&(1000 + pid)].processes()[0];
                assert_eq!(p.age_ms, 0, "call {call}: {p:?}");
            }
            let fresh = (100..=109u64)
                .filter(|pid| owners[&(1000 + pid)].processes()[0].age_ms == 0)
                .count();
            assert_eq!(
                fresh, 3,
                "call {call}: the two stopped ones and one in turn"
            );
        }
    }

    // ---- the refresh policy ----

    #[test]
    fn due_pids_all_while_few() {
        let t0 = Instant::now();
        let procs = [(1, t0, false), (2, t0, true), (3, t0, false)];
        let due = due_pids(procs.into_iter(), 3, 10);
        assert_eq!(due, HashSet::from([1, 2, 3]));
        assert!(due_pids(std::iter::empty(), 0, 10).is_empty());
        // Just over `all_up_to`: the batch is `all_up_to` (4), not ⌈5 / 10⌉ = 1.
        let procs = (1..=5).map(|pid| (pid, t0 + Duration::from_millis(u64::from(pid)), false));
        assert_eq!(due_pids(procs, 4, 10), HashSet::from([1, 2, 3, 4]));
    }

    #[test]
    fn due_pids_hot_always_and_oldest_others_in_turn() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // 10 processes, 2 hot; batch = max(2, ceil(10 / 4)) = 3 of the 8 others per call.
        let mut checked: HashMap<u32, Instant> = (1..=10).map(|pid| (pid, at(0))).collect();
        let hot = |pid: u32| pid == 4 || pid == 7;
        let mut last_due: HashMap<u32, u32> = HashMap::new();
        for call in 1..=12u32 {
            let now = at(u64::from(call) * 1000);
            let due = due_pids(checked.iter().map(|(&pid, &c)| (pid, c, hot(pid))), 2, 4);
            assert!(due.contains(&4) && due.contains(&7), "call {call}: {due:?}");
            assert_eq!(due.len(), 2 + 3, "call {call}: {due:?}");
            for &pid in &due {
                checked.insert(pid, now);
                last_due.insert(pid, call);
            }
            // Every process was refreshed within the last `rounds` (4) calls.
            if call >= 4 {
                for pid in 1..=10 {
                    let ago = call - last_due.get(&pid).copied().unwrap_or(0);
                    assert!(
                        ago < 4,
                        "call {call}: pid {pid} last refreshed {ago} calls ago"
                    );
                }
            }
        }
    }

    /// One scenario in three acts (first scan, calls in turn, processes exiting), each act
    /// starting from the resolver state the one before left: hence one long test.
    #[test]
    fn fake_proc_many_holders_refreshed_in_turn_hot_every_call() {
        let fake = FakeProc::new("turns");
        // A fd limit of 4 with 3 fds open: at least half, so refreshed on every call.
        let tight = LIMITS_1024.replace(
            "Max open files            1024                 4096",
            "Max open files            4                    4096",
        );
        assert_ne!(tight, LIMITS_1024);
        fake.add(
            100,
            "tight",
            &tight,
            None,
            &[(0, "/dev/null"), (1, "/dev/null"), (3, "socket:[1100]")],
        );
        for pid in 101..=105 {
            let sock = format!("socket:[{}]", 1000 + pid);
            fake.add(pid, "roomy", LIMITS, None, &[(3, sock.as_str())]);
        }
        let sockets: Vec<(u64, u32)> = (100..=105).map(|pid| (1000 + pid, me())).collect();
        // 6 processes, all-up-to 2, rounds 3: batch = max(2, ceil(6 / 3)) = 2 per call.
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(20))
            .with_refresh_policy(2, 3);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let owners = resolver.resolve(&sockets, t0);
        let info = |o: &FastMap<u64, Owners>, pid: u64| o[&(1000 + pid)].processes()[0].clone();
        assert_eq!(info(&owners, 100).fds_open, Some(3));
        assert_eq!(info(&owners, 100).fd_limit, Some(4));
        assert!((100..=105).all(|pid| info(&owners, pid).age_ms == 0));

        // Every process opens one more fd; each call shows it for the hot one and for the two
        // least recently refreshed others, and every process within three calls.
        for pid in 100..=105 {
            fake.link(pid, 9, "/dev/null");
        }
        let mut seen_fresh: HashSet<u64> = HashSet::new();
        for call in 1..=3 {
            let owners = resolver.resolve(&sockets, at(call));
            assert_eq!(resolver.scans(), 1);
            let hot = info(&owners, 100);
            assert_eq!((hot.fds_open, hot.age_ms), (Some(4), 0), "call {call}");
            let fresh: Vec<u64> = (101..=105)
                .filter(|&pid| info(&owners, pid).age_ms == 0)
                .collect();
            assert_eq!(fresh.len(), 2, "call {call}: {fresh:?}");
            for pid in 101..=105 {
                let p = info(&owners, pid);
                if p.age_ms == 0 {
                    assert_eq!(p.fds_open, Some(2), "call {call} pid {pid}");
                } else {
                    // Not due: the numbers of its last refresh, with their age.
                    assert_eq!(
                        p.fds_open,
                        Some(if seen_fresh.contains(&pid) { 2 } else { 1 })
                    );
                    assert!(p.age_ms >= 1000 && p.age_ms % 1000 == 0, "{p:?}");
                }
            }
            seen_fresh.extend(fresh);
        }
        assert_eq!(seen_fresh, (101..=105).collect::<HashSet<u64>>());

        // A process that exits is forgotten at once if hot, else when its turn comes (within 3
        // calls); one whose /proc/PID/fd can no longer be read (here: not a directory) too.
        fake.remove(100);
        fake.remove(101);
        let fd_dir = fake.root.join("102/fd");
        fs::remove_dir_all(&fd_dir).unwrap();
        fs::write(&fd_dir, "").unwrap();
        let owners = resolver.resolve(&sockets, at(4));
        assert!(reason(&owners[&1100]).starts_with("the process that held it"));
        let mut gone_at = HashMap::new();
        for call in 4..=6 {
            let owners = resolver.resolve(&sockets, at(call));
            for pid in [101u64, 102] {
                if matches!(owners[&(1000 + pid)], Owners::Unknown { .. }) {
                    gone_at.entry(pid).or_insert(call);
                }
            }
            for pid in 103..=105 {
                assert_eq!(pids(&owners[&(1000 + pid)]), [pid as u32], "call {call}");
            }
        }
        assert_eq!(gone_at.len(), 2, "{gone_at:?}");
        assert_eq!(resolver.scans(), 1, "min_rescan holds the rescan back");
        let owners = resolver.resolve(&sockets, at(20));
        assert_eq!(resolver.scans(), 2);
        for sock in [1100, 1101] {
            assert!(reason(&owners[&sock]).starts_with("no process in sockq's PID namespace"));
        }
    }
}
