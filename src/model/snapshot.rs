//! The `Snapshot`: one sample of a network namespace's connection pipeline.
//!
//! Plain data, no I/O. Every view (table, JSON, dashboard, Prometheus) renders from this type, so
//! the numbers can never disagree between views. The JSON form is the documented, versioned
//! schema in `docs/schema/snapshot.schema.json` (checked by a test against these types).

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::service::{ServiceStats, ServiceSummary, TcpSockstat};

/// Version of the JSON schema. Bump on any incompatible change of the serialized form.
pub const SCHEMA_VERSION: u32 = 1;

/// One sample of one network namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Snapshot {
    /// Version of this JSON schema (see `docs/schema/snapshot.schema.json`).
    pub schema_version: u32,
    /// When the sample was taken.
    pub time: SampleTime,
    /// Which host and kernel.
    pub host: HostInfo,
    /// Which network namespace was read.
    pub netns: NetnsInfo,
    /// TCP sockets in state LISTEN (IPv4 and IPv6), in kernel dump order.
    pub tcp_listeners: Vec<TcpListener>,
    /// Summary of the SYN-RECV (half-open) requests of the namespace.
    pub syn_recv: SynRecvSummary,
    /// UNIX stream sockets in state LISTEN. Absent when not collected.
    pub unix_listeners: Option<Vec<UnixListener>>,
    /// The service dump (the listeners' children) of this sample: its age and cost. Absent
    /// when it was not made (no listeners, or it failed: see `blind_spots`).
    #[serde(default)]
    pub service: Option<ServiceSummary>,
    /// The `TCP:` line of /proc/net/sockstat (sockets and memory). Absent when unreadable.
    #[serde(default)]
    pub sockstat: Option<TcpSockstat>,
    /// Cumulative kernel counters of the namespace (since the namespace was created).
    pub counters: Counters,
    /// Kernel tunables in force for the namespace.
    pub tunables: Tunables,
    /// What sockq could not see in this sample, in plain words. Empty when it saw everything.
    pub blind_spots: Vec<String>,
}

/// Time of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SampleTime {
    /// Wall-clock time, RFC 3339, UTC, millisecond precision.
    pub wall: String,
    /// Wall-clock time in milliseconds since the Unix epoch.
    pub wall_unix_ms: u64,
    /// CLOCK_MONOTONIC in nanoseconds (for intervals between samples; not comparable across boots).
    pub monotonic_ns: u64,
}

/// Host identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    /// Host name (of sockq's UTS namespace).
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
}

/// The network namespace that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsInfo {
    /// How it was chosen: `current` (sockq's own), `name:NAME` (under /run/netns) or `pid:PID`.
    pub label: String,
    /// Inode number of the namespace (as in `ls -L -i /proc/PID/ns/net`), when readable.
    pub inode: Option<u64>,
}

/// Address family.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// AF_INET
    Ipv4,
    /// AF_INET6
    Ipv6,
}

impl Family {
    /// The family of an address.
    #[must_use]
    pub fn of(addr: &std::net::IpAddr) -> Self {
        if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}

/// A TCP listening socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TcpListener {
    /// Address family of the socket.
    pub family: Family,
    /// Local address the socket is bound to (`0.0.0.0` / `::` for a wildcard).
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// For IPv6 sockets, IPV6_V6ONLY: false means a `::` listener also accepts IPv4 (dual
    /// stack, printed `*:PORT` as `ss` does). Absent for IPv4 sockets.
    pub v6only: Option<bool>,
    /// Socket inode (matches `socket:[INODE]` in /proc/PID/fd).
    pub inode: u64,
    /// Kernel socket cookie: unique for the life of the socket, unlike an inode number.
    pub cookie: u64,
    /// Owner UID of the socket.
    pub uid: u32,
    /// Accept queue depth: connections fully established and waiting for accept()
    /// (`sk_ack_backlog`, `ss -ltn` Recv-Q).
    pub accept_queue: u32,
    /// Backlog in force: min(listen() backlog, net.core.somaxconn at the time of listen())
    /// (`sk_max_ack_backlog`, `ss -ltn` Send-Q). The queue is full when depth > backlog.
    pub backlog: u32,
    /// The listener's own drop counter (`sk_drops`, `ss -ltm` `d<N>`): cumulative, bumped by
    /// every connection the kernel dropped on this listener. Absent when the kernel did not report
    /// SK_MEMINFO.
    pub drops: Option<u64>,
    /// SYN-RECV requests matched to this listener (for a shared port, to its group; see
    /// `syn_recv_group`).
    pub syn_recv: u64,
    /// Number of listening sockets the SYN-RECV count is shared by: 1 when the count is this
    /// socket's own; more with SO_REUSEPORT (the kernel does not say which socket of the group
    /// a request belongs to).
    pub syn_recv_group: u32,
    /// Highest SYN-ACK retransmit count among the matched requests: how long the oldest waits
    /// (retransmits happen at 1 s, 3 s, 7 s, 15 s, 31 s after the SYN). Absent with no requests.
    pub syn_recv_max_retrans: Option<u8>,
    /// Processes holding this socket.
    pub owners: Owners,
    /// After accept(): this listener's children (waiting, in service, closing). Absent when
    /// the service dump was not made or failed.
    #[serde(default)]
    pub service: Option<ServiceStats>,
}

