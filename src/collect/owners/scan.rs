//! The full /proc scan: a `readlinkat` of every fd of every process, to find the holders of the
//! socket inodes the cache cannot vouch for; and how far apart scans are spaced.

use std::collections::HashMap;
use std::time::Duration;

use super::proc_access::{denied, ProcAccess};

/// Longest time between two full /proc scans (or `min_rescan`, when that is longer). A full
/// scan catches holders that a cached entry cannot show: a process that forked or received the
/// socket after the last scan.
pub const FULL_RESCAN_INTERVAL: Duration = Duration::from_secs(30);

/// With [`OwnerResolver::with_adaptive_rescan`](super::OwnerResolver::with_adaptive_rescan), a
/// scan for a new socket may follow the last scan after this many times that scan's duration:
/// scans for new sockets then take at most 1/50 of the time (2 %, the sampler's CPU budget),
/// and a small host finds a new listener's owner at the next sample instead of up to
/// `min_rescan` later.
pub const RESCAN_COST_FACTOR: u32 = 50;

/// How far apart scans are: fixed per resolver but for the last scan's cost.
#[derive(Debug, Clone)]
pub(super) struct RescanSpacing {
    /// Shortest time between two full /proc scans.
    pub(super) min_rescan: Duration,
    /// `Some(floor)`: rescans for new sockets are spaced by [`RESCAN_COST_FACTOR`] × the last
    /// scan's duration, at least `floor`, at most `min_rescan`.
    pub(super) adaptive_floor: Option<Duration>,
    /// Wall time the last scan took.
    pub(super) last_scan_cost: Duration,
}

impl RescanSpacing {
    pub(super) fn new(min_rescan: Duration) -> Self {
        RescanSpacing {
            min_rescan,
            adaptive_floor: None,
            last_scan_cost: Duration::ZERO,
        }
    }

    /// Shortest time between a scan and a scan for new (or lost) sockets.
    pub(super) fn gap(&self) -> Duration {
        match self.adaptive_floor {
            None => self.min_rescan,
            Some(floor) => self
                .last_scan_cost
                .saturating_mul(RESCAN_COST_FACTOR)
                .max(floor)
                .min(self.min_rescan),
        }
    }

    /// Time between two forced full scans: [`FULL_RESCAN_INTERVAL`], or `min_rescan` if longer.
    pub(super) fn full_interval(&self) -> Duration {
        FULL_RESCAN_INTERVAL.max(self.min_rescan)
    }
}

/// A process holding a socket, and one fd number under which it held it at the last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Holder {
    pub(super) pid: u32,
    pub(super) fd: u32,
}

/// What the last scan could and could not see; the basis of the "not found" reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ScanStats {
    /// PID directories seen.
    pub(super) processes: u32,
    /// Processes whose /proc/PID/fd could not be opened for lack of permission.
    pub(super) unreadable: u32,
    /// Processes skipped because their network namespace is not the one asked for.
    pub(super) other_netns: u32,
    /// The proc root itself could not be listed: the whole error, in words.
    pub(super) root_error: Option<String>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub(super) struct Scanned {
    /// Holders of each wanted inode that some process holds, in the order found.
    pub(super) found: HashMap<u64, Vec<Holder>>,
    /// Open-fd count of every process holding a wanted inode, from the scan's listing.
    pub(super) fd_counts: HashMap<u32, u64>,
    pub(super) stats: ScanStats,
}

/// Below this many processes a scan reads them on one thread: a thread costs more than it saves.
const PARALLEL_PIDS: usize = 64;

/// A process with at least this many fds has its `readlinkat`s spread over threads.
const PARALLEL_FDS: usize = 4096;

