//! The refresh of holder processes between scans: their fd count, limit and /proc/PID/stat on
//! the schedule of [`due_pids`](super::due_pids), and the re-check of their cached sockets only
//! when there is a reason (owners at O(change)).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::activity::Activity;
use super::proc_access::{short_of_descriptors, socket_at};
use super::{due_pids, Entry, Lookup, OwnerResolver, RECHECK_PER_CALL};

impl OwnerResolver {
    /// Refreshes the holder processes that are due: reads their fd count, limit and
    /// /proc/PID/stat, forgets those that exited, and re-checks their cached sockets when there
    /// is a reason ([`Refreshed::Changed`]). True when a scan is wanted (a new inode, or a
    /// holder that no longer holds its socket).
    pub(super) fn refresh(
        &mut self,
        sockets: &[(u64, u32)],
        now: Instant,
        unresolved: bool,
    ) -> bool {
        let due = due_pids(
            self.procs.iter().map(|(&pid, p)| (pid, p.checked, p.hot())),
            self.refresh_all_up_to,
            self.refresh_rounds,
        );
        // One process at a time (one descriptor open, however many are due).
        let mut changed: HashMap<u32, Vec<(u64, u32)>> = HashMap::new();
        let mut gone = false;
        for pid in due {
            match self.refresh_process(pid, now) {
                Refreshed::Same => {}
                Refreshed::Changed => {
                    changed.insert(pid, Vec::new());
                }
                Refreshed::Gone => gone = true,
            }
        }
        // The cached (socket, fd) pairs of each changed process, among the sockets asked for.
        // `unresolved` (from the caller's walk over them) already says whether one is pending
        // or stale: with no process changed, the sockets are not walked again.
        let mut need_scan = unresolved;
        let walk = if changed.is_empty() { &[][..] } else { sockets };
        for &(inode, _) in walk {
            match self.entries.get(&inode).map(|e| &e.lookup) {
                Some(Lookup::Pending) => need_scan = true,
                Some(Lookup::Held { holders, stale }) => {
                    need_scan |= *stale;
                    for h in holders {
                        if let Some(held) = changed.get_mut(&h.pid) {
                            held.push((inode, h.fd));
                        }
                    }
                }
                Some(Lookup::NotFound) | None => {}
            }
        }
        let mut lost: HashSet<(u64, u32)> = HashSet::new();
        let mut name = String::with_capacity(10);
        for (pid, held) in changed {
            self.recheck_process(pid, &held, &mut lost, &mut name);
        }
        if !gone && lost.is_empty() {
            return need_scan;
        }
        for &(inode, _) in sockets {
            let Some(Entry {
                lookup: Lookup::Held { holders, stale },
                ..
            }) = self.entries.get_mut(&inode)
            else {
                continue;
            };
            let before = holders.len();
            let procs = &self.procs;
            holders.retain(|h| procs.contains_key(&h.pid) && !lost.contains(&(inode, h.pid)));
            *stale |= holders.len() != before;
            need_scan |= *stale;
        }
        need_scan
    }

    /// Refreshes one due process's fd count, limit and /proc/PID/stat; says whether its cached
    /// sockets need a re-check (its fd count or start time changed, or the start time is not
    /// known) or whether it is gone.
    fn refresh_process(&mut self, pid: u32, now: Instant) -> Refreshed {
        let dir = match self.access.open_fd_dir(pid) {
            Ok(dir) => dir,
            // sockq itself short of descriptors: the process's numbers keep their age until a
            // later call can read them.
            Err(e) if short_of_descriptors(&e) => return Refreshed::Same,
            // Exited, or no longer readable (another uid, made non-dumpable): what it held can
            // no longer be vouched for; a rescan looks again.
            Err(_) => {
                self.procs.remove(&pid);
                return Refreshed::Gone;
            }
        };
        let fds_open = self.access.count_fds(pid, &dir);
        drop(dir);
        let fd_limit = self.access.fd_limit(pid);
        let stat = self.access.stat(pid);
        let read_at = self.read_time(now);
        let clk_tck = self.clk_tck;
        let Some(p) = self.procs.get_mut(&pid) else {
            return Refreshed::Same;
        };
        let started = |a: &Option<Activity>| a.as_ref().map(Activity::starttime);
        let before = (p.fds_open, started(&p.activity));
        p.fds_open = fds_open;
        p.fd_limit = fd_limit;
        p.activity = stat.map(|s| Activity::next(p.activity.as_ref(), &s, read_at, clk_tck));
        p.checked = now;
        let after = (p.fds_open, started(&p.activity));
        if after.1.is_none() || after != before {
            p.recheck_left = usize::MAX; // a new round: set to the count at the re-check
        }
        if p.recheck_left > 0 {
            Refreshed::Changed
        } else {
            Refreshed::Same
        }
    }

    /// Re-checks the cached (socket, fd) pairs `held` of one process: a socket no longer at
    /// its fd goes into `lost`. `name`: scratch space for fd names.
    fn recheck_process(
        &mut self,
        pid: u32,
        held: &[(u64, u32)],
        lost: &mut HashSet<(u64, u32)>,
        name: &mut String,
    ) {
        let Some(p) = self.procs.get_mut(&pid) else {
            return;
        };
        if held.is_empty() {
            p.recheck_left = 0;
            return;
        }
        // This call's share of the round, from where the last call stopped.
        let left = p.recheck_left.min(held.len());
        let n = left.min(RECHECK_PER_CALL);
        let from = p.recheck_at % held.len();
        p.recheck_at = (from + n) % held.len();
        p.recheck_left = left - n;
        let dir = match self.access.open_fd_dir(pid) {
            Ok(dir) => dir,
            Err(e) if short_of_descriptors(&e) => return,
            Err(_) => {
                self.procs.remove(&pid);
                return;
            }
        };
        for &(inode, fd) in held.iter().cycle().skip(from).take(n) {
            if socket_at(&dir, fd, name) != Some(inode) {
                lost.insert((inode, pid));
            }
        }
    }
}

/// What a refresh found about one holder process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refreshed {
    /// Same fd count and start time as at its last read: its cached sockets stand (a socket
    /// closed and another opened at once is caught by the 30 s full rescan; a listener closed
    /// by its only holder leaves the kernel's dump and is not asked about).
    Same,
    /// Its fd count or start time changed (or no start time could be read): re-check.
    Changed,
    /// Exited or no longer readable: forgotten.
    Gone,
}