/// Processes holding a socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Owners {
    /// The processes that hold the socket open (pre-fork servers: several).
    Known {
        /// Owning processes, by pid.
        processes: Vec<ProcessInfo>,
    },
    /// The owners could not be determined.
    Unknown {
        /// Why, in plain words (e.g. owned by another user and sockq is not root).
        reason: String,
    },
}

impl Owners {
    /// Owning processes, empty when unknown.
    pub fn processes(&self) -> &[ProcessInfo] {
        match self {
            Owners::Known { processes } => processes,
            Owners::Unknown { .. } => &[],
        }
    }
}

/// A process that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Command name (/proc/PID/comm).
    pub comm: String,
    /// Number of open file descriptors (entries of /proc/PID/fd). Absent when unreadable.
    pub fds_open: Option<u64>,
    /// RLIMIT_NOFILE soft limit (prlimit(2), or /proc/PID/limits "Max open files"); absent when
    /// unreadable or unlimited.
    pub fd_limit: Option<u64>,
    /// Age of `fds_open` and `fd_limit` in milliseconds: 0 when read for this sample. With more
    /// than 256 processes holding sockets, a process below half its fd limit is re-read in
    /// turn (at least every 10th sample) instead of on every sample.
    #[serde(default)]
    pub age_ms: u64,
}

/// SYN-RECV requests of the namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SynRecvSummary {
    /// All SYN-RECV requests in the namespace (`ss -tn state syn-recv` lines).
    pub total: u64,
    /// Requests that matched no listener (the listener closed, or a race during the dump).
    pub unmatched: u64,
    /// Age of these numbers in milliseconds: 0 when dumped for this sample; more when the
    /// SYN-RECV dump (expensive during a flood) was spaced out to keep sockq's CPU budget.
    pub age_ms: u64,
}

/// A UNIX stream listening socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnixListener {
    /// Path, `@name` for an abstract socket, or empty when unnamed.
    pub name: String,
    /// Socket inode.
    pub inode: u64,
    /// Connections waiting for accept() (UDIAG_SHOW_RQLEN, `ss -lx` Recv-Q).
    pub accept_queue: u32,
    /// Backlog in force (`ss -lx` Send-Q).
    pub backlog: u32,
    /// Processes holding this socket.
    pub owners: Owners,
}

/// Cumulative kernel counters, kept by name as the kernel spells them. A field the kernel does
/// not have is absent, never zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Counters {
    /// The TcpExt block of /proc/net/netstat.
    pub tcp_ext: BTreeMap<String, u64>,
    /// The Tcp block of /proc/net/snmp (MaxConn is -1, hence signed).
    pub tcp: BTreeMap<String, i64>,
}

/// The TcpExt counters about the listen queues, in the order sockq shows them.
pub const QUEUE_COUNTERS: [&str; 8] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "SyncookiesSent",
    "SyncookiesRecv",
    "SyncookiesFailed",
    "EmbryonicRsts",
];

impl Counters {
    /// A TcpExt counter by its kernel name.
    pub fn tcp_ext(&self, name: &str) -> Option<u64> {
        self.tcp_ext.get(name).copied()
    }
}

