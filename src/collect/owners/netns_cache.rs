//! The network namespace of each process, shared by the owner scans of every namespace a fleet
//! (`--all-netns`) samples.
//!
//! A scan keeps to the processes of its namespace by reading each process's /proc/PID/ns/net
//! link. With one scan per namespace, a host of 200 namespaces and 600 processes read 120,000
//! links for every round of full scans (each namespace's every 30 s), most of the owner cost of
//! a quiet namespace. A process changes namespace rarely (setns, unshare — and then mostly a
//! child before it execs), so a link read in the last [`NETNS_CACHE_AGE`] answers for every
//! scan. A stale answer costs no correctness: a process taken for another namespace's is still
//! searched (last) when a socket is unaccounted for, and one taken for this namespace's only
//! has its fds listed for nothing. New pids are always read, so a new process is never missed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::model::FastMap;

/// How long a process's namespace, once read, answers for it.
pub const NETNS_CACHE_AGE: Duration = Duration::from_secs(5);

/// Namespace inode by pid, with when it was read; entries older than [`NETNS_CACHE_AGE`] are
/// dropped, so it holds at most the processes read in that time.
#[derive(Debug, Default)]
pub struct NetnsCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_pid: FastMap<u32, (u64, Instant)>,
    pruned: Option<Instant>,
}

impl NetnsCache {
    /// `pid`'s namespace inode: the cached one while young enough, else `read()` (kept when
    /// it answers; an unreadable link is read again next time).
    pub fn get_or_read(&self, pid: u32, read: impl FnOnce() -> Option<u64>) -> Option<u64> {
        self.get_or_read_at(pid, Instant::now(), read)
    }

    fn get_or_read_at(
        &self,
        pid: u32,
        now: Instant,
        read: impl FnOnce() -> Option<u64>,
    ) -> Option<u64> {
        let young = |at: Instant| now.saturating_duration_since(at) < NETNS_CACHE_AGE;
        // A poisoned lock (a panic elsewhere while holding it) only costs the cache.
        if let Ok(inner) = self.inner.lock() {
            if let Some(&(ns, at)) = inner.by_pid.get(&pid) {
                if young(at) {
                    return Some(ns);
                }
            }
        }
        let ns = read()?;
        if let Ok(mut inner) = self.inner.lock() {
            inner.by_pid.insert(pid, (ns, now));
            if inner.pruned.is_none_or(|p| !young(p)) {
                inner.by_pid.retain(|_, (_, at)| young(*at));
                inner.pruned = Some(now);
            }
        }
        Some(ns)
    }

    /// Processes remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.by_pid.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_answers_until_it_is_too_old_and_unreadable_links_are_not_kept() {
        let cache = NetnsCache::default();
        let t0 = Instant::now();
        let mut reads = 0;
        let mut read = |ns: Option<u64>| {
            reads += 1;
            ns
        };
        assert_eq!(cache.get_or_read_at(7, t0, || read(Some(100))), Some(100));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            cache.get_or_read_at(7, later, || read(Some(200))),
            Some(100)
        );
        let old = t0 + NETNS_CACHE_AGE + Duration::from_secs(1);
        assert_eq!(cache.get_or_read_at(7, old, || read(Some(200))), Some(200));
        assert_eq!(cache.get_or_read_at(8, old, || read(None)), None);
        assert_eq!(cache.get_or_read_at(8, old, || read(Some(300))), Some(300));
        assert_eq!(reads, 4);
    }

    #[test]
    fn old_entries_are_dropped_so_it_holds_only_recent_processes() {
        let cache = NetnsCache::default();
        let t0 = Instant::now();
        for pid in 0..1000 {
            cache.get_or_read_at(pid, t0, || Some(1));
        }
        assert_eq!(cache.len(), 1000);
        let later = t0 + NETNS_CACHE_AGE * 2;
        cache.get_or_read_at(5000, later, || Some(1));
        assert_eq!(cache.len(), 1);
    }
}
