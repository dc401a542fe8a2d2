//! sockq's own process: what the Prometheus process collectors export as `process_*`.

/// sockq's own process (the `process_*` metrics of `sockq serve`, with the meanings of the
/// Prometheus client libraries' process collectors). A number that could not be read is `None`:
/// absent, never 0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSelf {
    /// User and system CPU time of all its threads, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// RLIMIT_NOFILE soft limit; `None` when unlimited or unreadable.
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// OS threads.
    pub threads: Option<u64>,
}
