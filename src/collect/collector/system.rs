//! Facts of the host and its clocks that every sample carries.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::{HostInfo, SampleTime};

/// The size of a page in bytes (the unit of sockstat `mem` and net.ipv4.tcp_mem). Linux
/// always answers sysconf(_SC_PAGESIZE); 4096 only if it did not.
pub(super) fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(4096)
}

pub(super) fn host_info() -> HostInfo {
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    HostInfo { hostname, kernel }
}

pub(super) fn sample_time() -> SampleTime {
    let now = SystemTime::now();
    let wall_unix_ms = now
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    SampleTime {
        wall: humantime::format_rfc3339_millis(now).to_string(),
        wall_unix_ms,
        monotonic_ns: monotonic_ns(),
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}