/// Threads a scan uses: the CPUs sockq may run on, at most 4 (the reads are system calls into
/// procfs, which scale with cores; more threads would only take CPU from the host's work).
fn scan_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Reads /proc/PID/{fd,ns/net} of every process; returns the holders of the wanted inodes and
/// the open-fd count of every process holding one. Processes are read on several threads when
/// there are many ([`PARALLEL_PIDS`]), and so are the fds of a process with very many
/// ([`PARALLEL_FDS`]): a scan is wall time for `sockq snapshot` and at a dashboard's start.
pub(super) fn scan_proc(
    access: &ProcAccess,
    netns_inode: Option<u64>,
    wanted: impl Fn(u64) -> bool + Sync,
    wanted_count: usize,
) -> Scanned {
    // The listing is closed before any process is read, so sockq's own fd count (when it holds
    // a socket asked about) has only the one descriptor of its /proc/PID/fd listing to
    // discount.
    let pids = match access.pids() {
        Ok(pids) => pids,
        Err(e) => {
            let root = access.root().display();
            let mut out = Scanned::default();
            out.stats.root_error = Some(format!("cannot list {root}: {e}"));
            return out;
        }
    };
    let threads = if pids.len() >= PARALLEL_PIDS {
        scan_threads()
    } else {
        1
    };
    let scan = |t: usize| {
        let mine = pids.iter().skip(t).step_by(threads).copied();
        scan_pids(access, netns_inode, mine, &wanted, wanted_count)
    };
    let parts: Vec<(Scanned, Vec<u32>)> = if threads > 1 {
        std::thread::scope(|s| {
            let spawned: Vec<_> = (1..threads)
                .map(|t| {
                    let scan = &scan;
                    (
                        t,
                        std::thread::Builder::new()
                            .name("sockq-scan".into())
                            .spawn_scoped(s, move || scan(t)),
                    )
                })
                .collect();
            let mut parts = vec![scan(0)];
            for (t, handle) in spawned {
                // A thread that could not start (or died) is done here instead.
                match handle.map(|h| h.join()) {
                    Ok(Ok(part)) => parts.push(part),
                    _ => parts.push(scan(t)),
                }
            }
            parts
        })
    } else {
        vec![scan(0)]
    };
    let mut out = Scanned::default();
    let mut deferred = Vec::new();
    for (part, d) in parts {
        out.merge(part);
        deferred.extend(d);
    }
    // Processes of other network namespaces are searched last, and only if some socket is still
    // unaccounted for: a process may hold a socket of another namespace (a socket passed over a
    // UNIX socket, or made by a thread that entered the namespace with setns, since
    // /proc/PID/ns/net shows the main thread's namespace only).
    if out.found.len() < wanted_count {
        for pid in deferred {
            scan_pid(access, pid, &wanted, wanted_count, &mut out);
        }
    } else {
        out.stats.other_netns = u32::try_from(deferred.len()).unwrap_or(u32::MAX);
    }
    out
}

impl Scanned {
    fn merge(&mut self, other: Scanned) {
        for (inode, holders) in other.found {
            self.found.entry(inode).or_default().extend(holders);
        }
        self.fd_counts.extend(other.fd_counts);
        self.stats.processes += other.stats.processes;
        self.stats.unreadable += other.stats.unreadable;
    }
}

/// Scans `pids` of the wanted namespace; returns what it found and the pids of other
/// namespaces (skipped before their fds are listed).
fn scan_pids(
    access: &ProcAccess,
    netns_inode: Option<u64>,
    pids: impl Iterator<Item = u32>,
    wanted: &(impl Fn(u64) -> bool + Sync),
    wanted_count: usize,
) -> (Scanned, Vec<u32>) {
    let mut out = Scanned::default();
    let mut deferred: Vec<u32> = Vec::new();
    for pid in pids {
        out.stats.processes += 1;
        if let Some(want) = netns_inode {
            if access.netns_inode(pid).is_some_and(|ns| ns != want) {
                deferred.push(pid);
                continue;
            }
        }
        scan_pid(access, pid, wanted, wanted_count, &mut out);
    }
    (out, deferred)
}