/// Kernel tunables in force. `None` means the file is absent or unreadable, never a default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Tunables {
    /// net.core.somaxconn: upper bound of any listen() backlog (per namespace).
    #[serde(rename = "net.core.somaxconn")]
    pub somaxconn: Option<i64>,
    /// net.ipv4.tcp_max_syn_backlog: SYN queue bound, only with tcp_syncookies=0.
    #[serde(rename = "net.ipv4.tcp_max_syn_backlog")]
    pub tcp_max_syn_backlog: Option<i64>,
    /// net.ipv4.tcp_syncookies: 0 off, 1 when the SYN queue is full, 2 always.
    #[serde(rename = "net.ipv4.tcp_syncookies")]
    pub tcp_syncookies: Option<i64>,
    /// net.ipv4.tcp_abort_on_overflow: 1 sends a RST when the accept queue is full at the final
    /// ACK; 0 drops the ACK silently.
    #[serde(rename = "net.ipv4.tcp_abort_on_overflow")]
    pub tcp_abort_on_overflow: Option<i64>,
    /// net.ipv4.tcp_synack_retries: SYN-ACK retransmissions before a request is dropped.
    #[serde(rename = "net.ipv4.tcp_synack_retries")]
    pub tcp_synack_retries: Option<i64>,
    /// net.ipv4.tcp_syn_retries: SYN retransmissions of an outgoing connect().
    #[serde(rename = "net.ipv4.tcp_syn_retries")]
    pub tcp_syn_retries: Option<i64>,
    /// net.core.netdev_max_backlog: per-CPU input packet queue length.
    #[serde(rename = "net.core.netdev_max_backlog")]
    pub netdev_max_backlog: Option<i64>,
    /// fs.file-max: system-wide limit on open files (not per namespace).
    #[serde(rename = "fs.file-max")]
    pub file_max: Option<i64>,
    /// fs.nr_open: the highest RLIMIT_NOFILE a process may set (not per namespace).
    #[serde(rename = "fs.nr_open")]
    pub nr_open: Option<i64>,
    /// net.ipv4.tcp_mem: low, pressure and high thresholds of the memory charged to TCP, in
    /// pages, host-wide (compare /proc/net/sockstat `mem`). Only the initial network
    /// namespace has the file: absent inside others.
    #[serde(rename = "net.ipv4.tcp_mem", default)]
    pub tcp_mem: Option<[i64; 3]>,
}

impl TcpListener {
    /// Accept-queue fill as a fraction of the backlog (may exceed 1.0: the queue holds backlog+1).
    /// Absent when the backlog is 0.
    pub fn fill(&self) -> Option<f64> {
        (self.backlog > 0).then(|| f64::from(self.accept_queue) / f64::from(self.backlog))
    }

    /// True when the kernel considers the accept queue full (`sk_ack_backlog > sk_max_ack_backlog`).
    pub fn is_full(&self) -> bool {
        self.accept_queue > self.backlog
    }

    /// `address:port` as `ss` prints it: `[::1]:80` for IPv6, `*:80` for a dual-stack `::`.
    pub fn endpoint(&self) -> String {
        if self.address.is_unspecified() && self.v6only == Some(false) {
            return format!("*:{}", self.port);
        }
        match self.address {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }
}

impl Tunables {
    /// Every tunable with its sysctl name, in display order.
    pub fn entries(&self) -> [(&'static str, Option<i64>); 9] {
        [
            ("net.core.somaxconn", self.somaxconn),
            ("net.ipv4.tcp_max_syn_backlog", self.tcp_max_syn_backlog),
            ("net.ipv4.tcp_syncookies", self.tcp_syncookies),
            ("net.ipv4.tcp_abort_on_overflow", self.tcp_abort_on_overflow),
            ("net.ipv4.tcp_synack_retries", self.tcp_synack_retries),
            ("net.ipv4.tcp_syn_retries", self.tcp_syn_retries),
            ("net.core.netdev_max_backlog", self.netdev_max_backlog),
            ("fs.file-max", self.file_max),
            ("fs.nr_open", self.nr_open),
        ]
    }
}
