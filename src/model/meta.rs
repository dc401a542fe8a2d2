//! What each number means, in the kernel's terms. Shared by every view and by docs/metrics.md.

/// A kernel counter sockq treats as first-class, with its meaning.
#[derive(Debug, Clone, Copy)]
pub struct CounterInfo {
    /// Name as in /proc/net/netstat (TcpExt block).
    pub name: &'static str,
    /// Short label for narrow displays.
    pub short: &'static str,
    /// What the kernel counts, in plain words.
    pub meaning: &'static str,
}

/// The queue counters (TcpExt), in display order.
pub const QUEUE_COUNTER_INFO: [CounterInfo; 8] = [
    CounterInfo {
        name: "ListenOverflows",
        short: "Overflows",
        meaning: "accept queue full: a SYN or final ACK dropped",
    },
    CounterInfo {
        name: "ListenDrops",
        short: "ListenDrops",
        meaning:
            "every drop on a listener; includes all ListenOverflows (not \"SYN queue overflow\")",
    },
    CounterInfo {
        name: "TCPReqQFullDrop",
        short: "ReqQFullDrop",
        meaning: "SYN queue full with syncookies off: SYN dropped",
    },
    CounterInfo {
        name: "TCPReqQFullDoCookies",
        short: "DoCookies",
        meaning: "SYN queue full: a SYN cookie sent instead of keeping the request",
    },
    CounterInfo {
        name: "SyncookiesSent",
        short: "CookiesSent",
        meaning: "SYN cookies sent (no request kept: SYN-RECV undercounts meanwhile)",
    },
    CounterInfo {
        name: "SyncookiesRecv",
        short: "CookiesRecv",
        meaning: "valid SYN cookies received back (connections made from a cookie)",
    },
    CounterInfo {
        name: "SyncookiesFailed",
        short: "CookiesFail",
        meaning: "ACKs with an invalid SYN cookie",
    },
    CounterInfo {
        name: "EmbryonicRsts",
        short: "EmbryonicRsts",
        meaning: "resets sent for SYN-RECV requests (e.g. tcp_abort_on_overflow=1 at a full queue)",
    },
];

/// Meaning of a tunable (by sysctl name), or of its current value where the value matters.
pub fn tunable_meaning(name: &str, value: Option<i64>) -> &'static str {
    if value.is_none() && name == "net.core.netdev_max_backlog" {
        return "host-wide: not visible from inside a network namespace";
    }
    match (name, value.unwrap_or(-1)) {
        ("net.ipv4.tcp_syncookies", 0) => "off: a full SYN queue drops SYNs",
        ("net.ipv4.tcp_syncookies", 1) => "cookies when the SYN queue is full",
        ("net.ipv4.tcp_syncookies", 2) => "cookies always",
        ("net.ipv4.tcp_abort_on_overflow", 0) => {
            "final ACK dropped silently at a full accept queue; clients retry"
        }
        ("net.ipv4.tcp_abort_on_overflow", 1) => "clients get a RST at a full accept queue",
        ("net.ipv4.tcp_syncookies", _) => "0 off, 1 when the SYN queue is full, 2 always",
        ("net.ipv4.tcp_abort_on_overflow", _) => "1: RST at a full accept queue; 0: silent drop",
        ("net.core.somaxconn", _) => "cap on every listen() backlog, read at listen() time",
        ("net.ipv4.tcp_max_syn_backlog", _) => "SYN queue cap, only with tcp_syncookies=0",
        ("net.ipv4.tcp_synack_retries", _) => "SYN-ACK retries before a request is dropped",
        ("net.ipv4.tcp_syn_retries", _) => "SYN retries of an outgoing connect()",
        ("net.core.netdev_max_backlog", _) => "per-CPU input packet queue",
        ("fs.file-max", _) => "system-wide open file limit",
        ("fs.nr_open", _) => "highest RLIMIT_NOFILE a process may set",
        _ => "",
    }
}