/// Reads the fd table of one process, recording the wanted socket inodes it holds and, if it
/// holds one, how many fds it has open. Stops early once the process holds every wanted inode
/// (its other fds can only be more of the same). A process with very many fds is read on
/// several threads.
fn scan_pid(
    access: &ProcAccess,
    pid: u32,
    wanted: &(impl Fn(u64) -> bool + Sync),
    wanted_count: usize,
    out: &mut Scanned,
) {
    let mut listing = match access.open_fd_listing(pid) {
        Ok(listing) => listing,
        Err(e) => {
            if denied(e) {
                out.stats.unreadable += 1;
            }
            // Otherwise the process exited meanwhile: nothing to count.
            return;
        }
    };
    let fds = listing.fds();
    let open = fds.len() as u64;
    let held = if fds.len() >= PARALLEL_FDS && scan_threads() > 1 {
        held_parallel(&listing, &fds, wanted)
    } else {
        held_in_order(&listing, &fds, wanted, wanted_count)
    };
    if !held.is_empty() {
        for (inode, fd) in held {
            out.found.entry(inode).or_default().push(Holder { pid, fd });
        }
        // The descriptor of the listing, when the process is sockq itself.
        let own = access.own_reading_fds(pid, 1);
        out.fd_counts.insert(pid, open.saturating_sub(own));
    }
}

/// The wanted (inode, fd) pairs among `fds`, read in order; stops once `wanted_count` distinct
/// inodes are found.
fn held_in_order(
    listing: &super::proc_access::FdListing,
    fds: &[u32],
    wanted: &impl Fn(u64) -> bool,
    wanted_count: usize,
) -> Vec<(u64, u32)> {
    let mut held = Vec::new();
    let mut distinct = std::collections::HashSet::new();
    let mut name = String::with_capacity(10);
    for &fd in fds {
        // An fd closed between the listing and the readlink simply fails here.
        let Some(inode) = listing.socket_at(fd, &mut name) else {
            continue;
        };
        if wanted(inode) {
            held.push((inode, fd));
            distinct.insert(inode);
            if distinct.len() >= wanted_count {
                break;
            }
        }
    }
    held
}

