//! sockq's own process, from /proc/self with the `procfs` crate: CPU time, memory, file
//! descriptors, start time and threads, as the Prometheus process collectors read them
//! (`/proc/self/stat`, `/proc/self/limits`, `/proc/self/fd`). `sockq serve` reads it on each
//! scrape. Each number is read on its own; one that cannot be read is `None`.

use procfs::process::{LimitValue, Process, Stat};

use crate::model::ProcessSelf;

/// Reads sockq's own process now. Never fails: what cannot be read is `None`.
pub fn process_self() -> ProcessSelf {
    let Ok(me) = Process::myself() else {
        return ProcessSelf::default();
    };
    let mut out = ProcessSelf::default();
    if let Ok(stat) = me.stat() {
        from_stat(
            &mut out,
            &stat,
            procfs::ticks_per_second(),
            procfs::page_size(),
            procfs::boot_time_secs().ok(),
        );
    }
    // Like every process collector's count, it includes the descriptors opened to read it.
    out.open_fds = me.fd_count().ok().and_then(|counted| {
        let size = std::fs::metadata("/proc/self/fd").ok()?.len();
        Some(without_dot_entries(u64::try_from(counted).ok()?, size))
    });
    out.max_fds = me
        .limits()
        .ok()
        .and_then(|l| match l.max_open_files.soft_limit {
            LimitValue::Value(n) => Some(n),
            LimitValue::Unlimited => None,
        });
    out
}

/// procfs's `fd_count()` is the size of /proc/self/fd when the kernel gives one (Linux 6.2+: the
/// number of open descriptors), otherwise the number of entries a listing of it returns, which
/// include `.` and `..`. (Not procfs's `fd()` listing: it opens every descriptor's link, and so
/// fails at the limit, where the count matters.)
fn without_dot_entries(counted: u64, dir_size: u64) -> u64 {
    if dir_size > 0 {
        counted
    } else {
        counted.saturating_sub(2)
    }
}

/// The numbers in /proc/self/stat: CPU time and start time in clock ticks (`ticks_per_second`,
/// the start time since boot at `boot_time` seconds since the epoch), the resident set in pages.
fn from_stat(
    out: &mut ProcessSelf,
    stat: &Stat,
    ticks_per_second: u64,
    page_size: u64,
    boot_time: Option<u64>,
) {
    if ticks_per_second > 0 {
        let tps = ticks_per_second as f64;
        out.cpu_seconds = stat
            .utime
            .checked_add(stat.stime)
            .map(|ticks| ticks as f64 / tps);
        out.start_time_seconds = boot_time.map(|boot| boot as f64 + stat.starttime as f64 / tps);
    }
    out.resident_memory_bytes = stat.rss.checked_mul(page_size);
    out.virtual_memory_bytes = Some(stat.vsize);
    out.threads = u64::try_from(stat.num_threads).ok();
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromRead as _;

    #[test]
    fn stat_numbers_become_seconds_and_bytes() {
        // A /proc/PID/stat line of a process whose comm has spaces and parentheses.
        let line = b"4242 (sockq (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
            250 150 0 0 20 0 5 0 360000 123456789 3000 18446744073709551615 1 1 0 0 0 0 0 \
            4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        let stat = Stat::from_read(&line[..]).unwrap();
        let mut p = ProcessSelf::default();
        from_stat(&mut p, &stat, 100, 4096, Some(1_700_000_000));
        assert_eq!(p.cpu_seconds, Some(4.0));
        assert_eq!(p.start_time_seconds, Some(1_700_003_600.0));
        assert_eq!(p.resident_memory_bytes, Some(3000 * 4096));
        assert_eq!(p.virtual_memory_bytes, Some(123_456_789));
        assert_eq!(p.threads, Some(5));

        let mut p = ProcessSelf::default();
        from_stat(&mut p, &stat, 0, u64::MAX, None);
        assert_eq!((p.cpu_seconds, p.start_time_seconds), (None, None));
        assert_eq!(
            p.resident_memory_bytes, None,
            "overflow is absent, not wrapped"
        );
    }

    #[test]
    fn a_listing_does_not_count_dot_entries() {
        assert_eq!(without_dot_entries(12, 12), 12, "Linux 6.2+: the size");
        assert_eq!(without_dot_entries(14, 0), 12, "before: a listing");
        assert_eq!(without_dot_entries(1, 0), 0);
    }

    #[test]
    fn reads_this_process() {
        let p = process_self();
        assert!(p.cpu_seconds.is_some_and(|s| s >= 0.0), "{p:?}");
        let rss = p.resident_memory_bytes.unwrap();
        assert!(rss > 0 && p.virtual_memory_bytes.unwrap() >= rss, "{p:?}");
        assert!(p.threads.is_some_and(|n| n >= 1), "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = p.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
        // Other test threads open and close files meanwhile: a range, not an exact count.
        let listed = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let open = p.open_fds.unwrap();
        assert!(
            open >= 3 && open.abs_diff(listed) < 64,
            "{open} vs {listed}"
        );
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .unwrap()
            .0;
        assert_eq!(
            p.max_fds,
            (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
        );
    }
}