/// [`held_in_order`] without the early stop, the fds split over [`scan_threads`] threads (each
/// a `readlinkat` relative to the same open directory).
fn held_parallel(
    listing: &super::proc_access::FdListing,
    fds: &[u32],
    wanted: &(impl Fn(u64) -> bool + Sync),
) -> Vec<(u64, u32)> {
    let dir = listing.fd();
    let threads = scan_threads();
    let chunk = fds.len().div_ceil(threads);
    let read = |part: &[u32]| {
        let mut name = String::with_capacity(10);
        part.iter()
            .filter_map(|&fd| {
                let inode = super::proc_access::socket_at(dir, fd, &mut name)?;
                wanted(inode).then_some((inode, fd))
            })
            .collect::<Vec<_>>()
    };
    std::thread::scope(|s| {
        let mut parts = fds.chunks(chunk.max(1));
        let first = parts.next().unwrap_or(&[]);
        let spawned: Vec<_> = parts
            .map(|part| {
                let read = &read;
                (
                    part,
                    std::thread::Builder::new()
                        .name("sockq-scan".into())
                        .spawn_scoped(s, move || read(part)),
                )
            })
            .collect();
        let mut held = read(first);
        for (part, handle) in spawned {
            match handle.map(|h| h.join()) {
                Ok(Ok(found)) => held.extend(found),
                _ => held.extend(read(part)),
            }
        }
        held
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::owners::proc_access::ProcAccess;
    use crate::collect::owners::test_support::{
        me, pids, reason, FakeProc, LIMITS, LIMITS_1024, LIMITS_UNLIMITED,
    };
    use crate::collect::owners::OwnerResolver;
    use crate::model::snapshot::ProcessInfo;
    use std::path::PathBuf;
    use std::time::Instant;

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
                    age_ms: 0,
                    ..ProcessInfo::default()
                },
                ProcessInfo {
                    pid: 300,
                    comm: "nginx".into(),
                    fds_open: Some(6),
                    fd_limit: Some(1024),
                    age_ms: 0,
                    ..ProcessInfo::default()
                },
                ProcessInfo {
                    pid: 1000,
                    comm: "nginx".into(),
                    fds_open: Some(1),
                    fd_limit: Some(20000),
                    age_ms: 0,
                    ..ProcessInfo::default()
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
    fn fake_proc_adaptive_rescan_spaces_scans_by_their_cost() {
        let fake = FakeProc::new("adaptive");
        fake.add(100, "server", LIMITS, None, &[(3, "socket:[42]")]);
        let mut resolver = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5))
            .with_adaptive_rescan(Duration::from_secs(1));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        resolver.resolve(&[(42, me())], at(0));
        assert_eq!(resolver.scans(), 1);

        // (the last scan's duration, a process with a new socket, a call too early for a scan,
        // the call that scans): 50 × 60 ms = 3 s; 50 × 0.1 ms is under the 1 s floor; 50 × 1 s
        // is over min_rescan, 5 s.
        let cases = [
            (Duration::from_millis(60), 101, 43, 2000, 3000),
            (Duration::from_micros(100), 102, 44, 3500, 4000),
            (Duration::from_secs(1), 103, 45, 8900, 9000),
        ];
        for (n, (cost, pid, sock, early, on_time)) in cases.into_iter().enumerate() {
            resolver.spacing.last_scan_cost = cost;
            let link = format!("socket:[{sock}]");
            fake.add(pid, "server", LIMITS, None, &[(3, link.as_str())]);
            let owners = resolver.resolve(&[(42, me()), (sock, me())], at(early));
            assert_eq!(resolver.scans(), 1 + n as u64, "{cost:?}");
            assert_eq!(
                reason(&owners[&sock]),
                "not looked up yet (next /proc scan in 1s)"
            );
            let owners = resolver.resolve(&[(42, me()), (sock, me())], at(on_time));
            assert_eq!(resolver.scans(), 2 + n as u64, "{cost:?}");
            assert_eq!(pids(&owners[&sock]), [pid]);
        }

        // Without it, min_rescan it is.
        let plain = OwnerResolver::new(fake.root.clone(), None, Duration::from_secs(5));
        assert_eq!(plain.spacing.gap(), Duration::from_secs(5));
    }

    #[test]
    fn fake_proc_many_processes_and_a_huge_fd_table_are_read_in_parallel_alike() {
        let fake = FakeProc::new("parallel");
        // One process with 5,000 fds, three of them wanted sockets (first, middle, last) and
        // one wanted socket twice; 100 small processes with one socket each.
        let big: Vec<(u32, String)> = (0..5000u32)
            .map(|fd| {
                let target = match fd {
                    0 => "socket:[7000]".to_string(),
                    2500 | 2501 => "socket:[7001]".to_string(),
                    4999 => "socket:[7002]".to_string(),
                    _ => format!("socket:[{}]", 900_000 + fd),
                };
                (fd, target)
            })
            .collect();
        let fds: Vec<(u32, &str)> = big.iter().map(|(fd, t)| (*fd, t.as_str())).collect();
        fake.add(10, "big", LIMITS, None, &fds);
        for pid in 100..200u32 {
            let link = format!("socket:[{}]", 8000 + pid);
            fake.add(
                pid,
                "small",
                LIMITS,
                None,
                &[(3, link.as_str()), (4, "/dev/null")],
            );
        }
        const { assert!(PARALLEL_FDS <= 5000 && PARALLEL_PIDS <= 101) };
        let wanted: Vec<u64> = [7000, 7001, 7002]
            .into_iter()
            .chain((100..200).map(|pid| 8000 + pid))
            .collect();
        let access = ProcAccess::new(fake.root.clone());
        let scanned = scan_proc(&access, None, |ino| wanted.contains(&ino), wanted.len());
        assert_eq!(scanned.found.len(), wanted.len());
        let fds_of = |ino: u64| {
            let mut v: Vec<(u32, u32)> =
                scanned.found[&ino].iter().map(|h| (h.pid, h.fd)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(fds_of(7000), [(10, 0)]);
        assert_eq!(fds_of(7001), [(10, 2500), (10, 2501)]);
        assert_eq!(fds_of(7002), [(10, 4999)]);
        for pid in 100..200u32 {
            assert_eq!(fds_of(u64::from(8000 + pid)), [(pid, 3)]);
            assert_eq!(scanned.fd_counts[&pid], 2);
        }
        assert_eq!(scanned.fd_counts[&10], 5000);
        assert_eq!(scanned.stats.processes, 101);
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
